"""On-demand summaries: Slack /tensions (signed, to the real Bolt app) and Telegram /summary (the
real PTB Application), for the Prevent officer and admins only, with charts attached."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select

from bot.clock import FakeClock
from bot.summaries.hatecrime import HateCrimeService
from sim.fake_slack import FakeSlack, SlackUser
from sim.scripts import until
from sim.world import SimWorld, free_port
from storage.tables import audit_log
from tests.conftest import SLACK_ENV, make_config
from tests.helpers import PEOPLE_CSV, slack_config
from tests.test_summary import _figures

STAFF = (
    "name,role,wards,email,slack_user_id\n"
    "Sam Clarke,prevent_officer,all,sam@example.org,U0SAM\n"
    "Ada Admin,admin,all,ada@example.org,U0ADA\n"
)


async def test_summaries_in_slack_and_telegram(
    db_url: str, fake_telegram: Any, clock: FakeClock
) -> None:
    slack = FakeSlack()
    await slack.start()
    slack.add_channel("C0SWP", "swp", ["U0SAM", "U0JANE"])
    port = free_port()
    # C0SWP is a summary channel: an answer there is for everyone in it.
    config = slack_config(
        db_url, fake_telegram.base_url, slack, port, summaries={"channels": ["C0SWP"]}
    )
    w = await SimWorld.start(config, fake_telegram, clock)
    try:
        await w.import_people(PEOPLE_CSV)
        await w.import_people(STAFF)
        await HateCrimeService(
            w.config if hasattr(w, "config") else config, w.services.db.uow, clock
        ).import_csv(_figures(), source="hc.csv", actor="t")
        url = f"http://127.0.0.1:{port}/slack/events"

        sam = SlackUser(slack, "U0SAM", url)
        status, body = await sam.slash("/tensions", "2026-12 Park", channel_id="C0SWP")
        assert status == 200 and "Working on the summary" in body
        upload = await until(lambda: slack.uploads)
        assert {u["filename"] for u in slack.uploads} >= {"trend_by_category.png"}
        await until(lambda: len(slack.uploads) == 3)
        assert all(u["content"][:4] == b"\x89PNG" for u in slack.uploads)
        # Every chart has alt text for screen readers, drawn from the protected figures.
        alts = {u["filename"]: u["alt_txt"] for u in slack.uploads}
        assert all(alts.values())
        assert alts["trend_by_category.png"].startswith(
            "Line chart of tension reports per month by category, 2025-12 to 2026-12"
        )
        assert not [a for a in alts.values() if re.search(r"(?<![\d-])[12](?![\d-])", a)]
        assert "Community tension summary, 2026-12 (Park)" in upload[0]["initial_comment"]
        assert "Pockets of concern:" in upload[0]["initial_comment"]

        # An officer may not; a filter that is not understood is named.
        jane = SlackUser(slack, "U0JANE", url)
        await jane.slash("/tensions", "", channel_id="C0SWP")
        refusal = await until(lambda: slack.ephemerals("U0JANE"))
        assert "Summaries are for the Prevent and Cohesion Officer and admins" in refusal[0]["text"]
        await sam.slash("/tensions", "2026-12 Narnia", channel_id="C0SWP")
        error = await until(lambda: slack.ephemerals("U0SAM"))
        assert "'narnia'" in error[0]["text"]

        # Telegram: an admin gets the text and three charts; a councillor is refused.
        ada = await w.link("ada@example.org", 701, "Ada")
        await ada.send_command("/summary", "2026-12")
        await ada.wait_for("Community tension summary, 2026-12")
        await until(lambda: len([m for m in ada.messages if m.kind == "photo"]) == 3)
        await ada.send_command("/summary", "2031-01")
        await ada.wait_for("No tension reports and no hate-crime figures")
        asha = await w.link("asha@example.org", 702, "Asha")
        await asha.send_command("/summary")
        await asha.wait_for("Summaries are for the Prevent and Cohesion Officer and admins")
        stranger = w.fake.user(703, first_name="Eve")
        await stranger.send_command("/summary")
        await stranger.wait_for("only for people invited")

        async with w.services.db.uow() as uow:
            from sqlalchemy import select

            from storage.tables import audit_log

            session = uow.people.session  # type: ignore[attr-defined]
            rows = (
                await session.execute(
                    select(audit_log.c.actor, audit_log.c.action).where(
                        audit_log.c.action.in_(["summary.view", "summary.refused"])
                    )
                )
            ).all()
        actions = [a for _, a in rows]
        assert actions.count("summary.view") == 3 and actions.count("summary.refused") == 2
        assert not any("703" in actor for actor, _ in rows)  # nothing about the stranger
    finally:
        await w.stop()
        await slack.stop()


async def test_tensions_outside_a_summary_channel_answers_only_the_asker(
    db_url: str, fake_telegram: Any, clock: FakeClock
) -> None:
    """/tensions typed in a channel that is not a summary channel (here one with an officer and
    a stranger in it): nothing is posted there; the asker alone sees the answer (ephemeral) and
    gets the charts in their direct messages with the bot. In a summary channel it is posted."""
    slack = FakeSlack()
    await slack.start()
    slack.add_channel("C0BOARD", "board", ["U0SAM"])
    slack.add_channel("C0GENERAL", "general", ["U0SAM", "U0JANE", "U0EVE"])
    port = free_port()
    config = slack_config(
        db_url, fake_telegram.base_url, slack, port, summaries={"channels": ["C0BOARD"]}
    )
    w = await SimWorld.start(config, fake_telegram, clock)
    try:
        await w.import_people(PEOPLE_CSV)
        await w.import_people(STAFF)
        await HateCrimeService(config, w.services.db.uow, clock).import_csv(
            _figures(), source="hc.csv", actor="t"
        )
        sam = SlackUser(slack, "U0SAM", f"http://127.0.0.1:{port}/slack/events")
        status, body = await sam.slash("/tensions", "2026-12 Park", channel_id="C0GENERAL")
        assert status == 200 and "Working on the summary" in body
        (told,) = await until(lambda: slack.ephemerals("U0SAM"))
        assert told["channel"] == "C0GENERAL"
        assert "Community tension summary, 2026-12 (Park)" in told["text"]
        assert "direct messages" in told["text"]
        charts = await until(lambda: len(slack.uploads) == 3 and slack.uploads)
        dm = slack._dms["U0SAM"]
        assert {u["channel_id"] for u in charts} == {dm}
        assert "Community tension summary, 2026-12 (Park)" in charts[0]["initial_comment"]
        # Nothing reached the channel, by any method.
        assert slack.messages("C0GENERAL") == []
        for call in slack.calls:
            assert "C0GENERAL" not in json.dumps(call.params), call.method
        assert not [r for r in slack.responses if r.get("response_type") == "in_channel"]

        # In the summary channel: posted there, for its members.
        await sam.slash("/tensions", "2026-12 Park", channel_id="C0BOARD")
        await until(lambda: len(slack.uploads) == 6)
        assert {u["channel_id"] for u in slack.uploads[3:]} == {"C0BOARD"}
        assert len(slack.ephemerals("U0SAM")) == 1
        async with w.services.db.engine.connect() as conn:
            views = (
                await conn.execute(
                    select(audit_log.c.actor).where(audit_log.c.action == "summary.view")
                )
            ).all()
        assert len(views) == 2  # each answer audited, as before
    finally:
        await w.stop()
        await slack.stop()


async def test_scheduled_summary_after_the_return_closes(db_url: str, fake_telegram: Any) -> None:
    from datetime import UTC, datetime

    clock = FakeClock(datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    slack = FakeSlack()
    await slack.start()
    slack.add_channel("C0SWPBOARD", "swp-board", [])
    config = make_config(
        db_url,
        fake_telegram.base_url,
        env=SLACK_ENV,
        slack={"api_base_url": slack.base_url, "port": free_port()},
        summaries={"channels": ["C0SWPBOARD"]},
    )
    w = await SimWorld.start(config, fake_telegram, clock)
    try:
        await w.import_people(PEOPLE_CSV)
        await HateCrimeService(config, w.services.db.uow, clock).import_csv(
            _figures(), source="hc.csv", actor="t"
        )
        await w.tick()  # opens December's return
        assert slack.uploads == []
        clock.set(datetime(2026, 12, 15, 17, 0, tzinfo=UTC))
        await w.tick()  # closes it: the summary goes to the board channel
        await w.tick()  # and only once
        assert {u["channel_id"] for u in slack.uploads} == {"C0SWPBOARD"}
        assert sorted(u["filename"] for u in slack.uploads) == [
            "hate_crime_vs_tension.png",
            "trend_by_category.png",
            "ward_by_category.png",
        ]
        comment = slack.uploads[0]["initial_comment"]
        assert "Community tension summary, 2026-12" in comment and "Park" in comment
        assert "@" not in comment  # no names or addresses in channel summaries
    finally:
        await w.stop()
        await slack.stop()
