"""Async I/O of the store front (the sync twin in ``_sync`` is generated)."""
