"""1 December: officers act in Slack, each team in its own channel and at the same time; the
reporters are told each step on Telegram. The clock moves on 40 minutes before each step so the
timelines read like a real day."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from handlers.slack.ids import ActionId
from sim.demo.stage import Stage, say
from sim.fake_slack import SlackUser
from sim.scripts import officer_step as scripted_officer_step
from sim.scripts import select_value, text_value, tick_value


async def act_in_slack(stage: Stage) -> None:
    """The Cohesion team, the police and the Prevent officer work their channels at once."""
    await asyncio.gather(_cohesion_team(stage), _police_team(stage), _prevent(stage))
    # News to a reporter waits a minute for more, then goes as one message.
    stage.clock.advance(timedelta(seconds=stage.config.outbox.news_hold_seconds + 1))
    stage.world.runtime.dispatcher.wake()
    await stage.world.settle()
    say(
        "- officers acknowledged, updated and closed reports in Slack; the reporters were "
        "told on Telegram, each minute's news in one message"
    )


async def _step(
    stage: Stage,
    officer: SlackUser,
    channel: str,
    reference: str,
    action_id: str,
    values: dict[str, dict[str, Any]] | None = None,
) -> None:
    stage.clock.advance(timedelta(minutes=40))
    await scripted_officer_step(stage.slack, officer, channel, reference, action_id, values)


async def _cohesion_team(stage: Stage) -> None:
    """Jane acknowledges, updates and resolves the leaflets; the Facebook rumour is not theirs."""
    jane, leaflets = stage.jane, "Leaflets hostile"
    await _step(stage, jane, "C0COHESION", leaflets, ActionId.ACK)
    update = text_value(
        "text",
        "We have met the mosque committee; the police will patrol Chester Avenue this weekend.",
    )
    await _step(
        stage,
        jane,
        "C0COHESION",
        leaflets,
        ActionId.UPDATE,
        {**update, **tick_value("for_reporter")},
    )
    resolved = {
        **select_value("outcome", "resolved"),
        **text_value("note", "Leaflets removed; no further incidents reported."),
    }
    await _step(stage, jane, "C0COHESION", leaflets, ActionId.CLOSE, resolved)
    elsewhere = {
        **select_value("outcome", "not_our_responsibility"),
        **text_value(
            "note",
            "False rumours online: please report the post to Facebook; "
            "we have told West Midlands Police's online team.",
        ),
    }
    await _step(stage, jane, "C0COHESION", "Facebook group", ActionId.CLOSE, elsewhere)


async def _police_team(stage: Stage) -> None:
    """The Neighbourhood Policing Team acknowledges the young people at the shops and patrols."""
    pc, youths = stage.pc, "Groups of young people"
    await _step(stage, pc, "C0WMPNPT", youths, ActionId.ACK)
    update = text_value("text", "PCSOs will patrol the shops from 6pm to 10pm this week.")
    await _step(
        stage, pc, "C0WMPNPT", youths, ActionId.UPDATE, {**update, **tick_value("for_reporter")}
    )


async def _prevent(stage: Stage) -> None:
    """The Prevent officer acknowledges the protest posters (a private category)."""
    await _step(stage, stage.sam, "G0PREVENT", "Posters announcing", ActionId.ACK)
