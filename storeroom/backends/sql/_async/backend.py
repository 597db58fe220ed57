"""``AsyncSqlBackend``: the store's operations as SQL on one connection source."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from ....errors import (
    BackendError,
    Conflict,
    StoreroomError,
    UnsupportedOperation,
    ValidationError,
)
from ....model.relations import RefInfo
from ....observe import OBSERVERS, Site
from ....query.ast import And, Cond, Node, Or
from ....query.evaluate import compile_local
from ....query.order import Order
from ....query.plan import Query
from ....store.aggregate import Accumulator, AggSpec, finish
from ....store.fexpr import has_expr, resolve
from ....store.plan import Split
from ....store.protocol import FexprUse
from ....store.relations import cyclic
from ....store.types import PreparedEdit
from ...batch import stopped
from ...bookkeeping import BOOKKEEPING
from ...common import Outcome, duplicate, invalid, key_dict, missing, ok, refusal
from ..bookkeeping import autocommit_options, cache_secret, cached_secret, load_secret
from ..core import SqlCore
from ..ddl import watched
from ..fexpr import expr_update, set_order
from ..joins import Join, build_joined, joined_sql
from ..sequences import KeysNotConsecutive
from .driver import AsyncDriver, AsyncPooledSource, is_integrity_error, wrap_error
from .drivers import driver_class  # noqa: F401 - see below

# ``drivers`` is loaded with the backend, not on the first connection (``AsyncPooledSource
# ._open`` and ``wrap_error`` import it lazily: it imports ``driver``): an import inside
# the first operation would compile the module there when no bytecode is cached


def _in_savepoint(conn: Any) -> bytes:
    """``load_secret`` in a savepoint of ``conn``'s open transaction."""
    with conn.begin_nested():
        return load_secret(conn)


class AsyncSqlTransaction:
    """A standalone store's transaction (``store.transaction()``): one connection of the
    store's pool, held from ``begin`` until ``commit`` or ``rollback`` gives it back."""

    __slots__ = ("src", "driver", "_done")

    def __init__(self, src: AsyncPooledSource, driver: AsyncDriver) -> None:
        self.src = src
        self.driver = driver
        self._done = False

    async def _end(self, commit: bool) -> None:
        if self._done:
            return
        self._done = True
        d = self.driver
        try:
            await (d.commit(None) if commit else d.rollback(None))
        except Exception as exc:
            raise wrap_error(exc, "commit" if commit else "rollback")
        finally:
            self.src.release(d)

    async def commit(self) -> None:
        """Commit, and give the connection back."""
        await self._end(True)

    async def rollback(self) -> None:
        """Roll back, and give the connection back."""
        await self._end(False)

    async def begin_nested(self) -> AsyncSqlSavepoint:
        """A savepoint inside the transaction."""
        try:
            name = await self.driver.begin()
        except Exception as exc:
            raise wrap_error(exc, "savepoint")
        return AsyncSqlSavepoint(self.driver, name)


class AsyncSqlSavepoint:
    """A savepoint of a ``AsyncSqlTransaction``."""

    __slots__ = ("driver", "name")

    def __init__(self, driver: AsyncDriver, name: str | None) -> None:
        self.driver = driver
        self.name = name

    async def commit(self) -> None:
        """Release the savepoint (its changes stay in the transaction)."""
        try:
            await self.driver.commit(self.name)
        except Exception as exc:
            raise wrap_error(exc, "release savepoint")

    async def rollback(self) -> None:
        """Undo what was done since the savepoint."""
        try:
            await self.driver.rollback(self.name)
        except Exception as exc:
            raise wrap_error(exc, "rollback to savepoint")


class _TxSource:
    """The connection source of a backend bound to a ``AsyncSqlTransaction``: its one
    connection, for every operation."""

    holds_connections = False  # the transaction gives its connection back

    def __init__(self, tx: AsyncSqlTransaction) -> None:
        self.tx = tx

    async def acquire(self, write: bool = True) -> AsyncDriver:
        if self.tx._done:
            raise StoreroomError("the transaction has ended")
        return self.tx.driver

    def release(self, driver: AsyncDriver) -> None:
        """The transaction keeps it."""

    async def create_tables(self, core: Any) -> None:
        await self.tx.src.create_tables(core)

    async def close(self) -> None:
        """The transaction gives its connection back."""

R = TypeVar("R")


class AsyncSqlBackend:
    """Store operations of one model over SQL; connections come from ``source``."""

    max_local_sort = 100_000
    #: the page size of ``search_all`` without a ``limit`` (the store reads it): large
    #: pages, so that iterating a table is a few statements instead of one per
    #: ``max_page`` rows (the rows of one page are held in memory at once)
    scan_page = 10_000
    #: how the store front keeps references intact here: the FOREIGN KEYs decide
    #: (``fk_enforces``), storeroom's reads only where there is none
    ref_integrity = "fk"

    def __init__(self, core: SqlCore, source: Any) -> None:
        self.core = core
        self.src = source
        self.store_meta = core.store_meta
        # the table's CHECK constraints enforce ``@stored(checks=...)`` (the store front
        # skips its own evaluation)
        self.native_checks = core.native_checks
        # a store's own connection warns when left unclosed; a context's does not
        self.holds_connections: bool = getattr(source, "holds_connections", True)

    @property
    def fk_safe(self) -> bool:
        """True when a statement a FOREIGN KEY refuses fails alone, so that the store
        front may let the FOREIGN KEY decide instead of reading first: a standalone
        store's own statements, not a transaction's (PostgreSQL aborts the whole
        transaction on a failed statement, and a context's runs in one)."""
        return isinstance(self.src, AsyncPooledSource) and self.core.foreign_keys

    def fk_enforces(self, ref: RefInfo, target: Any) -> bool:
        """True when this table's FOREIGN KEY of ``ref`` (a Ref of this model) enforces
        it against ``target`` (the backend of the referenced model): both tables on one
        database, FOREIGN KEYs on, and not an edge of a cycle (whose closing edge has
        none, depending on which table was created first)."""
        core = self.core
        if ref.on_delete == "ignore" or not core.foreign_keys or ref.model is not core.meta.cls:
            return False
        if not isinstance(target, AsyncSqlBackend) or not _same_database(core, target.core):
            return False
        found = core.fk_refs.get(ref.name)
        if found is None:  # the table's FOREIGN KEY on the Ref's columns
            cols = list(ref.columns)
            found = core.fk_refs[ref.name] = not cyclic(ref) and any(
                list(fk.column_keys) == cols for fk in core.table.foreign_key_constraints)
        return found

    def split(self, node: Node) -> Split:
        """What of a filter runs in the database."""
        return self.core.split(node)

    def can_order(self, order: Order) -> bool:
        """True when the database sorts by this order."""
        return self.core.can_order(order)

    def compiles_rel(self, rel: Any, related: Any) -> bool:
        """True when a relation lookup runs natively (EXISTS subqueries, see
        ``SqlCore.compiles_rel``); else the store plans it as key lookups."""
        return self.core.compiles_rel(rel, related)

    def order_joins(self, order: Order, related: Any) -> tuple[Join, ...] | None:
        """The joins that sort by an order across relations (``category__name``) in the
        database, for ``find_joined``; None when it is not native (``SqlCore.order_joins``):
        the store front then sorts itself."""
        return self.core.order_joins(order, related)

    async def begin(self) -> AsyncSqlTransaction:
        """A transaction of a standalone store on one connection of its pool (``bind``
        runs operations in it); inside a context, ``UnsupportedOperation`` (the context
        owns the transaction: use ``ctx.savepoint()``)."""
        src = self.src
        if not isinstance(src, AsyncPooledSource):
            raise UnsupportedOperation(
                f"{self.core.meta.name}: a store of a context runs in the context's "
                "transaction; use ctx.savepoint() to nest one")
        if not self.core.ready:  # before the transaction: SQLite's DDL needs the lock
            await self.create_tables()
        if self.core.dialect_name == "sqlite":
            await self.cursor_secret()  # read on its own connection, before the lock
        d = await self._driver()
        try:
            await d.begin()
        except BaseException as exc:
            src.release(d)
            if isinstance(exc, Exception):
                raise wrap_error(exc, f"begin on {self.core.meta.name}")
            raise
        return AsyncSqlTransaction(src, d)

    async def bind(self, tx: AsyncSqlTransaction) -> AsyncSqlBackend:
        """This backend's operations inside ``tx``."""
        return AsyncSqlBackend(self.core, _TxSource(tx))

    async def create_tables(self) -> None:
        """Create the table and indexes (idempotent; safe while other threads, tasks and
        processes create them too). The source decides on which connection."""
        core = self.core
        if core.ready:
            return
        try:
            await self.src.create_tables(core)
        except StoreroomError:
            raise
        except Exception as exc:
            raise BackendError(f"create table {core.table.name}: "
                               f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """Release the source's connections."""
        try:
            await self.src.close()
        except StoreroomError:
            raise
        except Exception as exc:
            raise wrap_error(exc, f"close store {self.core.meta.name}")

    async def cursor_secret(self) -> bytes:
        """The database's cursor secret: created once, race-free, in ``storeroom_meta``
        (``sql.bookkeeping``); cached per engine, so that only the first cursor of a
        process reads it."""
        engine = self.core.engine
        secret = cached_secret(engine)
        if secret is not None:
            return secret
        load: Callable[[Any], bytes] = load_secret
        in_savepoint: Callable[[Any], bytes] = _in_savepoint
        logs = OBSERVERS.get()
        if logs:  # the observer seam: SQLAlchemy runs these statements, its events see them
            site = Site(self.core.dialect_name, getattr(self.src, "name", None), BOOKKEEPING)
            load, in_savepoint = watched(load, site, logs), watched(in_savepoint, site, logs)
        try:
            held = getattr(self.src, "bookkeeping_connection", None)
            conn = await held() if held is not None else None
            if conn is not None:
                # a SQLite context that wrote holds the write lock (another connection would
                # wait for it): in its transaction, kept for good once that commits
                kept: bytes = await conn.run_sync(in_savepoint)
                self.src.after_commit(lambda: cache_secret(engine, kept))
                return kept
            async with engine.connect() as own:
                own = await own.execution_options(**autocommit_options(self.core.dialect_name))
                loaded: bytes = await own.run_sync(load)
        except Exception as exc:
            raise wrap_error(exc, f"cursor secret of {self.core.meta.name}")
        cache_secret(engine, loaded)
        return loaded

    async def _driver(self, write: bool = True) -> AsyncDriver:
        if not self.core.ready:
            await self.create_tables()
        try:
            driver: AsyncDriver = await self.src.acquire(write)
            return driver
        except StoreroomError:
            raise
        except Exception as exc:  # e.g. the database cannot be reached
            raise wrap_error(exc, f"connect {self.core.meta.name}")

    # single items ---------------------------------------------------------------------
    async def get(self, key: tuple[Any, ...]) -> Any:
        """The item at key, or None."""
        core = self.core
        d = await self._driver(write=False)
        try:
            sql = core.sql_get
            row = await d.one(sql[0], core.params(sql, core.key_params(key)))
        except Exception as exc:
            raise wrap_error(exc, f"read {core.meta.name}")
        finally:
            self.src.release(d)
        return None if row is None else core.build(row)

    async def insert(self, values: dict[str, Any]) -> Any:
        """Insert; Conflict on a duplicate key or unique value."""
        d = await self._driver()
        try:
            # inside a caller's transaction on PostgreSQL a failed INSERT would abort it:
            # ON CONFLICT DO NOTHING tells the duplicate without failing (no savepoint)
            return await self._insert(d, values, d.in_tx and self.core.error_aborts_tx)
        finally:
            self.src.release(d)

    async def _insert(self, d: AsyncDriver, values: dict[str, Any], guarded: bool = False
                      ) -> Any:
        core = self.core
        names = tuple(values)
        if guarded and names == core.insert_names and (core.seq is None
                                                       or core.auto is not None):
            # the common case in a PostgreSQL transaction: a prebuilt INSERT ... ON
            # CONFLICT DO NOTHING, its rowcount (or RETURNING row) telling a duplicate
            sql, encode = core.guarded_insert()
            auto = core.auto
            try:
                if auto is None:
                    done = await d.run(sql[0], encode(values)) > 0
                else:
                    got = await d.one(sql[0], encode(values))
                    done = got is not None
                    if done:
                        values[auto] = got[0]
            except Exception as exc:
                if is_integrity_error(exc):
                    raise Conflict(f"{core.meta.name}: {_conflict_text(core, values)}") from exc
                raise wrap_error(exc, f"create {core.meta.name}")
            if not done:
                raise Conflict(f"{core.meta.name}: {_conflict_text(core, values)}")
            return core.meta.build(values)
        if not guarded and names == core.insert_names and (core.seq is None
                                                           or core.auto is not None):
            # the common case: every attribute (but an autoincrement key), a prebuilt
            # statement and row encoder; the new key is the cursor's lastrowid where that
            # is free, else the statement's RETURNING row
            auto = core.auto
            try:
                if auto is None:
                    await d.run(core.sql_insert[0], core.insert_row(values))
                elif core.sql_insert_returning is None:
                    values[auto] = await d.insert_id(core.sql_insert[0], core.insert_row(values))
                else:
                    values[auto] = (await d.one(core.sql_insert_returning[0],
                                                core.insert_row(values)))[0]
            except Exception as exc:
                if is_integrity_error(exc):
                    raise Conflict(f"{core.meta.name}: {_conflict_text(core, values)}") from exc
                raise wrap_error(exc, f"create {core.meta.name}")
            return core.meta.build(values)
        if core.sql_seq_next is not None or core.sql_seq_bump is not None:
            await self._sequence(d, values)
            names = tuple(values)
        sql = core.insert_sql(names, guarded)
        enc = core.encode(values)
        params = core.params(sql, {f"v_{n}": enc[n] for n in names})
        seq = core.seq
        fill = seq is not None and seq.name not in values
        row: Any = ()
        try:
            if guarded or (fill and core.insert_returning):
                row = await d.one(sql[0], params)
            elif fill:
                row = (await d.insert_id(sql[0], params),)
            else:
                await d.run(sql[0], params)
        except Exception as exc:
            if is_integrity_error(exc):
                raise Conflict(f"{core.meta.name}: {_conflict_text(core, values)}") from exc
            raise wrap_error(exc, f"create {core.meta.name}")
        if row is None:  # guarded: ON CONFLICT DO NOTHING inserted nothing
            raise Conflict(f"{core.meta.name}: {_conflict_text(core, values)}")
        if seq is not None and fill:
            values[seq.name] = row[0]
        return core.meta.build(dict(values))

    async def upsert(self, values: dict[str, Any]) -> Any:
        """Create, or fully update the row at the key: one INSERT ... ON CONFLICT /
        ON DUPLICATE KEY UPDATE; Conflict on another item's unique value."""
        core = self.core
        d = await self._driver()
        try:
            if (d.in_tx and core.error_aborts_tx) or not core.upsert_returning:
                # a savepoint keeps a caller's transaction usable after a Conflict; without
                # RETURNING the row is read back in the same transaction as the write
                return await self._atomic(d, self._upsert, d, dict(values))
            return await self._upsert(d, dict(values))
        finally:
            self.src.release(d)

    async def _upsert(self, d: AsyncDriver, values: dict[str, Any]) -> Any:
        core = self.core
        if core.seq is not None and core.sql_seq_bump is not None:
            await self._sequence(d, values)
        names = tuple(values)
        sql = core.upsert_sql(names)
        enc = core.encode(values)
        params = core.params(sql, {f"v_{n}": enc[n] for n in names})
        key = tuple(values[n] for n in core.key_names)
        row = None
        try:
            if core.upsert_returning:
                row = await d.one(sql[0], params)
            else:
                await d.run(sql[0], params)
        except Exception as exc:
            if is_integrity_error(exc):
                raise Conflict(f"{core.meta.name}: {_conflict_text(core, values)}") from exc
            raise wrap_error(exc, f"upsert {core.meta.name}")
        if row is not None:
            return core.build_returned(row)
        item = await self._read(d, key)  # (DO NOTHING on an existing row returns none)
        if item is None:
            raise Conflict(f"{core.meta.name}: {_conflict_text(core, values)}")
        return item

    async def _sequence(self, d: AsyncDriver, values: dict[str, Any]) -> None:
        """Fill in the sequence from its counter, or move it past a value given explicitly
        (see ``sql.sequences``)."""
        core = self.core
        name = core.seq.name  # type: ignore[union-attr]
        given = values.get(name)
        try:
            if given is not None:
                if core.sql_seq_bump is not None:
                    sql = core.sql_seq_bump
                    await d.run(sql[0], core.params(sql, {**core.seq_params,
                                                          "v_seqvalue": given}))
            elif core.sql_seq_next is not None:
                sql = core.sql_seq_next
                params = core.params(sql, core.seq_params)
                if core.seq_by_insert_id:
                    values[name] = await d.insert_id(sql[0], params)
                else:
                    values[name] = (await d.one(sql[0], params))[0]
        except Exception as exc:
            raise wrap_error(exc, f"create {core.meta.name}")

    async def get_many(self, keys: list[tuple[Any, ...]]) -> list[Any]:
        """Items aligned with keys."""
        core = self.core
        if len(core.key_names) == 1:
            return await self._get_many_single(keys)
        found: dict[tuple[Any, ...], Any] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            for item in await self.find(Query(_keys_filter(core, chunk))):
                found[tuple(getattr(item, n) for n in core.key_names)] = item
        return [found.get(k) for k in keys]

    async def _get_many_single(self, keys: list[tuple[Any, ...]]) -> list[Any]:
        core = self.core
        name = core.key_names[0]
        conv = core.enc.get(name)
        unique = list(dict.fromkeys(k[0] for k in keys))
        found: dict[Any, Any] = {}
        build = core.build
        d = await self._driver(write=False)
        try:
            for start in range(0, len(unique), 500):
                chunk = unique[start:start + 500]
                sql = core.batch_sql(len(chunk))
                values = chunk if conv is None else [conv(v) for v in chunk]
                params: Any = values
                if core.array_batch:
                    params = {"k0": values}
                elif sql[1] is None:
                    params = {f"k{i}": v for i, v in enumerate(values)}
                for row in await d.all(sql[0], params):
                    item = build(row)
                    found[getattr(item, name)] = item
        except Exception as exc:
            raise wrap_error(exc, f"read {core.meta.name}")
        finally:
            self.src.release(d)
        return [found.get(k[0]) for k in keys]

    async def update(self, key: tuple[Any, ...], values: dict[str, Any], pre: Node | None) -> Any:
        """Apply changes to the item at key; None when missing or the precondition fails."""
        core = self.core
        d = await self._driver()
        try:
            if pre is not None and not core.split(pre).all_native:
                # checked here: the row stays locked from the read to the write
                outcome = await self._atomic(d, self._update_locked, d, key, values, pre)
                return outcome[1]
            if d.in_tx and core.error_aborts_tx and core.may_conflict(values):
                return await self._atomic(d, self._update, d, key, values, pre)
            return await self._update(d, key, values, pre)
        finally:
            self.src.release(d)

    async def _atomic(self, d: AsyncDriver, fn: Callable[..., Awaitable[R]], *args: Any) -> R:
        """``fn(*args)`` in a transaction of its own, or a savepoint inside the open one
        (a failure is rolled back to it and leaves the caller's transaction usable)."""
        what = f"transaction on {self.core.meta.name}"
        try:
            sp = await d.begin()
        except Exception as exc:
            raise wrap_error(exc, what)
        try:
            out = await fn(*args)
        except BaseException:
            try:
                await d.rollback(sp)
            except Exception as exc:
                raise wrap_error(exc, what)
            raise
        try:
            await d.commit(sp)
        except Exception as exc:
            raise wrap_error(exc, what)
        return out

    def native_fexpr(self, values: dict[str, Any], pre: Node | None, use: FexprUse) -> bool:
        """Always True: the database evaluates ``F`` expressions in every use. Without a
        precondition one guarded UPDATE (``SET a = a - :v … WHERE … AND a - :v >= :ge``,
        see ``_one_update``); with one (or MySQL's order), the row read locked,
        computed and written in one transaction or savepoint; in a batch, inside the
        batch's transaction; ``update_where`` locks the matches first."""
        return True

    def _one_update(self, values: dict[str, Any]) -> bool:
        """True when one UPDATE writes these ``F`` expressions: MySQL assigns SET left
        to right, so there only when the assignments can be ordered for each ``F`` to
        read the value before the update (``set_order``)."""
        return self.core.dialect_name != "mysql" or set_order(values) is not None

    async def _update_f(self, d: AsyncDriver, key: tuple[Any, ...], values: dict[str, Any]
                        ) -> Any:
        """One UPDATE evaluating the ``F`` expressions, guarded by the attributes' bounds;
        when it changes nothing, the row read tells missing (None) from out of bounds
        (``ValidationError``), or that another writer came between (again)."""
        core = self.core
        for _ in range(1000):
            sql, named = expr_update(core, key, values)
            try:
                if core.returning:
                    row = await d.one(sql[0], core.params(sql, named))
                    if row is not None:
                        return core.build_returned(row)
                elif await d.run(sql[0], core.params(sql, named)):
                    return await self._read(d, key)
            except Exception as exc:
                if is_integrity_error(exc):
                    raise Conflict(f"{core.meta.name}: {_conflict_text(core, values)}") \
                        from exc
                raise wrap_error(exc, f"update {core.meta.name}")
            item = await self._read(d, key)
            if item is None:
                return None
            resolve(core.meta, values, item)  # raises when a result is out of its bounds
        raise BackendError(f"update {core.meta.name}: the item kept changing")

    async def _update(self, d: AsyncDriver, key: tuple[Any, ...], values: dict[str, Any],
                      pre: Node | None) -> Any:
        core = self.core
        if has_expr(values):
            if pre is None and self._one_update(values):
                return await self._update_f(d, key, values)
            # (a precondition, or MySQL's order): computed from the row
            return await self._update_f_locked(d, key, values, pre)
        if not values:
            item = await self._read(d, key)
            if item is None or (pre is not None and not compile_local(pre)(item)):
                return None
            return item
        names = tuple(values)
        if pre is None:  # the common case: a prebuilt statement and parameter encoder
            sql, encode = core.update_by_key(names)
            try:
                if core.returning:
                    row = await d.one(sql[0], encode(key, values))
                    return None if row is None else core.build_returned(row)
                changed = await d.run(sql[0], encode(key, values))
            except Exception as exc:
                if is_integrity_error(exc):
                    raise Conflict(f"{core.meta.name}: {_conflict_text(core, values)}") from exc
                raise wrap_error(exc, f"update {core.meta.name}")
            return None if changed == 0 else await self._read(d, key)
        sql, pvals = core.where_sql("update_key", pre, names=names)
        named = core.named(pvals)
        named.update(core.key_params(key))
        enc = core.encode(values)
        for n in names:
            named[f"s_{n}"] = enc[n]
        try:
            if core.returning:
                row = await d.one(sql[0], core.params(sql, named))
                return None if row is None else core.build_returned(row)
            changed = await d.run(sql[0], core.params(sql, named))
        except Exception as exc:
            if is_integrity_error(exc):
                raise Conflict(f"{core.meta.name}: {_conflict_text(core, values)}") from exc
            raise wrap_error(exc, f"update {core.meta.name}")
        return None if changed == 0 else await self._read(d, key)

    async def _update_f_locked(self, d: AsyncDriver, key: tuple[Any, ...],
                               values: dict[str, Any], pre: Node | None) -> Any:
        """``F`` expressions computed from the row read locked (in a transaction or
        savepoint of its own), then written."""
        async def run() -> Any:
            item = await self._read(d, key, for_update=True)
            if item is None or (pre is not None and not compile_local(pre)(item)):
                return None
            return await self._update(d, key, resolve(self.core.meta, values, item), None)
        return await self._atomic(d, run)

    async def _update_locked(self, d: AsyncDriver, key: tuple[Any, ...],
                             values: dict[str, Any], pre: Node | None) -> Outcome:
        """Read the row locked, check ``pre`` here, write (in the open transaction)."""
        item = await self._read(d, key, for_update=True)
        why = refusal(self.core.meta, key, item, pre)
        if why is not None:
            return why
        if not values:
            return ok(item)
        out = await self._update(d, key, values, None)
        return ok(out) if out is not None else missing(key_dict(self.core.meta, key))

    async def _read(self, d: AsyncDriver, key: tuple[Any, ...], for_update: bool = False) -> Any:
        core = self.core
        sql = core.sql_get_locked if for_update else core.sql_get
        try:
            row = await d.one(sql[0], core.params(sql, core.key_params(key)))
        except Exception as exc:
            raise wrap_error(exc, f"read {core.meta.name}")
        return None if row is None else core.build(row)

    async def delete(self, key: tuple[Any, ...], pre: Node | None) -> bool:
        """Delete the item at key; False when missing or the precondition fails."""
        core = self.core
        d = await self._driver()
        try:
            if pre is not None and not core.split(pre).all_native:
                return await self._atomic(d, self._delete_locked, d, key, pre)
            return await self._delete(d, key, pre)
        finally:
            self.src.release(d)

    async def _delete_locked(self, d: AsyncDriver, key: tuple[Any, ...], pre: Node) -> bool:
        """Read the row locked, check ``pre`` here, delete (in the open transaction)."""
        item = await self._read(d, key, for_update=True)
        if refusal(self.core.meta, key, item, pre) is not None:
            return False
        return await self._delete(d, key, None)

    async def _delete(self, d: AsyncDriver, key: tuple[Any, ...], pre: Node | None) -> bool:
        core = self.core
        if pre is None:
            sql = core.sql_delete
            named = core.key_params(key)
        else:
            sql, pvals = core.where_sql("delete_key", pre)
            named = core.named(pvals)
            named.update(core.key_params(key))
        try:
            return await d.run(sql[0], core.params(sql, named)) > 0
        except Exception as exc:
            raise wrap_error(exc, f"delete {core.meta.name}")

    # many items -----------------------------------------------------------------------
    async def find(self, query: Query) -> list[Any]:
        """Matching items in order (all native) after the cursor position, at most limit
        (the keyset condition is a row-value or expanded comparison, see ``keyset_shape``)."""
        core = self.core
        limit = query.limit
        sql, vals = core.where_sql("select", query.node, query.order or None,
                                   limit is not None, after=query.after)
        named = core.named(vals)
        if limit is not None:
            named["lim"] = limit
        d = await self._driver(write=False)
        try:
            rows = await d.all(sql[0], core.params(sql, named))
        except Exception as exc:
            raise wrap_error(exc, f"search {core.meta.name}")
        finally:
            self.src.release(d)
        return core.build_rows(rows)

    async def find_joined(self, query: Query, joins: tuple[Join, ...]) -> list[Any]:
        """As ``find``, with the related objects of ``joins`` (``select_related``) read
        in the same SELECT (LEFT OUTER JOINs, see ``sql/joins.py``) and attached."""
        core = self.core
        limit = query.limit
        sql, vals = joined_sql(core, query.node, query.order, limit is not None,
                               query.after, joins)
        named = core.named(vals)
        if limit is not None:
            named["lim"] = limit
        d = await self._driver(write=False)
        try:
            rows = await d.all(sql[0], core.params(sql, named))
        except Exception as exc:
            raise wrap_error(exc, f"search {core.meta.name}")
        finally:
            self.src.release(d)
        return build_joined(core, joins, rows)

    async def iterate(self, node: Node) -> AsyncIterator[Any]:
        """Matching items (native part only), in no particular order."""
        for item in await self.find(Query(node)):
            yield item

    async def count(self, node: Node) -> int:
        """How many items match (all native)."""
        core = self.core
        sql, vals = core.where_sql("count", node)
        d = await self._driver(write=False)
        try:
            row = await d.one(sql[0], core.params(sql, core.named(vals)))
        except Exception as exc:
            raise wrap_error(exc, f"count {core.meta.name}")
        finally:
            self.src.release(d)
        return int(row[0])

    def prepare(self, kind: str, node: Node, order: Order | None = None,
                want: int | None = None) -> tuple[str, Any] | None:
        """The statement and parameters of a count (``kind`` "count") or of the first
        ``want`` items in ``order`` (``find``) over ``node``, compiled once for a store
        that runs the same filter again (``count_prepared``, ``find_prepared``); None
        when the database does not run all of it (the store's general path then does)."""
        core = self.core
        split = core.split(node)
        if not split.all_native:
            return None
        if kind == "count":
            sql, vals = core.where_sql("count", split.native)
            return sql[0], core.params(sql, core.named(vals))
        if order is None or want is None or not core.can_order(order):
            return None
        sql, vals = core.where_sql("select", split.native, order or None, True)
        named = core.named(vals)
        named["lim"] = want
        return sql[0], core.params(sql, named)

    async def count_prepared(self, plan: tuple[str, Any]) -> int:
        """``count`` of a statement ``prepare`` made."""
        d = await self._driver(write=False)
        try:
            row = await d.one(plan[0], plan[1])
        except Exception as exc:
            raise wrap_error(exc, f"count {self.core.meta.name}")
        finally:
            self.src.release(d)
        return int(row[0])

    async def find_prepared(self, plan: tuple[str, Any]) -> list[Any]:
        """``find`` of a statement ``prepare`` made."""
        d = await self._driver(write=False)
        try:
            rows = await d.all(plan[0], plan[1])
        except Exception as exc:
            raise wrap_error(exc, f"search {self.core.meta.name}")
        finally:
            self.src.release(d)
        return self.core.build_rows(rows)

    async def aggregate(self, node: Node, specs: tuple[AggSpec, ...]) -> dict[str, Any]:
        """One SELECT of the aggregate functions (all native); evaluated here over the
        matches when an aggregate's column is stored in a text form (see
        ``SqlCore.aggregate_sql``)."""
        core = self.core
        compiled = core.aggregate_sql(node, specs)
        if compiled is None:
            acc = Accumulator(specs)
            async for item in self.iterate(node):
                acc.add(item)
            return acc.result()
        sql, vals = compiled
        d = await self._driver(write=False)
        try:
            row = await d.one(sql[0], core.params(sql, core.named(vals)))
        except Exception as exc:
            raise wrap_error(exc, f"aggregate {core.meta.name}")
        finally:
            self.src.release(d)
        raw: dict[str, Any] = {}
        i = 0
        for s in specs:
            if s.func == "avg":
                raw[s.name] = (row[i], row[i + 1])
                i += 2
            else:
                raw[s.name] = row[i]
                i += 1
        return finish(specs, raw)

    async def update_where(self, node: Node, values: dict[str, Any]) -> int:
        """Apply changes to every match: one UPDATE, or (a filter with a local part) the
        native matches locked, checked here and updated by key in one transaction.
        The unique indexes refuse a duplicate value: Conflict, nothing changed."""
        core = self.core
        split = core.split(node)
        d = await self._driver()
        try:
            if has_expr(values):
                return await self._atomic(d, self._update_where_f, d, split, values)
            if not split.all_native:
                return await self._atomic(d, self._update_matching, d, split, values)
            if d.in_tx and core.error_aborts_tx and core.may_conflict(values):
                return await self._atomic(d, self._update_all, d, split.native, values)
            return await self._update_all(d, split.native, values)
        finally:
            self.src.release(d)

    async def _update_where_f(self, d: AsyncDriver, split: Split, values: dict[str, Any]
                              ) -> int:
        """``update_where`` with ``F`` expressions (in a transaction of its own): the
        matches locked, every result checked against its bounds (one out of them →
        ``ValidationError``, nothing written), then each row updated by key."""
        core = self.core
        items = await self._locked_items(d, split)
        results = [resolve(core.meta, values, i) for i in items]  # raises when out
        names = core.key_names
        native = self._one_update(values)
        n = 0
        for item, plain in zip(items, results, strict=True):
            key = tuple(getattr(item, k) for k in names)
            out = await (self._update_f(d, key, values) if native
                         else self._update(d, key, plain, None))
            n += out is not None
        return n

    async def _update_all(self, d: AsyncDriver, node: Node, values: dict[str, Any]) -> int:
        core = self.core
        names = tuple(values)
        sql, vals = core.where_sql("update", node, names=names)
        named = core.named(vals)
        enc = core.encode(values)
        for n in names:
            named[f"s_{n}"] = enc[n]
        try:
            return await d.run(sql[0], core.params(sql, named))
        except Exception as exc:
            if is_integrity_error(exc):
                raise Conflict(f"{core.meta.name}: {_conflict_text(core, values)}") from exc
            raise wrap_error(exc, f"update {core.meta.name}")

    async def _update_matching(self, d: AsyncDriver, split: Split, values: dict[str, Any]
                               ) -> int:
        keys = await self._locked_keys(d, split)
        n = 0
        for start in range(0, len(keys), 500):
            n += await self._update_all(d, _keys_filter(self.core, keys[start:start + 500]),
                                        values)
        return n

    async def _locked_items(self, d: AsyncDriver, split: Split) -> list[Any]:
        """The items matching the whole filter, locked until the transaction ends."""
        core = self.core
        sql, vals = core.where_sql("lock", split.native)
        try:
            rows = await d.all(sql[0], core.params(sql, core.named(vals)))
        except Exception as exc:
            raise wrap_error(exc, f"search {core.meta.name}")
        keep = compile_local(split.local)
        return [i for i in map(core.build, rows) if keep(i)]

    async def _locked_keys(self, d: AsyncDriver, split: Split) -> list[tuple[Any, ...]]:
        """Keys of the rows matching the whole filter, locked until the transaction ends."""
        names = self.core.key_names
        return [tuple(getattr(i, n) for n in names) for i in await self._locked_items(d, split)]

    async def delete_where(self, node: Node) -> int:
        """Delete every match: one DELETE, or (a filter with a local part) the native
        matches locked, checked here and deleted by key in one transaction."""
        core = self.core
        split = core.split(node)
        d = await self._driver()
        try:
            if not split.all_native:
                return await self._atomic(d, self._delete_matching, d, split)
            return await self._delete_all(d, split.native)
        finally:
            self.src.release(d)

    async def _delete_all(self, d: AsyncDriver, node: Node) -> int:
        core = self.core
        sql, vals = core.where_sql("delete", node)
        try:
            return await d.run(sql[0], core.params(sql, core.named(vals)))
        except Exception as exc:
            raise wrap_error(exc, f"delete {core.meta.name}")

    async def _delete_matching(self, d: AsyncDriver, split: Split) -> int:
        keys = await self._locked_keys(d, split)
        n = 0
        for start in range(0, len(keys), 500):
            n += await self._delete_all(d, _keys_filter(self.core, keys[start:start + 500]))
        return n

    async def apply(self, edits: list[PreparedEdit], atomic: bool) -> list[Outcome]:
        """Apply edits in one transaction: atomic all-or-nothing, else each on its own."""
        d = await self._driver()
        try:
            sp = await d.begin()
            try:
                out = await self._apply_each(d, edits, atomic)
            except BaseException:
                await d.rollback(sp)
                raise
            if atomic and not all(o[0] for o in out):
                await d.rollback(sp)
            else:
                await d.commit(sp)
            return out
        except Exception as exc:  # BEGIN / SAVEPOINT / COMMIT / ROLLBACK are bare here
            raise wrap_error(exc, f"batch on {self.core.meta.name}")
        finally:
            self.src.release(d)

    @property
    def create_run(self) -> Callable[[list[Any]], Any] | None:
        """``create_run(edits)``: a whole batch of Creates of plain items (as
        ``fast_create`` accepts, their autoincrement key not given), each item's values
        checked and written straight into its row of parameters, all written by one
        executemany in a transaction of its own; their items, keys included, or None,
        nothing written, when an item needs the general path or the write failed (the
        store front then applies the batch the general way, which tells which failed
        and how). This attribute is None where the backend has no such path (SQLite's
        keys only: the other dialects go through ``apply``)."""
        core = self.core
        if core.auto is None or core.bulk_copy or core.bulk_auto or \
                core.sql_seq_block is not None or core.meta._unstored_defaults:
            return None
        return self._create_keyed

    async def _create_keyed(self, edits: list[Any]) -> list[Any] | None:
        """``create_run`` on SQLite (``_insert_keyed_run``). The items are new instances
        given the values written and their keys."""
        core = self.core
        try:
            got = core.fast_rows()(edits)
        except (KeyError, AttributeError):  # an item lacks an attribute: general path
            return None
        if got is None:
            return None
        rows, params = got
        d = await self._driver()
        try:
            try:
                sp = await d.begin()
            except Exception as exc:
                raise wrap_error(exc, f"batch on {core.meta.name}")
            try:
                first = await self._insert_keyed_run(d, params)
            except Exception:
                await self._undo_run(d, sp)
                return None
            except BaseException:
                await d.rollback(sp)
                raise
            try:
                await d.commit(sp)
            except Exception as exc:
                raise wrap_error(exc, f"batch on {core.meta.name}")
            return core.keyed_items(rows, first)
        finally:
            self.src.release(d)

    def _create_run(self, edits: list[PreparedEdit], i: int) -> int:
        """The end of the run of creates starting at ``i`` that one executemany can
        write (``i`` when there is none)."""
        core = self.core
        end = len(edits)
        j = i
        auto = core.auto
        if auto is not None:  # ``bulk_insertable`` inlined: the common case, per row
            n = len(core.insert_names)
            while j < end:
                e = edits[j]
                values = e.values
                if e.kind != "create" or len(values) != n or auto in values:
                    break
                j += 1
            return j
        ok = core.bulk_insertable
        while j < end and edits[j].kind == "create" and ok(edits[j].values):
            j += 1
        return j

    async def _bulk_insert(self, d: AsyncDriver, edits: list[PreparedEdit]
                           ) -> list[Outcome] | None:
        """Creates with one executemany in a savepoint of their own (autoincrement keys
        allocated first); None, rolled back, when anything fails: the caller then applies
        them one by one, which tells which failed and how."""
        core = self.core
        auto = core.auto
        if core.bulk_auto and not await self._auto_consecutive(d):
            return None
        sp = await d.begin()
        try:
            if core.bulk_copy:  # PostgreSQL: one COPY (keys allocated first)
                rows = [e.values for e in edits] if auto is None else \
                    await self._bulk_ids(d, [dict(e.values) for e in edits])
                sql_copy, encode_copy = core.copy_in()
                await d.copy(sql_copy, [encode_copy(v) for v in rows])  # type: ignore[attr-defined]
            elif core.bulk_auto:  # MySQL: multi-row INSERTs, keys from their first
                rows = [dict(e.values) for e in edits]
                await self._insert_auto_runs(d, rows)
            elif auto is None:
                await d.many(core.sql_insert[0], [core.insert_row(e.values) for e in edits])
                rows = [e.values for e in edits]
            elif core.sql_seq_block is not None:  # keys from the sequence, one statement
                rows = [dict(e.values) for e in edits]
                rest = await self._bulk_ids(d, rows)
                sql, encode = core.insert_all()
                if rest:
                    await d.many(sql[0], [encode(v) for v in rest])
            else:
                # SQLite: the rows take consecutive keys from the first's
                # (``_insert_keyed_run``; when they do not, the batch goes one by one).
                # The values are copied with their keys only once all are written: the
                # one-by-one path starts from them as they were.
                values = [e.values for e in edits]
                encode = core.insert_row
                first = await self._insert_keyed_run(d, [encode(v) for v in values])
                rows = [{auto: k, **v} for k, v in enumerate(values, first)]
        except Exception:
            await self._undo_run(d, sp)
            return None
        except BaseException:
            await d.rollback(sp)
            raise
        await d.commit(sp)
        return [(True, item, None, None) for item in core.meta.build_all(rows)]

    async def _undo_run(self, d: AsyncDriver, sp: str | None) -> None:
        """Roll back a run of creates that failed (the caller then applies them the
        general way, which tells which failed and how); a failed rollback is typed."""
        try:
            await d.rollback(sp)
        except Exception as exc:
            raise wrap_error(exc, f"create {self.core.meta.name}")

    async def _insert_keyed_run(self, d: AsyncDriver, params: list[Any]) -> int:
        """SQLite: insert the rows of ``params`` (``sql_insert``'s parameters, keys not
        given) in the open transaction of ``d``, the first alone and the rest by one
        executemany; the first key. Holding the database's write lock from the first
        insert on, each following row takes the next key (AUTOINCREMENT's and a plain
        rowid's "one more than the largest"): checked by the last key, as anything else
        (a trigger inserting into the table, the largest rowid taken) would break the
        run; ``KeysNotConsecutive`` then, for the caller to roll back."""
        core = self.core
        sql = core.sql_insert[0]
        first: int = await d.insert_id(sql, params[0])
        n = len(params)
        if n > 1:
            await d.many(sql, params[1:])
            last = await d.one("SELECT last_insert_rowid()", ())
            if last is None or last[0] != first + n - 1:
                raise KeysNotConsecutive(first, n, last)
        return first

    async def _auto_consecutive(self, d: AsyncDriver) -> bool:
        """MySQL/MariaDB: True when one multi-row INSERT takes consecutive
        AUTO_INCREMENT values, its first being the statement's insert id: InnoDB's
        ``innodb_autoinc_lock_mode`` 0 or 1 (a "simple insert", whose row count is
        known, then allocates its values at once) and an ``auto_increment_increment``
        of 1 (Galera and multi-source setups raise it). Mode 2 interleaves concurrent
        inserts' values: the run then goes one create at a time."""
        try:
            got = await d.one("SELECT @@innodb_autoinc_lock_mode, "
                              "@@session.auto_increment_increment", None)
        except Exception as exc:
            raise wrap_error(exc, f"create {self.core.meta.name}")
        return got is not None and int(got[0]) in (0, 1) and int(got[1]) == 1

    async def _insert_auto_runs(self, d: AsyncDriver, rows: list[dict[str, Any]]) -> None:
        """MySQL/MariaDB: the rows in multi-row INSERTs that leave the key to
        AUTO_INCREMENT; each row's key filled in from its statement's first
        (``_auto_consecutive`` holds)."""
        core = self.core
        auto: str = core.auto  # type: ignore[assignment]
        head, one = core.multi_insert()
        encode = core.insert_tuple()
        ranges = await d.insert_rows(head, one,  # type: ignore[attr-defined]
                                     [encode(v) for v in rows])
        i = 0
        for first, n in ranges:
            for k in range(n):
                rows[i + k][auto] = first + k
            i += n

    async def _bulk_ids(self, d: AsyncDriver, rows: list[dict[str, Any]]
                        ) -> list[dict[str, Any]]:
        """Autoincrement keys for a batch of creates, in the write transaction; the rows
        still to insert.

        PostgreSQL: ``nextval`` once per row in one statement. SQLite: the first row is
        inserted (its ``lastrowid`` is the largest key: AUTOINCREMENT takes the next after
        the largest ever) and left out of the rows returned; the transaction holds the database's
        write lock from then on, so the following keys are free; had one been taken
        anyway, the executemany fails on it and the batch goes one by one."""
        core = self.core
        auto: str = core.auto  # type: ignore[assignment]
        if core.sql_seq_block is not None:
            sql = core.sql_seq_block
            got = await d.all(sql[0], core.params(sql, {**core.seq_params,
                                                         "v_count": len(rows)}))
            for v, n in zip(rows, sorted(r[0] for r in got), strict=True):
                v[auto] = n
            return rows
        first = rows[0]
        n = await d.insert_id(core.sql_insert[0], core.insert_row(first))
        first[auto] = n
        for v in rows[1:]:
            n += 1
            v[auto] = n
        return rows[1:]

    async def _apply_each(self, d: AsyncDriver, edits: list[PreparedEdit], atomic: bool
                          ) -> list[Outcome]:
        out: list[Outcome] = []
        i, end = 0, len(edits)
        while i < end:
            # a run of creates: one executemany, else (it failed) one by one as below
            j = self._create_run(edits, i)
            if j - i > 1:
                done = await self._bulk_insert(d, edits[i:j])
                if done is not None:
                    out.extend(done)
                    i = j
                    continue
            else:
                j = i + 1
            for e in edits[i:j]:
                sp = await d.begin()
                try:
                    outcome = await self._apply_one(d, e)
                except Conflict as exc:
                    outcome = duplicate(exc)
                except ValidationError as exc:  # an F result outside its bounds
                    outcome = invalid(exc)
                except BaseException:
                    await d.rollback(sp)
                    raise
                if outcome[0]:
                    await d.commit(sp)
                else:
                    await d.rollback(sp)
                out.append(outcome)
                if atomic and not outcome[0]:
                    return stopped(out, len(edits))
            i = j
        return out

    async def _apply_one(self, d: AsyncDriver, e: PreparedEdit) -> Outcome:
        core = self.core
        if e.kind == "create":
            return ok(await self._insert(d, dict(e.values)))
        if e.kind == "upsert":
            return ok(await self._upsert(d, dict(e.values)))
        if e.kind == "update":
            pre = e.precondition
            if pre is None or core.split(pre).all_native:
                item = await self._update(d, e.key, e.values, pre)
                if item is not None:
                    return ok(item)
                if pre is None:
                    return missing(key_dict(core.meta, e.key))
            # a local precondition, or a guarded UPDATE that changed nothing (missing, or
            # the precondition failed?): the row locked, checked here
            return await self._update_locked(d, e.key, e.values, pre)
        if await self._delete(d, e.key, None):
            return ok(None)
        return missing(key_dict(core.meta, e.key))


def _same_database(a: SqlCore, b: SqlCore) -> bool:
    """True when two models' tables are on one database (one engine, or engines of one
    URL: the related stores a store opens)."""
    return a.engine is b.engine or a.engine.url == b.engine.url


def _keys_filter(core: SqlCore, keys: list[tuple[Any, ...]]) -> Node:
    names = core.key_names
    if len(names) == 1:
        return Cond(names[0], "in", tuple(k[0] for k in keys))
    return Or(tuple(And(tuple(Cond(n, "eq", v) for n, v in zip(names, k, strict=True)))
                    for k in keys))


def _conflict_text(core: SqlCore, values: dict[str, Any]) -> str:
    meta = core.meta
    parts = [f"{n}={values.get(n)!r}" for n in meta.key.attrs if n in values]
    parts += [f"{n}={values.get(n)!r}" for names in meta.unique_sets for n in names
              if n in values and n not in meta.key.attrs]
    return "an item with " + ", ".join(parts) + " exists already"
