"""The Web API methods on views and files: modals (``views.open`` / ``.push`` / ``.update``, with
single-use triggers that expire on the fake's own clock), App Home (``views.publish``), file
uploads (``files.getUploadURLExternal``, the upload URL, ``files.completeUploadExternal``) and
what Slack does with a POST to a ``response_url``."""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any

from aiohttp import web

from sim.fake_slack.blocks import _checked_blocks, _details, _view_errors
from sim.fake_slack.messages import _Messages
from sim.fake_slack.params import _form
from sim.fake_slack.records import (
    APP_ID,
    BOT_ID,
    FIRST_TS,
    MAX_VIEW_STACK,
    _ResponseTarget,
    _SlackError,
    _Trigger,
)


class _Views(_Messages):
    """The view, file and response_url parts of :class:`FakeSlack`."""

    # ----------------------------------------------------------------- views

    def _exchange(self, trigger_id: Any) -> _Trigger:
        trigger = self._triggers.get(str(trigger_id or ""))
        if trigger is None:
            raise _SlackError("invalid_trigger_id")
        if trigger.used:
            raise _SlackError("exchanged_trigger_id")
        if self._trigger_clock - trigger.issued > self.trigger_ttl:
            raise _SlackError("expired_trigger_id")
        trigger.used = True
        return trigger

    def _make_view(
        self, view: Any, kind: str, root: str | None = None, previous: str | None = None
    ) -> dict[str, Any]:
        if not isinstance(view, dict) or view.get("type") != kind:
            raise _SlackError("invalid_arguments")
        errors = _view_errors(view)
        if errors:
            raise _SlackError("invalid_arguments", **_details(errors))
        view_id = self._new_id("V")
        blocks = _checked_blocks(view.get("blocks"), limit=100, ids=itertools.count(1))
        made = {
            **view,
            "id": view_id,
            "team_id": self.team_id,
            "blocks": blocks,
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": self._new_id("h."),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": root or view_id,
            "previous_view_id": previous,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
        }
        self._views[view_id] = made
        return made

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = self._exchange(params.get("trigger_id"))
        view = self._make_view(params.get("view"), "modal")
        self._stacks[view["id"]] = [view["id"]]
        self._opened.append(view)
        self._opener[view["id"]] = trigger.user
        return {"view": view}

    def _views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = self._exchange(params.get("trigger_id"))
        if trigger.view_id is None or trigger.view_id not in self._views:
            raise _SlackError("invalid_trigger_id")  # a push needs an interaction in a modal
        root = self._views[trigger.view_id]["root_view_id"]
        stack = self._stacks.setdefault(root, [root])
        if len(stack) >= MAX_VIEW_STACK:
            raise _SlackError("push_limit_reached")
        view = self._make_view(params.get("view"), "modal", root, stack[-1])
        stack.append(view["id"])
        self._opened.append(view)
        self._opener[view["id"]] = trigger.user
        return {"view": view}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view_id = str(params.get("view_id") or "")
        if not view_id and params.get("external_id"):
            found = [v for v in self._views.values() if v["external_id"] == params["external_id"]]
            view_id = found[-1]["id"] if found else ""
        old = self._views.get(view_id)
        if old is None:
            raise _SlackError("not_found")
        if params.get("hash") and params["hash"] != old["hash"]:
            raise _SlackError("hash_conflict")
        new = self._make_view(params.get("view"), old["type"], old["root_view_id"])
        del self._views[new["id"]]
        new.update(id=view_id, previous_view_id=old["previous_view_id"], state=old["state"])
        self._views[view_id] = new
        return {"view": new}

    def _views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user_id") or "")
        if not user.startswith(("U", "W")):
            raise _SlackError("invalid_arguments")
        view = self._make_view(params.get("view"), "home")
        self._home[user].append(view)
        return {"view": view}

    # ----------------------------------------------------------------- files

    def _files_get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("filename") or not str(params.get("length", "")).isdigit():
            raise _SlackError("invalid_arguments")
        alt = params.get("alt_txt")
        if alt is not None and len(str(alt)) > 1000:  # Slack's limit for alt text
            raise _SlackError("invalid_arguments")
        file_id = self._new_id("F")
        self._files[file_id] = {
            "filename": str(params["filename"]),
            "length": int(params["length"]),
            "content": None,
            "alt_txt": None if alt is None else str(alt),
        }
        return {"upload_url": f"{self.base_url}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files")
        if not isinstance(files, list) or not files:
            raise _SlackError("invalid_arguments")
        channels = [str(params["channel_id"])] if params.get("channel_id") else []
        channels += [c for c in str(params.get("channels") or "").split(",") if c]
        resolved = [self._postable(c).id for c in channels]
        done = []
        for f in files:
            stored = self._files.get(str(f.get("id") if isinstance(f, dict) else ""))
            if stored is None or stored["content"] is None:
                raise _SlackError("file_not_found")
            title = f.get("title") or stored["filename"]
            targets: list[str | None] = [*resolved] or [None]  # no channel: a private file
            for channel in targets:
                self.uploads.append(
                    {
                        "file_id": f["id"],
                        "channel_id": channel,
                        "filename": stored["filename"],
                        "title": title,
                        "alt_txt": stored["alt_txt"],  # given when the upload was started
                        "content": stored["content"],
                        "length": stored["length"],
                        "initial_comment": params.get("initial_comment"),
                        "thread_ts": params.get("thread_ts"),
                    }
                )
            done.append(
                {
                    "id": f["id"],
                    "name": stored["filename"],
                    "title": title,
                    "size": len(stored["content"]),
                    "user": self.bot_user_id,
                    "created": int(time.time()),
                    "channels": resolved,
                    "is_public": any(c.startswith("C") for c in resolved),
                }
            )
        return {"files": done}

    async def _upload(self, request: web.Request) -> web.Response:
        """The upload URL handed out by files.getUploadURLExternal (POST or PUT of the bytes)."""
        stored = self._files.get(request.match_info["file_id"])
        if stored is None or request.method not in ("POST", "PUT"):
            return web.Response(status=404, text="not found")
        if request.content_type == "multipart/form-data":
            form = await _form(request)
            content = next((v for v in form.values() if isinstance(v, bytes)), b"")
        else:
            content = await request.read()
        stored["content"] = content
        return web.Response(text=f"OK - {len(content)}")

    # ----------------------------------------------------------------- response_url

    def _response_url(self, user: str, channel: str | None, message_ts: str | None) -> str:
        key = hashlib.sha256(f"{next(self._ids)}:{user}".encode()).hexdigest()[:24]
        self._response_urls[key] = _ResponseTarget(user, channel, message_ts)
        return f"{self.base_url}/response/{key}"

    async def _respond(self, request: web.Request) -> web.Response:
        """What Slack does with a POST to a response_url (Bolt's ``respond()``)."""
        target = self._response_urls.get(request.match_info["key"])
        if target is None:
            return web.Response(status=404, text="no_service")
        try:
            payload = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        self.responses.append({"user": target.user, "channel": target.channel, **payload})
        ch = self._channels.get(target.channel or "")
        original = next((m for m in ch.messages if m.ts == target.message_ts), None) if ch else None
        blocks = None
        if payload.get("blocks") is not None:
            try:
                blocks = _checked_blocks(payload["blocks"], limit=50, ids=itertools.count(1))
            except _SlackError:
                return web.Response(status=400, text="invalid_blocks")
        if payload.get("delete_original") and ch and original:
            ch.messages.remove(original)
        elif payload.get("replace_original") and original:
            original.text = str(payload.get("text", original.text))
            original.blocks = blocks if blocks is not None else original.blocks
            original.updates += 1
        elif payload.get("response_type") == "in_channel" and ch:
            self._post(ch, str(payload.get("text", "")), blocks or [], payload.get("thread_ts"))
        else:
            self._ephemeral[target.user].append(
                {**payload, "channel": target.channel, "user": target.user}
            )
        return web.Response(text="ok")

    # ----------------------------------------------------------------- triggers

    def advance_trigger_clock(self, seconds: float) -> None:
        """Let ``seconds`` pass for the triggers issued so far (they expire after
        ``trigger_ttl``)."""
        self._trigger_clock += seconds

    def _issue_trigger(self, user: str, view_id: str | None = None) -> str:
        n = next(self._ids)
        trigger_id = f"{n}.{FIRST_TS + n}.{hashlib.sha256(str(n).encode()).hexdigest()[:32]}"
        self._triggers[trigger_id] = _Trigger(user, self._trigger_clock, view_id)
        return trigger_id
