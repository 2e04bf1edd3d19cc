"""1 December: the return opens and people answer: nil returns, two tensions in one go, an
answer edited after going Back, a photo and an over-long answer, a restart of the bot in the
middle of a conversation, and an urgent /report at the same time."""

from __future__ import annotations

import asyncio
from datetime import datetime

from bot.forms import FormDefinition
from sim.demo.stage import LONDON, Stage, say
from sim.fake_telegram import SimUser
from sim.scripts import answer_question, fill_tension, tension
from sim.scripts import until as scripted_until


async def the_return_opens(stage: Stage) -> None:
    """1 December, 09:00: the scheduler opens the December return and sends the form; PACT
    invitations and owner teams' report-back requests go out the same morning."""
    await stage.at(datetime(2026, 12, 1, 9, 0, tzinfo=LONDON))
    say("- 1 Dec 09:00: the December return opened and the form went out")
    yusuf = stage.users["yusuf.khan"]
    await scripted_until(
        lambda: any(m.kind == "document" for m in stage.telegram.messages(yusuf.chat_id))
    )
    say(
        "  PACT invitations with a calendar file (.ics) went to the Heath Town and Penn "
        "meetings' councillors and partners; owner teams were asked to report back on their "
        "open priorities"
    )


async def four_answer_at_once(stage: Stage) -> None:
    """Four people answer at the same time, as they would."""
    users, form = stage.users, stage.form
    await asyncio.gather(
        _nil_return(users["tom.hughes"]),
        _nil_return(users["sarah.jones"]),
        _asha_two_tensions(users["asha.patel"], form),
        _yusuf_back_and_edit(users["yusuf.khan"], form),
    )
    say(
        "- Tom and Sarah sent nil returns; Asha reported two tensions; Yusuf went Back and "
        "edited an answer before submitting"
    )


async def grace_is_interrupted_by_a_restart(stage: Stage) -> None:
    """Grace sends a photo and an over-long answer; then the bot is stopped mid-conversation and
    started again."""
    grace, form = stage.users["grace.okafor"], stage.form
    await grace.press("Report a tension")
    await answer_question(grace, form, "ward", "Ettingshall North")
    await answer_question(grace, form, "category", "crime_asb")
    await grace.wait_for("What is happening")
    await grace.send_photo()
    await grace.wait_for("only take typed text")
    await grace.send_text("x" * 2500)
    await grace.wait_for("the limit here is 2,000")
    await stage.restart()
    say("- the bot was stopped in the middle of Grace's report ...")
    say("  ... and started again: Grace carries on at the same question")


async def grace_finishes_as_fatima_reports(stage: Stage) -> None:
    """Grace carries on at the same question while Fatima sends an urgent report with /report
    (at any time, not the return); then Asha checks /status."""
    grace, form = stage.users["grace.okafor"], stage.form
    fatima = asyncio.create_task(_fatima_urgent(stage.users["fatima.ali"], form))
    await grace.send_text("Repeated graffiti and vandalism at the community centre on Spring Road.")
    for qid, value in tension("Ettingshall North", "crime_asb", "-").items():
        if qid in ("ward", "category", "description"):
            continue
        await answer_question(grace, form, qid, value)
    await grace.wait_for("Please check")
    await grace.press("Submit")
    await grace.wait_for("has been submitted")
    await fatima
    asha = stage.users["asha.patel"]
    await asha.send_command("/status")
    await asha.wait_for("Your reports")


async def _nil_return(user: SimUser) -> None:
    await user.press("Nothing to report")
    await user.wait_for("nil return is recorded")


async def _asha_two_tensions(asha: SimUser, form: FormDefinition) -> None:
    await asha.press("Report a tension")
    await fill_tension(
        asha,
        form,
        tension(
            "Heath Town",
            "religion",
            "Leaflets hostile to the new mosque extension were pushed through doors on two streets.",
            level="2",
            basis="evidenced",
            location="Around Chester Avenue",
            since="Last weekend",
        ),
    )
    await asha.press("Add another tension")
    await fill_tension(
        asha,
        form,
        tension(
            "Heath Town",
            "gangs_youth",
            "Groups of young people gathering at the shops after dark; residents feel unsafe.",
            level="2",
            already_reported="police",
            external_ref="WMP 20/123456/26",
        ),
    )
    await asha.press("Submit all")
    await asha.wait_for("reports have been submitted")


async def _yusuf_back_and_edit(yusuf: SimUser, form: FormDefinition) -> None:
    await yusuf.press("Report a tension")
    await answer_question(yusuf, form, "ward", "East Park")
    await answer_question(yusuf, form, "category", "race")
    await yusuf.wait_for("What is happening")
    await yusuf.press("Back")
    await answer_question(yusuf, form, "category", "online")
    await fill_tension(
        yusuf,
        form,
        tension(
            "East Park",
            "online",
            "A local Facebook group is sharing a false rumour about a planned march.",
            level="3",
            basis="potential",
            media="social",
        ),
        start_at="description",
    )
    await yusuf.press("Edit an answer")
    await yusuf.wait_for("Which answer do you want to change")
    await yusuf.press("Level")
    await answer_question(yusuf, form, "level", "2")
    await yusuf.wait_for("Please check")
    await yusuf.press("Submit")
    await yusuf.wait_for("has been submitted")


async def _fatima_urgent(fatima: SimUser, form: FormDefinition) -> None:
    await fatima.send_command("/report")
    await fill_tension(
        fatima,
        form,
        tension(
            "East Park",
            "protest_extremism",
            "Posters announcing a protest outside the hotel housing asylum seekers on Saturday.",
            level="3",
            basis="evidenced",
            media="local",
        ),
    )
    await fatima.press("Submit")
    await fatima.wait_for("has been submitted")
    say(
        "- Fatima sent an urgent report with /report: it counts as taking part in the "
        "open return, so she is not reminded"
    )
