"""Autogenerate's comparison of server defaults for storeroom's columns.

Types need no hook: storeroom declares plain SQLAlchemy types with their collations
(``Text(collation="C")``, MySQL ``LONGTEXT(charset="utf8mb4", collation=...)``), which
alembic's own ``compare_type`` matches with what the databases reflect and renders in
revisions as they are (tested: a revision right after ``create_tables()`` is empty).

Databases give back a column's server default in their own spelling: SQLite
``('')``, PostgreSQL ``'abc'::text`` and ``true``, MariaDB ``'it\\'s'`` and ``1``.
:func:`compare_server_default` compares the values those spellings mean, so the
literal defaults storeroom declares (``schema.server_default``) are no spurious diff.
"""

from __future__ import annotations

import re
from typing import Any

_PG_CAST = re.compile(r"::[A-Za-z_][\w ]*(\[\])?$")
_BOOLS = {"true": "1", "false": "0"}


def normalize_default(text: Any) -> str | None:
    """The value a server default's SQL text spells (None: no default)."""
    if text is None:
        return None
    s = str(getattr(text, "text", text)).strip()
    while True:
        before = s
        while s.startswith("(") and s.endswith(")"):
            s = s[1:-1].strip()
        s = _PG_CAST.sub("", s).strip()
        if s == before:
            break
    if len(s) >= 2 and s[0] == s[-1] == "'":
        # '' is a quote in SQL; MariaDB also spells one \' (and a backslash \\)
        inner = re.sub(r"\\(.)", r"\1", s[1:-1].replace("''", "'"))
        return "s:" + inner
    low = s.lower()
    if low in _BOOLS:
        return "s:" + _BOOLS[low]
    return "s:" + s


def compare_server_default(context: Any, inspected_column: Any, metadata_column: Any,
                           inspected_default: Any, metadata_default: Any,
                           rendered_metadata_default: Any) -> bool | None:
    """alembic's ``compare_server_default`` hook: True when the database's default and
    the model's mean different values (``'5'`` and ``5`` are one value: the database
    converts a default to the column's type)."""
    if metadata_default is None and inspected_default is None:
        return False
    if metadata_column.autoincrement is True:
        return None  # a sequence's default: alembic's business
    if inspected_default is None and context.dialect.name in ("mysql", "mariadb"):
        inspected_default = _mysql_default(context, metadata_column)
    return normalize_default(inspected_default) != normalize_default(
        rendered_metadata_default)


def _mysql_default(context: Any, column: Any) -> Any:
    # SQLAlchemy's MySQL reflection reads SHOW CREATE TABLE and loses a default with a
    # quote in it ('it''s'); information_schema has it, as MariaDB spells it
    import sqlalchemy as sa
    return context.connection.execute(sa.text(
        "SELECT COLUMN_DEFAULT FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
        "DATABASE() AND TABLE_NAME = :t AND COLUMN_NAME = :c"),
        {"t": column.table.name, "c": column.name}).scalar()
