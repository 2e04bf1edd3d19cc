"""The audit log cannot be rewritten: not by REPLACE / INSERT OR REPLACE / UPSERT on SQLite or
PostgreSQL (migration 0009, with 0007's UPDATE/DELETE/TRUNCATE triggers), and on PostgreSQL not
by the service itself when it runs as a role that does not own the table (deploy/README.md)."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.clock import FakeClock
from bot.common import audit
from storage.database import Database
from storage.migrate import head_revision, upgrade
from tests.conftest import PG_URL, backend
from tests.helpers import PEOPLE_CSV, FakeMessenger, dispatcher_for, link_all, services_for
from tests.test_conversation import Chat, _answer_all

AT = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
INSERT = (
    "INSERT INTO audit_log (id, at, actor, action, subject, details) "
    "VALUES (1, :at, 'cli', 'test', 'person:1', '{}')"
)

#: Each way of writing over row 1 that the backend's SQL offers.
REWRITES = {
    "sqlite": [
        "REPLACE INTO audit_log (id, at, actor, action, subject, details) "
        "VALUES (1, :at, 'forger', 'rewritten', 'person:1', '{}')",
        "INSERT OR REPLACE INTO audit_log (id, at, actor, action, subject, details) "
        "VALUES (1, :at, 'forger', 'rewritten', 'person:1', '{}')",
        "INSERT INTO audit_log (id, at, actor, action, subject, details) "
        "VALUES (1, :at, 'forger', 'rewritten', 'person:1', '{}') "
        "ON CONFLICT (id) DO UPDATE SET actor = excluded.actor, action = excluded.action",
        "UPDATE OR REPLACE audit_log SET actor = 'forger' WHERE id = 1",
        "UPDATE audit_log SET actor = 'forger'",
        "DELETE FROM audit_log",
    ],
    "postgresql": [
        "INSERT INTO audit_log (id, at, actor, action, subject, details) "
        "VALUES (1, :at, 'forger', 'rewritten', 'person:1', '{}') "
        "ON CONFLICT (id) DO UPDATE SET actor = excluded.actor, action = excluded.action",
        "UPDATE audit_log SET actor = 'forger'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ],
}


async def _rows(db: Database) -> list[tuple[int, str, str]]:
    async with db.engine.connect() as conn:
        result = await conn.execute(text("SELECT id, actor, action FROM audit_log ORDER BY id"))
        return [(int(r[0]), str(r[1]), str(r[2])) for r in result]


@pytest.mark.parametrize("sql", REWRITES[backend()])
async def test_no_statement_can_replace_an_audit_row(db_url: str, sql: str) -> None:
    db = Database(db_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text(INSERT), {"at": AT})
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.engine.begin() as conn:
                await conn.execute(text(sql), {"at": AT})
        assert await _rows(db) == [(1, "cli", "test")]
    finally:
        await db.dispose()


async def test_ordinary_inserts_still_work_and_a_repeated_id_is_refused(db_url: str) -> None:
    db = Database(db_url)
    try:
        async with db.uow() as uow:
            await audit(uow, datetime(2026, 1, 1, tzinfo=UTC), "cli", "first", "person:1")
            await audit(uow, datetime(2026, 1, 1, tzinfo=UTC), "cli", "second", "person:2")
            await uow.commit()
        async with db.engine.begin() as conn:  # an explicit new id is an ordinary append
            await conn.execute(text(INSERT.replace("VALUES (1,", "VALUES (99,")), {"at": AT})
        # INSERT OR IGNORE / ON CONFLICT DO NOTHING with an existing id changes nothing.
        ignore = (
            "INSERT OR IGNORE INTO audit_log (id, at, actor, action, subject, details) "
            "VALUES (1, :at, 'forger', 'rewritten', 'person:1', '{}')"
            if backend() == "sqlite"
            else INSERT.replace("'cli', 'test'", "'forger', 'rewritten'")
            + " ON CONFLICT (id) DO NOTHING"
        )
        try:
            async with db.engine.begin() as conn:
                await conn.execute(text(ignore), {"at": AT})
        except DBAPIError as exc:  # refusing it outright is as good
            assert "append-only" in str(exc)
        assert await _rows(db) == [(1, "cli", "first"), (2, "cli", "second"), (99, "cli", "test")]
    finally:
        await db.dispose()


ROLES_SQL = Path(__file__).parent.parent / "deploy" / "postgres-roles.sql"


async def _pg(url: str, sql: str, *, database: str) -> None:
    import asyncpg  # PostgreSQL runs only

    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database=database,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def two_roles() -> AsyncIterator[str]:
    """A database set up as deploy/README.md says: an owner role owns the database, its schema
    and (after deploy/postgres-roles.sql) the audit log; the service role owns the rest. Yields
    the service role's URL (the throwaway cluster trusts local connections)."""
    if not PG_URL:
        pytest.skip("PostgreSQL only: set TENSIONBOT_TEST_DATABASE_URL (scripts/with-postgres)")
    tag = uuid.uuid4().hex[:8]
    owner, service, name = f"tb_owner_{tag}", f"tb_service_{tag}", f"tb_roles_{tag}"
    admin = make_url(PG_URL)
    await _pg(
        PG_URL, f"CREATE ROLE {owner} LOGIN; CREATE ROLE {service} LOGIN", database="postgres"
    )
    await _pg(PG_URL, f'CREATE DATABASE "{name}" OWNER {owner}', database="postgres")
    await _pg(PG_URL, f"GRANT CREATE, USAGE ON SCHEMA public TO {service}", database=name)
    service_url = admin.set(username=service, database=name).render_as_string(hide_password=False)
    try:
        db = Database(service_url)  # the service creates the schema, as at its first start
        try:
            await upgrade(db.engine)
        finally:
            await db.dispose()
        script = ROLES_SQL.read_text().replace("tensionbot_owner", owner)
        script = re.sub(r"\btensionbot\b", service, script)
        await _pg(PG_URL, script, database=name)
        await _pg(PG_URL, script, database=name)  # idempotent
        yield service_url
    finally:
        await _pg(PG_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', database="postgres")
        await _pg(
            PG_URL,
            f"DROP ROLE IF EXISTS {service}; DROP ROLE IF EXISTS {owner}",
            database="postgres",
        )


async def test_the_service_role_cannot_rewrite_the_audit_log_but_the_bot_works(
    two_roles: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="storage.database")
    messenger = FakeMessenger()
    # The bot runs as the service role: it migrates (nothing to do), imports, links, reports and
    # erases, writing audit rows as it goes.
    async with services_for(two_roles, clock) as s:
        await upgrade(s.db.engine)
        await s.people.import_csv(PEOPLE_CSV, source="p.csv", actor="t")
        chats = await link_all(s)
        outbox = dispatcher_for(s, messenger)
        await s.campaigns.open_monthly("2026-12", actor="t", force=True)
        await outbox.drain()
        chat = Chat(s, messenger, outbox, chats["asha@example.org"])
        await chat.press("Report a tension")
        await _answer_all(chat)
        await chat.press("No")
        await chat.press("No, keep me anonymous")
        await chat.press("Submit")
        assert "TR-2026-12-0001" in chat.last
        await s.privacy.erase("asha@example.org", actor="cli")
        await s.privacy.tick()
        async with s.db.engine.connect() as conn:
            actions = set((await conn.execute(text("SELECT action FROM audit_log"))).scalars())
        assert {"people.import", "report.submit", "person.erase", "privacy.retention"} <= actions
        rows = await _rows(s.db)
        refused = [
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete",
            "ALTER TABLE audit_log DISABLE TRIGGER ALL",
            "DROP TRIGGER audit_log_no_update_delete ON audit_log",
            "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
            "UPDATE audit_log SET actor = 'forger'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
            "INSERT INTO audit_log (id, at, actor, action, subject, details) "
            "SELECT id, at, 'forger', action, subject, details FROM audit_log "
            "ON CONFLICT (id) DO UPDATE SET actor = excluded.actor",
            "SELECT setval('audit_log_id_seq', 1)",
            "ALTER TABLE audit_log OWNER TO CURRENT_USER",
            "DROP TABLE audit_log",
            "ALTER TABLE audit_log RENAME TO audit_log_old",
        ]
        for sql in refused:
            with pytest.raises(DBAPIError, match=r"owner|permission denied|append-only"):
                async with s.db.engine.begin() as conn:
                    await conn.execute(text(sql))
        assert await _rows(s.db) == rows  # nothing changed

        # The erasure's purge vacuumed (the service owns those tables) but could not switch the
        # WAL; with the grants deploy/README.md gives, it can.
        no_right = "no right to switch the WAL"
        assert no_right in caplog.text
        url = make_url(two_roles)
        grants = (
            f"GRANT pg_checkpoint TO {url.username}; "
            f"GRANT EXECUTE ON FUNCTION pg_switch_wal() TO {url.username}"
        )
        await _pg(PG_URL, grants, database=str(url.database))
        caplog.clear()
        await s.db.purge()
        assert no_right not in caplog.text


def test_db_upgrade_connects_with_the_migration_url_when_it_is_set(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bot.cli import main

    service, owner = tmp_path / "service.sqlite3", tmp_path / "owner.sqlite3"
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "sqlite+aiosqlite:///{service}"\n')
    runner = CliRunner()
    env = {"TENSIONBOT_MIGRATION_DATABASE_URL": f"sqlite+aiosqlite:///{owner}"}
    done = runner.invoke(main, ["--config", str(config), "db", "upgrade"], env=env)
    assert done.exit_code == 0, done.output
    assert f"database at revision {head_revision()}" in done.output
    assert owner.exists() and not service.exists()
    env = {"TENSIONBOT_MIGRATION_DATABASE_URL": "mysql://root:hunter2@db/x"}
    bad = runner.invoke(main, ["--config", str(config), "db", "upgrade"], env=env)
    assert bad.exit_code == 2
    assert "TENSIONBOT_MIGRATION_DATABASE_URL: must start with" in bad.output
    assert "hunter2" not in bad.output
