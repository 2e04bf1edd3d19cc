"""Slash commands typed where the bot cannot post: the person is told privately (through the
command's response_url, which works in any channel) instead of being left at "Working on…".

Typed in a channel that is not a configured summary channel, the answer is the asker's alone
(ephemeral), so the bot need not be there; typed in a configured summary channel the bot was
never invited to, the post fails and the person is told what to do."""

from __future__ import annotations

from typing import Any

from bot.clock import FakeClock
from sim.fake_slack import FakeSlack, SlackUser
from sim.scripts import until
from sim.world import SimWorld, free_port
from tests.helpers import slack_config

STAFF = (
    "name,role,wards,email,slack_user_id\n"
    "Sam Clarke,prevent_officer,all,sam@example.org,U0SAM\n"
    "Jane Smith,officer,all,jane@example.org,U0JANE\n"
)


async def test_a_command_in_a_channel_the_bot_is_not_in_is_answered_privately(
    db_url: str, fake_telegram: Any, clock: FakeClock
) -> None:
    slack = FakeSlack()
    await slack.start()
    slack.add_channel("C0SWP", "swp", ["U0SAM"])
    slack.add_channel("C0RANDOM", "random", ["U0SAM", "U0JANE"], bot_is_member=False)
    slack.add_channel("C0BOARD", "board", ["U0SAM"], bot_is_member=False)
    port = free_port()
    summaries = {"channels": ["C0SWP", "C0BOARD"]}
    w = await SimWorld.start(
        slack_config(db_url, fake_telegram.base_url, slack, port, summaries=summaries),
        fake_telegram,
        clock,
    )
    try:
        await w.import_people(STAFF)
        url = f"http://127.0.0.1:{port}/slack/events"
        sam, jane = SlackUser(slack, "U0SAM", url), SlackUser(slack, "U0JANE", url)

        # Anywhere else: answered to the asker alone; the bot need not be in the channel.
        status, body = await sam.slash("/tensions", "", channel_id="C0RANDOM")
        assert status == 200 and "Working on" in body
        private = await until(lambda: slack.ephemerals("U0SAM"))
        assert "Community tension summary" in private[0]["text"]
        assert slack.messages("C0RANDOM") == []

        for n, command in enumerate(("/tensions", "/pact"), start=2):
            status, body = await sam.slash(command, "", channel_id="C0BOARD")
            assert status == 200 and "Working on" in body
            answers = await until(
                lambda n=n: len(slack.ephemerals("U0SAM")) == n and slack.ephemerals("U0SAM")
            )
            assert "I'm not in this channel" in answers[-1]["text"]
            assert "/invite <@U0BOT> here" in answers[-1]["text"]  # Slack shows the bot's name
            assert slack.messages("C0BOARD") == [] and slack.uploads() == []

        # A refusal reaches the person too, wherever they typed the command.
        await jane.slash("/tensions", "", channel_id="C0RANDOM")
        refusal = await until(lambda: slack.ephemerals("U0JANE"))
        assert "Summaries are for the Prevent and Cohesion Officer and admins" in refusal[0]["text"]
        await jane.slash("/pact", "", channel_id="C0RANDOM")
        await until(lambda: len(slack.ephemerals("U0JANE")) == 2)

        # In a channel the bot is in, the summary is posted as before.
        await sam.slash("/tensions", "", channel_id="C0SWP")
        await until(lambda: slack.messages("C0SWP") or slack.uploads())
    finally:
        await w.stop()
        await slack.stop()
