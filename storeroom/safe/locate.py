"""Where safes live: ``module_safe()`` and the mapping from module names to files."""

from __future__ import annotations

import os
import re
import sys
import threading
from types import FrameType

from storeroom.safe.engine import Durability
from storeroom.safe.safe import DEFAULT_TIMEOUT, Safe
from storeroom.safe.space import DEFAULT_MIN_FREE_BYTES

#: Environment variable naming the directory of module safes (default ``./safe``).
ENV_DIR = "STOREROOM_SAFE_DIR"
DEFAULT_DIR = "safe"
#: File name suffix of a module safe: ``<dir>/<module.name>.db``.
SUFFIX = ".db"

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*(\.[A-Za-z0-9_][A-Za-z0-9_\-]*)*")
_cache: dict[tuple[str, str, int, float], Safe] = {}
_cache_lock = threading.Lock()


def safe_dir() -> str:
    """The absolute directory of module safes: ``$STOREROOM_SAFE_DIR`` or ``./safe``."""
    return os.path.abspath(os.environ.get(ENV_DIR) or DEFAULT_DIR)


def safe_path(name: str) -> str:
    """The file of the safe of module ``name`` (a dotted module name)."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a valid safe (module) name: {name!r}")
    return os.path.join(safe_dir(), name + SUFFIX)


def caller_module(frame: FrameType) -> str:
    """The module name of code running in ``frame``.

    A script run as ``__main__`` is named after its import name when run with ``python -m``,
    else after its file's stem; an interactive session is ``__main__``.
    """
    glb = frame.f_globals
    name = glb.get("__name__") or "__main__"
    if name == "__main__":
        spec = glb.get("__spec__")
        if spec is not None and getattr(spec, "name", None):
            return str(spec.name)
        file = glb.get("__file__")
        if file:
            return os.path.splitext(os.path.basename(file))[0]
    return str(name)


def module_safe(
    name: str | None = None,
    *,
    durability: Durability = "full",
    min_free_bytes: int = DEFAULT_MIN_FREE_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
) -> Safe:
    """Return the safe private to the calling module (or to module ``name``).

    The file is ``$STOREROOM_SAFE_DIR/<module>.db`` (default directory ``./safe``), created on
    first use. Calls with the same file and options return the same :class:`Safe` object.
    """
    if name is None:
        name = caller_module(sys._getframe(1))
    path = safe_path(name)
    key = (path, durability, int(min_free_bytes), float(timeout))
    with _cache_lock:
        safe = _cache.get(key)
        if safe is None:
            safe = Safe(path, durability=durability, min_free_bytes=min_free_bytes,
                        timeout=timeout)
            _cache[key] = safe
    return safe
