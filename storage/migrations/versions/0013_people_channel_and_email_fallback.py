"""each person's preferred channel, and forms sent by email as a fallback

Revision ID: 0013
Revises: 0012a
Create Date: 2026-11-29 22:00:00

``people.channel``: where forms and reminders go (telegram, slack or email), from the people
CSV's ``channel`` column; NULL means the default: the platform they linked, else email.
``deliveries.fallback``: why a form went by email instead of the person's own platform
(``[email] fallback``: never linked, blocked the bot); NULL when it went on their channel.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("channel", sa.String(16), nullable=True))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("fallback", sa.String(60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("fallback")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("channel")
