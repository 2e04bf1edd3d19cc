"""A local simulated Slack: the Web API the bot calls, and a user who clicks in Slack.

:class:`FakeSlack` is an ``aiohttp.web`` server on 127.0.0.1 that answers the real ``slack_sdk``
``AsyncWebClient`` (``base_url=f"{fake.base_url}/api/"``) with real Slack JSON: messages,
updates, threads, ephemerals, modals, App Home, DMs and file uploads. Like Slack it answers
``{"ok": false, "error": ...}`` with HTTP 200, except rate limits (HTTP 429 with
``Retry-After``); errors, 5xx answers and rate limits can be injected, and a per-channel posting
rate can be enforced. Like Slack it checks the token's scopes (``missing_scope`` with
``needed`` and ``provided``; every answer carries ``x-oauth-scopes``): by default the token has
exactly the scopes ``deploy/slack-manifest.yml`` asks for. Block Kit payloads are checked against Slack's documented limits
(``invalid_blocks``), and ``trigger_id`` s expire after 3 s and can be exchanged only once. The
3 s run on the fake's own trigger clock, which moves only when a test calls
:meth:`FakeSlack.advance_trigger_clock` (a busy machine must not expire a trigger: CI found one
expired by load alone).

:class:`SlackUser` sends what Slack's servers send to the bot — signed ``block_actions``,
``view_submission``, global ``shortcut`` payloads, slash commands and Events API envelopes — to
the bot's real Bolt endpoint.
Their ``response_url`` points back at this server, so Bolt's ``respond()`` works offline too.

The bot's Socket Mode connection (``apps.connections.open`` + a WebSocket) is simulated as well.

The parts: :mod:`.server` (the aiohttp server, scopes, rate windows, faults and Socket Mode),
:mod:`.messages` (the channel and message methods), :mod:`.views` (views, App Home, files and
response_url), :mod:`.blocks` (Block Kit limits), :mod:`.params` (reading a request),
:mod:`.state` and :mod:`.records` (what it keeps), :mod:`.shown` (how a client shows mrkdwn),
:mod:`.user` (:class:`SlackUser`).
"""

from sim.fake_slack.records import (
    APP_ID,
    BOT_ID,
    FIRST_TS,
    JSON_FIELDS,
    MAX_VIEW_STACK,
    METHOD_SCOPES,
    NOT_INTERACTIVE,
    RATE_LIMITED,
    READ_SCOPES,
    TRIGGER_TTL,
    Handler,
    SlackCall,
    SlackMessage,
)
from sim.fake_slack.server import FakeSlack
from sim.fake_slack.shown import Shown, shown
from sim.fake_slack.user import SlackUser

__all__ = [
    "APP_ID",
    "BOT_ID",
    "FIRST_TS",
    "JSON_FIELDS",
    "MAX_VIEW_STACK",
    "METHOD_SCOPES",
    "NOT_INTERACTIVE",
    "RATE_LIMITED",
    "READ_SCOPES",
    "TRIGGER_TTL",
    "FakeSlack",
    "Handler",
    "Shown",
    "SlackCall",
    "SlackMessage",
    "SlackUser",
    "shown",
]
