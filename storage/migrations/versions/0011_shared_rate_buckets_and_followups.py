"""shared rate buckets and follow-ups of uncertain forms

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 19:00:00

``rate_buckets``: token buckets shared by every ``tensionbot run`` process on PostgreSQL, so
several processes together keep Telegram's and Slack's rates (storage/rates.py).
``deliveries.followed_up_at``: when a form whose delivery was uncertain (the process stopped
mid-send) was sent again with wording that makes a duplicate harmless; once only.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_buckets",
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("tat", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rate_buckets_tat", "rate_buckets", ["tat"])
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("followed_up_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("followed_up_at")
    op.drop_index("ix_rate_buckets_tat", table_name="rate_buckets")
    op.drop_table("rate_buckets")
