"""``storeroom migrate``: alembic's migrations for the SQL engines of a data manager.

Each function is a command of ``storeroom migrate`` on alembic's command API, with the
``Config`` built in code (no ``alembic.ini``). ``app`` is ``"module:dm"`` (or the data
manager itself); ``engine`` an engine name (None: the default engine). The scripts live
in ``migrations/`` of ``directory`` (the working directory by default), and those of an
engine that is not the default in ``migrations/<engine>/``.

Every failure of a command raises :class:`MigrationError` (a message of one line, the
original error as ``__cause__``): alembic's (a missing revision, a database not up to
date, several heads), the database's (a SQLAlchemy error: a statement it refused, a
database it cannot open), a revision file that does not load, an error raised by a
revision's code. ``storeroom migrate`` prints it as one line and exits with status 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from ..errors import StoreroomError

__all__ = ["MigrationError", "config", "current", "downgrade", "history", "init", "one_line",
           "migrations_dir", "revision", "upgrade"]


class MigrationError(StoreroomError):
    """A migration command failed (alembic's message; its error is the ``__cause__``)."""


def _default_engine(app: Any) -> str | None:
    from .env import import_app
    dm = import_app(app) if isinstance(app, str) else app
    name: str | None = dm.default_engine
    return name


def migrations_dir(app: Any, engine: str | None = None,
                   directory: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the migrations of ``engine``: ``migrations/`` for the default
    engine, ``migrations/<engine>/`` for another."""
    base = Path(directory if directory is not None else os.getcwd()) / "migrations"
    if engine is None or engine == _default_engine(app):
        return base
    return base / engine


def config(app: Any, engine: str | None = None,
           directory: str | os.PathLike[str] | None = None,
           stdout: TextIO | None = None) -> Any:
    """alembic's ``Config`` for the migrations of ``engine`` of ``app`` (built in code)."""
    try:
        from alembic.config import Config
    except ImportError as exc:  # pragma: no cover - the "migrations" extra
        from ..errors import MissingDriver
        raise MissingDriver("storeroom migrate needs alembic: pip install "
                            "'storeroom[migrations]'") from exc
    where = migrations_dir(app, engine, directory)
    cfg = Config(stdout=stdout if stdout is not None else sys.stdout)
    cfg.set_main_option("script_location", str(where))
    cfg.set_main_option("path_separator", "os")
    from .env import APP, ENGINE
    cfg.attributes[APP] = app
    cfg.attributes[ENGINE] = engine
    return cfg


def one_line(text: str, limit: int = 500) -> str:
    """``text`` on one line (its lines joined by " "), cut to ``limit`` characters."""
    flat = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[:limit - 3] + "..."


def _database_text(exc: Any) -> str:
    """A SQLAlchemy error as one line: the driver's message and the statement (without
    SQLAlchemy's "Background on this error" link)."""
    orig = getattr(exc, "orig", None)
    text = f"({type(orig).__module__}.{type(orig).__name__}) {orig}" if orig is not None \
        else f"{type(exc).__name__}: {exc}"
    statement = getattr(exc, "statement", None)
    if statement:
        text += f" [SQL: {one_line(str(statement), 200)}]"
    return one_line(text)


@contextmanager
def _alembic_errors() -> Iterator[None]:
    """Every failure of an alembic command as a :class:`MigrationError` with a message
    of one line and the original as ``__cause__``: alembic's own (``CommandError``, a
    revision that cannot be resolved), the database's (any SQLAlchemy error), a
    revision file that cannot be loaded (its syntax), and an error raised by the code
    of a revision or ``env.py``. storeroom's typed errors pass as they are."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError
    try:
        yield
    except StoreroomError:
        raise
    except (CommandError, RevisionError) as exc:
        raise MigrationError(one_line(str(exc) or type(exc).__name__)) from exc
    except SyntaxError as exc:  # a revision file alembic loads
        where = f"{exc.filename}, line {exc.lineno}" if exc.filename else "a revision"
        raise MigrationError(f"cannot load {where}: {exc.msg}") from exc
    except Exception as exc:
        import sqlalchemy as sa
        if isinstance(exc, sa.exc.SQLAlchemyError):
            raise MigrationError("the database refused the migration: "
                                 f"{_database_text(exc)}") from exc
        raise MigrationError(one_line(f"the migration failed: {type(exc).__name__}: {exc}")
                             ) from exc


def init(app: Any, engine: str | None = None, *,
         directory: str | os.PathLike[str] | None = None) -> Path:
    """Create the migrations folder of ``engine``: ``env.py`` (it loads ``app`` and
    migrates to ``dm.sql_metadata(engine)``), the revision template, ``versions/``.
    ``MigrationError`` when the folder holds an ``env.py`` already; ``ValueError`` when
    the engine is not a SQL engine."""
    from .env import import_app
    from .templates import ENV_PY, README, SCRIPT_PY_MAKO
    (import_app(app) if isinstance(app, str) else app).sql_metadata(engine)  # a SQL one
    where = migrations_dir(app, engine, directory)
    if (where / "env.py").exists():
        raise MigrationError(f"{where} holds migrations already (env.py)")
    try:
        (where / "versions").mkdir(parents=True, exist_ok=True)
        (where / "env.py").write_text(ENV_PY, encoding="utf-8")
        (where / "script.py.mako").write_text(SCRIPT_PY_MAKO, encoding="utf-8")
        (where / "README").write_text(README, encoding="utf-8")
    except OSError as exc:
        raise MigrationError(f"cannot create {where}: {exc.strerror or exc}") from exc
    return where


def _run(fn: Callable[..., Any], app: Any, engine: str | None,
         directory: str | os.PathLike[str] | None, stdout: TextIO | None,
         *args: Any, **kwargs: Any) -> Any:
    cfg = config(app, engine, directory, stdout)
    if not (Path(cfg.get_main_option("script_location")) / "env.py").exists():
        raise MigrationError(f"no migrations in {cfg.get_main_option('script_location')}: "
                             f"run `storeroom migrate init` first")
    with _alembic_errors():
        return fn(cfg, *args, **kwargs)


def revision(app: Any, message: str, *, autogenerate: bool = False,
             engine: str | None = None, directory: str | os.PathLike[str] | None = None,
             stdout: TextIO | None = None) -> Path | None:
    """A new revision file (``autogenerate``: with the operations that bring the
    database to the models); its path."""
    from alembic import command
    script = _run(command.revision, app, engine, directory, stdout, message=message,
                  autogenerate=autogenerate)
    return None if script is None else Path(script.path)


def upgrade(app: Any, revision: str = "head", *, engine: str | None = None,
            directory: str | os.PathLike[str] | None = None,
            stdout: TextIO | None = None, sql: bool = False) -> None:
    """Upgrade the database to ``revision`` (the head by default)."""
    from alembic import command
    _run(command.upgrade, app, engine, directory, stdout, revision, sql=sql)


def downgrade(app: Any, revision: str, *, engine: str | None = None,
              directory: str | os.PathLike[str] | None = None,
              stdout: TextIO | None = None, sql: bool = False) -> None:
    """Downgrade the database to ``revision`` (``-1``, a revision id, ``base``)."""
    from alembic import command
    _run(command.downgrade, app, engine, directory, stdout, revision, sql=sql)


def current(app: Any, *, engine: str | None = None,
            directory: str | os.PathLike[str] | None = None,
            stdout: TextIO | None = None, verbose: bool = False) -> None:
    """Print the database's current revision."""
    from alembic import command
    _run(command.current, app, engine, directory, stdout, verbose=verbose)


def history(app: Any, *, engine: str | None = None,
            directory: str | os.PathLike[str] | None = None,
            stdout: TextIO | None = None, verbose: bool = False) -> None:
    """Print the revisions, newest first."""
    from alembic import command
    _run(command.history, app, engine, directory, stdout, verbose=verbose)
