"""A person in Slack (:class:`SlackUser`): clicks, view submissions, global shortcuts, slash
commands and events, signed with the fake's signing secret and sent to the bot's real Bolt
endpoint (or over the Socket Mode connection), exactly as Slack's servers would send them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

import aiohttp

from sim.fake_slack.records import APP_ID, BOT_ID, SlackMessage

if TYPE_CHECKING:
    from sim.fake_slack.server import FakeSlack

_EMPTY_STATE = {  # element type -> (key of its state, whether that is a list)
    "plain_text_input": ("value", False),
    "email_text_input": ("value", False),
    "url_text_input": ("value", False),
    "number_input": ("value", False),
    "static_select": ("selected_option", False),
    "external_select": ("selected_option", False),
    "radio_buttons": ("selected_option", False),
    "users_select": ("selected_user", False),
    "conversations_select": ("selected_conversation", False),
    "channels_select": ("selected_channel", False),
    "datepicker": ("selected_date", False),
    "timepicker": ("selected_time", False),
    "checkboxes": ("selected_options", True),
    "multi_static_select": ("selected_options", True),
    "multi_external_select": ("selected_options", True),
    "multi_users_select": ("selected_users", True),
    "multi_conversations_select": ("selected_conversations", True),
    "multi_channels_select": ("selected_channels", True),
}


def _complete_state(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """View state as Slack sends it: an element left empty still has its key, set to null (or
    to an empty list for checkboxes and multi-selects)."""
    complete: dict[str, dict[str, Any]] = {}
    for block_id, actions in values.items():
        complete[block_id] = {}
        for action_id, state in actions.items():
            state = dict(state)
            key, is_list = _EMPTY_STATE.get(str(state.get("type", "")), ("", False))
            if key:
                state.setdefault(key, [] if is_list else None)
            complete[block_id][action_id] = state
    return complete


class SlackUser:
    """A person in Slack: their clicks, submissions, commands and events reach the bot signed
    with the fake's signing secret, exactly as Slack's servers would send them."""

    def __init__(self, fake: FakeSlack, user_id: str, app_url: str) -> None:
        self.fake, self.user_id, self.app_url = fake, user_id, app_url
        self.last_trigger_id: str | None = None

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """Slack's signature headers for ``body`` (v0 HMAC-SHA256 of ``v0:timestamp:body``)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        base = f"v0:{ts}:".encode() + body
        digest = hmac.new(self.fake.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}

    async def raw(self, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """POST bytes to the bot as they are (for negative tests); returns (status, body)."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.app_url, data=body, headers=headers) as resp,
        ):
            return resp.status, await resp.text()

    async def _post_form(self, fields: dict[str, str]) -> tuple[int, str]:
        body = urllib.parse.urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self.sign(body)}
        return await self.raw(body, headers)

    def _trigger(self, view_id: str | None = None) -> str:
        self.last_trigger_id = self.fake._issue_trigger(self.user_id, view_id)
        return self.last_trigger_id

    def _user(self) -> dict[str, Any]:
        name = self.fake._users.get(self.user_id, self.user_id.lower())
        return {"id": self.user_id, "username": name, "name": name, "team_id": self.fake.team_id}

    def _base(self) -> dict[str, Any]:
        return {
            "user": self._user(),
            "api_app_id": APP_ID,
            "token": "legacy-verification-token",
            "team": {"id": self.fake.team_id, "domain": "tensionbot-test"},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _channel_json(self, channel_id: str) -> dict[str, Any]:
        ch = self.fake._channels.get(channel_id)
        if ch is None or ch.im_user is not None:
            return {"id": channel_id, "name": "directmessage" if ch else "unknown"}
        return {"id": channel_id, "name": ch.name}

    def _action(
        self, block_id: str, element: dict[str, Any], value: str | None, selected: str | None
    ) -> dict[str, Any]:
        kind = element["type"]
        action: dict[str, Any] = {
            "type": kind,
            "action_id": element["action_id"],
            "block_id": block_id,
            "action_ts": f"{time.time():.6f}",
        }
        if kind == "button":
            action["text"] = element.get("text", {})
            action["value"] = element.get("value", "") if value is None else value
            if "style" in element:
                action["style"] = element["style"]
        elif kind in ("static_select", "overflow", "radio_buttons", "external_select"):
            wanted = selected if selected is not None else value
            options = list(element.get("options") or [])
            for group in element.get("option_groups") or []:
                options += group.get("options") or []
            option = next((o for o in options if o.get("value") == wanted), None)
            if option is None and kind == "external_select" and wanted is not None:
                option = {"text": {"type": "plain_text", "text": wanted}, "value": wanted}
            if option is None:
                have = [o.get("value") for o in options]
                raise AssertionError(f"no option {wanted!r} in {element['action_id']}: {have}")
            action["selected_option"] = option
        elif kind in ("users_select", "conversations_select", "channels_select"):
            key = {"users_select": "selected_user", "conversations_select": "selected_conversation"}
            action[key.get(kind, "selected_channel")] = selected or value
        elif kind == "datepicker":
            action["selected_date"] = selected or value
        elif kind == "checkboxes":
            chosen = set((selected or value or "").split(","))
            action["selected_options"] = [
                o for o in element.get("options") or [] if o.get("value") in chosen
            ]
        elif value is not None:
            action["value"] = value
        return action

    async def click(
        self,
        message: SlackMessage,
        action_id: str,
        value: str | None = None,
        *,
        selected_option: str | None = None,
        socket: bool = False,
    ) -> int:
        """Use an interactive element of a message (as it now stands): a button (``value``
        overrides the button's own), or a select / overflow (``selected_option`` is the value of
        the option chosen). Sends the signed ``block_actions`` payload; returns Bolt's HTTP
        status (over Socket Mode when ``socket``; then returns 0)."""
        block_id, element = message.element(action_id)
        payload = {
            **self._base(),
            "type": "block_actions",
            "container": {
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            },
            "trigger_id": self._trigger(),
            "channel": self._channel_json(message.channel),
            "message": self.fake._message_json(message),
            "state": {"values": {}},
            "response_url": self.fake._response_url(self.user_id, message.channel, message.ts),
            "actions": [self._action(block_id, element, value, selected_option)],
        }
        if socket:
            await self.fake.socket_send("interactive", payload)
            return 0
        status, _ = await self._post_form({"payload": json.dumps(payload)})
        return status

    async def submit_view(
        self, view: dict[str, Any], values: dict[str, dict[str, Any]]
    ) -> tuple[int, dict[str, Any] | None]:
        """Submit a modal with ``values`` (block_id -> action_id -> element state, e.g.
        ``{"type": "plain_text_input", "value": "..."}``). Returns Bolt's status and its JSON
        answer (``response_action`` errors/update/push), or None for a plain acknowledgement."""
        view_id = view.get("id") or self.fake._new_id("V")
        current = self.fake._views.get(view_id, view)
        submitted = {
            "id": view_id,
            "team_id": self.fake.team_id,
            "type": current.get("type", "modal"),
            "blocks": current.get("blocks", []),
            "private_metadata": current.get("private_metadata", ""),
            "callback_id": current.get("callback_id", ""),
            "external_id": current.get("external_id", ""),
            "title": current.get("title"),
            "submit": current.get("submit"),
            "close": current.get("close"),
            "hash": current.get("hash", ""),
            "state": {"values": _complete_state(values)},
            "root_view_id": current.get("root_view_id", view_id),
            "previous_view_id": current.get("previous_view_id"),
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        }
        payload = {
            **self._base(),
            "type": "view_submission",
            "trigger_id": self._trigger(view_id),
            "view": submitted,
            "response_urls": [],
        }
        status, text = await self._post_form({"payload": json.dumps(payload)})
        body = json.loads(text) if text.strip().startswith("{") else None
        return status, body

    async def slash(
        self, command: str, text: str = "", channel_id: str = "C0GENERAL"
    ) -> tuple[int, str]:
        """Run a slash command in a channel; returns Bolt's status and body."""
        channel = self._channel_json(channel_id)
        return await self._post_form(
            {
                "token": "legacy-verification-token",
                "team_id": self.fake.team_id,
                "team_domain": "tensionbot-test",
                "channel_id": channel_id,
                "channel_name": channel["name"],
                "user_id": self.user_id,
                "user_name": self._user()["name"],
                "command": command,
                "text": text,
                "api_app_id": APP_ID,
                "is_enterprise_install": "false",
                "response_url": self.fake._response_url(self.user_id, channel_id, None),
                "trigger_id": self._trigger(),
            }
        )

    async def shortcut(self, callback_id: str) -> int:
        """Pick a global shortcut from Slack's shortcut menu: the signed ``shortcut`` payload
        (with a fresh trigger_id, good for one ``views.open``) as Slack sends it; returns
        Bolt's HTTP status."""
        payload = {
            "type": "shortcut",
            "token": "legacy-verification-token",
            "action_ts": f"{time.time():.6f}",
            "team": {"id": self.fake.team_id, "domain": "tensionbot-test"},
            "user": {
                "id": self.user_id,
                "username": self._user()["username"],
                "team_id": self.fake.team_id,
            },
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": self._trigger(),
        }
        status, _ = await self._post_form({"payload": json.dumps(payload)})
        return status

    async def event(self, event: dict[str, Any]) -> int:
        """Deliver an Events API ``event_callback`` (e.g. ``app_home_opened``, a ``message`` in
        a DM) as Slack does; ``user`` and ``event_ts`` are filled in if absent."""
        event_ts = f"{time.time():.6f}"
        event = {"user": self.user_id, "event_ts": event_ts, **event}
        n = next(self.fake._ids)
        envelope = {
            "token": "legacy-verification-token",
            "team_id": self.fake.team_id,
            "context_team_id": self.fake.team_id,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{n:08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": self.fake.team_id,
                    "user_id": self.fake.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": f"4-{hashlib.sha256(str(n).encode()).hexdigest()[:16]}",
        }
        body = json.dumps(envelope).encode()
        status, _ = await self.raw(body, {"Content-Type": "application/json", **self.sign(body)})
        return status
