"""The async implementation of the context layer (the sync twin is generated from it)."""
