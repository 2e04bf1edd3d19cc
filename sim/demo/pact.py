"""PACT in December: owner teams report back in Slack on their open priorities, Asha records the
Heath Town meeting in Telegram, Jane records Penn's in a Slack modal, and Tom marks Bilston's as
cancelled and schedules the next one in chat. Meanwhile the public channels (Telegram's
@swp_pact, Slack's #swp-pact) get each meeting announced and each "you said, we did"."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from handlers.slack.ids import ActionId
from sim.demo.stage import LONDON, PUBLIC_CHANNEL, Stage, say
from sim.fake_slack import FakeSlack, SlackUser
from sim.fake_telegram import SentMessage, SimUser
from sim.scripts import select_value, text_value
from sim.scripts import until as scripted_until
from sim.world import SimWorld


async def owners_report_back(stage: Stage) -> None:
    """The Cohesion team and the police report back on Heath Town's open priorities."""
    await stage.world.settle()
    reported = await _owner_reports_back(
        stage.slack,
        stage.jane,
        "C0COHESION",
        "Heath Town",
        "The council cleared the alleys on 28 November; CCTV now covers the hotspot.",
    )
    reported += await _owner_reports_back(
        stage.slack,
        stage.pc,
        "C0WMPNPT",
        "Heath Town",
        "Six evening patrols in November; two arrests.",
    )
    say(
        f"- PACT: the owner teams reported back in Slack on Heath Town's {reported} open priorities"
    )


async def asha_records_heath_town(stage: Stage) -> None:
    """3 December: Asha chairs the Heath Town meeting and records it in Telegram."""
    await stage.at(datetime(2026, 12, 3, 20, 30, tzinfo=LONDON))
    await _asha_records_pact(stage.world, stage.users["asha.patel"])
    say(
        "- 3 Dec: Asha chaired the Heath Town PACT meeting and recorded it in Telegram "
        "(an impossible count was refused; the owners' reports became 'you said, we did')"
    )


async def jane_records_penn_in_slack(stage: Stage) -> None:
    """5 December: Jane chairs the Penn meeting and records it from the prompt in her DMs."""
    await stage.at(datetime(2026, 12, 5, 13, 0, tzinfo=LONDON))
    await _jane_records_pact_in_slack(stage.slack, stage.jane)
    say(
        "- 5 Dec: Jane Smith (police) chaired the Penn meeting and recorded it in a Slack "
        "modal from the prompt in her direct messages"
    )


async def tom_cancels_bilston(stage: Stage) -> None:
    """9 December: the Bilston meeting did not take place; its chair says so and schedules the
    next one in chat."""
    await stage.at(datetime(2026, 12, 9, 16, 0, tzinfo=LONDON))
    tom = stage.users["tom.hughes"]
    await tom.wait_for("How did the Bilston PACT meeting go?")
    await tom.press("It was cancelled")
    await tom.wait_for("was cancelled")
    await tom.send_command("/schedule", "2027-01-13 18:30 in_person Bilston Community Centre")
    await tom.wait_for("Scheduled: Bilston PACT meeting")
    say(
        "- 9 Dec: Tom recorded the Bilston PACT meeting as cancelled and scheduled the "
        "next one in chat (/schedule)"
    )


async def _owner_reports_back(
    slack: FakeSlack, officer: SlackUser, channel: str, neighbourhood: str, text: str
) -> int:
    """An owner team member clicks "Report back" on each of the team's PACT requests for the
    neighbourhood and fills the modal. Returns how many."""
    posts = [
        m
        for m in slack.top_level(channel)
        if "please report back" in m.text and neighbourhood in m.text
    ]
    for post in posts:
        views = len(slack.views_opened(officer.user_id))
        await officer.click(post, ActionId.PACT_REPORT_BACK)
        view = await scripted_until(lambda v=views: slack.views_opened(officer.user_id)[v:])
        _, body = await officer.submit_view(view[0], text_value("text", text))
        if body is not None and body.get("response_action") == "errors":
            raise AssertionError(f"the report-back was refused: {body}")
    return len(posts)


async def _asha_records_pact(world: SimWorld, asha: SimUser) -> None:
    """The chair records the Heath Town meeting in Telegram, one question at a time."""
    async with world.services.db.uow() as uow:
        open_now = len(await uow.pact.open_priorities("heath-town"))
    await asha.wait_for("How did the Heath Town and East Park PACT meeting go?")
    await asha.press("Record the meeting")
    await asha.wait_for("How many members of the public came?")
    await asha.send_text("38")
    await asha.wait_for("first time")
    await asha.send_text("45")
    await asha.wait_for("cannot be more than the members of the public")
    await asha.send_text("11")
    await asha.wait_for("Which partners were there?")
    for partner in ("Imam Yusuf Khan", "Jane Smith"):
        await asha.press(partner)
        await asha.wait_for(_ticked(partner))
    await asha.press("Done")
    for k in range(open_now):
        await asha.wait_for(f"Priority {k + 1} of {open_now}")
        await asha.press("Closed" if k % 2 == 0 else "Carried")
        question = await asha.wait_for("What was done?")
        if any(b[0] == "Use their report" for b in question.buttons()):
            await asha.press("Use their report")
        else:
            await asha.send_text("Raised with the housing association; follow-up in January.")
    await asha.wait_for("New priority 1")
    await asha.send_text("Cars racing on Wednesfield Road at night")
    await asha.wait_for("Which team owns")
    await asha.press("Neighbourhood Policing Team")
    await asha.wait_for("New priority 2")
    await asha.press("No more new priorities")
    await asha.wait_for("Please check the record")
    await asha.press("Save the record")
    await asha.wait_for("Saved:")


def _ticked(label: str) -> Callable[[SentMessage], bool]:
    """A message whose buttons show ``label`` ticked."""
    return lambda m: any(b[0] == f"✓ {label}" for b in m.buttons())


async def _jane_records_pact_in_slack(slack: FakeSlack, jane: SlackUser) -> None:
    """The Slack chair taps "Record the meeting" in her DM and fills the modal."""
    prompt = await scripted_until(
        lambda: next(
            (m for m in slack.dm(jane.user_id) if "How did the Penn" in m.text and m.blocks), None
        )
    )
    views = len(slack.views_opened(jane.user_id))
    await jane.click(prompt, ActionId.PACT_RECORD)
    view = (await scripted_until(lambda: slack.views_opened(jane.user_id)[views:]))[0]
    values: dict[str, dict[str, Any]] = {
        "public": {"public": {"type": "number_input", "value": "16"}},
        "new": {"new": {"type": "number_input", "value": "5"}},
        **select_value("owner_1", "npt"),
        **text_value("priority_1", "Parking on pavements outside Woodfield school"),
    }
    for block in view["blocks"]:
        block_id = block.get("block_id", "")
        if block_id == "partners":
            first = block["element"]["options"][0]
            values["partners"] = {"partners": {"type": "checkboxes", "selected_options": [first]}}
        elif block_id.startswith("review_"):
            values.update(select_value(block_id, "closed"))
        elif block_id.startswith("reviewnote_"):
            done = block["element"].get("initial_value") or "Raised with the school; wardens visit."
            values.update(text_value(block_id, done))
    _, body = await jane.submit_view(view, values)
    if body is not None and body.get("response_action") == "errors":
        raise AssertionError(f"the PACT record was refused: {body}")


async def the_public_channel(stage: Stage) -> None:
    """What the public saw: the public Telegram channel's posts (the same went to Slack's
    #swp-pact), kept in public-channel.txt; the first announcement and the first "you said, we
    did" printed."""
    await stage.world.settle()
    posts = [_plain(m.text or "") for m in stage.telegram.channel_messages(PUBLIC_CHANNEL)]
    slack = stage.slack.top_level("C0SWPPACT")
    (stage.out / "public-channel.txt").write_text("\n\n".join(posts) + "\n")
    announced = [p for p in posts if "you said, we did" not in p]
    said_did = [p for p in posts if "you said, we did" in p]
    say(
        f"\nThe public channel {PUBLIC_CHANNEL} ({len(slack)} posts in Slack's #swp-pact too): "
        f"{len(announced)} meetings announced, {len(said_did)} 'you said, we did' "
        "(public-channel.txt; no names):"
    )
    for n, post in enumerate(announced[:1] + said_did[:1]):
        say(("\n" if n else "") + "\n".join(f"  | {line}" for line in post.splitlines()))


def _plain(html_text: str) -> str:
    """A Telegram HTML post as the reader sees it."""
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", html_text))
