"""The in-memory backend: thread-safe, every operator native via local evaluation."""

from ._async.backend import AsyncMemoryBackend
from ._sync.backend import MemoryBackend

__all__ = ["AsyncMemoryBackend", "MemoryBackend"]
