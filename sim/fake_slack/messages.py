"""The Web API methods on channels and messages: ``auth.test``, ``chat.*``,
``conversations.*``, ``users.info`` and ``reactions.add``, checked as strictly as Slack checks
them (channel membership, the scope a channel's kind needs)."""

from __future__ import annotations

from typing import Any

from sim.fake_slack.records import BOT_ID, READ_SCOPES, _Channel, _SlackError
from sim.fake_slack.state import _SlackState


class _Messages(_SlackState):
    """The message and channel methods of :class:`FakeSlack`."""

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://tensionbot-test.slack.com/",
            "team": "Test",
            "user": self._users[self.bot_user_id],
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._postable(params.get("channel"))
        text, blocks = self._content(params, required=True)
        thread = str(params.get("thread_ts") or "") or None
        if thread is not None:
            parent = next((m for m in ch.messages if m.ts == thread), None)
            if parent is None:
                raise _SlackError("thread_not_found")
            thread = parent.thread_ts or parent.ts  # a reply to a reply joins the same thread
        m = self._post(ch, text, blocks or [], thread)
        return {"channel": ch.id, "ts": m.ts, "message": self._message_json(m)}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._postable(params.get("channel"))
        m = next((m for m in ch.messages if m.ts == params.get("ts")), None)
        if m is None:
            raise _SlackError("message_not_found")
        text, blocks = self._content(params, required=True)
        if "text" in params:
            m.text = text
        if blocks is not None:
            m.blocks = blocks
        m.updates += 1
        return {"channel": ch.id, "ts": m.ts, "text": m.text, "message": self._message_json(m)}

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._postable(params.get("channel"))
        user = str(params.get("user") or "")
        if not user:
            raise _SlackError("user_not_found")
        if user not in self._members(ch):  # as Slack: only a member of the channel sees it
            raise _SlackError("user_not_in_channel")
        text, blocks = self._content(params, required=True)
        payload = {**params, "channel": ch.id, "text": text}
        if blocks is not None:
            payload["blocks"] = blocks
        self._ephemeral[user].append(payload)
        return {"message_ts": self._next_ts()}

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("channel"):
            ch = self._channels.get(str(params["channel"]))
            if ch is None:
                raise _SlackError("channel_not_found")
            return {"channel": {"id": ch.id}, "no_op": True, "already_open": True}
        users = [u for u in str(params.get("users", "")).split(",") if u.strip()]
        if not users:
            raise _SlackError("users_list_not_supplied")
        if any(not u.startswith(("U", "W")) for u in users):
            raise _SlackError("user_not_found")
        if len(users) > 1:  # a group DM, stable per set of people
            self._require("mpim:write")
            key = ",".join(sorted(set(users)))
            if key not in self._dms:
                self._dms[key] = self._new_id("G")
                self._channels[self._dms[key]] = _Channel(
                    self._dms[key], f"mpdm-{key}", [*sorted(set(users)), self.bot_user_id]
                )
            return {"channel": {"id": self._dms[key]}}
        existed = users[0] in self._dms
        dm = self._open_dm(users[0])
        return {"channel": {"id": dm}, "no_op": existed, "already_open": existed}

    def _readable(self, ref: Any) -> _Channel:
        """A channel for conversations.info / .members: the scope needed is its kind's."""
        ch = self._channels.get(str(ref or ""))
        if ch is None:
            raise _SlackError("channel_not_found")
        if ch.im_user is not None:
            kind = "im"
        elif ch.name.startswith("mpdm-"):
            kind = "mpim"
        else:
            kind = "private" if ch.id.startswith("G") else "public"
        self._require(READ_SCOPES[kind])
        return ch

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._readable(params.get("channel"))
        if ch.im_user is not None:
            info: dict[str, Any] = {"id": ch.id, "is_im": True, "user": ch.im_user, "is_open": True}
            return {"channel": info}
        return {
            "channel": {
                "id": ch.id,
                "name": ch.name,
                "is_channel": not ch.id.startswith("G"),
                "is_group": False,
                "is_im": False,
                "is_mpim": ch.name.startswith("mpdm-"),
                "is_private": ch.id.startswith("G"),
                "is_archived": False,
                "is_member": ch.bot_is_member,
                "num_members": len(self._members(ch)),
                "context_team_id": self.team_id,
            }
        }

    def _members(self, ch: _Channel) -> list[str]:
        members = list(ch.members)
        if ch.bot_is_member and self.bot_user_id not in members:
            members.append(self.bot_user_id)
        return members

    def _conversations_members(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._readable(params.get("channel"))
        return {"members": self._members(ch), "response_metadata": {"next_cursor": ""}}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user", ""))
        if user not in self._users:
            raise _SlackError("user_not_found")
        name = self._users[user]
        return {
            "user": {
                "id": user,
                "team_id": self.team_id,
                "name": name,
                "real_name": name,
                "deleted": False,
                "is_bot": user == self.bot_user_id,
                "is_admin": False,
                "tz": "Europe/London",
                "profile": {"real_name": name, "display_name": name, "team": self.team_id},
            }
        }

    # ----------------------------------------------------------------- reactions

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        ch = self._postable(params.get("channel"))
        m = next((m for m in ch.messages if m.ts == params.get("timestamp")), None)
        if m is None:
            raise _SlackError("message_not_found")
        name = str(params.get("name") or "")
        if not name:
            raise _SlackError("invalid_name")
        if name in m.reactions:
            raise _SlackError("already_reacted")
        m.reactions.append(name)
        return {}
