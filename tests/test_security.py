"""Security, negative tests over HTTP against the fake Telegram and Slack servers: signatures,
timestamps and replays (Slack), the webhook's secret token (Telegram), unknown users, the role
check on every command and button, and escaping of user text wherever it is shown.

Only the network peers are simulated; every request goes through python-telegram-bot or Bolt
into our real handlers and services. Each refusal is checked by what the person is told and by
a snapshot of the database before and after.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.buttons import ButtonAction, Kind
from bot.clock import FakeClock
from bot.domain import PactMeeting, PactPriority
from bot.returns.crisis import Cadence
from handlers.slack import crisis_views, pact_views, views
from handlers.slack.ids import ActionId, Command, ShortcutId, ViewId
from handlers.slack.who import who as slack_user
from sim.fake_slack import FakeSlack, SlackMessage, SlackUser, shown
from sim.fake_telegram import FakeTelegram, SimUser
from sim.scripts import select_value, tension, text_value, until
from sim.world import SimWorld, free_port
from storage.tables import metadata
from tests.conftest import make_config
from tests.helpers import (
    PACT_NEIGHBOURHOODS,
    SLACK_PEOPLE_CSV,
    heath_town_meetings,
    slack_config,
    team_slack,
    webhook_section,
)

EVIL = "<!channel> <!here> <@U123> <https://evil.example|click> *bold* <b>x</b> & co"
# What must never reach Slack mrkdwn (or a plain ``text`` field) from user text.
SLACK_MARKERS = ("<!channel>", "<!here>", "<@U123>", "<https://evil", "<b>")
# The same text as Slack shows it, escaped.
SLACK_EVIL = EVIL.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
TG_EVIL = EVIL.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
STRANGER_TG = 777001
STRANGER_SLACK = "U0NOBODY"
REFUSAL = "only for"  # every refusal of a stranger says "... only for (invited) people ..."


# --------------------------------------------------------------------- the world


@dataclass
class Env:
    """The running bot with Slack and PACT, people linked, one open action and two meetings."""

    w: SimWorld
    slack: FakeSlack
    url: str
    port: int
    asha: SimUser  # councillor, the reporter of the action
    mark: SimUser  # councillor (also in Slack as U0MARK)
    chris: SimUser  # the Heath Town chair
    post: SlackMessage  # the action's message in the Cohesion Team's channel
    action_id: int
    a: PactMeeting  # recorded; set the two priorities
    b: PactMeeting  # yesterday's, to record
    speeding: PactPriority  # owned by Neighbourhood Police (U0PC)
    litter: PactPriority  # owned by the Cohesion Team (U0JANE), hostile title

    def user(self, user_id: str) -> SlackUser:
        return SlackUser(self.slack, user_id, self.url)


async def start_env(
    db_url: str,
    fake: FakeTelegram,
    slack: FakeSlack,
    clock: FakeClock,
    description: str = "Name-calling outside the school gates every morning.",
    **config: Any,
) -> Env:
    port = free_port()
    cfg = slack_config(
        db_url,
        fake.base_url,
        slack,
        port,
        pact=PACT_NEIGHBOURHOODS,
        **config,
    )
    w = await SimWorld.start(cfg, fake, clock)
    try:
        await w.import_people(SLACK_PEOPLE_CSV)
        asha = await w.link("asha@example.org", 501, "Asha")
        mark = await w.link("mark@example.org", 502, "Mark")
        chris = await w.link("chris@example.org", 503, "Chris")
        # Asha's report, submitted through the real Telegram conversation, routed to Cohesion.
        async with w.services.db.uow() as uow:
            form = (await w.services.forms.current(uow)).definition
        from sim.scripts import fill_tension

        await asha.send_command("/report")
        await fill_tension(asha, form, tension("Heath Town", "religion", description))
        await asha.press("Submit")
        await asha.wait_for("has been submitted")
        post = (await until(lambda: slack.top_level("C0COHESION")))[0]
        await until(lambda: post.action_ids())
        a, b = await heath_town_meetings(
            w.services, second_venue="Heath Town Baptist Church", second_priority=EVIL
        )
        async with w.services.db.uow() as uow:
            speeding, litter = list(await uow.pact.open_priorities("heath-town"))
        await w.settle()
        url = f"http://127.0.0.1:{port}/slack/events"
        return Env(w, slack, url, port, asha, mark, chris, post, 1, a, b, speeding, litter)
    except BaseException:
        await w.stop()
        raise


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with team_slack(("C0SWP", "swp", ["U0SAM", "U0MARK", STRANGER_SLACK])) as fake:
        fake.add_user(STRANGER_SLACK, "stranger")
        yield fake


@pytest.fixture
async def env(
    db_url: str, fake_telegram: FakeTelegram, slack: FakeSlack, clock: FakeClock
) -> AsyncIterator[Env]:
    e = await start_env(db_url, fake_telegram, slack, clock)
    yield e
    await e.w.stop()


# --------------------------------------------------------------------- helpers

# Tables that change on every request or send by design: update ids, messages, markers, requests
# seen, and the shared send-rate buckets (PostgreSQL; keyed by hashes).
BOOKKEEPING = {"inbound_updates", "outbox", "bot_state", "seen_requests", "rate_buckets"}


async def snapshot(w: SimWorld, *, skip: set[str] = BOOKKEEPING) -> dict[str, list[str]]:
    """Every row of every table (except ``skip``), as sorted text."""
    out: dict[str, list[str]] = {}
    async with w.services.db.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in skip:
                continue
            rows = (await conn.execute(select(table))).all()
            out[table.name] = sorted(repr(tuple(r)) for r in rows)
    return out


async def all_text(w: SimWorld) -> str:
    """The whole database as one string (to look for anything about a stranger)."""
    return json.dumps(await snapshot(w, skip=set()))


def changed(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, Any]:
    return {
        t: {
            "gone": sorted(set(before[t]) - set(after[t])),
            "new": sorted(set(after[t]) - set(before[t])),
        }
        for t in before
        if before[t] != after[t]
    }


def buttons(channel: str, *pairs: tuple[str, str]) -> SlackMessage:
    """A message with buttons (action_id, value): what a forged click claims to come from."""
    elements = [
        {"type": "button", "action_id": a, "value": v, "text": {"type": "plain_text", "text": a}}
        for a, v in pairs
    ]
    blocks = [{"type": "actions", "block_id": "b0", "elements": elements}]
    return SlackMessage(channel, "1700000000.000100", "", blocks, None, "U0BOT")


async def drained(fake: FakeTelegram, w: SimWorld) -> None:
    """Every pushed Telegram update has been processed (its offset confirmed) and every reply
    queued by it sent."""
    await until(lambda: not fake._updates, timeout=60)
    await w.settle()


async def reply_after(user: SimUser, n: int) -> str:
    """The text of the first bot message in ``user``'s chat after the first ``n``."""
    return str((await until(lambda: user.messages[n:]))[0].text)


async def call_after(fake: FakeTelegram, method: str, n: int) -> Any:
    """The first ``method`` call to the fake after the first ``n``."""
    return (await until(lambda: fake.calls_for(method)[n:]))[0]


async def ephemeral(slack: FakeSlack, user: str, before: int) -> str:
    """The next ephemeral message to ``user`` after the first ``before``."""
    got = await until(lambda: slack.ephemerals(user)[before:], timeout=60)
    return str(got[0]["text"])


CRISIS_REFUSAL = "Only admins and the Prevent and Cohesion Officer"


def crisis_modals(w: SimWorld) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The crisis start and stop modals (global shortcuts), each with a complete answer."""
    running = Cadence(1, "daily", ["Penn"], [], "2026-12-01T10:00:00+00:00", "person:1")
    return [
        (
            crisis_views.start_modal(w.services.crisis.config),
            {
                "places": {
                    "pick": {
                        "type": "multi_static_select",
                        "selected_options": [{"value": "ward:Penn"}],
                    }
                },
                "every": {"pick": {"type": "radio_buttons", "selected_option": {"value": "daily"}}},
            },
        ),
        (
            crisis_views.stop_modal([running], w.services.crisis.describe),
            {"cadences": {"pick": {"type": "checkboxes", "selected_options": [{"value": "1"}]}}},
        ),
    ]


def action_value(kind: Kind, env: Env, version: int = 0) -> str:
    return ButtonAction(kind, env.action_id, version).encode()


ACTION_BUTTONS = {
    ActionId.ACK: Kind.ACK,
    ActionId.UPDATE: Kind.UPDATE,
    ActionId.CLOSE: Kind.CLOSE,
    ActionId.REASSIGN: Kind.REASSIGN,
    ActionId.RECATEGORISE: Kind.RECATEGORISE,
}


def action_modals(env: Env) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each officer modal (with valid metadata for the action) and valid values for it."""

    def meta(kind: Kind) -> str:
        return action_value(kind, env)

    return [
        (views.update_modal(meta(Kind.UPDATE)), text_value("text", "Visited today.")),
        (
            views.close_modal(meta(Kind.CLOSE), {"resolved": "Resolved"}),
            {**select_value("outcome", "resolved"), **text_value("note", "done")},
        ),
        (
            views.reassign_modal(meta(Kind.REASSIGN), [("npt", "Neighbourhood Police")]),
            select_value("team", "npt"),
        ),
        (
            views.category_modal(meta(Kind.RECATEGORISE), [("race", "Race")]),
            select_value("category", "race"),
        ),
    ]


def record_modal(env: Env) -> tuple[dict[str, Any], dict[str, Any]]:
    assert env.b.id is not None
    view = {
        "type": "modal",
        "callback_id": ViewId.PACT_RECORD,
        "private_metadata": str(env.b.id),
        "blocks": [{"type": "input", "block_id": "public"}],
    }
    values = {
        "public": {"public": {"type": "number_input", "value": "10"}},
        "new": {"new": {"type": "number_input", "value": "2"}},
    }
    return view, values


def report_back_modal(priority: PactPriority) -> dict[str, Any]:
    assert priority.id is not None
    return pact_views.report_back_modal(priority.id, priority.title, "Heath Town")


# --------------------------------------------------------------------- Slack: signatures


class RecordingUser(SlackUser):
    """A Slack user whose last signed request can be sent again byte for byte (a replay)."""

    last: tuple[bytes, dict[str, str]] | None = None

    async def raw(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        self.last = (body, dict(headers))
        return await super().raw(body, headers)


async def test_slack_refuses_bad_signatures_stale_timestamps_missing_headers_and_replays(
    env: Env,
) -> None:
    w, slack = env.w, env.slack
    jane = RecordingUser(slack, "U0JANE", env.url)
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    # A genuine click, built as Slack would send it, then sent in broken ways.
    click = {
        "type": "block_actions",
        "user": {"id": "U0JANE"},
        "api_app_id": "A0TB",
        "team": {"id": slack.team_id},
        "trigger_id": "1.2.3",
        "channel": {"id": "C0COHESION"},
        "container": {"channel_id": "C0COHESION", "message_ts": env.post.ts},
        "actions": [
            {
                "action_id": ActionId.ACK,
                "block_id": "buttons_0",
                "type": "button",
                "value": action_value(Kind.ACK, env),
                "action_ts": "1",
            }
        ],
    }
    body = urllib.parse.urlencode({"payload": json.dumps(click)}).encode()
    before = await snapshot(w)
    good = jane.sign(body)
    cases = {
        "bad signature": {**good, "X-Slack-Signature": "v0=" + "0" * 64},
        "signature of another body": {
            **good,
            **{"X-Slack-Signature": jane.sign(b"x")["X-Slack-Signature"]},
        },
        "stale timestamp": jane.sign(body, timestamp=int(time.time()) - 301),
        "future timestamp": jane.sign(body, timestamp=int(time.time()) + 600),
        "no signature": {"X-Slack-Request-Timestamp": good["X-Slack-Request-Timestamp"]},
        "no timestamp": {"X-Slack-Signature": good["X-Slack-Signature"]},
        "no headers": {},
    }
    for name, headers in cases.items():
        status, _ = await jane.raw(body, {**form, **headers})
        assert status == 401, name
    # Unsigned slash commands and events are refused the same way.
    slash = urllib.parse.urlencode({"command": "/tensions", "user_id": "U0SAM", "text": ""})
    assert (await jane.raw(slash.encode(), form))[0] == 401
    event = json.dumps(
        {"type": "event_callback", "event": {"type": "app_home_opened", "user": "U0SAM"}}
    )
    assert (await jane.raw(event.encode(), {"Content-Type": "application/json"}))[0] == 401
    await asyncio.sleep(0.3)
    assert env.post.updates == 0 and slack.ephemerals("U0JANE") == []
    assert slack.ephemerals("U0SAM") == [] and slack.home_views("U0SAM") == []
    assert changed(before, await snapshot(w)) == {}

    # A replay: a genuine signed request (within the 5 minutes) sent a second time.
    ada = RecordingUser(slack, "U0MARK", env.url)
    modal = views.form_modal(await w.services.reporting.form_request(slack_user("U0MARK"), 0))
    answers = tension("Penn", "race", "Shouting at the bus stop on Penn Road most nights.")
    values: dict[str, Any] = {}
    for qid, value in answers.items():
        block = next((b for b in modal["blocks"] if b.get("block_id") == qid), None)
        if block is None or not value:
            continue
        kind = block["element"]["type"]
        values.update(
            select_value(qid, value) if kind == "static_select" else text_value(qid, value)
        )
    status, reply = await ada.submit_view(modal, values)
    assert status == 200 and reply is None
    await w.settle()
    after_first = await snapshot(w)
    assert ada.last is not None
    replay_body, replay_headers = ada.last
    status, _ = await ada.raw(replay_body, replay_headers)
    assert status == 401
    # ... and a replayed click.
    await jane.click(env.post, ActionId.ACK)
    await until(lambda: env.post.updates >= 1)
    await w.settle()
    acked = await snapshot(w)
    assert jane.last is not None
    status, _ = await jane.raw(*jane.last)
    assert status == 401
    await asyncio.sleep(0.3)
    assert changed(acked, await snapshot(w)) == {}
    async with w.services.db.uow() as uow:
        mark = await uow.people.by_address("slack", "U0MARK")
        assert mark is not None and mark.id is not None
        assert len(await uow.reports.for_person(mark.id, limit=10)) == 1
    assert after_first["reports"] != before["reports"]


async def _report_modal_request(env: Env, user: RecordingUser) -> tuple[bytes, dict[str, str]]:
    """Mark's report modal, submitted once through Bolt (200, a report made); the signed request
    as it was sent, to be sent again."""
    modal = views.form_modal(await env.w.services.reporting.form_request(slack_user("U0MARK"), 0))
    modal = {**modal, "id": "V0MARKREPORT", "hash": "1700000000.AbCdEf"}
    answers = tension("Penn", "race", "Shouting at the bus stop on Penn Road most nights.")
    values: dict[str, Any] = {}
    for qid, value in answers.items():
        block = next((b for b in modal["blocks"] if b.get("block_id") == qid), None)
        if block is None or not value:
            continue
        kind = block["element"]["type"]
        values.update(
            select_value(qid, value) if kind == "static_select" else text_value(qid, value)
        )
    status, reply = await user.submit_view(modal, values)
    assert status == 200 and reply is None
    await env.w.settle()
    assert user.last is not None
    return user.last


async def _marks_reports(services: Any) -> int:
    async with services.db.uow() as uow:
        mark = await uow.people.by_address("slack", "U0MARK")
        assert mark is not None and mark.id is not None
        return len(await uow.reports.for_person(mark.id, limit=10))


async def test_a_replay_is_refused_after_a_restart(
    env: Env, fake_telegram: FakeTelegram, clock: FakeClock
) -> None:
    """A correctly signed request, replayed inside Slack's five minutes to a new process on the
    same database (the bot restarted), is refused: the first process's memory is gone, the
    database remembers."""
    mark = RecordingUser(env.slack, "U0MARK", env.url)
    body, headers = await _report_modal_request(env, mark)
    assert await _marks_reports(env.w.services) == 1
    config = env.w.services.config
    await env.w.stop()
    env.w = await SimWorld.start(config, fake_telegram, clock)  # the fixture stops this one
    before = await snapshot(env.w)

    # The new process listens once its server is up: wait for its health check.
    health = f"http://127.0.0.1:{env.port}/healthz"

    async def listening() -> bool:
        try:
            async with aiohttp.ClientSession() as http, http.get(health) as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    for _ in range(500):
        if await listening():
            break
        await asyncio.sleep(0.02)
    assert (await mark.raw(body, headers))[0] == 401
    await env.w.settle()
    assert changed(before, await snapshot(env.w)) == {}
    assert await _marks_reports(env.w.services) == 1


async def test_a_replay_to_a_second_process_sharing_the_database_is_refused(env: Env) -> None:
    """Two processes behind one load balancer: a request accepted by one and replayed to the
    other is refused by the other."""
    from aiohttp import web

    from bot.app import build_services
    from handlers.slack.app import build_app, build_client, http_app
    from tests.conftest import SLACK_ENV

    mark = RecordingUser(env.slack, "U0MARK", env.url)
    body, headers = await _report_modal_request(env, mark)
    config = env.w.services.config
    other = await build_services(config, clock=env.w.clock, migrate=False)
    bolt = build_app(
        build_client(env.slack.base_url, SLACK_ENV["TENSIONBOT_SLACK_BOT_TOKEN"]),
        SLACK_ENV["TENSIONBOT_SLACK_SIGNING_SECRET"],
        other.actions,
        other.reporting,
        other.summaries,
        seen=other.seen,
        pact=other.pact,
        crisis=other.crisis,
    )
    runner = web.AppRunner(
        http_app(bolt, "/slack/events", SLACK_ENV["TENSIONBOT_SLACK_SIGNING_SECRET"])
    )
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        before = await snapshot(env.w)
        second = RecordingUser(env.slack, "U0MARK", f"http://127.0.0.1:{port}/slack/events")
        assert (await second.raw(body, headers))[0] == 401
        # ... and the other way round: a click accepted by the second, replayed to the first.
        jane = RecordingUser(env.slack, "U0JANE", f"http://127.0.0.1:{port}/slack/events")
        assert await jane.click(env.post, ActionId.ACK) == 200
        await until(lambda: env.post.updates >= 1)
        await env.w.settle()
        acked = await snapshot(env.w)
        assert acked != before
        assert jane.last is not None
        assert (await RecordingUser(env.slack, "U0JANE", env.url).raw(*jane.last))[0] == 401
        await env.w.settle()
        assert changed(acked, await snapshot(env.w)) == {}
        assert await _marks_reports(env.w.services) == 1
    finally:
        await runner.cleanup()
        await other.close()


async def test_a_report_modal_submitted_twice_makes_one_report(env: Env) -> None:
    """The same modal (view id and hash) arrives twice as two correctly signed requests (not a
    byte-for-byte replay): one report, and the second is answered as the first was."""
    mark = RecordingUser(env.slack, "U0MARK", env.url)
    body, first = await _report_modal_request(env, mark)
    assert await _marks_reports(env.w.services) == 1
    before = await snapshot(env.w)
    # Another request (another timestamp, so another signature), the same submission.
    again = mark.sign(body, timestamp=int(first["X-Slack-Request-Timestamp"]) - 1)
    status, reply = await mark.raw(
        body, {"Content-Type": "application/x-www-form-urlencoded", **again}
    )
    assert status == 200 and not reply
    await env.w.settle()
    assert changed(before, await snapshot(env.w)) == {}
    assert await _marks_reports(env.w.services) == 1


class _Tracebacks(logging.Handler):
    """Every record at ERROR or above, or carrying a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture
def tracebacks() -> Iterator[_Tracebacks]:
    handler = _Tracebacks()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def _payload(data: Any) -> bytes:
    return urllib.parse.urlencode({"payload": json.dumps(data)}).encode()


MALFORMED_SLACK: dict[str, tuple[str, bytes]] = {
    "payload not JSON": ("form", urllib.parse.urlencode({"payload": "{not json"}).encode()),
    "payload a JSON list": ("form", _payload([1, 2])),
    "payload a JSON string": ("form", _payload("block_actions")),
    "payload null": ("form", _payload(None)),
    "body not UTF-8": ("form", b"payload=\xff\xfe"),
    "JSON body a list": ("json", b"[1, 2]"),
    "JSON body not JSON": ("json", b"{not json"),
    "no type": ("form", _payload({"user": {"id": "U0JANE"}})),
    "empty actions": (
        "form",
        _payload({"type": "block_actions", "user": {"id": "U0JANE"}, "actions": []}),
    ),
    "actions not objects": (
        "form",
        _payload({"type": "block_actions", "user": {"id": "U0JANE"}, "actions": [ActionId.ACK]}),
    ),
    "a click without a user": (
        "form",
        _payload({"type": "block_actions", "actions": [{"action_id": ActionId.ACK, "value": "x"}]}),
    ),
    "a click with a team that is a number": (
        "form",
        _payload(
            {
                "type": "block_actions",
                "team": 5,
                "user": {"id": "U0JANE"},
                "trigger_id": "1.2",
                "actions": [{"action_id": ActionId.ACK, "value": "x"}],
            }
        ),
    ),
    "a modal with no view": (
        "form",
        _payload({"type": "view_submission", "user": {"id": "U0MARK"}}),
    ),
    "a modal with no state": (
        "form",
        _payload(
            {
                "type": "view_submission",
                "user": {"id": "U0MARK"},
                "view": {"id": "V1", "callback_id": ViewId.REPORT, "private_metadata": "0"},
            }
        ),
    ),
    "a modal whose state is a list": (
        "form",
        _payload(
            {
                "type": "view_submission",
                "user": {"id": "U0MARK"},
                "view": {"callback_id": ViewId.REPORT, "state": {"values": [1]}},
            }
        ),
    ),
    "a selected option that is text": (
        "form",
        _payload(
            {
                "type": "view_submission",
                "user": {"id": "U0MARK"},
                "view": {
                    "callback_id": ViewId.REPORT,
                    "state": {
                        "values": {
                            "ward": {"ward": {"type": "static_select", "selected_option": "Penn"}}
                        }
                    },
                },
            }
        ),
    ),
    "a slash command without a user": (
        "form",
        urllib.parse.urlencode({"command": "/tensions", "channel_id": "C0SWP"}).encode(),
    ),
    "an event callback without an event": ("json", json.dumps({"type": "event_callback"}).encode()),
}


async def test_malformed_signed_slack_requests_get_400_without_a_traceback(
    env: Env, tracebacks: _Tracebacks
) -> None:
    """Correctly signed, but not what Slack sends: 400 (not 500), nothing changed, nothing
    logged at error level and no traceback. Unsigned, the same bodies get 401."""
    jane = RecordingUser(env.slack, "U0JANE", env.url)
    before = await snapshot(env.w)
    tasks = asyncio.all_tasks()
    for name, (kind, body) in MALFORMED_SLACK.items():
        content = "application/json" if kind == "json" else "application/x-www-form-urlencoded"
        status, _ = await jane.raw(body, {"Content-Type": content, **jane.sign(body)})
        assert status == 400, name
        status, _ = await jane.raw(body, {"Content-Type": content})
        assert status == 401, name
    await _bolt_quiet(tasks)
    await env.w.settle()
    assert changed(before, await snapshot(env.w)) == {}
    assert [r.getMessage() for r in tracebacks.records] == []


async def _bolt_quiet(before: set[asyncio.Task[Any]]) -> None:
    """Bolt runs a listener on after its ack(): wait for the tasks a request started."""
    me = asyncio.current_task()

    def bolt(task: asyncio.Task[Any]) -> bool:
        code = getattr(task.get_coro(), "cr_code", None)
        return code is not None and "slack_bolt" in code.co_filename

    await until(
        lambda: all(t.done() for t in asyncio.all_tasks() - before if t is not me and bolt(t))
    )


# --------------------------------------------------------------------- Telegram: webhook


async def test_telegram_webhook_refuses_a_wrong_or_missing_secret_token(
    db_url: str, fake_telegram: FakeTelegram, clock: FakeClock
) -> None:
    from tests.helpers import PEOPLE_CSV

    port = free_port()
    config = make_config(
        db_url,
        fake_telegram.base_url,
        telegram=webhook_section(port),
    )
    w = await SimWorld.start(config, fake_telegram, clock)
    try:
        await w.import_people(PEOPLE_CSV)
        await until(lambda: fake_telegram.calls_for("setWebhook"))
        asha = await w.link("asha@example.org", 501, "Asha")  # through the webhook, secret and all
        before = await snapshot(w, skip=set())
        sent = len(fake_telegram.calls_for("sendMessage"))
        update = {
            "update_id": 900001,
            "message": {
                "message_id": 5,
                "date": int(time.time()),
                "chat": {"id": 501, "type": "private", "first_name": "Asha"},
                "from": {"id": 501, "is_bot": False, "first_name": "Asha"},
                "text": "/report",
                "entities": [{"type": "bot_command", "offset": 0, "length": 7}],
            },
        }
        async with aiohttp.ClientSession() as http:
            for headers in (
                {"X-Telegram-Bot-Api-Secret-Token": "guess"},
                {"X-Telegram-Bot-Api-Secret-Token": ""},
                {},
            ):
                async with http.post(
                    f"http://127.0.0.1:{port}/telegram", json=update, headers=headers
                ) as resp:
                    assert resp.status == 403, headers
        await asyncio.sleep(0.3)
        await w.settle()
        assert len(fake_telegram.calls_for("sendMessage")) == sent
        assert changed(before, await snapshot(w, skip=set())) == {}
        # The same update with the secret Telegram was given is served.
        await asha.send_command("/report")
        await asha.wait_for("Which ward")
    finally:
        await w.stop()


async def test_a_telegram_webhook_body_that_is_not_an_update_gets_400_without_a_traceback(
    db_url: str, fake_telegram: FakeTelegram, clock: FakeClock, tracebacks: _Tracebacks
) -> None:
    port = free_port()
    config = make_config(
        db_url,
        fake_telegram.base_url,
        telegram=webhook_section(port),
    )
    w = await SimWorld.start(config, fake_telegram, clock)
    try:
        await until(lambda: fake_telegram.calls_for("setWebhook"))
        secret = fake_telegram.calls_for("setWebhook")[-1].params["secret_token"]
        before = await snapshot(w, skip=set())
        bodies = {
            "a JSON list": b"[1, 2, 3]",
            "not JSON": b"{update_id: 1",
            "not UTF-8": b"\xff\xfe",
            "a JSON string": b'"update"',
            "null": b"null",
            "an object without an update id": b'{"message": {"text": "hi"}}',
            "an update id that is text": b'{"update_id": "1"}',
            "a message that is a list": b'{"update_id": 5, "message": [1]}',
            "a message without a chat": b'{"update_id": 6, "message": {"message_id": 1}}',
        }
        async with aiohttp.ClientSession() as http:
            for name, body in bodies.items():
                async with http.post(
                    f"http://127.0.0.1:{port}/telegram",
                    data=body,
                    headers={
                        "X-Telegram-Bot-Api-Secret-Token": secret,
                        "Content-Type": "application/json",
                    },
                ) as resp:
                    assert resp.status == 400, name
        await w.settle()
        assert changed(before, await snapshot(w, skip=set())) == {}
        assert [r.getMessage() for r in tracebacks.records] == []
    finally:
        await w.stop()


# --------------------------------------------------------------------- every command and button

LISTENERS = Path(__file__).resolve().parent.parent / "handlers" / "slack" / "listeners"
HANDLERS = (
    *sorted(f"handlers/slack/listeners/{p.name}" for p in LISTENERS.glob("*.py")),
    "handlers/telegram/__init__.py",
)


def registered() -> dict[str, set[str]]:
    """What the handlers' register functions listen to, read from their source."""
    import re

    root = Path(__file__).resolve().parent.parent
    source = "\n".join((root / p).read_text() for p in HANDLERS)
    named = {"ActionId": ActionId, "ViewId": ViewId, "Command": Command, "ShortcutId": ShortcutId}
    found: dict[str, set[str]] = {
        "action": set(),
        "view": set(),
        "command": set(),
        "event": set(),
        "global_shortcut": set(),
    }
    pattern = r"\bapp\.(action|view|command|event|global_shortcut)\(([^)]*)\)"
    for kind, arg in re.findall(pattern, source):
        arg = arg.strip()
        if arg[:1] in "\"'":
            found[kind].add(arg.strip("\"'"))
        else:
            enum, _, member = arg.partition(".")
            found[kind].add(str(named[enum][member]))
    from handlers.telegram import COMMANDS

    found["telegram"] = {*re.findall(r'CommandHandler\("(\w+)"', source), *COMMANDS}
    return found


SLACK_ACTIONS = {
    *ACTION_BUTTONS,
    ActionId.START,
    ActionId.NIL,
    ActionId.PACT_RECORD,
    ActionId.PACT_CANCELLED,
    ActionId.PACT_REPORT_BACK,
    ActionId.STILL,
    ActionId.SORTED,
}
SLACK_VIEWS = {
    ViewId.UPDATE,
    ViewId.CLOSE,
    ViewId.REASSIGN,
    ViewId.RECATEGORISE,
    ViewId.REPORT,
    ViewId.PACT_RECORD,
    ViewId.PACT_REPORT_BACK,
    ViewId.CRISIS_START,
    ViewId.CRISIS_STOP,
}
TELEGRAM_COMMANDS = {
    "start",
    "help",
    "report",
    "status",
    "cancel",
    "return",
    "meeting",
    "schedule",
    "summary",
    "pact",
    "crisis",
}


def test_the_tests_below_cover_every_command_and_button() -> None:
    found = registered()
    assert found["action"] == SLACK_ACTIONS
    assert found["view"] == SLACK_VIEWS
    assert found["command"] == {"/tensions", "/pact", "/crisis"}
    assert found["event"] == {"app_home_opened"}
    assert found["global_shortcut"] == set(ShortcutId)
    assert found["telegram"] == TELEGRAM_COMMANDS


# --------------------------------------------------------------------- unknown users


async def test_unknown_telegram_users_are_refused_and_nothing_about_them_is_stored(
    env: Env, fake_telegram: FakeTelegram
) -> None:
    w = env.w
    before = await snapshot(w, skip={"bot_state"})
    stranger = fake_telegram.user(STRANGER_TG, first_name="Mallory", username="mallory_x")
    said: list[str] = []
    for name in [*sorted(TELEGRAM_COMMANDS), "frobnicate"]:
        n = len(stranger.messages)
        await stranger.send_text(f"/{name}")
        said.append(await reply_after(stranger, n))
    n = len(stranger.messages)
    await stranger.send_text("/start not-a-token")
    said.append(await reply_after(stranger, n))
    for send in (lambda: stranger.send_text("hello"), stranger.send_photo):
        n = len(stranger.messages)
        await send()
        said.append(await reply_after(stranger, n))
    assert all(REFUSAL in s or "not valid" in s for s in said), said
    # Taps on real buttons (a campaign, Asha's conversation, a PACT meeting, Asha's action) and
    # on a malformed one: each refused with a toast.
    assert env.b.id is not None
    for data in (
        ButtonAction(Kind.START, 1).encode(),
        ButtonAction(Kind.NIL, 1).encode(),
        ButtonAction(Kind.ANSWER, 1, 1, 0).encode(),
        ButtonAction(Kind.PACT_RECORD, env.b.id).encode(),
        ButtonAction(Kind.PACT_CANCELLED, env.b.id).encode(),
        ButtonAction(Kind.STILL, env.action_id).encode(),
        "garbage",
    ):
        n = len(fake_telegram.calls_for("answerCallbackQuery"))
        await stranger.press_data(data)
        call = await call_after(fake_telegram, "answerCallbackQuery", n)
        assert REFUSAL in str(call.params.get("text")) or "not valid" in str(
            call.params.get("text")
        )
    await drained(fake_telegram, w)
    assert changed(before, await snapshot(w, skip={"bot_state"})) == {}
    everything = await all_text(w)
    assert str(STRANGER_TG) not in everything and "mallory" not in everything.casefold()


async def test_unknown_slack_users_are_refused_everywhere(env: Env) -> None:
    w, slack = env.w, env.slack
    stranger = env.user(STRANGER_SLACK)
    before = await snapshot(w)
    assert env.b.id is not None and env.litter.id is not None
    targets = {
        **{a: action_value(k, env) for a, k in ACTION_BUTTONS.items()},
        ActionId.START: ButtonAction(Kind.START, 0).encode(),
        ActionId.NIL: ButtonAction(Kind.NIL, 1).encode(),
        ActionId.PACT_RECORD: ButtonAction(Kind.PACT_RECORD, env.b.id).encode(),
        ActionId.PACT_CANCELLED: ButtonAction(Kind.PACT_CANCELLED, env.b.id).encode(),
        ActionId.PACT_REPORT_BACK: ButtonAction(Kind.PACT_REPORT_BACK, env.litter.id).encode(),
        ActionId.STILL: ButtonAction(Kind.STILL, 1).encode(),
        ActionId.SORTED: ButtonAction(Kind.SORTED, 1).encode(),
    }
    assert set(targets) == SLACK_ACTIONS
    message = buttons("C0COHESION", *targets.items())
    opened = len(slack.views_opened())
    for action_id in targets:
        n = len(slack.ephemerals(STRANGER_SLACK))
        assert await stranger.click(message, action_id) == 200
        text = await ephemeral(slack, STRANGER_SLACK, n)
        assert REFUSAL in text or "Only" in text, (action_id, text)
    # Modal submissions (as if a modal had been opened for them).
    submissions = [
        *action_modals(env),
        record_modal(env),
        (report_back_modal(env.litter), text_value("text", "All cleared, twice.")),
        (
            views.form_modal(await w.services.reporting.form_request(slack_user("U0MARK"), 0)),
            text_value("description", "Some text long enough to be a description."),
        ),
        *crisis_modals(w),
    ]
    assert {v["callback_id"] for v, _ in submissions} == SLACK_VIEWS
    for view, values in submissions:
        status, reply = await stranger.submit_view(view, values)
        assert status == 200 and reply is not None, view["callback_id"]
        assert reply["response_action"] == "errors", view["callback_id"]
        told = " ".join(reply["errors"].values())
        assert REFUSAL in told or "Only" in told, (view["callback_id"], told)
    for command in ("/tensions", "/pact", "/crisis"):
        n = len(slack.ephemerals(STRANGER_SLACK))
        status, _ = await stranger.slash(command, "", channel_id="C0SWP")
        assert status == 200
        assert REFUSAL in await ephemeral(slack, STRANGER_SLACK, n)
    for shortcut in ShortcutId:
        n = len(slack.ephemerals(STRANGER_SLACK))
        assert await stranger.shortcut(shortcut) == 200
        assert REFUSAL in await ephemeral(slack, STRANGER_SLACK, n)
    assert await stranger.event({"type": "app_home_opened", "tab": "home"}) == 200
    home = (await until(lambda: slack.home_views(STRANGER_SLACK)))[-1]
    assert REFUSAL in json.dumps(home) and ActionId.START not in json.dumps(home)
    await w.settle()
    assert len(slack.views_opened()) == opened
    assert changed(before, await snapshot(w)) == {}
    assert STRANGER_SLACK not in await all_text(w)


# --------------------------------------------------------------------- roles


async def test_role_checks_on_every_slack_command_and_button(env: Env) -> None:
    w, slack = env.w, env.slack
    assert env.b.id is not None and env.speeding.id is not None and env.litter.id is not None
    before = await snapshot(w, skip=BOOKKEEPING | {"audit_log"})
    opened = len(slack.views_opened())

    async def refused(user: SlackUser, action_id: str, value: str, expect: str) -> None:
        n = len(slack.ephemerals(user.user_id))
        await user.click(buttons("C0COHESION", (action_id, value)), action_id)
        text = await ephemeral(slack, user.user_id, n)
        assert expect in text, (user.user_id, action_id, text)

    # A councillor may not ask for summaries or PACT insight; nor may an officer.
    for who in ("U0MARK", "U0JANE"):
        for command, expect in (
            ("/tensions", "Summaries are for"),
            ("/pact", "PACT insight is"),
            ("/crisis", "Only admins and the Prevent and Cohesion Officer"),
        ):
            n = len(slack.ephemerals(who))
            await env.user(who).slash(command, "", channel_id="C0SWP")
            assert expect in await ephemeral(slack, who, n)
        # The crisis shortcuts, and their modals submitted all the same.
        for shortcut in ShortcutId:
            n = len(slack.ephemerals(who))
            await env.user(who).shortcut(shortcut)
            assert CRISIS_REFUSAL in await ephemeral(slack, who, n)
        for view, values in crisis_modals(w):
            _, reply = await env.user(who).submit_view(view, values)
            assert reply is not None and CRISIS_REFUSAL in str(reply["errors"])
    # Outside the owning team: every action button and every action modal.
    dan = env.user("U0PC")
    for action_id, kind in ACTION_BUTTONS.items():
        await refused(dan, action_id, action_value(kind, env), "Only members of Cohesion Team")
    for view, values in action_modals(env):
        _, reply = await dan.submit_view(view, values)
        assert reply is not None and "Only members of Cohesion Team" in str(reply["errors"])
    # A team member pressing a button with another button's payload (the wrong kind).
    jane = env.user("U0JANE")
    n = len(slack.ephemerals("U0JANE"))
    for wrong in (
        ButtonAction(Kind.START, 1),
        ButtonAction(Kind.UPDATE, 1),
        ButtonAction(Kind.PACT_RECORD, 1),
    ):
        await jane.click(buttons("C0COHESION", (ActionId.ACK, wrong.encode())), ActionId.ACK)
    await asyncio.sleep(0.3)
    assert slack.ephemerals("U0JANE")[n:] == []  # refused silently, as any malformed payload
    # Not the chair: record, cancelled and the record modal.
    for who in ("U0JANE", "U0MARK"):
        user = env.user(who)
        await refused(
            user, ActionId.PACT_RECORD, ButtonAction(Kind.PACT_RECORD, env.b.id).encode(), ""
        )
        await refused(
            user,
            ActionId.PACT_CANCELLED,
            ButtonAction(Kind.PACT_CANCELLED, env.b.id).encode(),
            "chair",
        )
        _, reply = await user.submit_view(*record_modal(env))
        assert reply is not None and reply["response_action"] == "errors"
    # Not the owning team: report back, the button and the modal.
    for who, priority in (("U0JANE", env.speeding), ("U0PC", env.litter), ("U0MARK", env.litter)):
        assert priority.id is not None
        value = ButtonAction(Kind.PACT_REPORT_BACK, priority.id).encode()
        await refused(env.user(who), ActionId.PACT_REPORT_BACK, value, "Only the owning team")
        _, reply = await env.user(who).submit_view(
            report_back_modal(priority), text_value("text", "We did it all.")
        )
        assert reply is not None and "Only the owning team" in str(reply["errors"])
    await w.settle()
    assert len(slack.views_opened()) == opened
    assert env.post.updates == 0
    assert changed(before, await snapshot(w, skip=BOOKKEEPING | {"audit_log"})) == {}


async def test_role_checks_on_every_telegram_command_and_button(
    env: Env, fake_telegram: FakeTelegram
) -> None:
    w = env.w
    before = await snapshot(w, skip=BOOKKEEPING | {"audit_log", "people"})
    mark, asha = env.mark, env.asha
    assert env.b.id is not None
    # Councillors: no summaries, no PACT insight.
    for user in (mark, asha):
        for command, expect in (
            ("/summary", "Summaries are for"),
            ("/pact", "PACT insight is"),
            ("/crisis", "Only admins and the Prevent and Cohesion Officer"),
        ):
            n = len(user.messages)
            await user.send_command(command)
            assert expect in await reply_after(user, n)
        # Not a chair: /meeting and /schedule.
        await user.send_command("/meeting")
        await user.wait_for("No PACT meeting of yours")
        await user.send_command("/schedule", "2027-01-13 18:30 in_person Bilston Hall")
        await user.wait_for("Only a PACT chair")
    # Buttons that belong to someone else: Asha's conversation (finished), her action's
    # "still a problem", the chair's record / cancelled / pick, a campaign not sent to Mark.
    for data in (
        ButtonAction(Kind.ANSWER, 1, 0, 0).encode(),
        ButtonAction(Kind.CANCEL, 1, 0, 0).encode(),
        ButtonAction(Kind.STILL, env.action_id).encode(),
        ButtonAction(Kind.SORTED, env.action_id).encode(),
        ButtonAction(Kind.PACT_RECORD, env.b.id).encode(),
        ButtonAction(Kind.PACT_CANCELLED, env.b.id).encode(),
        ButtonAction(Kind.PACT_PICK, 1, 0, 0).encode(),
        ButtonAction(Kind.START, 1).encode(),
        ButtonAction(Kind.NIL, 1).encode(),
    ):
        n = len(fake_telegram.calls_for("answerCallbackQuery"))
        await mark.press_data(data)
        await call_after(fake_telegram, "answerCallbackQuery", n)
    await drained(fake_telegram, w)
    assert changed(before, await snapshot(w, skip=BOOKKEEPING | {"audit_log", "people"})) == {}


# --------------------------------------------------------------------- escaping


def no_markers(where: str, text: str) -> None:
    for marker in SLACK_MARKERS:
        assert marker not in text, (where, marker, text[:500])


async def test_user_text_is_escaped_everywhere_it_is_shown(
    db_url: str, fake_telegram: FakeTelegram, slack: FakeSlack, clock: FakeClock
) -> None:
    env = await start_env(db_url, fake_telegram, slack, clock, description=EVIL)
    try:
        w, asha = env.w, env.asha
        # Telegram: the review screen echoed the description, escaped.
        reviews = [
            str(c.params.get("text"))
            for c in fake_telegram.calls
            if "Please check" in str(c.params.get("text"))
        ]
        assert reviews and all(TG_EVIL in r and "<!channel>" not in r for r in reviews)
        # Slack: the action message (blocks and fallback text).
        post = env.post
        # As Slack shows it: exactly the text typed, no mention, link or formatting.
        sections = [b["text"]["text"] for b in post.blocks if b["type"] == "section"]
        assert any(EVIL in shown(t).text for t in sections)
        assert all(set(shown(t).styles) <= {"bold", "italic"} for t in sections), [
            shown(t) for t in sections
        ]
        no_markers("action message", json.dumps(post.blocks) + post.text)
        # An officer's update with the same text: the thread, and Asha on Telegram.
        jane = env.user("U0JANE")
        await jane.click(post, ActionId.UPDATE)
        modal = (await until(slack.views_opened))[-1]
        values = {**text_value("text", EVIL), **select_value("for_reporter", "yes")}
        values["for_reporter"] = {
            "for_reporter": {"type": "checkboxes", "selected_options": [{"value": "yes"}]}
        }
        status, reply = await jane.submit_view(modal, values)
        assert status == 200 and reply is None
        told = await asha.wait_for("Update from")
        assert TG_EVIL in str(told.text)
        thread = await until(lambda: slack.thread("C0COHESION", post.ts))
        await w.settle()
        for m in [post, *slack.thread("C0COHESION", post.ts)]:
            no_markers("thread", json.dumps(m.blocks) + m.text)
        assert any(SLACK_EVIL in m.text or SLACK_EVIL in json.dumps(m.blocks) for m in thread)
        # PACT: the owner team's report back (the hostile priority title) and its confirmation.
        assert env.litter.id is not None
        value = ButtonAction(Kind.PACT_REPORT_BACK, env.litter.id).encode()
        before = len(slack.views_opened())
        await jane.click(
            buttons("C0COHESION", (ActionId.PACT_REPORT_BACK, value)), ActionId.PACT_REPORT_BACK
        )
        modal = (await until(lambda: slack.views_opened()[before:]))[-1]
        status, reply = await jane.submit_view(modal, text_value("text", EVIL))
        assert reply is not None and reply["response_action"] == "update"
        no_markers("report-back confirmation", json.dumps(reply))
        # The chair's briefing with that report back, in Telegram (Chris is linked there).
        assert env.b.id is not None
        async with w.services.db.uow() as uow:
            meeting = await uow.pact.get_meeting(env.b.id)
            assert meeting is not None
            brief = await w.services.pact.briefing(uow, meeting)
        from handlers.slack.render import render
        from handlers.telegram.render import render_text

        text, blocks = render(brief)
        no_markers("PACT briefing (Slack)", text + json.dumps(blocks))
        assert "<!channel>" not in render_text(brief)[0]
        # Summaries and PACT insight: what was typed after the command is quoted back, escaped.
        for command in ("/tensions", "/pact", "/crisis"):
            n = len(slack.ephemerals("U0SAM"))
            await env.user("U0SAM").slash(command, EVIL, channel_id="C0SWP")
            no_markers(command, await ephemeral(slack, "U0SAM", n))
        # App Home.
        await env.user("U0MARK").event({"type": "app_home_opened", "tab": "home"})
        home = (await until(lambda: slack.home_views("U0MARK")))[-1]
        no_markers("App Home", json.dumps(home))
        # Everything the bot ever sent to Slack.
        for call in slack.calls:
            if call.method in ("chat.postMessage", "chat.update", "chat.postEphemeral"):
                no_markers(call.method, json.dumps(call.params))
        for response in slack.responses:  # ephemeral answers through a response_url
            no_markers("response_url", json.dumps(response))
    finally:
        await env.w.stop()
