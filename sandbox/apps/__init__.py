"""Composition roots: each process's FastAPI application is put together here, once."""
