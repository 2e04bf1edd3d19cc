"""people's platform addresses in rows of their own

Revision ID: 0012a
Revises: 0011
Create Date: 2026-11-29 21:40:00

``addresses`` (person, platform, address, chat, linked_at; unique per platform by address and by
chat) replaces ``people.telegram_user_id``, ``people.telegram_chat_id`` and
``people.slack_user_id``, so a new platform is a new adapter and no new column. Every link moves:
a Telegram user id with its chat (connected through an invitation: ``linked_at`` is the
person's), a Slack user id with itself as the chat (its DM is opened by user id). Downgrading
moves them back. On SQLite, dropping the columns rebuilds ``people``; ``storage/migrate.py``
runs migrations with foreign keys off so the rebuild cascades nothing, and checks them after.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012a"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sa.String(length=64)


def upgrade() -> None:
    op.create_table(
        "addresses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("address", _TEXT, nullable=False),
        sa.Column("chat", _TEXT, nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_addresses_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addresses")),
        sa.UniqueConstraint("platform", "address", name=op.f("uq_addresses_platform_address")),
        sa.UniqueConstraint("platform", "chat", name=op.f("uq_addresses_platform_chat")),
    )
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_addresses_person_id"), ["person_id"], unique=False)
    op.execute(
        "INSERT INTO addresses (person_id, platform, address, chat, linked_at) "
        "SELECT id, 'telegram', CAST(telegram_user_id AS VARCHAR(64)), "
        "CAST(telegram_chat_id AS VARCHAR(64)), "
        "CASE WHEN telegram_chat_id IS NULL THEN NULL "
        "ELSE COALESCE(linked_at, updated_at, created_at, CURRENT_TIMESTAMP) END "
        "FROM people WHERE telegram_user_id IS NOT NULL"
    )
    # A chat without a user id (no code writes one; kept all the same): the chat is the address,
    # as in a Telegram private chat.
    op.execute(
        "INSERT INTO addresses (person_id, platform, address, chat, linked_at) "
        "SELECT id, 'telegram', CAST(telegram_chat_id AS VARCHAR(64)), "
        "CAST(telegram_chat_id AS VARCHAR(64)), "
        "COALESCE(linked_at, updated_at, created_at, CURRENT_TIMESTAMP) "
        "FROM people WHERE telegram_user_id IS NULL AND telegram_chat_id IS NOT NULL"
    )
    op.execute(
        "INSERT INTO addresses (person_id, platform, address, chat, linked_at) "
        "SELECT id, 'slack', slack_user_id, slack_user_id, NULL "
        "FROM people WHERE slack_user_id IS NOT NULL"
    )
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_people_slack_user_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_people_telegram_chat_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_people_telegram_user_id"), type_="unique")
        batch_op.drop_column("telegram_chat_id")
        batch_op.drop_column("telegram_user_id")
        batch_op.drop_column("slack_user_id")


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slack_user_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("telegram_user_id", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("telegram_chat_id", sa.BigInteger(), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_people_slack_user_id"), ["slack_user_id"])
        batch_op.create_unique_constraint(
            batch_op.f("uq_people_telegram_chat_id"), ["telegram_chat_id"]
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_people_telegram_user_id"), ["telegram_user_id"]
        )
    # Only what the old columns can hold: one Slack id, one numeric Telegram user and chat.
    op.execute(
        "UPDATE people SET slack_user_id = (SELECT a.address FROM addresses a "
        "WHERE a.person_id = people.id AND a.platform = 'slack')"
    )
    op.execute(
        "UPDATE people SET "
        "telegram_user_id = (SELECT CAST(a.address AS BIGINT) FROM addresses a "
        "WHERE a.person_id = people.id AND a.platform = 'telegram'), "
        "telegram_chat_id = (SELECT CAST(a.chat AS BIGINT) FROM addresses a "
        "WHERE a.person_id = people.id AND a.platform = 'telegram')"
    )
    with op.batch_alter_table("addresses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_addresses_person_id"))
    op.drop_table("addresses")
