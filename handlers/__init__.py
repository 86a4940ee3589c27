"""The processes of the manual as flows, one module per process, gathered by ``catalogue``."""
