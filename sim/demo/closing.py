"""The rest of December: reminders, the close, a late answer, a crisis with an extra return and
a daily cadence, and the summary in Slack."""

from __future__ import annotations

from datetime import datetime, timedelta

from handlers.slack.ids import ShortcutId
from sim.demo.stage import LONDON, Stage, say
from sim.scripts import until as scripted_until


async def first_reminders(stage: Stage) -> None:
    """8 December: the first reminder round, only to those who have not answered; Gurpreet
    answers it."""
    await stage.at(datetime(2026, 12, 8, 9, 0, tzinfo=LONDON))
    say("- 8 Dec 09:00: reminders went to everyone who had not answered")
    gurpreet = stage.users["gurpreet.singh"]
    await gurpreet.press("Nothing to report")
    await gurpreet.wait_for("nil return is recorded")


async def the_return_closes(stage: Stage) -> None:
    """12 December: the second round; 15 December 17:00: the return closes, and Mark, answering
    after the close, is pointed to /report."""
    await stage.at(datetime(2026, 12, 12, 9, 0, tzinfo=LONDON))
    await stage.at(datetime(2026, 12, 15, 17, 0, tzinfo=LONDON))
    say("- 15 Dec 17:00: the return closed")
    mark = stage.users["mark.evans"]
    await mark.press("Report a tension")
    await mark.wait_for("closed on")
    say("- Mark answered after the close and was pointed to /report")


async def a_crisis(stage: Stage) -> None:
    """16 December: an extra return for Heath Town with a 24-hour deadline, then a daily crisis
    cadence started and stopped from Slack."""
    world, asha = stage.world, stage.users["asha.patel"]
    stage.clock.set(datetime(2026, 12, 16, 10, 0, tzinfo=LONDON))
    extra = await world.services.campaigns.open_extra(
        closes_at=stage.clock.now() + timedelta(hours=24), wards=["Heath Town"], actor="demo"
    )
    await world.settle()
    await asha.wait_for("extra tension return")
    await asha.press("Nothing to report")
    await asha.wait_for("nil return is recorded")
    say(f"- 16 Dec: an extra 24-hour return for Heath Town ({extra.key})")
    await _crisis_cadence(stage)


async def the_summary_in_slack(stage: Stage) -> int:
    """The summary posted to the board when the return closed, /tensions and /pact asked in
    Slack, and the escalations of unacknowledged actions. Returns how many were escalated."""
    slack, sam = stage.slack, stage.sam
    await stage.world.settle()

    def board() -> int:
        return len([u for u in slack.uploads if u.get("channel_id") == "C0SWPBOARD"])

    posted = board()
    say(
        f"- when the return closed, the summary went to #swp-board with {posted} "
        "charts (aggregates only, small counts suppressed)"
    )
    status_code, _ = await sam.slash("/tensions", "2026-12", channel_id="C0SWPBOARD")
    await scripted_until(lambda: board() >= posted + 3)
    say(
        f"- the Prevent and Cohesion Officer asked /tensions 2026-12 in Slack "
        f"(HTTP {status_code}) and got the summary with its charts"
    )
    before = len(slack.uploads)
    status_code, _ = await sam.slash("/pact", "", channel_id="C0SWPBOARD")
    await scripted_until(lambda: len(slack.uploads) > before)
    say(f"- and /pact (HTTP {status_code}): which times and venues drew people, with a chart")
    escalations = len(slack.top_level("C0SWPDUTY"))
    say(
        f"- unacknowledged actions were reminded in their teams' threads and escalated: "
        f"{escalations} to the duty channel, "
        f"{len(slack.calls_for('conversations.open'))} direct message(s) to the Prevent "
        "and Cohesion Officer"
    )
    return escalations


async def _crisis_cadence(stage: Stage) -> None:
    """The Prevent and Cohesion Officer starts a daily crisis return for Heath Town from Slack;
    the scheduler opens the next day's once; she stops it with the "Stop a crisis return"
    shortcut."""
    slack, sam, asha = stage.slack, stage.sam, stage.users["asha.patel"]

    def extras() -> int:
        return sum("extra tension return" in (m.text or "") for m in asha.messages)

    def told() -> list[str]:
        return [r["text"] for r in slack.responses if r.get("user") == sam.user_id]

    before, answers = extras(), len(told())
    await sam.slash("/crisis", "daily Heath Town until 2026-12-20")
    await scripted_until(lambda: len(told()) > answers)
    await asha.wait_for(lambda m: extras() == before + 1)
    say(f"- 16 Dec: Sam started a crisis cadence in Slack: {told()[-1]}")
    await stage.at(datetime(2026, 12, 17, 10, 30, tzinfo=LONDON))
    await stage.world.tick()  # a second tick the same day opens nothing more
    await asha.wait_for(lambda m: extras() == before + 2)
    # She stops it from Slack's shortcut menu: "Stop a crisis return", tick it, Stop.
    opened, noted = len(slack.views_opened(sam.user_id)), len(slack.ephemerals(sam.user_id))
    await sam.shortcut(ShortcutId.CRISIS_STOP)
    modal = (await scripted_until(lambda: slack.views_opened(sam.user_id)[opened:]))[0]
    running = [o["value"] for o in modal["blocks"][0]["element"]["options"]]
    await sam.submit_view(modal, {"cadences": {"pick": _ticked(running)}})
    stopped = (await scripted_until(lambda: slack.ephemerals(sam.user_id)[noted:]))[0]["text"]
    await stage.at(datetime(2026, 12, 18, 10, 30, tzinfo=LONDON))
    assert extras() == before + 2, "a stopped cadence opened a return"
    say(
        f"- 17 Dec: the scheduler opened the day's crisis return once; Sam used the Slack "
        f"shortcut Stop a crisis return ({stopped}); none on 18 Dec"
    )


def _ticked(values: list[str]) -> dict[str, object]:
    """A checkboxes element's state with ``values`` ticked."""
    return {"type": "checkboxes", "selected_options": [{"value": v} for v in values]}
