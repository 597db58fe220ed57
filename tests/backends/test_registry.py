"""The backend registry (``storeroom.backends.registry``): schemes, +driver variants,
aliases, unknown schemes, and loaders imported only when a URL of theirs is opened."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from contract_models import Task

from storeroom import open_async_store, open_store
from storeroom.backends import registry
from storeroom.backends.memory import AsyncMemoryBackend, MemoryBackend
from storeroom.backends.sql import AsyncSqlBackend, SqlBackend
from storeroom.context import DataManager
from storeroom.store.protocol import AsyncBackend, Backend


@pytest.mark.parametrize(("url", "scheme"), [
    ("memory://", "memory"),
    ("sqlite:///x.db", "sqlite"),
    ("sqlite+aiosqlite:///x.db", "sqlite"),
    ("SQLITE+pysqlite://", "sqlite"),
    ("postgresql+psycopg://u@h/db", "postgresql"),
    ("postgres://u@h/db", "postgresql"),
    ("mysql+pymysql://u@h/db", "mysql"),
    ("mariadb+aiomysql://u@h/db", "mysql"),
    ("mariadb://u@h/db", "mysql"),
    ("dynamodb://?region=x", "dynamodb"),
    ("mongodb+srv://h/db", "mongodb"),
    ("redis://h/0", "redis"),
    ("rediss://h/0", "rediss"),
])
def test_every_builtin_scheme_and_its_variants(url: str, scheme: str) -> None:
    entry = registry.entry_for(url)
    assert entry.scheme == scheme
    assert registry.is_sql_url(url) is (scheme in ("sqlite", "postgresql", "mysql"))


@pytest.mark.parametrize("url", ["nosuch://x", "mssql+pyodbc://h/db", "sqlite3:///x.db", ""])
def test_unknown_scheme_is_a_value_error_naming_it(url: str) -> None:
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    with pytest.raises(ValueError, match=f"unknown store URL scheme {scheme!r}"):
        open_store(Task, url)
    with pytest.raises(ValueError, match="unknown store URL scheme"):
        open_async_store(Task, url)


def test_unknown_scheme_on_a_store_engine() -> None:
    dm = DataManager()
    dm.add_engine("x", "nosuch://x")
    dm.register_models(Task)
    with dm.context() as ctx, pytest.raises(ValueError, match="unknown store URL scheme"):
        ctx.store(Task)  # the engine opens its backends on first use
    dm.close()


async def test_driver_variants_open_working_stores(tmp_path: Path) -> None:
    with open_store(Task, f"sqlite+pysqlite:///{tmp_path}/a.db") as store:
        assert isinstance(store._b, SqlBackend)
        assert isinstance(store._b, Backend)
        made = store.create(Task(owner="ann", title="x"))
        assert store.read(made.id) == made
    async with open_async_store(Task, f"sqlite+aiosqlite:///{tmp_path}/b.db") as astore:
        assert isinstance(astore._b, AsyncSqlBackend)
        assert isinstance(astore._b, AsyncBackend)
        made = await astore.create(Task(owner="ann", title="y"))
        assert await astore.read(made.id) == made
    with open_store(Task, "memory://reg") as mstore:
        assert isinstance(mstore._b, MemoryBackend) and isinstance(mstore._b, Backend)
    assert isinstance(open_async_store(Task, "memory://reg")._b, AsyncMemoryBackend)


def test_a_registered_loader_runs_only_when_its_scheme_opens(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_ENTRIES", dict(registry._ENTRIES))
    loads: list[str] = []
    made: list[tuple[Any, ...]] = []

    def factory(model: type, url: str, *, is_async: bool, **options: Any) -> Any:
        made.append((model, url, is_async, options))
        return (AsyncMemoryBackend if is_async else MemoryBackend)(model, "custom")

    def loader() -> registry.BackendFactory:
        loads.append("loaded")
        return factory

    registry.register("custom", loader)
    assert loads == []  # registering imports nothing
    assert "custom" in registry.schemes()
    with open_store(Task, "custom+fast://here", table="t") as store:
        assert store.count() == 0
    assert loads == ["loaded"]
    assert made == [(Task, "custom+fast://here", False, {"table": "t"})]
    with pytest.raises(ValueError, match="lower case"):
        registry.register("Bad+x", loader)


def test_unused_backends_and_drivers_are_not_imported() -> None:
    code = textwrap.dedent("""
        import sys
        from storeroom import open_store, open_async_store, stored
        from storeroom.context import DataManager

        @stored
        class Item:
            id: str

        with open_store(Item, "sqlite://") as s:
            s.create(Item(id="a"))
        with open_store(Item, "memory://") as s:
            s.count()
        dm = DataManager()
        dm.add_engine("m", "memory://x")
        dm.register_models(Item, engine="m")
        with dm.context() as ctx:
            ctx.store(Item).count()
        dm.close()
        unwanted = ("storeroom.backends.mongodb", "storeroom.backends.redis",
                    "storeroom.backends.dynamodb", "pymongo", "redis", "boto3", "aioboto3",
                    "psycopg", "pymysql", "aiomysql")
        print(sorted(m for m in sys.modules if m.split(".")[0] in unwanted
                     or any(m.startswith(u) for u in unwanted)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout
