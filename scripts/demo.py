"""A ten-minute tour of storeroom, on an SQLite file. Run it with ``./scripts/demo``.

Read it top to bottom: each numbered section shows one part of the Store interface
and prints what happened. It covers

1. models: ``@stored`` classes with ``field(...)`` rules and ``generated`` values
2. opening a store: ``open_store(Task, "sqlite:///demo.db")`` (a temp directory here)
3. creating items
4. searching: keyword lookups, ``Q`` objects, ``attr(...)`` expressions, ordering
5. pages: ``limit=`` and the ``next`` cursor passed back as ``after=``
6. ``count`` and ``read_batch``
7. batches: ``edit_batch`` with ``Create`` / ``Update`` / ``Delete`` and the per-edit
   result codes; ``atomic=True`` changes all or nothing and raises ``BatchError``
8. a partial update guarded by a precondition
9. validation errors and their ``.errors`` list
10. the async twin: ``open_async_store`` has the same methods, awaited
11. a ``DataManager``: an engine, a model, a service reached through the DAL, a context
    with a user in its meta, a rollback, a savepoint and ``on_commit``
12. the module safe: a durable dict private to a module, and its transactions

Sections 11 and 12 print each step's code beside its result.

The store tour (1-10) runs on every backend: change the URL to ``memory://``,
``postgresql://...``, ``mysql://...``, ``dynamodb://...``, ``mongodb://...`` or
``redis://...``. Pass a URL as the first argument to try another one, e.g.
``./scripts/demo memory://``.
"""

from __future__ import annotations

import ast
import asyncio
import os
import sys
import tempfile
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from storeroom import (
    BatchError,
    Create,
    DataManager,
    Delete,
    Q,
    Service,
    Update,
    ValidationError,
    attr,
    field,
    generated,
    open_async_store,
    open_store,
    stored,
)
from storeroom.safe import module_safe

# --- 1. Models ---------------------------------------------------------------------------
# ``@stored`` turns a class into a keyword-only dataclass that a store can persist.
# ``key="id"`` names the key; ``generated.uuid()`` fills it in on create, and the two
# timestamps are set by the store (UTC). ``field(...)`` adds validation rules.


@stored(key="id", table="tasks")
class Task:
    id: str = generated.uuid()
    owner: str
    title: str = field(max_length=200)
    done: bool = False
    priority: int = field(default=0, ge=0, le=5)
    tags: list[str] = field(default_factory=list)  # stored as JSON (not filterable)
    created_at: datetime = generated.created_at()
    updated_at: datetime = generated.updated_at()


def heading(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 70 - len(text)))


def show(task: Task | None) -> str:
    if task is None:
        return "None"
    mark = "x" if task.done else " "
    tags = ",".join(task.tags)
    return f"[{mark}] p{task.priority} {task.owner:<5} {task.title!r:<28} {tags}"


def sync_tour(url: str) -> None:
    # --- 2. Open a store -------------------------------------------------------------------
    heading("2. open_store(Task, url)")
    print(f"url = {url!r}")
    # A store holds connections: use it as a context manager (or call .close()).
    with open_store(Task, url) as tasks:
        meta = tasks.meta
        print(f"store {meta.name!r}, key {meta.key_attrs}, atomic batches: {meta.atomic_batch}")
        print(f"operators run natively by this backend: {len(meta.native_ops)}")

        # --- 3. Create ---------------------------------------------------------------------
        heading("3. create")
        rows = [
            ("ann", "Buy milk", 2, ["home"]),
            ("ann", "Write the report", 5, ["work"]),
            ("bob", "Fix the bike", 1, ["home", "outdoor"]),
            ("bob", "Milk the goat", 3, ["farm"]),
            ("cy", "Plan the trip", 4, ["travel"]),
            ("cy", "Call mum", 0, []),
            ("ann", "Mow the lawn", 1, ["home", "outdoor"]),
        ]
        created = [
            tasks.create(Task(owner=o, title=t, priority=p, tags=tags)) for o, t, p, tags in rows
        ]
        first = created[0]
        print(f"created {len(created)} tasks; the first one came back with its generated values:")
        print(f"  id={first.id}  created_at={first.created_at:%Y-%m-%d %H:%M:%S %Z}")
        print(f"  read it back by key: {show(tasks.read(first.id))}")

        # --- 4. Search ---------------------------------------------------------------------
        heading("4. search: three spellings of one filter language")
        print("keyword lookups: owner='ann', priority__gte=2")
        for t in tasks.search(owner="ann", priority__gte=2, order_by=["-priority"]):
            print("  ", show(t))
        print("Q objects: Q(title__icontains='milk') | ~Q(owner='ann')  (case-insensitive)")
        page = tasks.search(Q(title__icontains="milk") | ~Q(owner="ann"), order_by=["title"])
        for t in page:
            print("  ", show(t))
        print("attr(): attr('title').startswith('M') & (attr('priority') > 1)")
        for t in tasks.search(attr("title").startswith("M") & (attr("priority") > 1)):
            print("  ", show(t))
        print("free text: query='the'")
        for t in tasks.search(query="the", order_by=["title"]):
            print("  ", show(t))

        # --- 5. Pages ----------------------------------------------------------------------
        heading("5. pages: limit= and the next cursor")
        cursor = None
        n = 1
        while True:
            page = tasks.search(order_by=["-priority", "id"], limit=3, after=cursor)
            print(f"page {n}: {[t.title for t in page]}")
            if page.next is None:
                break
            cursor, n = page.next, n + 1  # opaque keyset cursor: pages never skip or repeat
        print(f"search_all walks every page for you: {len(list(tasks.search_all(limit=3)))} tasks")

        # --- 6. Count and read_batch -------------------------------------------------------
        heading("6. count and read_batch")
        print(f"count():               {tasks.count()}")
        print(f"count(done=False):     {tasks.count(done=False)}")
        print(f"count(owner__in=['ann', 'cy']): {tasks.count(owner__in=['ann', 'cy'])}")
        keys = [created[1].id, "no-such-id", created[2].id]
        print("read_batch([report, 'no-such-id', bike]) -> aligned with the keys:")
        for key, t in zip(keys, tasks.read_batch(keys), strict=True):
            print(f"  {key[:12]:<12} {show(t)}")

        # --- 7. Batches --------------------------------------------------------------------
        heading("7. edit_batch: one round trip, one result per edit")
        results = tasks.edit_batch(
            [
                Create(Task(owner="dee", title="Water the plants", tags=["home"])),
                Update(created[0].id, done=True),  # partial update by key
                Delete(created[5].id),
                Update("no-such-id", done=True),  # fails: missing_key
                Create(created[1]),  # fails: duplicate_key (same id)
            ]
        )
        for r in results:
            status = "ok" if r.ok else f"FAILED code={r.code}"
            print(f"  {type(r.edit).__name__:<6} {status}")
        print(f"count() is now {tasks.count()}  (the good edits were applied)")

        print("\natomic=True: all or nothing")
        try:
            tasks.edit_batch(
                [
                    Update(created[1].id, done=True),  # fine on its own...
                    Delete("no-such-id"),  # ...but this one fails
                ],
                atomic=True,
            )
        except BatchError as exc:
            print(f"  BatchError: {exc}")
            for r in exc.results:
                why = r.code or "not applied: another edit failed"
                print(f"    {type(r.edit).__name__:<6} ok={r.ok}  {why}")
        print(f"  the report is still not done: {show(tasks.read(created[1].id))}")

        # --- 8. Partial update with a precondition -----------------------------------------
        heading("8. update with a precondition")
        bike = created[2].id
        updated = tasks.update(bike, done=True, precondition=Q(done=False))
        print(f"update(bike, done=True, precondition=Q(done=False)) -> {show(updated)}")
        again = tasks.update(bike, title="Fix the bike again", precondition=Q(done=False))
        print(f"same precondition again (now done) -> {again}  (nothing changed)")
        print(f"update of a missing key -> {tasks.update('no-such-id', done=True)}")
        print(f"delete of a missing key -> {tasks.delete('no-such-id')}")

        # --- 9. Validation errors ----------------------------------------------------------
        heading("9. validation errors name the field, the value and the rule")
        for label, action in [
            (
                "create with priority=9",
                lambda: tasks.create(Task(owner="x", title="y", priority=9)),
            ),
            ("update title to 300 chars", lambda: tasks.update(first.id, title="z" * 300)),
            ("update the key", lambda: tasks.update(first.id, id="new-id")),
        ]:
            try:
                action()
                print(f"{label}: accepted?!")
            except ValidationError as exc:
                print(f"{label}: ValidationError")
                for err in exc.errors:
                    value = repr(err["value"])
                    value = value if len(value) < 30 else value[:27] + "..."
                    print(f"    field={err['field']} value={value} rule={err['rule']}")
                    message = err["message"]
                    message = message if len(message) < 70 else message[:67] + "..."
                    print(f"      {message}")


async def async_tour(url: str) -> None:
    # --- 10. The async twin ------------------------------------------------------------------
    heading("10. the async twin: open_async_store")
    # Returned at once; I/O starts on first use. Same methods, awaited.
    async with open_async_store(Task, url) as tasks:
        task = await tasks.create(Task(owner="eve", title="Async all the things", priority=2))
        page = await tasks.search(owner="eve")
        print(f"await create(...) then await search(owner='eve'): {[t.title for t in page]}")
        print(f"await count(): {await tasks.count()}")
        await tasks.delete(task.id)


def step(code: str, ns: dict[str, Any]) -> Any:
    """Run one step's ``code`` in ``ns`` and print it beside its result.

    Statements run as they are; when the last line is an expression its value is printed
    after ``->`` (unless it is None), as a REPL would.
    """
    tree = ast.parse(code)
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    body = ast.Module(body=tree.body[:-1] if last else tree.body, type_ignores=[])
    exec(compile(body, "<demo>", "exec"), ns)  # noqa: S102 - the demo's own code
    result = eval(compile(ast.Expression(last.value), "<demo>", "eval"), ns) if last else None
    lines = code.strip("\n").splitlines()
    for line in lines[:-1]:
        print(f"  {line}")
    shown = "" if result is None else f"  -> {result!r}"
    print(f"  {lines[-1]:<62}{shown}".rstrip())
    return result


# --- 11. A DataManager ---------------------------------------------------------------------
# An application has one DataManager per process and runs each request or task in a
# context: the context's meta holds the current user, its stores share one transaction
# per engine, committed when the block ends cleanly and rolled back when it raises.


class TaskService(Service):
    """The application's data access for tasks, reached as ``ctx.dal.tasks.<method>``."""

    def add(self, title: str, priority: int = 0) -> Task:
        """A task of the context's user."""
        owner = self._ctx.meta.require("user")
        return self._ctx.store(Task).create(Task(owner=owner, title=title, priority=priority))

    def mine(self) -> list[str]:
        """The titles of the context's user's tasks."""
        page = self._ctx.store(Task).search(owner=self._ctx.meta.user, order_by=["title"])
        return [t.title for t in page]


def data_manager_tour(url: str) -> None:
    heading("11. DataManager: services, contexts, savepoints, on_commit")
    ns: dict[str, Any] = {"DataManager": DataManager, "TaskService": TaskService, "Task": Task,
                          "url": url}
    step("dm = DataManager()\n"
         "dm.add_engine('db', url, default=True)\n"
         "dm.register_models(Task)\n"
         "dm.register_services(tasks=TaskService())\n"
         "dm.engine_names", ns)
    print("\na context with a user in its meta; the service reads it")
    step("with dm.context(meta={'user': 'ann'}) as ctx:\n"
         "    ctx.dal.tasks.add('Buy milk')\n"
         "    ctx.dal.tasks.add('Call the bank', priority=3)\n"
         "    user, mine = ctx.meta.user, ctx.dal.tasks.mine()\n"
         "(user, mine)", ns)
    step("ctx.meta.role is None          # a missing meta key reads as None", ns)
    print("\nan error in the body rolls the whole context back")
    step("try:\n"
         "    with dm.context(meta={'user': 'ann'}) as ctx:\n"
         "        ctx.dal.tasks.add('Never saved')\n"
         "        raise RuntimeError('the request failed')\n"
         "except RuntimeError:\n"
         "    pass\n"
         "with dm.dal(meta={'user': 'ann'}) as dal:\n"
         "    mine = dal.tasks.mine()\n"
         "mine", ns)
    print("\na savepoint undoes only its own work; on_commit runs after the commit")
    step("sent = []\n"
         "with dm.context(meta={'user': 'bob'}) as ctx:\n"
         "    task = ctx.dal.tasks.add('Fix the bike')\n"
         "    ctx.on_commit(lambda: sent.append('mail: ' + task.title))\n"
         "    try:\n"
         "        with ctx.savepoint():\n"
         "            ctx.dal.tasks.add('Half-done work')\n"
         "            raise ValueError('undo just this')\n"
         "    except ValueError:\n"
         "        pass\n"
         "    inside = (ctx.dal.tasks.mine(), list(sent))\n"
         "inside                         # bob's tasks, and nothing sent yet", ns)
    step("sent                           # after the commit", ns)
    step("dm.close()", ns)


# --- 12. The module safe ---------------------------------------------------------------------
# A durable dict private to a module, in one SQLite file under $STOREROOM_SAFE_DIR: every
# single operation is its own atomic, durable transaction.


def safe_tour() -> None:
    heading("12. the module safe: a durable dict per module")
    # module_safe() names the safe after the calling module: here the steps' namespace
    ns: dict[str, Any] = {"__name__": "demo", "module_safe": module_safe, "Decimal": Decimal,
                          "os": os}
    step("safe = module_safe()           # private to the calling module\n"
         "os.path.basename(safe.path)", ns)
    step("safe['settings'] = {'currency': 'EUR', 'rate': Decimal('1.08')}\n"
         "safe['settings']", ns)
    step("safe.get('missing', 'default'), 'settings' in safe, len(safe)", ns)
    step("with safe.transaction() as t:  # several operations, all or nothing\n"
         "    t['runs'] = t.get('runs', 0) + 1\n"
         "    t['last'] = 'demo'\n"
         "sorted(safe.items())", ns)
    step("try:\n"
         "    with safe.transaction() as t:\n"
         "        t['runs'] = 99\n"
         "        raise RuntimeError('changed my mind')\n"
         "except RuntimeError:\n"
         "    pass\n"
         "safe['runs']                   # the failed transaction left nothing", ns)
    step("del safe['last']\nlist(safe)", ns)
    step("safe.close()", ns)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="storeroom-demo-") as tmp:
        url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{Path(tmp) / 'demo.db'}"
        print(f"storeroom walkthrough on {url}")
        sync_tour(url)
        asyncio.run(async_tour(url))
        # the context layer and the safe run on SQLite files of the same temporary directory
        data_manager_tour(f"sqlite:///{Path(tmp) / 'app.db'}")
        os.environ["STOREROOM_SAFE_DIR"] = str(Path(tmp) / "safe")
        safe_tour()
        print("\nDone. The databases were in a temporary directory and are gone now.")


if __name__ == "__main__":
    main()
