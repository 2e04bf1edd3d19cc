"""The demo as a story: one scene after another, in the order a month unfolds."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sim.demo import closing, december, officers, pact, results, setting_up, web_and_email
from sim.demo.stage import Stage, open_stage, say


async def run_demo(out: Path) -> int:
    """Run the demo into ``out`` (recreated). Returns the exit code."""
    os.environ.setdefault("PTB_TIMEDELTA", "1")  # as the CLI does
    started = time.monotonic()
    stage = await open_stage(out)
    try:
        await before_december(stage)
        escalations = await december_unfolds(stage)
        return await what_happened(stage, escalations, started)
    finally:
        await stage.close()


async def before_december(stage: Stage) -> None:
    """The partnership is set up and its people link their chats."""
    say(
        f"tensionbot demo: {stage.config.partnership.name}, simulated Telegram at "
        f"{stage.telegram.base_url}"
    )
    await setting_up.people_and_history(stage)
    await setting_up.pact_season(stage)
    await setting_up.invitations(stage)
    await setting_up.a_stranger_and_a_blocked_chat(stage)


async def december_unfolds(stage: Stage) -> int:
    """The December return from opening to close, the teams' work, PACT and a crisis. Returns
    how many unacknowledged actions were escalated to the duty channel."""
    await december.the_return_opens(stage)
    await web_and_email.ruth_and_linda_answer_on_the_web(stage)
    await december.four_answer_at_once(stage)
    await december.grace_is_interrupted_by_a_restart(stage)
    await december.grace_finishes_as_fatima_reports(stage)
    await officers.act_in_slack(stage)
    await pact.owners_report_back(stage)
    await pact.asha_records_heath_town(stage)
    await pact.jane_records_penn_in_slack(stage)
    await closing.first_reminders(stage)
    await pact.tom_cancels_bilston(stage)
    await web_and_email.ruth_records_penn_on_the_web(stage)
    await closing.the_return_closes(stage)
    await closing.a_crisis(stage)
    return await closing.the_summary_in_slack(stage)


async def what_happened(stage: Stage, escalations: int, started: float) -> int:
    """Print the results and leave them in ``out``. Returns the exit code."""
    status = await results.campaign_status(stage)
    await web_and_email.answered_by_channel(stage)
    reports = await results.the_reports(stage)
    summary = await results.the_summary(stage)
    await results.pact_insight(stage)
    await pact.the_public_channel(stage)
    await results.timelines(stage, reports)
    await web_and_email.ruth_is_asked_four_weeks_on(stage)
    results.transcripts_and_calls(stage, started)
    return results.verdict(status, summary, escalations)
