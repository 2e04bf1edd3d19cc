"""report counts kept up to date by triggers

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 21:40:00

``report_counts`` holds the number of reports per (period, ward, category, level, basis) and
``report_cube`` per (period, ward, category), kept in step with ``reports`` by triggers in the
same transaction as every insert, delete and change of those columns, whichever code path makes
it. The summary reads a few thousand counts instead of scanning every report of thirteen months
(bench/RESULTS.md, part 3). Rows that fall to zero stay, and are filtered out when read.

Notes for later migrations:
- on SQLite, a batch operation that recreates ``reports`` drops these triggers; such a migration
  must create them again (see ``create_triggers``);
- on PostgreSQL, changing the type of a counted column is refused while ``reports_count_change``
  names it: drop the trigger, alter, create it again;
- widening ``reports.ward`` or ``category`` must widen the same columns of ``report_counts`` and
  ``report_cube``, or every insert of a longer value fails.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "period, level, basis, ward, category"
PLACE = "period, ward, category"


def _add(table: str, key: str) -> str:
    new = ", ".join(f"NEW.{c}" for c in key.split(", "))
    return (
        f"INSERT INTO {table} ({key}, n) VALUES ({new}, 1) "  # noqa: S608 (constants only)
        f"ON CONFLICT ({key}) DO UPDATE SET n = {table}.n + 1"
    )


def _remove(table: str, key: str) -> str:
    old = " AND ".join(f"{c} = OLD.{c}" for c in key.split(", "))
    return f"UPDATE {table} SET n = n - 1 WHERE {old}"  # noqa: S608 (constants only)


_ADD_NEW = f"{_add('report_counts', KEY)}; {_add('report_cube', PLACE)}"
_REMOVE_OLD = f"{_remove('report_counts', KEY)}; {_remove('report_cube', PLACE)}"

PG_UP = [
    f"""
    CREATE OR REPLACE FUNCTION report_counts_apply() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            {_REMOVE_OLD};
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            {_ADD_NEW};
        END IF;
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER reports_count AFTER INSERT OR DELETE ON reports "
    "FOR EACH ROW EXECUTE FUNCTION report_counts_apply()",
    f"CREATE TRIGGER reports_count_change AFTER UPDATE OF {KEY} ON reports "
    "FOR EACH ROW EXECUTE FUNCTION report_counts_apply()",
    # TRUNCATE fires no row triggers: empty the counts with it.
    """
    CREATE OR REPLACE FUNCTION report_counts_clear() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM report_counts;
        DELETE FROM report_cube;
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER reports_count_truncate AFTER TRUNCATE ON reports "
    "FOR EACH STATEMENT EXECUTE FUNCTION report_counts_clear()",
]
PG_DOWN = [
    "DROP TRIGGER IF EXISTS reports_count_truncate ON reports",
    "DROP TRIGGER IF EXISTS reports_count_change ON reports",
    "DROP TRIGGER IF EXISTS reports_count ON reports",
    "DROP FUNCTION IF EXISTS report_counts_clear()",
    "DROP FUNCTION IF EXISTS report_counts_apply()",
]
SQLITE_UP = [
    f"CREATE TRIGGER reports_count_insert AFTER INSERT ON reports BEGIN {_ADD_NEW}; END",
    f"CREATE TRIGGER reports_count_delete AFTER DELETE ON reports BEGIN {_REMOVE_OLD}; END",
    f"CREATE TRIGGER reports_count_change AFTER UPDATE OF {KEY} ON reports "
    f"BEGIN {_REMOVE_OLD}; {_ADD_NEW}; END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS reports_count_change",
    "DROP TRIGGER IF EXISTS reports_count_delete",
    "DROP TRIGGER IF EXISTS reports_count_insert",
]


def create_triggers() -> None:
    """The counting triggers for the current backend."""
    postgres = op.get_bind().dialect.name == "postgresql"
    for sql in PG_UP if postgres else SQLITE_UP:
        op.execute(sql)


def upgrade() -> None:
    """Apply: the counts table, its triggers, and the counts of the reports already stored."""
    op.create_table(
        "report_counts",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("basis", sa.String(length=20), nullable=False),
        sa.Column("ward", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        # (period, level, basis) first: the summary groups by them, in key order.
        sa.PrimaryKeyConstraint(
            "period", "level", "basis", "ward", "category", name=op.f("pk_report_counts")
        ),
    )
    op.create_table(
        "report_cube",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("ward", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("period", "ward", "category", name=op.f("pk_report_cube")),
    )
    create_triggers()
    for table, key in (("report_counts", KEY), ("report_cube", PLACE)):
        op.execute(
            f"INSERT INTO {table} ({key}, n) SELECT {key}, COUNT(*) FROM reports GROUP BY {key}"  # noqa: S608
        )


def downgrade() -> None:
    """Revert."""
    postgres = op.get_bind().dialect.name == "postgresql"
    for sql in PG_DOWN if postgres else SQLITE_DOWN:
        op.execute(sql)
    op.drop_table("report_cube")
    op.drop_table("report_counts")
