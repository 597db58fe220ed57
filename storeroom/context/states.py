"""The states a context goes through, in order."""

from __future__ import annotations

NEW = 0
"""Created, not entered yet."""
ACTIVE = 1
"""Entered: middleware set up (or being set up), the body running."""
EXITING = 2
"""Middleware tearing down, then the engines committing or rolling back."""
CLOSING = 3
"""Resources closing (no new resource may open)."""
ENDED = 4
"""Over; nothing can be used any more."""

NAMES = ("new", "active", "exiting", "closing", "ended")
