"""seen requests: Slack replay protection and modal idempotency in the database

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 19:00:00

``seen_requests`` holds a key per request already accepted (a hash of a Slack request's
signature; a submitted modal's view id and hash) until it expires, so a replay is refused by
every process sharing the database and after a restart, not only by the process that saw it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seen_requests",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_seen_requests")),
    )
    with op.batch_alter_table("seen_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_seen_requests_expires"), ["expires"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("seen_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_seen_requests_expires"))
    op.drop_table("seen_requests")
