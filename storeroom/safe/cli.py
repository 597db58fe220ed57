"""``python -m storeroom.safe list|get|set|del SAFE [KEY] [VALUE]``.

``SAFE`` is a path to a safe file, or a module name (resolved under ``$STOREROOM_SAFE_DIR``).
``get`` prints a ``str`` value as is and any other value as its ``repr``; ``set`` stores VALUE
as a ``str``; ``list`` reads every value too, and reports on stderr those that cannot be read.
Exit status: 0 on success, 1 for a missing key, 2 for a usage error, an invalid key, or a
missing or damaged safe.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from storeroom.safe.errors import SafeError
from storeroom.safe.locate import SUFFIX, safe_path
from storeroom.safe.safe import Safe


def resolve(target: str) -> str:
    """The file of ``target``: an existing file or a path-like argument, else a module name."""
    if os.path.isfile(target) or os.sep in target or target.endswith(SUFFIX):
        return os.path.abspath(target)
    if os.altsep and os.altsep in target:  # pragma: no cover - Windows
        return os.path.abspath(target)
    return safe_path(target)


def add_commands(sub: Any) -> None:
    """Add ``list``, ``get``, ``set`` and ``del`` to the subparsers ``sub`` (this CLI's,
    and ``storeroom safe``'s)."""
    sub.add_parser("list", help="print the keys, one per line").add_argument("safe")
    for cmd, helptext in (("get", "print the value of KEY"), ("del", "delete KEY")):
        sp = sub.add_parser(cmd, help=helptext)
        sp.add_argument("safe")
        sp.add_argument("key")
    sp = sub.add_parser("set", help="store VALUE (as a str) under KEY")
    sp.add_argument("safe")
    sp.add_argument("key")
    sp.add_argument("value")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m storeroom.safe", description=__doc__.split("\n")[0])
    add_commands(p.add_subparsers(dest="command", required=True))
    return p


def _out(text: str) -> None:
    """Print ``text`` on stdout, escaping what its encoding cannot show (a lone surrogate
    in a stored ``str`` value, or any character on a non-UTF-8 terminal)."""
    try:
        print(text)
    except UnicodeEncodeError:
        encoding = sys.stdout.encoding or "utf-8"
        print(text.encode(encoding, "backslashreplace").decode(encoding))


def _list(safe: Safe) -> int:
    """Print every key; report each value that cannot be read (status 2 if any)."""
    status = 0
    for key in safe:
        _out(key)
        try:
            safe.get(key)
        except SafeError as exc:
            sys.stdout.flush()
            print(f"error: {exc}", file=sys.stderr)
            status = 2
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit status."""
    return run(_parser().parse_args(argv))


def run(args: argparse.Namespace, command: str | None = None) -> int:
    """Run the parsed command (``command``, else ``args.command``); the exit status."""
    command = command or args.command
    try:
        path = resolve(args.safe)
        if command != "set" and not os.path.exists(path):
            print(f"no such safe: {path}", file=sys.stderr)
            return 2
        with Safe(path) as safe:
            if command == "list":
                return _list(safe)
            elif command == "get":
                try:
                    value = safe[args.key]
                except KeyError:
                    print(f"no such key: {args.key!r}", file=sys.stderr)
                    return 1
                _out(value if isinstance(value, str) else repr(value))
            elif command == "set":
                safe[args.key] = args.value
            else:
                try:
                    del safe[args.key]
                except KeyError:
                    print(f"no such key: {args.key!r}", file=sys.stderr)
                    return 1
    except (SafeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
