"""``storeroom migrate`` failures are typed: ``storeroom.migrate.MigrationError`` with
alembic's / SQLAlchemy's error as ``__cause__``, and the command line prints one line on
stderr and exits with status 1, without a traceback (SQLite, PostgreSQL, MariaDB)."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from alembic.util import CommandError

from storeroom import migrate
from storeroom.cli import main
from storeroom.migrate import MigrationError

APP = '''
from storeroom import DataManager, stored

@stored(key="id", table="me_task")
class Task:
    id: str
    title: str = ""

dm = DataManager()
dm.add_engine("db", {url!r})
dm.register_models(Task)
'''


def _app(tmp_path: Path, url: str) -> str:
    name = f"me{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(APP.format(url=url)))
    return f"{name}:dm"


def _fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one line the command line prints for a failing command."""
    capsys.readouterr()
    assert main(list(argv)) == 1
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return captured.err


@pytest.fixture
def app(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An app with an initialized migrations folder in the working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    app = _app(tmp_path, db_url)
    migrate.init(app)
    return app


def _bad_revision(app: str, statement: str) -> Path:
    path = migrate.revision(app, "bad", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert path is not None
    text = path.read_text()
    text = text.replace("def upgrade() -> None:\n",
                        f"def upgrade() -> None:\n    op.execute({statement!r})\n", 1)
    path.write_text(text)
    return path


def test_a_statement_the_database_refuses(app: str, db_url: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    _bad_revision(app, "SELECT * FROM me_nowhere")
    with pytest.raises(MigrationError, match="me_nowhere") as err:
        migrate.upgrade(app)
    assert isinstance(err.value.__cause__, sa.exc.SQLAlchemyError)
    assert "\n" not in str(err.value) and "sqlalche.me" not in str(err.value)
    line = _fails(capsys, "migrate", "upgrade", "--app", app)
    assert "the database refused the migration" in line and "me_nowhere" in line
    # the revision was not recorded as applied
    assert re.search(r"[0-9a-f]{12}", _current(app, capsys)) is None


def _current(app: str, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["migrate", "current", "--app", app]) == 0
    return capsys.readouterr().out


def test_alembic_errors(app: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(MigrationError, match="nosuchrev") as err:
        migrate.upgrade(app, "nosuchrev")
    assert isinstance(err.value.__cause__, CommandError)
    assert "nosuchrev" in _fails(capsys, "migrate", "downgrade", "nosuchrev", "--app", app)
    assert "didn't produce" in _fails(capsys, "migrate", "downgrade", "-3", "--app", app)
    # a revision applied, then another generated before the database is up to date
    _bad_revision(app, "SELECT 1")
    assert "not up to date" in _fails(capsys, "migrate", "revision", "--autogenerate",
                                      "-m", "next", "--app", app)


def test_a_database_that_cannot_be_opened(db_url: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    parts = urlsplit(db_url)
    if parts.scheme == "sqlite":
        bad = f"sqlite:///{tmp_path}/no/such/dir/db.sqlite"
    elif parts.scheme.startswith("postgres"):  # a database that does not exist
        bad = urlunsplit((parts.scheme, parts.netloc, "/me_no_such_db", "", ""))
    else:
        bad = urlunsplit((parts.scheme, parts.netloc, "/me_no_such_db", parts.query, ""))
    app = _app(tmp_path, bad)
    migrate.init(app)
    with pytest.raises(MigrationError, match="the database refused") as err:
        migrate.current(app)
    assert isinstance(err.value.__cause__, sa.exc.SQLAlchemyError)
    _fails(capsys, "migrate", "upgrade", "--app", app)


def test_a_revision_file_that_does_not_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    app = _app(tmp_path, f"sqlite:///{tmp_path}/db.sqlite")
    migrate.init(app)
    (tmp_path / "migrations" / "versions" / "broken.py").write_text(
        'revision = "x1"\ndown_revision = None\ndef upgrade(:\n    pass\n')
    with pytest.raises(MigrationError, match=r"broken\.py, line 3") as err:
        migrate.history(app)
    assert isinstance(err.value.__cause__, SyntaxError)
    assert "broken.py" in _fails(capsys, "migrate", "history", "--app", app)
    # a folder that cannot be created
    (tmp_path / "blocker").write_text("")
    with pytest.raises(MigrationError, match="cannot create") as err:
        migrate.init(app, directory=tmp_path / "blocker")
    assert isinstance(err.value.__cause__, OSError)


def test_the_console_entry_point_prints_one_line(tmp_path: Path) -> None:
    """In a process of its own: status 1 and one line on stderr, no traceback."""
    import storeroom
    root = Path(storeroom.__file__).resolve().parents[1]
    app = _app(tmp_path, f"sqlite:///{tmp_path}/db.sqlite")
    env = {"PYTHONPATH": f"{root}:{tmp_path}", "PATH": "/usr/bin:/bin"}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "storeroom", *argv], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=60)

    assert run("migrate", "init", "--app", app).returncode == 0
    (tmp_path / "migrations" / "versions" / "broken.py").write_text("def (:\n")
    done = run("migrate", "upgrade", "--app", app)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: cannot load")
    assert "Traceback" not in done.stderr
