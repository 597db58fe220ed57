"""The files ``storeroom migrate init`` writes: alembic's ``env.py`` and revision template."""

from __future__ import annotations

ENV_PY = '''"""alembic's env.py, written by ``storeroom migrate init``.

``storeroom migrate ... --app module:dm [--engine NAME]`` runs it: it loads the data
manager ``dm`` of ``--app`` and migrates the SQL database of engine NAME (the default
engine without ``--engine``) to ``dm.sql_metadata(NAME)``, the tables of the models
registered on that engine. Edit freely (``storeroom.migrate.env`` has the pieces).
"""

from alembic import context

from storeroom.migrate import env

dm = env.load_app(context.config)            # --app module:dm
engine_name = env.engine_name(context.config)  # --engine NAME, or None: the default
target_metadata = dm.sql_metadata(engine_name)

env.run_migrations(context, dm, engine_name, target_metadata)
'''

SCRIPT_PY_MAKO = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: str | None = ${repr(down_revision)}
branch_labels: str | Sequence[str] | None = ${repr(branch_labels)}
depends_on: str | Sequence[str] | None = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''

README = '''Migrations of a storeroom application, run with ``storeroom migrate``
(see ``storeroom migrate --help``): alembic's scripts, configured in code (no
alembic.ini). ``versions/`` holds the revisions.
'''
