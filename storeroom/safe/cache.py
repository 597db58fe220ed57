"""The per-connection read cache of a safe, and how it knows that it is still valid.

A read that hits the cache costs no SQL statement: every get first compares the 48-byte
header of the file's WAL index (the ``-shm`` file, memory-mapped read-only) with the copy
taken when the cache was last validated. Every commit, by any connection in any process,
rewrites that header (its change counter, frame count and checksums) before the commit
returns (https://sqlite.org/walformat.html), so an unchanged header means nothing was
committed since and every cached value is still the stored one. Reading it takes no lock:
a header caught half-written compares unequal, which only costs a revalidation.

When the header changed, ``PRAGMA data_version`` decides: it changes when a commit by
*another* connection became visible to this one, and not for this connection's own
commits. If it is unchanged, every commit since was this connection's own, and those
already updated the cache (write-through); otherwise the cache is emptied. The header is
read *before* the pragma runs, so a commit landing between the two is either covered by the
pragma or still differs from the saved header at the next get.

A cache belongs to one :class:`~storeroom.safe.threads.ThreadState` (one thread's
connection), so it needs no lock, and it is never used across ``fork()``: the child opens
new states, with empty caches. Inside a transaction nothing is read from or written to the
cache (the transaction sees its own uncommitted writes, which a rollback would undo); the
cache is emptied when the outermost transaction ends.

Values are cached as their pickles and unpickled on every hit, so that a caller mutating a
returned ``dict`` or ``list`` never changes what the next get returns; values of immutable
built-in types (``str``, ``int``, ``float``, ``bool``, ``bytes``, ``None``) are kept decoded.

The ``-shm`` file is mapped once per process and file (``threads.map_shm``), read-only, and
its descriptor is closed only once no connection of this process uses the file: POSIX
releases *all* of a process's locks on a file as soon as *any* descriptor of it in that
process is closed, so closing it earlier would silently drop SQLite's locks on the WAL
index. The header is read only while the state's own SQLite connection is open: SQLite
truncates that file only when no connection anywhere has it open, so it cannot shrink under
the mapping while we read it.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from storeroom.safe.threads import ThreadState

#: Size of one copy of the WAL-index header (``WalIndexHdr``) at the start of ``-shm``.
HEADER = 48
#: The whole WAL-index header block (two header copies and the checkpoint info): the
#: ``-shm`` file must hold at least this much before it is mapped.
HEADER_BLOCK = 136
#: At most this many values per connection; past it the cache starts over (cheap, and a
#: working set that large is served by SQLite's own page cache nearly as well).
MAX_ENTRIES = 8192
#: Values whose pickle is larger than this are not cached (they would pin memory).
MAX_BLOB = 64 * 1024

#: Values of these exact types are immutable: the cache hands out the same object.
IMMUTABLE: frozenset[type] = frozenset({str, int, float, bool, bytes, type(None)})

#: Marks an entry whose value must be unpickled on every hit.
DECODE: Any = object()

DATA_VERSION = "PRAGMA data_version"


def detach(state: ThreadState) -> None:
    """Stop reading the WAL index and drop the cache (before the connection closes)."""
    state.shm = None
    state.cache = {}
    state.hdr = b""


def revalidate(state: ThreadState, cur: sqlite3.Cursor) -> None:
    """The header changed: keep the cache if only this connection committed, else empty
    it; then remember the header. May raise ``sqlite3.Error`` (the pragma's)."""
    shm = state.shm
    if shm is None:
        return
    hdr = shm[:HEADER]
    version = cur.execute(DATA_VERSION).fetchone()[0]
    if version != state.dv:
        state.cache.clear()
        state.dv = version
    state.hdr = hdr


def remember(state: ThreadState, key: str, blob: bytes, value: Any) -> None:
    """Cache ``value`` (stored as ``blob``) under ``key``."""
    cache = state.cache
    if len(blob) > MAX_BLOB:
        cache.pop(key, None)
        return
    if len(cache) >= MAX_ENTRIES and key not in cache:
        cache.clear()
    cache[key] = (blob, value if type(value) in IMMUTABLE else DECODE)

