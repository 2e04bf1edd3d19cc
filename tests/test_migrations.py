"""The Alembic migrations and the models agree, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

from storage.database import Database
from storage.migrate import current_revision, head_revision
from storage.tables import metadata


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


async def test_models_match_migrations(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert await current_revision(db.engine) == head_revision()
        async with db.engine.connect() as connection:
            diff = await connection.run_sync(_diff)
        assert diff == []
    finally:
        await db.dispose()


async def test_upgrade_keeps_and_backfills_existing_reports(db_url: str) -> None:
    """Migrating a database that already holds reports: 0003 -> head backfills their period, and
    then their counts."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from storage.migrate import upgrade

    db = Database(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_downgrade_to, "0003")
            await conn.execute(
                text(
                    "INSERT INTO people (name, role, email, organisation, wards, active) "
                    "VALUES ('A', 'councillor', 'a@x.org', '', '[]', true)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO form_versions (version, sha256, definition, created_at) "
                    "VALUES ('v', 'x', '{}', :t)"
                ),
                {"t": datetime(2026, 1, 1, tzinfo=UTC)},
            )
            await conn.execute(
                text(
                    "INSERT INTO reports (reference, person_id, source, ward, category, level, basis, "
                    "answers, consent_contact, consent_share, form_version_id, status, created_at) "
                    "VALUES ('TR-1', 1, 'adhoc', 'Park', 'race', 2, 'experienced', '{}', false, "
                    "false, 1, 'received', :t)"
                ),
                {"t": datetime(2026, 6, 30, 23, 30, tzinfo=UTC)},
            )  # 1 July 00:30 in BST
        await upgrade(db.engine)
        async with db.engine.connect() as conn:
            period = (await conn.execute(text("SELECT period FROM reports"))).scalar_one()
            counts = (
                await conn.execute(
                    text("SELECT period, ward, category, level, basis, n FROM report_counts")
                )
            ).all()
            cube = (await conn.execute(text("SELECT * FROM report_cube"))).all()
        assert period == "2026-07"
        # 0008 counted the report already stored (after 0004 gave it its period).
        assert [tuple(r) for r in counts] == [("2026-07", "Park", "race", 2, "experienced", 1)]
        assert [tuple(r) for r in cube] == [("2026-07", "Park", "race", 1)]
    finally:
        await db.dispose()


def _downgrade_to(connection: Connection, revision: str) -> None:
    from alembic import command

    from storage.migrate import alembic_config

    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.downgrade(cfg, revision)


async def test_addresses_migration_keeps_every_link_up_and_down(db_url: str) -> None:
    """0011 -> 0012a moves Telegram and Slack ids into ``addresses`` without losing a link (or,
    on SQLite, a row that points at ``people``, which is rebuilt); down again moves them back."""
    from datetime import UTC, datetime

    from sqlalchemy import text

    from storage.migrate import downgrade, upgrade

    at = datetime(2026, 11, 1, tzinfo=UTC)
    db = Database(db_url)
    try:
        await downgrade(db.engine, "0011")
        async with db.engine.begin() as conn:
            for name, tg_user, tg_chat, slack in (
                ("Tg", 101, 101, None),
                ("Sl", None, None, "U0SL"),
                ("Both", 103, -203, "U0BOTH"),
                ("None", None, None, None),
            ):
                await conn.execute(
                    text(
                        "INSERT INTO people (name, role, email, organisation, wards, active, "
                        "telegram_user_id, telegram_chat_id, slack_user_id, linked_at) VALUES "
                        "(:n, 'councillor', :e, '', '[]', true, :u, :c, :s, :l)"
                    ),
                    {
                        "n": name,
                        "e": f"{name}@x.org",
                        "u": tg_user,
                        "c": tg_chat,
                        "s": slack,
                        "l": at if tg_chat else None,
                    },
                )
            await conn.execute(
                text(
                    "INSERT INTO invites (person_id, token_hash, created_at, expires_at) "
                    "SELECT id, 'h', :t, :t FROM people WHERE name = 'Tg'"
                ),
                {"t": at},
            )

        await upgrade(db.engine)
        assert await current_revision(db.engine) == head_revision()
        async with db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT p.name, a.platform, a.address, a.chat, a.linked_at IS NOT NULL "
                        "FROM addresses a JOIN people p ON p.id = a.person_id "
                        "ORDER BY p.name, a.platform"
                    )
                )
            ).all()
            invites = (await conn.execute(text("SELECT count(*) FROM invites"))).scalar_one()
        assert [tuple(r) for r in rows] == [
            ("Both", "slack", "U0BOTH", "U0BOTH", False),
            ("Both", "telegram", "103", "-203", True),
            ("Sl", "slack", "U0SL", "U0SL", False),
            ("Tg", "telegram", "101", "101", True),
        ]
        assert invites == 1  # rebuilding people cascaded nothing
        async with db.uow() as uow:
            both = await uow.people.by_address("telegram", "103")
            assert both is not None and both.name == "Both" and both.linked
            assert both.reach(frozenset({"telegram", "slack"})) == ("telegram", "-203")
            assert await uow.people.by_chat("telegram", "-203") is both
            slack_only = await uow.people.by_address("slack", "U0SL")
            assert slack_only is not None and not slack_only.linked
            assert slack_only.reach(frozenset({"telegram"})) is None

        await downgrade(db.engine, "0011")
        async with db.engine.connect() as conn:
            back = (
                await conn.execute(
                    text(
                        "SELECT name, telegram_user_id, telegram_chat_id, slack_user_id "
                        "FROM people ORDER BY name"
                    )
                )
            ).all()
            invites = (await conn.execute(text("SELECT count(*) FROM invites"))).scalar_one()
        assert [tuple(r) for r in back] == [
            ("Both", 103, -203, "U0BOTH"),
            ("None", None, None, None),
            ("Sl", None, None, "U0SL"),
            ("Tg", 101, 101, None),
        ]
        assert invites == 1
        await upgrade(db.engine)
    finally:
        await db.dispose()


def _alembic_current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def test_the_revisions_read_without_alembic_are_alembics(db_url: str) -> None:
    """``tensionbot run`` checks the schema without loading Alembic (it would stay in the
    process's memory): the head read from the migration files and the revision read from
    ``alembic_version`` are Alembic's own, before the first migration, part way and at the head;
    and a database at the head is left alone by ``upgrade``."""
    from alembic.script import ScriptDirectory

    from storage.migrate import alembic_config, downgrade, upgrade

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()
    db = Database(db_url)
    try:
        seen = []
        for target in ("head", "0005", "base", "head"):
            if target == "head":
                await upgrade(db.engine)
            else:
                await downgrade(db.engine, target)
            async with db.engine.connect() as connection:
                expected = await connection.run_sync(_alembic_current)
            assert await current_revision(db.engine) == expected
            seen.append(expected)
        assert seen == [head_revision(), "0005", None, head_revision()]
    finally:
        await db.dispose()


def test_the_running_bot_does_not_load_alembic_when_the_schema_is_current() -> None:
    """Importing the storage layer (as the service does) loads no Alembic."""
    import subprocess
    import sys

    code = (
        "import sys, storage.migrate, storage.leader, storage.database\n"
        "assert storage.migrate.head_revision()\n"
        "assert 'alembic' not in sys.modules, 'alembic loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
