"""What a Slack request must look like before Bolt and our listeners see it.

A request signed with our secret still comes from outside: a bug at Slack, a changed payload
format, or a test of ours. Bolt parses the body before it checks anything and our listeners
index into it, so a body that is not the shape they rely on would end in a 500 and a
traceback. :func:`problem` names what is wrong (never quoting the body: it may carry report
text), and the endpoint answers 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _str(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _optional_str(mapping: Mapping[str, Any], key: str) -> bool:
    return mapping.get(key) is None or isinstance(mapping.get(key), str)


def _user(body: Mapping[str, Any]) -> str | None:
    user = body.get("user")
    if not isinstance(user, Mapping) or not _str(user.get("id")):
        return "no user id"
    return None


def _actions(body: Mapping[str, Any]) -> str | None:
    actions = body.get("actions")
    if not isinstance(actions, list) or not actions:
        return "no actions"
    for action in actions:
        if not isinstance(action, Mapping) or not _str(action.get("action_id")):
            return "an action without an action id"
        if not _optional_str(action, "value"):
            return "an action value that is not text"
    if not _str(body.get("trigger_id")):
        return "no trigger id"
    for key in ("channel", "container"):
        part = body.get(key)
        if part is not None and not isinstance(part, Mapping):
            return f"a {key} that is not an object"
    return None


def _element(element: Any) -> str | None:
    if not isinstance(element, Mapping):
        return "a state element that is not an object"
    if not _optional_str(element, "type") or not _optional_str(element, "value"):
        return "a state element of the wrong shape"
    option = element.get("selected_option")
    if option is not None and not (isinstance(option, Mapping) and _optional_str(option, "value")):
        return "a selected option of the wrong shape"
    options = element.get("selected_options")
    if options is not None and not (
        isinstance(options, list)
        and all(isinstance(o, Mapping) and _optional_str(o, "value") for o in options)
    ):
        return "selected options of the wrong shape"
    return None


def _view(body: Mapping[str, Any]) -> str | None:
    view = body.get("view")
    if not isinstance(view, Mapping):
        return "no view"
    if not _str(view.get("callback_id")):
        return "a view without a callback id"
    for key in ("id", "hash", "private_metadata"):
        if not _optional_str(view, key):
            return f"a view {key} that is not text"
    state = view.get("state")
    if not isinstance(state, Mapping) or not isinstance(state.get("values"), Mapping):
        return "a view without state"
    for block in state["values"].values():
        if not isinstance(block, Mapping):
            return "a state block that is not an object"
        for element in block.values():
            if (found := _element(element)) is not None:
                return found
    return None


def _command(body: Mapping[str, Any]) -> str | None:
    for key in ("command", "user_id", "channel_id"):
        if not _str(body.get(key)):
            return f"a slash command without {key}"
    return None


def _event(body: Mapping[str, Any]) -> str | None:
    event = body.get("event")
    if not isinstance(event, Mapping) or not _str(event.get("type")):
        return "an event callback without an event"
    if event["type"] == "app_home_opened" and not _str(event.get("user")):
        return "app_home_opened without a user"
    return None


# Fields Bolt itself reads from every request (to find the team, user and channel, or to skip
# its own events): if present, each must be of the type Slack sends.
OBJECTS = ("event", "view", "container", "message", "previous_message", "item", "assistant_thread")
OBJECT_OR_TEXT = ("team", "enterprise", "user", "channel", "bot_profile")


def _bolt_fields(body: Mapping[str, Any]) -> str | None:
    for key in OBJECTS:
        if key in body and not isinstance(body[key], Mapping):
            return f"a {key} that is not an object"
    for key in OBJECT_OR_TEXT:  # Slack sends "enterprise": null outside Enterprise Grid
        if body.get(key) is not None and not isinstance(body[key], Mapping | str):
            return f"a {key} that is neither an object nor text"
    for key in ("team", "enterprise", "user", "channel"):
        part = body.get(key)
        if isinstance(part, Mapping):
            for inner in ("id", "team_id", "enterprise_id"):
                if not _optional_str(part, inner):
                    return f"a {key} {inner} that is not text"
    authorizations = body.get("authorizations")
    if authorizations is not None and not (
        isinstance(authorizations, list) and all(isinstance(a, Mapping) for a in authorizations)
    ):
        return "authorizations of the wrong shape"
    for key in ("user_id", "team_id", "enterprise_id", "channel_id", "bot_id", "thread_ts"):
        if not _optional_str(body, key):
            return f"a {key} that is not text"
    event = body.get("event")
    if isinstance(event, Mapping) and event is not body:
        return _bolt_fields(event)
    return None


def problem(body: Any) -> str | None:
    """Why a parsed Slack request body cannot be served (a short reason, never its content),
    or None if it has the shape our listeners rely on."""
    if not isinstance(body, Mapping):
        return "not a JSON object"
    if (found := _bolt_fields(body)) is not None:
        return found
    if "command" in body:
        return _command(body)
    if "ssl_check" in body:
        return None
    kind = body.get("type")
    if not _str(kind):
        return "no type"
    if kind == "url_verification":
        return None if _str(body.get("challenge")) else "url_verification without a challenge"
    if kind == "event_callback":
        return _event(body)
    if kind == "block_actions":
        return _user(body) or _actions(body)
    if kind in ("view_submission", "view_closed"):
        return _user(body) or _view(body)
    return None  # a kind we do not listen to: Bolt answers it
