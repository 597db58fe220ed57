"""The free-disk-space floor: refuse writes before they happen when the disk is nearly full."""

from __future__ import annotations

import os
import shutil
import time

from storeroom.safe.errors import DiskFullError

#: Default floor: writes raise :class:`DiskFullError` when less than this is free.
DEFAULT_MIN_FREE_BYTES = 16 * 1024 * 1024

#: Measuring free space costs a syscall (several µs), so far from the floor a reading is trusted
#: for up to ``TTL`` seconds and ``HEADROOM`` bytes of this process's own writes.
HEADROOM = 64 * 1024 * 1024
TTL = 0.25


def free_bytes(directory: str) -> int:
    """Bytes available to unprivileged users on the filesystem that holds (or will hold)
    ``directory``."""
    while True:
        try:
            if hasattr(os, "statvfs"):
                st = os.statvfs(directory)
                return st.f_bavail * st.f_frsize
            return shutil.disk_usage(directory).free  # pragma: no cover - Windows
        except FileNotFoundError:  # not created yet: its nearest existing parent decides
            parent = os.path.dirname(directory)
            if parent == directory:
                raise
            directory = parent


class SpaceGuard:
    """Checks, before each write, that the disk keeps at least ``floor`` bytes free."""

    __slots__ = ("directory", "floor", "_budget", "_expires")

    def __init__(self, directory: str, floor: int) -> None:
        self.directory = directory
        self.floor = floor
        self._budget = -1
        self._expires = 0.0

    def check(self, nbytes: int) -> None:
        """Raise :class:`DiskFullError` if writing ``nbytes`` would go under the floor."""
        if self.floor <= 0:
            return
        if self._budget >= nbytes and time.monotonic() < self._expires:
            self._budget -= nbytes
            return
        free = free_bytes(self.directory)
        if free - nbytes < self.floor:
            self._budget = -1
            raise DiskFullError(
                f"refusing to write to the safe in {self.directory}: {free} bytes free, "
                f"under the floor of {self.floor} bytes (min_free_bytes)"
            )
        self._budget = free - self.floor - HEADROOM - nbytes
        self._expires = time.monotonic() + TTL
