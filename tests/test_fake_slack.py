"""The fake Slack against the real slack_sdk AsyncWebClient and a real Bolt AsyncApp over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from sim.fake_slack import METHOD_SCOPES, READ_SCOPES, FakeSlack, SlackUser

# The fake's own tests use a token with every scope its methods can need (the bot's tests use
# the manifest's scopes: see tests/test_slack_scopes.py).
ALL_SCOPES = sorted({*METHOD_SCOPES.values(), *READ_SCOPES.values(), "mpim:write"})

BUTTONS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*Tension* reported"}},
    {
        "type": "actions",
        "block_id": "buttons",
        "elements": [
            {
                "type": "button",
                "action_id": "ack",
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "value": "action-1",
            },
            {
                "type": "static_select",
                "action_id": "pick",
                "placeholder": {"type": "plain_text", "text": "Team"},
                "options": [
                    {"text": {"type": "plain_text", "text": "Police"}, "value": "npt"},
                    {"text": {"type": "plain_text", "text": "Cohesion"}, "value": "coh"},
                ],
            },
        ],
    },
]
MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "cb",
    "private_metadata": "action-1",
    "title": {"type": "plain_text", "text": "Close the action"},
    "submit": {"type": "plain_text", "text": "Close"},
    "blocks": [
        {
            "type": "input",
            "block_id": "why",
            "label": {"type": "plain_text", "text": "Why?"},
            "element": {"type": "plain_text_input", "action_id": "why"},
        }
    ],
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack(scopes=ALL_SCOPES)
    await slack.start()
    slack.add_channel("C0TEAM", "team", ["U0JANE"])
    slack.add_channel("C0OUT", "outside", ["U0JANE"], bot_is_member=False)
    slack.add_user("U0JANE", "jane")
    yield slack
    await slack.stop()


def client_for(fake: FakeSlack, token: str | None = None, **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token=token or fake.token, base_url=f"{fake.base_url}/api/", **kwargs)


async def refused(call: Awaitable[Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


# --------------------------------------------------------------------- Web API


async def test_a_method_without_its_scope_is_refused_as_slack_does() -> None:
    slack = FakeSlack(scopes=["chat:write", "commands"])
    await slack.start()
    try:
        slack.add_channel("C0TEAM", "team", ["U0JANE"])
        slack.add_channel("G0PRIVATE", "private", ["U0JANE"])
        client = client_for(slack)
        auth = await client.auth_test()  # needs no scope, and says which the token has
        assert auth.headers["x-oauth-scopes"] == "chat:write,commands"
        posted = await client.chat_postMessage(channel="C0TEAM", text="fine")
        assert posted.headers["x-oauth-scopes"] == "chat:write,commands"
        error = await refused(client.files_upload_v2(channel="C0TEAM", content=b"x", filename="a"))
        assert error.response.data == {
            "ok": False,
            "error": "missing_scope",
            "needed": "files:write",
            "provided": "chat:write,commands",
        }
        assert error.response.headers["x-oauth-scopes"] == "chat:write,commands"
        for channel, needed in (("C0TEAM", "channels:read"), ("G0PRIVATE", "groups:read")):
            error = await refused(client.conversations_info(channel=channel))
            assert (error.response["error"], error.response["needed"]) == ("missing_scope", needed)
        error = await refused(client.conversations_open(users="U0JANE"))
        assert error.response["needed"] == "im:write"
        assert slack.uploads() == [] and slack.dm("U0JANE") == []
    finally:
        await slack.stop()


async def test_post_update_thread_and_ephemeral(fake: FakeSlack) -> None:
    client = client_for(fake)
    assert (await client.auth_test())["user_id"] == "U0BOT"

    posted = await client.chat_postMessage(channel="C0TEAM", text="Tension", blocks=BUTTONS)
    assert posted["channel"] == "C0TEAM" and posted["message"]["text"] == "Tension"
    reply = await client.chat_postMessage(channel="C0TEAM", text="Note", thread_ts=posted["ts"])
    assert float(reply["ts"]) > float(posted["ts"])
    await client.chat_update(channel="C0TEAM", ts=posted["ts"], text="Tension (acked)")
    await client.chat_postEphemeral(channel="C0TEAM", user="U0JANE", text="Only you")
    await client.reactions_add(channel="C0TEAM", timestamp=posted["ts"], name="eyes")

    top, threaded = fake.messages("C0TEAM")
    assert (top.text, top.updates, top.user, top.thread_ts) == ("Tension (acked)", 1, "U0BOT", None)
    assert top.action_ids() == ["ack", "pick"]  # the blocks survive a text-only update
    assert top.blocks[0]["block_id"]  # Slack gives every block an id
    assert top.reactions == ["eyes"]
    assert fake.thread("C0TEAM", top.ts) == [threaded]
    assert fake.ephemerals("U0JANE")[0]["text"] == "Only you"
    post = fake.calls_for("chat.postMessage")[0]
    assert post.params["blocks"] == BUTTONS and "token" not in post.params  # as the bot sent it


async def test_an_ephemeral_reaches_only_a_member_of_the_channel(fake: FakeSlack) -> None:
    client = client_for(fake)
    fake.add_user("U0EVE", "eve")
    # As Slack: the recipient must be in the channel, and the bot too.
    error = await refused(client.chat_postEphemeral(channel="C0TEAM", user="U0EVE", text="Hi"))
    assert error.response["error"] == "user_not_in_channel"
    error = await refused(client.chat_postEphemeral(channel="C0OUT", user="U0JANE", text="Hi"))
    assert error.response["error"] == "not_in_channel"
    dm = (await client.conversations_open(users="U0EVE"))["channel"]["id"]
    error = await refused(client.chat_postEphemeral(channel=dm, user="U0JANE", text="Hi"))
    assert error.response["error"] == "user_not_in_channel"
    await client.chat_postEphemeral(channel=dm, user="U0EVE", text="Only you")
    assert (
        fake.ephemerals("U0EVE") == [{"channel": dm, "user": "U0EVE", "text": "Only you"}]
        and fake.ephemerals("U0JANE") == []
    )


async def test_form_bodies_and_query_strings_are_read_too(fake: FakeSlack) -> None:
    client = client_for(fake)
    form = {"channel": "C0TEAM", "text": "form", "blocks": json.dumps(BUTTONS)}
    await client.api_call("chat.postMessage", data=form)
    await client.api_call("chat.postMessage", params={"channel": "#team", "text": "query"})
    first, second = fake.messages("C0TEAM")
    assert first.action_ids() == ["ack", "pick"] and second.text == "query"


async def test_slack_errors_surface_as_slack_api_errors(fake: FakeSlack) -> None:
    client = client_for(fake)
    cases: list[tuple[Callable[[], Awaitable[Any]], str]] = [
        (lambda: client.chat_postMessage(channel="C0NOPE", text="x"), "channel_not_found"),
        (lambda: client.chat_postMessage(channel="C0OUT", text="x"), "not_in_channel"),
        (lambda: client.chat_update(channel="C0TEAM", ts="1.2", text="x"), "message_not_found"),
        (lambda: client.users_info(user="U0NOBODY"), "user_not_found"),
        (lambda: client.views_open(trigger_id="made-up", view=MODAL), "invalid_trigger_id"),
        (lambda: client.api_call("chat.unheardOf"), "unknown_method"),
        (lambda: client_for(fake, "xoxb-wrong").auth_test(), "invalid_auth"),
    ]
    for call, error in cases:
        exc = await refused(call())
        assert (exc.response.status_code, exc.response["error"]) == (200, error)

    wordy = {"type": "button", "action_id": "b", "text": {"type": "plain_text", "text": "x" * 80}}
    blocks = [{"type": "actions", "elements": [wordy]}]
    exc = await refused(client.chat_postMessage(channel="C0TEAM", text="x", blocks=blocks))
    assert exc.response["error"] == "invalid_blocks"
    assert "/blocks/0/elements/0/text" in exc.response["errors"][0]

    fake.inject("chat.postMessage", error="not_in_channel", times=2)
    for _ in range(2):
        exc = await refused(client.chat_postMessage(channel="C0TEAM", text="x"))
        assert exc.response["error"] == "not_in_channel"
    await client.chat_postMessage(channel="C0TEAM", text="x")  # the injection is used up

    fake.inject(status=503)
    exc = await refused(client.auth_test())
    assert exc.response.status_code == 503 and exc.response.get("error") is None
    assert [c.error for c in fake.calls][-1] == "http_503"


async def test_429_retry_after_is_honoured_by_the_retry_handler(fake: FakeSlack) -> None:
    client = client_for(fake, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    fake.inject("chat.postMessage", status=429, retry_after=1)
    started = time.monotonic()
    await client.chat_postMessage(channel="C0TEAM", text="eventually")
    assert time.monotonic() - started >= 1.0
    assert [c.status for c in fake.calls_for("chat.postMessage")] == [429, 200]
    assert len(fake.messages("C0TEAM")) == 1


async def test_per_channel_rate_limit() -> None:
    fake = FakeSlack(per_channel_rate=1)
    await fake.start()
    try:
        fake.add_channel("C0A", "a", [])
        fake.add_channel("C0B", "b", [])
        client = client_for(fake)
        first = await client.chat_postMessage(channel="C0A", text="1")
        await client.chat_postMessage(channel="C0B", text="another channel is fine")
        for call in (
            client.chat_postMessage(channel="C0A", text="2"),
            client.chat_update(channel="C0A", ts=first["ts"], text="1b"),
        ):
            exc = await refused(call)
            assert exc.response.status_code == 429 and exc.response["error"] == "ratelimited"
            assert exc.response.headers["Retry-After"] == "1"
        assert fake.throttled == 2 and len(fake.messages("C0A")) == 1
    finally:
        await fake.stop()


async def test_files_upload_v2_round_trip(fake: FakeSlack) -> None:
    client = client_for(fake)
    done = await client.files_upload_v2(
        channel="C0TEAM",
        content=b"date,tensions\n2026-11-01,3\n",
        filename="tensions.csv",
        title="Tensions",
        initial_comment="This week",
    )
    assert done["file"]["name"] == "tensions.csv"
    (upload,) = fake.uploads()
    assert upload["content"] == b"date,tensions\n2026-11-01,3\n"
    assert (upload["channel_id"], upload["filename"], upload["title"]) == (
        "C0TEAM",
        "tensions.csv",
        "Tensions",
    )
    assert upload["initial_comment"] == "This week" and fake.uploads == [upload]


async def test_conversations_open_gives_a_stable_dm(fake: FakeSlack) -> None:
    client = client_for(fake)
    first = (await client.conversations_open(users="U0JANE"))["channel"]["id"]
    again = (await client.conversations_open(users=["U0JANE"]))["channel"]["id"]
    assert first == again and first.startswith("D")
    await client.chat_postMessage(channel=first, text="Your return is due")
    assert [m.text for m in fake.dm("U0JANE")] == ["Your return is due"]
    assert fake.messages(first) == fake.dm("U0JANE")
    info = (await client.conversations_info(channel=first))["channel"]
    assert info["is_im"] and info["user"] == "U0JANE"
    members = (await client.conversations_members(channel="C0TEAM"))["members"]
    assert members == ["U0JANE", "U0BOT"]
    assert (await client.users_info(user="U0JANE"))["user"]["name"] == "jane"


async def test_views_publish_is_kept_per_user(fake: FakeSlack) -> None:
    client = client_for(fake)
    home = {"type": "home", "blocks": BUTTONS[:1]}
    published = await client.views_publish(user_id="U0JANE", view=home)
    assert published["view"]["id"].startswith("V")
    assert [v["type"] for v in fake.home_views("U0JANE")] == ["home"]


# --------------------------------------------------------------------- a Bolt app over HTTP


@dataclass
class Bolt:
    url: str
    seen: list[tuple[str, Any]] = field(default_factory=list)


@pytest.fixture
async def bolt(fake: FakeSlack) -> AsyncIterator[Bolt]:
    app = AsyncApp(
        client=client_for(fake),
        signing_secret=fake.signing_secret,
        process_before_response=True,
    )
    served = Bolt("")

    @app.action("ack")
    async def acknowledge(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        served.seen.append(("ack", body["actions"][0]["value"]))
        await client.chat_update(
            channel=body["container"]["channel_id"],
            ts=body["container"]["message_ts"],
            text="Acknowledged by " + body["user"]["id"],
            blocks=[],
        )

    @app.action("pick")
    async def pick(ack: AsyncAck, action: dict[str, Any]) -> None:
        await ack()
        served.seen.append(("pick", action["selected_option"]["value"]))

    @app.command("/tensions")
    async def tensions(
        ack: AsyncAck, command: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond
    ) -> None:
        await ack()
        served.seen.append(("command", command["text"]))
        if command["text"] == "form":
            await client.views_open(trigger_id=command["trigger_id"], view=MODAL)
            await respond("Opening the form")

    @app.view("cb")
    async def submitted(ack: AsyncAck, view: dict[str, Any]) -> None:
        why = view["state"]["values"]["why"]["why"]["value"]
        if not why:
            await ack(response_action="errors", errors={"why": "Say why"})
            return
        await ack()
        served.seen.append(("view", (view["private_metadata"], why)))

    @app.event("app_home_opened")
    async def home(event: dict[str, Any], client: AsyncWebClient) -> None:
        await client.views_publish(user_id=event["user"], view={"type": "home", "blocks": []})

    async def events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    web_app = web.Application()
    web_app.router.add_post("/slack/events", events)
    runner = web.AppRunner(web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    served.url = f"http://127.0.0.1:{port}/slack/events"
    yield served
    await runner.cleanup()


async def test_bolt_receives_clicks_commands_submissions_and_events(
    fake: FakeSlack, bolt: Bolt
) -> None:
    client = client_for(fake)
    await client.chat_postMessage(channel="C0TEAM", text="Tension", blocks=BUTTONS)
    (post,) = fake.messages("C0TEAM")
    jane = SlackUser(fake, "U0JANE", bolt.url)

    assert await jane.click(post, "pick", selected_option="coh") == 200
    assert await jane.click(post, "ack") == 200
    assert fake.calls_for("auth.test")  # Bolt checked its token against the fake
    assert fake.calls_for("chat.update")[0].params["ts"] == post.ts
    assert (post.text, post.updates, post.action_ids()) == ("Acknowledged by U0JANE", 1, [])
    with pytest.raises(AssertionError):
        await jane.click(post, "ack")  # the button has gone

    status, _ = await jane.slash("/tensions", "form", channel_id="C0TEAM")
    assert status == 200
    (modal,) = fake.views_opened()
    assert modal["callback_id"] == "cb" and modal["id"].startswith("V")
    assert fake.ephemerals("U0JANE")[-1]["text"] == "Opening the form"  # respond() reached us

    status, body = await jane.submit_view(modal, {"why": {"why": {"type": "plain_text_input"}}})
    assert (status, body) == (200, {"response_action": "errors", "errors": {"why": "Say why"}})
    state = {"why": {"why": {"type": "plain_text_input", "value": "Duplicate"}}}
    assert await jane.submit_view(modal, state) == (200, None)

    assert await jane.event({"type": "app_home_opened", "channel": "D0X", "tab": "home"}) == 200
    assert fake.home_views("U0JANE")
    assert bolt.seen == [
        ("pick", "coh"),
        ("ack", "action-1"),
        ("command", "form"),
        ("view", ("action-1", "Duplicate")),
    ]


async def test_the_modals_each_person_opened_are_kept_apart(fake: FakeSlack, bolt: Bolt) -> None:
    """Two officers open modals at once: each finds their own (a script that took the newest
    modal of anyone's submitted another person's, which the bot rightly refused)."""
    fake.add_user("U0SAM", "sam")
    jane, sam = SlackUser(fake, "U0JANE", bolt.url), SlackUser(fake, "U0SAM", bolt.url)
    await jane.slash("/tensions", "form")
    await sam.slash("/tensions", "form")
    await jane.slash("/tensions", "form")
    everyone = fake.views_opened()
    assert len(everyone) == 3
    assert fake.views_opened("U0JANE") == [everyone[0], everyone[2]]
    assert fake.views_opened("U0SAM") == [everyone[1]]
    assert fake.views_opened("U0NOBODY") == []


async def test_a_trigger_id_is_single_use(fake: FakeSlack, bolt: Bolt) -> None:
    jane = SlackUser(fake, "U0JANE", bolt.url)
    await jane.slash("/tensions", "form")
    exc = await refused(client_for(fake).views_open(trigger_id=jane.last_trigger_id, view=MODAL))
    assert exc.response["error"] == "exchanged_trigger_id"


async def test_a_trigger_id_expires_after_three_seconds_of_the_fakes_clock(fake: FakeSlack) -> None:
    """Slack's trigger ids live 3 s. The fake counts them on its own clock, so a busy machine
    cannot expire one, and a test can."""
    client = client_for(fake)
    fresh = fake._issue_trigger("U0JANE")
    fake.advance_trigger_clock(2.9)
    assert (await client.views_open(trigger_id=fresh, view=MODAL))["ok"]
    stale = fake._issue_trigger("U0JANE")
    fake.advance_trigger_clock(3.1)
    exc = await refused(client.views_open(trigger_id=stale, view=MODAL))
    assert exc.response["error"] == "expired_trigger_id"


async def test_bolt_refuses_forged_and_stale_signatures(fake: FakeSlack, bolt: Bolt) -> None:
    jane = SlackUser(fake, "U0JANE", bolt.url)
    body = b"command=%2Ftensions&text=&user_id=U0JANE&team_id=T0TEST&channel_id=C0TEAM"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    forged = SlackUser(FakeSlack(signing_secret="not-the-secret"), "U0JANE", bolt.url)
    assert (await jane.raw(body, {**form, **forged.sign(body)}))[0] == 401
    stale = jane.sign(body, timestamp=int(time.time()) - 6 * 60)
    assert (await jane.raw(body, {**form, **stale}))[0] == 401
    assert (await jane.raw(body, {**form, **jane.sign(body)}))[0] == 200
    assert bolt.seen == [("command", "")]
