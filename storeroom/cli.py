"""The ``storeroom`` command line (console script ``storeroom``, also ``python -m storeroom``).

- ``storeroom migrate init | revision -m MSG [--autogenerate] | upgrade [REV] |
  downgrade REV | current | history --app module:dm [--engine NAME]``: alembic's
  migrations of a data manager's SQL engine (see ``storeroom.migrate``).
- ``storeroom safe list | get | set | del SAFE [KEY] [VALUE]``: the module safe
  (as ``python -m storeroom.safe``).

Exit status: 0 on success, 1 when a migration fails (``error: ...`` on one line of
stderr, no traceback), 2 for a usage error (and as
``python -m storeroom.safe`` for ``safe``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EPILOG = ("Not in this version: the commands serve, shell and export/import of the "
          "design are absent.")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="storeroom", description=__doc__.split("\n")[0],
                                epilog=EPILOG)
    top = p.add_subparsers(dest="command", required=True, metavar="{migrate,safe}")

    mig = top.add_parser("migrate", help="alembic migrations of a data manager's SQL engine",
                         description="alembic migrations of the SQL database of an "
                                     "engine of a storeroom data manager")
    msub = mig.add_subparsers(dest="migrate_command", required=True)

    def add(name: str, helptext: str) -> argparse.ArgumentParser:
        sp = msub.add_parser(name, help=helptext, description=helptext)
        sp.add_argument("--app", required=True, metavar="MODULE:DM",
                        help="the data manager, as module:attribute (e.g. myapp.db:dm)")
        sp.add_argument("--engine", metavar="NAME", default=None,
                        help="the engine to migrate (default: the default engine); "
                             "another engine's scripts live in migrations/NAME/")
        return sp

    add("init", "create ./migrations (env.py, script template, versions/)")
    sp = add("revision", "create a revision file")
    sp.add_argument("-m", "--message", required=True, metavar="MSG")
    sp.add_argument("--autogenerate", action="store_true",
                    help="fill it with the operations that bring the database to the models")
    sp = add("upgrade", "upgrade the database to REV (default: head)")
    sp.add_argument("revision", nargs="?", default="head", metavar="REV")
    sp.add_argument("--sql", action="store_true", help="print the SQL instead (offline)")
    sp = add("downgrade", "downgrade the database to REV (-1, an id, base)")
    sp.add_argument("revision", metavar="REV")
    sp.add_argument("--sql", action="store_true", help="print the SQL instead (offline)")
    for name, helptext in (("current", "print the database's current revision"),
                           ("history", "print the revisions")):
        add(name, helptext).add_argument("-v", "--verbose", action="store_true")

    safe = top.add_parser("safe", help="read and write a module safe",
                          description="read and write a module safe (SAFE: a file or a "
                                      "module name under $STOREROOM_SAFE_DIR)")
    from .safe.cli import add_commands
    add_commands(safe.add_subparsers(dest="safe_command", required=True))
    return p


def _migrate(args: argparse.Namespace) -> int:
    from . import migrate
    cmd = args.migrate_command
    common = {"engine": args.engine}
    if cmd == "init":
        where = migrate.init(args.app, **common)
        print(f"created {where}")
    elif cmd == "revision":
        path = migrate.revision(args.app, args.message, autogenerate=args.autogenerate,
                                **common)
        if path is not None:
            print(f"created {path}")
    elif cmd == "upgrade":
        migrate.upgrade(args.app, args.revision, sql=args.sql, **common)
    elif cmd == "downgrade":
        migrate.downgrade(args.app, args.revision, sql=args.sql, **common)
    elif cmd == "current":
        migrate.current(args.app, verbose=args.verbose, **common)
    else:
        migrate.history(args.app, verbose=args.verbose, **common)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "safe":
        from .safe.cli import run
        return run(args, args.safe_command)
    from .errors import StoreroomError
    try:
        return _migrate(args)
    except (StoreroomError, LookupError, ValueError, TypeError, ImportError) as exc:
        # a failed migration, an --app that names nothing, a non-SQL engine: one line
        from .migrate import one_line
        sys.stdout.flush()
        print(f"error: {one_line(str(exc) or type(exc).__name__)}", file=sys.stderr)
        return 1
