"""On-demand summaries: Slack /tensions (signed, to the real Bolt app) and Telegram /summary (the
real PTB Application), for the Prevent officer and admins only, with charts attached."""

from __future__ import annotations

from typing import Any

from bot.clock import FakeClock
from bot.services.hatecrime import HateCrimeService
from bot.sim.fake_slack import FakeSlack, SlackUser
from bot.sim.scripts import until
from bot.sim.world import SimWorld, free_port
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
    slack.add_channel("C0SWP", "swp", ["U0SAM"])
    port = free_port()
    config = slack_config(
        db_url,
        fake_telegram.base_url,
        slack,
        port,
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
