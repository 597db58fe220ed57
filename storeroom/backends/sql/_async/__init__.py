"""Async I/O of the SQL backend (the sync twin in ``_sync`` is generated)."""
