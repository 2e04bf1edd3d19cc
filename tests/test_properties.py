"""Property-based tests (hypothesis): the button codec, the renderers, and the live handlers fed
arbitrary text, callback data, Slack button values and modal metadata.

The handler properties run against one live bot per test function (the ``env`` world of
``tests/test_security.py``: the real python-telegram-bot and Bolt apps over HTTP against the fake
servers); pytest-asyncio runs every hypothesis example on the test's own event loop, so the bot
keeps running between examples.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.buttons import Action, BadPayload, Kind
from bot.messages import Button, OutgoingMessage, Span
from bot.sim.fake_slack import FakeSlack
from bot.sim.fake_telegram import FakeTelegram
from bot.sim.scripts import text_value, until
from handlers.slack import pact_views
from handlers.slack.render import render
from handlers.telegram.render import render_text
from tests import test_security
from tests.test_security import (
    BOOKKEEPING,
    SLACK_ACTIONS,
    Env,
    buttons,
    changed,
    snapshot,
)

# The Slack fake and the whole environment (Telegram, Slack, a routed report, PACT meetings) are
# test_security's fixtures, bound here so that pytest finds them for these tests too.
slack = test_security.slack
env = test_security.env

# Text as a platform delivers it: any Unicode scalar value (no lone surrogates, which UTF-8
# cannot carry).
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)
HOSTILE = st.sampled_from(
    ["<!channel>", "<!here>", "<@U123>", "<#C123>", "<https://evil|click>", "*bold*", "<b>", "&"]
)
MIXED = st.lists(st.one_of(TEXT, HOSTILE), max_size=6).map("".join)
SMALL = st.integers(min_value=0, max_value=12)
ACTIONS = st.builds(Action, st.sampled_from(list(Kind)), SMALL, SMALL, SMALL)
# Callback data: random text, near-misses of the format, and well-formed payloads.
PAYLOADS = st.one_of(
    TEXT,
    ACTIONS.map(Action.encode),
    st.lists(
        st.one_of(st.sampled_from(["1", "A", "0", "+1", "01", "-1", "١", " 1"]), TEXT),
        min_size=5,
        max_size=5,
    ).map(".".join),
)


# --------------------------------------------------------------------- the codec


@settings(max_examples=500)
@given(PAYLOADS)
def test_decode_refuses_or_round_trips(data: str) -> None:
    try:
        action = Action.decode(data)
    except BadPayload:
        return
    assert action.encode() == data


@given(ACTIONS)
def test_encode_decode(action: Action) -> None:
    assert Action.decode(action.encode()) == action


# --------------------------------------------------------------------- the renderers

STYLES = st.sampled_from(["plain", "bold", "italic", "code"])
SPANS = st.builds(Span, text=MIXED, style=STYLES)
MESSAGES = st.builds(
    OutgoingMessage,
    lines=st.lists(st.lists(SPANS, max_size=4), min_size=1, max_size=4),
    buttons=st.lists(
        st.lists(st.builds(Button, label=MIXED, data=ACTIONS.map(Action.encode)), max_size=3),
        max_size=2,
    ),
)
OUR_TAGS = {"b", "i", "code"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def telegram_tags(html: str) -> set[str]:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return set(parser.tags)


def slack_clean(text: str) -> bool:
    return not any(m in text for m in ("<!", "<@", "<#", "<http"))


@settings(max_examples=300)
@given(MESSAGES)
def test_telegram_html_has_only_our_tags(message: OutgoingMessage) -> None:
    text, mode = render_text(message)
    if mode is None:  # too long: sent as plain text, which Telegram does not parse
        return
    parser = _Tags()
    parser.feed(text)
    parser.close()
    assert set(parser.tags) <= OUR_TAGS
    assert "".join(parser.text) == message.plain_text()


@settings(max_examples=300)
@given(MESSAGES)
def test_slack_blocks_carry_no_mention_or_link_from_user_text(message: OutgoingMessage) -> None:
    text, blocks = render(message)
    assert slack_clean(text)
    for block in blocks:
        if block["type"] == "section":
            assert slack_clean(block["text"]["text"])
            assert "<" not in block["text"]["text"]


# --------------------------------------------------------------------- the live handlers


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def errors() -> Iterator[_Errors]:
    handler = _Errors()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


async def drained(env: Env) -> None:
    await until(lambda: not env.w.fake._updates, timeout=60)
    await env.w.settle()


def telegram_html_ok(fake: FakeTelegram, since: int) -> None:
    for call in fake.calls[since:]:
        text = call.params.get("text")
        if text is None or call.params.get("parse_mode") != "HTML":
            continue
        assert telegram_tags(str(text)) <= OUR_TAGS, text


HANDLER_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@HANDLER_SETTINGS
@given(text=TEXT.filter(lambda t: t.strip()), args=MIXED, data=PAYLOADS)
async def test_telegram_handlers_take_anything(
    env: Env, fake_telegram: FakeTelegram, errors: _Errors, text: str, args: str, data: str
) -> None:
    since = len(fake_telegram.calls)
    # Asha (a reporter) types anything; Chris (a chair) schedules and asks for insight with
    # anything after the command.
    await env.asha.send_text(text)
    await env.chris.send_command("/schedule", args)
    await env.chris.send_command("/pact", args)
    await drained(env)
    # Mark (a councillor with nothing of his own) taps a button with any callback data: a
    # forged payload changes nothing, whoever's conversation, action or meeting it names.
    before = await snapshot(env.w)
    n = len(fake_telegram.calls_for("answerCallbackQuery"))
    await env.mark.press_data(data)
    await until(lambda: fake_telegram.calls_for("answerCallbackQuery")[n:])
    await drained(env)
    assert changed(before, await snapshot(env.w)) == {}
    telegram_html_ok(fake_telegram, since)
    assert [r.getMessage() for r in errors.records] == []


async def _quiet(before: set[asyncio.Task[Any]]) -> None:
    """Bolt runs a listener on after its ack(): wait for the tasks a request started."""
    me = asyncio.current_task()

    def bolt(task: asyncio.Task[Any]) -> bool:
        code = getattr(task.get_coro(), "cr_code", None)
        return code is not None and "slack_bolt" in code.co_filename

    def done() -> bool:
        return all(t.done() for t in asyncio.all_tasks() - before if t is not me and bolt(t))

    await until(done, timeout=60)


@HANDLER_SETTINGS
@given(
    action_id=st.sampled_from(sorted(SLACK_ACTIONS - {"tb_start"})),
    value=PAYLOADS,
    callback=st.sampled_from(
        [
            "tb_update_modal",
            "tb_close_modal",
            "tb_reassign_modal",
            "tb_recategorise_modal",
            "tb_report_modal",
            pact_views.RECORD_CALLBACK,
            pact_views.REPORT_BACK_CALLBACK,
        ]
    ),
    meta=PAYLOADS,
    text=MIXED,
)
async def test_slack_handlers_take_anything(
    env: Env,
    slack: FakeSlack,
    errors: _Errors,
    action_id: str,
    value: str,
    callback: str,
    meta: str,
    text: str,
) -> None:
    mark = env.user("U0MARK")  # a councillor: in no team, chairs nothing, reported nothing
    since = len(slack.calls)
    # (A refused /pact is audited, by design; nothing else may change.)
    before = await snapshot(env.w, skip=BOOKKEEPING | {"audit_log"})
    tasks = asyncio.all_tasks()
    assert await mark.click(buttons("C0COHESION", (action_id, value)), action_id) == 200
    view = {"type": "modal", "callback_id": callback, "private_metadata": meta, "blocks": []}
    values = {
        **text_value("text", text),
        **text_value("note", text),
        **text_value("description", text),
        "public": {"public": {"type": "number_input", "value": "3"}},
        "new": {"new": {"type": "number_input", "value": "1"}},
    }
    status, _ = await mark.submit_view(view, values)
    assert status == 200
    assert (await mark.slash("/pact", text, channel_id="C0SWP"))[0] == 200
    await _quiet(tasks)
    await env.w.settle()
    assert changed(before, await snapshot(env.w, skip=BOOKKEEPING | {"audit_log"})) == {}
    for call in slack.calls[since:]:
        if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
            assert slack_clean(json.dumps(call.params)), call.params
    assert [r.getMessage() for r in errors.records] == []
