"""Compiling generated code (fast paths, row builders) under a real file name.

Each source gets a unique ``<storeroom generated ...>`` file name whose lines are
registered in :mod:`linecache` (as attrs does in ``_make.py``), so a traceback through
generated code shows the generated source line instead of nothing.
"""

from __future__ import annotations

import itertools
import linecache
from typing import Any

# one process-wide counter keeps file names unique across models, engines and dialects
_serial = itertools.count(1)


def compile_generated(src: str, env: dict[str, Any], what: str, model: type) -> dict[str, Any]:
    """Run ``src`` (function definitions) in ``env`` and return ``env``.

    ``what`` names the kind of code (``fast_create``, ``row_builder``...) and ``model`` the
    class it serves; both appear in the file name that tracebacks show.
    """
    filename = (f"<storeroom generated {what} {model.__module__}.{model.__qualname__} "
                f"#{next(_serial)}>")
    # mtime None: linecache.checkcache never evicts the entry (there is no file to stat)
    linecache.cache[filename] = (len(src), None, src.splitlines(keepends=True), filename)
    exec(compile(src, filename, "exec"), env)  # noqa: S102 - generated from attribute names
    return env
