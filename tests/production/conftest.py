from tests.softhsm_fixtures import softhsm_store as softhsm_store

__all__ = ["softhsm_store"]
