"""Seal production: the CA, seal impressions, SESeal structures and the platform's documents.

Pure building blocks with no I/O besides the CA's key directory; every function that renders or
signs is CPU-bound, so async callers run it with ``asyncio.to_thread``.
"""
