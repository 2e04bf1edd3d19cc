"""append-only audit log; free-text columns wide enough for encryption

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 10:00:00

The audit log refuses UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) with a trigger, so not
even the bot can rewrite history. The free-text columns that may be encrypted at rest
(``action_events.text``, ``pact_priorities.report_back`` and ``outcome``) become TEXT: a Fernet
token is longer than the plaintext. (JSON columns hold a token as a JSON string and are unchanged.)

Note for later migrations: on SQLite, a batch operation that recreates ``audit_log`` drops its
triggers; such a migration must create them again (see ``create_triggers``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEXT_COLUMNS = [
    ("action_events", "text", 2000),
    ("pact_priorities", "report_back", 1000),
    ("pact_priorities", "outcome", 1000),
]

PG_UP = [
    """
    CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$
    """,
    "CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
]
PG_DOWN = [
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "DROP TRIGGER IF EXISTS audit_log_no_update_delete ON audit_log",
    "DROP FUNCTION IF EXISTS audit_log_append_only()",
]
SQLITE_UP = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused'); END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS audit_log_no_update",
    "DROP TRIGGER IF EXISTS audit_log_no_delete",
]


def create_triggers() -> None:
    """The append-only triggers for the current backend."""
    postgres = op.get_bind().dialect.name == "postgresql"
    for sql in PG_UP if postgres else SQLITE_UP:
        op.execute(sql)


def upgrade() -> None:
    """Apply."""
    for table, column, length in TEXT_COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=sa.String(length=length),
                type_=sa.Text(),
                existing_nullable=False,
            )
    create_triggers()


def downgrade() -> None:
    """Revert (a column holding longer text than its old length fails on PostgreSQL)."""
    postgres = op.get_bind().dialect.name == "postgresql"
    for sql in PG_DOWN if postgres else SQLITE_DOWN:
        op.execute(sql)
    for table, column, length in TEXT_COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=sa.Text(),
                type_=sa.String(length=length),
                existing_nullable=False,
            )
