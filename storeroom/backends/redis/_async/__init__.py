"""Async Redis backend (the sync twin in ``_sync`` is generated from it)."""
