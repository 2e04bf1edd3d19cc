"""A re-issued invitation never moves a linked account silently.

From Mark's side, over the fake Telegram with the real bot running: Mark is linked; ``tensionbot
invites`` (run as a real process on the same database) skips him and says so, for everyone and
for him by name, and leaves no link anyone could use; only ``--relink`` issues one, and when a
stranger uses it Mark's old chat is told that his account was moved, and the move is audited
(ids only)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.clock import FakeClock
from sim.world import SimWorld
from storage.tables import addresses, audit_log, invites, people
from tests.conftest import TOKEN, make_config
from tests.helpers import PEOPLE_CSV
from tests.processes import ROOT


async def _cli(config: Path, *args: str) -> tuple[int, str, str]:
    """``tensionbot --config CONFIG ARGS`` as a process: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={"TENSIONBOT_TELEGRAM_TOKEN": TOKEN, "PATH": "/usr/bin:/bin"},
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _rows(w: SimWorld, query: Any) -> list[Any]:
    async with w.services.db.engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def test_a_linked_person_is_moved_to_another_chat_only_with_relink(
    db_url: str, fake_telegram: Any, clock: FakeClock, tmp_path: Path
) -> None:
    w = await SimWorld.start(make_config(db_url, fake_telegram.base_url), fake_telegram, clock)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[telegram]\nbot_username = "swp_tension_bot"\n'
        '[partnership]\nwards = ["Bilston South", "Blakenhall", "Heath Town", "Park", "Penn", '
        '"Whitmore Reans"]\n'
    )
    try:
        await w.import_people(PEOPLE_CSV)
        (first,) = await w.services.people.issue_invites(actor="t", email="mark@example.org")
        mark = fake_telegram.user(502, first_name="Mark")
        await mark.send_command("/start", first.url.split("start=", 1)[1])
        await mark.wait_for("Welcome")
        (mark_id,) = [
            i for (i,) in await _rows(w, select(people.c.id).where(people.c.email.like("mark@%")))
        ]

        # The invites are re-run: Mark is skipped (and told about), for everyone and by name.
        code, out, err = await _cli(config, "invites", "--format", "csv")
        assert code == 0, err
        assert "mark@example.org" not in out and "asha@example.org" in out
        assert "1 already linked" in err and "--relink" in err
        code, out, err = await _cli(config, "invites", "--person", "mark@example.org")
        assert code == 1 and "https://t.me/" not in out
        assert "mark@example.org is already linked" in err and "--relink" in err
        unused = await _rows(
            w,
            select(invites.c.id).where(
                invites.c.person_id == mark_id,
                invites.c.used_at.is_(None),
                invites.c.revoked_at.is_(None),
            ),
        )
        assert unused == []  # nothing anyone could use to take over
        eve = fake_telegram.user(909, first_name="Eve")
        await eve.send_command("/start", first.url.split("start=", 1)[1])
        await eve.wait_for("already been used")  # nor Mark's own link
        # --relink is for one person at a time.
        code, _, err = await _cli(config, "invites", "--relink")
        assert code == 2 and "--person" in err

        # Mark still uses the bot as before.
        n = len(mark.messages)
        await mark.send_command("/status")
        await mark.wait_for(lambda m: "only for" not in (m.text or ""), after=n)

        # With --relink: a new link; whoever uses it gets the account, and Mark's old chat is
        # told on Telegram.
        code, out, err = await _cli(
            config, "invites", "--person", "mark@example.org", "--relink", "--format", "json"
        )
        assert code == 0, err
        (link,) = json.loads(out)
        token = link["link"].split("start=", 1)[1]
        await eve.send_command("/start", token)
        await eve.wait_for("Welcome")
        await mark.wait_for("moved to another chat")
        linked = await _rows(
            w,
            select(addresses.c.address, addresses.c.chat).where(
                addresses.c.person_id == mark_id, addresses.c.platform == "telegram"
            ),
        )
        assert linked == [("909", "909")]
        # The old chat is now a stranger's.
        n = len(mark.messages)
        await mark.send_command("/status")
        await mark.wait_for("only for", after=n)

        audit = await _rows(
            w,
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.subject, audit_log.c.details)
            .where(audit_log.c.action.in_(["invites.relink", "telegram.relink"]))
            .order_by(audit_log.c.id),
        )
        assert [(a, b, c) for a, b, c, _ in audit] == [
            ("cli", "invites.relink", f"person:{mark_id}"),
            (f"person:{mark_id}", "telegram.relink", f"person:{mark_id}"),
        ]
        flat = json.dumps([list(map(str, r)) for r in audit])
        for secret in ("Mark", "mark@", "502", "909", "Eve"):
            assert secret not in flat  # ids only
    finally:
        await w.stop()
