"""Relation loading I/O (async; the sync twin is generated)."""
