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
import re
import urllib.parse
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.buttons import BadPayload, ButtonAction, Kind
from bot.messages import Button, OutgoingMessage, Span
from handlers.slack.ids import ActionId, ViewId
from handlers.slack.render import render
from handlers.telegram.render import render_text
from sim.fake_slack import FakeSlack, shown
from sim.fake_telegram import FakeTelegram
from sim.scripts import text_value, until
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
ACTIONS = st.builds(ButtonAction, st.sampled_from(list(Kind)), SMALL, SMALL, SMALL)
# Callback data: random text, near-misses of the format, and well-formed payloads.
PAYLOADS = st.one_of(
    TEXT,
    ACTIONS.map(ButtonAction.encode),
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
        action = ButtonAction.decode(data)
    except BadPayload:
        return
    assert action.encode() == data


@given(ACTIONS)
def test_encode_decode(action: ButtonAction) -> None:
    assert ButtonAction.decode(action.encode()) == action


# --------------------------------------------------------------------- the renderers

STYLES = st.sampled_from(["plain", "bold", "italic", "code"])
SPANS = st.builds(Span, text=MIXED, style=STYLES)
MESSAGES = st.builds(
    OutgoingMessage,
    lines=st.lists(st.lists(SPANS, max_size=4), min_size=1, max_size=4),
    buttons=st.lists(
        st.lists(st.builds(Button, label=MIXED, data=ACTIONS.map(ButtonAction.encode)), max_size=3),
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
    # The one token we write ourselves: a formatting mark shown literally (see render.py).
    text = re.sub(r"<!date\^00000000\^\{_\}\|[*_~`]>", "", text)
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
            assert "<" not in re.sub(r"<!date\^00000000\^\{_\}\|[*_~`]>", "", block["text"]["text"])


# User text with every kind of mrkdwn formatting, at line starts too.
FORMATTING = st.sampled_from(
    ["*", "_", "~", "`", "```", ">", "\n>", "\n > ", "*bold*", "_it_", "~s~", "`c`", " ", "\n"]
)
TYPED = st.lists(
    st.one_of(TEXT.filter(lambda t: "\ue000" not in t), HOSTILE, FORMATTING), max_size=8
).map("".join)


@settings(max_examples=500)
@given(TYPED)
def test_slack_shows_user_text_exactly_as_typed(typed: str) -> None:
    """No mention, link, bold, italic, strike, code or quote: the characters as typed (a soft
    hyphen is invisible either way)."""
    _, blocks = render(OutgoingMessage(lines=[[Span(text=typed)]]))
    seen = shown("\n".join(b["text"]["text"] for b in blocks if b["type"] == "section"))
    assert seen.styles == ()
    assert seen.text == typed.replace("\u00ad", "") or not typed.strip()


@given(st.sampled_from(["bold", "italic", "code"]))
def test_slack_still_formats_our_own_styles(style: Any) -> None:
    _, blocks = render(OutgoingMessage(lines=[[Span(text="TR_2026*12 ~0001", style=style)]]))
    assert shown(blocks[0]["text"]["text"]).styles == (style,)


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
    action_id=st.sampled_from(sorted(SLACK_ACTIONS - {ActionId.START})),
    value=PAYLOADS,
    callback=st.sampled_from(
        [
            ViewId.UPDATE,
            ViewId.CLOSE,
            ViewId.REASSIGN,
            ViewId.RECATEGORISE,
            ViewId.REPORT,
            ViewId.PACT_RECORD,
            ViewId.PACT_REPORT_BACK,
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
    since, answered = len(slack.calls), len(slack.responses)
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
    for response in slack.responses[answered:]:  # ephemeral answers through a response_url
        assert slack_clean(json.dumps(response)), response
    assert [r.getMessage() for r in errors.records] == []


# --------------------------------------------------------------------- malformed signed requests

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
# Slack's kinds of request, each with any of the fields our listeners and Bolt read replaced by
# arbitrary JSON.
KINDS = st.sampled_from(["block_actions", "view_submission", "event_callback", "shortcut"])
FIELDS = st.dictionaries(
    st.sampled_from(
        ["user", "actions", "view", "team", "channel", "container", "trigger_id", "event", "type"]
    ),
    JSON,
    max_size=4,
)


@HANDLER_SETTINGS
@given(whole=JSON, kind=KINDS, fields=FIELDS, as_json=st.booleans())
async def test_signed_slack_requests_of_any_shape_never_fail_with_a_traceback(
    env: Env, errors: _Errors, whole: Any, kind: str, fields: dict[str, Any], as_json: bool
) -> None:
    """Arbitrary JSON, correctly signed, as the whole payload and as any field of a click, a
    modal, an event: answered (a malformed one 400, never 500), nothing logged at error level."""
    from handlers.slack.requests import problem

    mark = env.user("U0MARK")
    tasks = asyncio.all_tasks()
    before = await snapshot(env.w, skip=BOOKKEEPING | {"audit_log"})
    skeleton = {"type": kind, "user": {"id": "U0MARK"}, "trigger_id": "1.2", **fields}
    for data in (whole, skeleton):
        text = json.dumps(data)
        if as_json:
            body, content = text.encode(), "application/json"
        else:
            body = urllib.parse.urlencode({"payload": text}).encode()
            content = "application/x-www-form-urlencoded"
        status, _ = await mark.raw(body, {"Content-Type": content, **mark.sign(body)})
        assert status != 500
        if problem(data) is not None:
            assert status == 400
    await _quiet(tasks)
    await env.w.settle()
    assert changed(before, await snapshot(env.w, skip=BOOKKEEPING | {"audit_log"})) == {}
    assert [r.getMessage() for r in errors.records] == []
