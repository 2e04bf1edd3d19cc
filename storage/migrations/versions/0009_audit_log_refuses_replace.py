"""the audit log refuses REPLACE on SQLite

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 19:00:00

SQLite's ``REPLACE INTO`` / ``INSERT OR REPLACE`` settle a clash on the primary key by deleting
the old row first, and that implicit delete fires no DELETE trigger (unless the connection turned
on ``recursive_triggers``): 0007's triggers let a row be rewritten this way. A BEFORE INSERT
trigger now refuses any insert whose id is already taken, which covers REPLACE, INSERT OR
REPLACE and the UPSERT forms; an ordinary insert (a new id) is unaffected.

PostgreSQL has no REPLACE, and ``INSERT ... ON CONFLICT DO UPDATE`` fires 0007's BEFORE UPDATE
trigger, so nothing changes there. What protects the triggers themselves on PostgreSQL is that the
service does not own ``audit_log`` (deploy/README.md, "The audit log on PostgreSQL").

Note for later migrations: on SQLite, a batch operation that recreates ``audit_log`` drops this
trigger with 0007's; such a migration must create all three again.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQLITE_UP = (
    "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
    "WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id) "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: REPLACE refused'); END"
)
SQLITE_DOWN = "DROP TRIGGER IF EXISTS audit_log_no_replace"


def upgrade() -> None:
    """Apply."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(SQLITE_UP)


def downgrade() -> None:
    """Revert."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(SQLITE_DOWN)
