"""Running ``ddl.create_all`` on a connection of its own or on the caller's."""

from __future__ import annotations

from functools import partial
from typing import Any

from ..ddl import create_all
from ..engines import BEGIN_OPTION


async def create_tables(engine: Any, cores: list[Any], conn: Any = None) -> None:
    """Create the missing tables of ``cores``: in the open transaction of ``conn`` when
    given (the caller commits it), else in a transaction of their own, committed here.

    A transaction of their own on SQLite begins ``BEGIN IMMEDIATE`` whatever the engine's
    ``transaction_mode``: it checks and creates while holding the write lock.
    """
    fn = partial(create_all, cores)
    if conn is not None:
        await conn.run_sync(fn)
        return
    own = await engine.connect()
    try:
        if own.dialect.name == "sqlite":
            own = await own.execution_options(**{BEGIN_OPTION: "BEGIN IMMEDIATE"})
        async with own.begin():
            await own.run_sync(fn)
    finally:
        await own.close()
