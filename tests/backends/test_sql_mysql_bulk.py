"""MariaDB: a run of creates with an AUTO_INCREMENT key is one multi-row INSERT only while
its keys are sure to be consecutive (issue 10).

The keys of the items returned are the statement's insert id and the values after it,
which holds for one multi-row INSERT under ``innodb_autoinc_lock_mode`` 0 or 1 and an
``auto_increment_increment`` of 1. With another increment (Galera, multi-source
replication) the run goes one create at a time, and every item still carries the key its
row has.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text

from storeroom import Create, QueryLog, generated, stored
from storeroom.backends.sql import testing
from storeroom.context import DataManager
from tests.servers import skip_or_fail


@stored
class Ticket:
    id: int = generated.sequence()
    name: str = ""


def _url() -> str:
    reason = testing.unavailable_reason("mysql")
    if reason is not None:
        skip_or_fail(f"mysql: {reason}")
    return testing.fresh_url("mysql", f"t{uuid.uuid4().hex}")


def test_increment_not_one_creates_one_at_a_time_with_the_right_keys() -> None:
    dm = DataManager()
    dm.add_engine("main", _url(), default=True)
    dm.register_models(Ticket)
    try:
        with dm.context() as ctx:
            conn = ctx.engines.connection_for(write=True)
            conn.execute(text("SET SESSION auto_increment_increment = 3"))
            try:
                s = ctx.store(Ticket)
                with QueryLog() as log:
                    out = s.edit_batch([Create(Ticket(name=f"n{i}")) for i in range(6)])
                assert all(r.ok for r in out)
                ids = [r.item.id for r in out]
                assert len(set(ids)) == 6
                assert all(b - a == 3 for a, b in zip(ids, ids[1:], strict=False)), ids
                for r in out:
                    assert s.read(r.item.id) == r.item
                inserts = [r for r in log.records if r.statement.lstrip().upper()
                           .startswith("INSERT")]
                assert len(inserts) == 6
            finally:
                conn.execute(text("SET SESSION auto_increment_increment = 1"))
    finally:
        dm.close()
