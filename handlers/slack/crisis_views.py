"""Block Kit modals for crisis cadences (the "Start a crisis return" and "Stop a crisis return"
global shortcuts), and reading their submitted state back.

Ward, neighbourhood and role names come from the configuration, never from a person; they go
into ``plain_text`` objects all the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from bot.config import Config
from bot.domain import Role
from bot.returns.crisis import Cadence, CrisisError, CrisisRequest, request
from handlers.slack.ids import ViewId
from handlers.slack.limits import MAX_CHECKBOXES, MAX_OPTION_TEXT, MAX_OPTION_VALUE, MAX_OPTIONS

BLOCKS = ("places", "roles", "every", "until")
"""The start modal's input blocks, in order (each has one element, action id ``pick``)."""

ROLE_LABELS = {
    Role.COUNCILLOR: "Councillors",
    Role.COMMUNITY_LEADER: "Community leaders",
    Role.OFFICER: "Officers",
    Role.PREVENT_OFFICER: "Prevent and Cohesion Officer",
    Role.ADMIN: "Admins",
}


def _text(text: str, limit: int = MAX_OPTION_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": text if len(text) <= limit else text[: limit - 1] + "…"}


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": _text(label), "value": value[:MAX_OPTION_VALUE]}


def _input(block_id: str, label: str, element: dict[str, Any], optional: bool) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "label": _text(label, 2000),
        "optional": optional,
        "element": {**element, "action_id": "pick"},
    }


def start_modal(config: Config) -> dict[str, Any]:
    """Wards or neighbourhoods, roles, daily or weekly, an optional last day."""
    groups = []
    hoods = [_option(n.name, f"hood:{n.key}") for n in config.pact.neighbourhoods]
    if hoods:
        groups.append({"label": _text("Neighbourhoods"), "options": hoods[:MAX_OPTIONS]})
    wards = [_option(w, f"ward:{w}") for w in config.partnership.wards]
    groups.append({"label": _text("Wards"), "options": wards[:MAX_OPTIONS]})
    every = [_option("Daily (20 hours to answer)", "daily")]
    every.append(_option("Weekly (3 days to answer)", "weekly"))
    return {
        "type": "modal",
        "callback_id": ViewId.CRISIS_START,
        "title": _text("Crisis return", 24),
        "submit": _text("Start", 24),
        "close": _text("Cancel", 24),
        "blocks": [
            _input(
                "places",
                "Wards or neighbourhoods",
                {"type": "multi_static_select", "option_groups": groups},
                optional=False,
            ),
            _input(
                "roles",
                "Sent to (none chosen: councillors and community leaders)",
                {
                    "type": "multi_static_select",
                    "options": [_option(label, role.value) for role, label in ROLE_LABELS.items()],
                },
                optional=True,
            ),
            _input(
                "every",
                "How often",
                {"type": "radio_buttons", "options": every, "initial_option": every[0]},
                optional=False,
            ),
            _input("until", "Last day (empty: until stopped)", {"type": "datepicker"}, True),
        ],
    }


def stop_modal(running: Sequence[Cadence], describe: Any) -> dict[str, Any]:
    """The running cadences to tick and stop (``describe`` gives each one's line)."""
    options = [_option(describe(c), str(c.id)) for c in running[:MAX_CHECKBOXES]]
    return {
        "type": "modal",
        "callback_id": ViewId.CRISIS_STOP,
        "title": _text("Stop crisis returns", 24),
        "submit": _text("Stop", 24),
        "close": _text("Cancel", 24),
        "blocks": [
            _input(
                "cadences",
                "Stop these (returns already sent stay open to their deadline)",
                {"type": "checkboxes", "options": options},
                optional=False,
            )
        ],
    }


def nothing_running() -> dict[str, Any]:
    """Shown by the stop shortcut when no cadence is running."""
    return {
        "type": "modal",
        "title": _text("Stop crisis returns", 24),
        "close": _text("Close", 24),
        "blocks": [{"type": "section", "text": _text("There is no crisis cadence running.", 3000)}],
    }


def _chosen(element: Mapping[str, Any] | None) -> list[str]:
    return [str(o.get("value", "")) for o in (element or {}).get("selected_options") or []]


def _element(view: Mapping[str, Any], block_id: str) -> Mapping[str, Any] | None:
    values = (view.get("state") or {}).get("values") or {}
    actions = values.get(block_id) or {}
    element = actions.get("pick") if isinstance(actions, Mapping) else None
    return element if isinstance(element, Mapping) else None


def read_start(view: Mapping[str, Any], config: Config) -> CrisisRequest:
    """The request a submitted start modal makes; CrisisError (with the block at fault as
    its ``field``) when it is not one."""
    places = []
    for value in _chosen(_element(view, "places")):
        kind, _, name = value.partition(":")
        if kind not in ("ward", "hood") or not name:
            raise CrisisError(f"Unknown ward or neighbourhood: {value}.", "places")
        places.append(name)
    every = str((((_element(view, "every") or {}).get("selected_option")) or {}).get("value", ""))
    until = (_element(view, "until") or {}).get("selected_date")
    try:
        last = date.fromisoformat(str(until)) if until else None
    except ValueError:
        raise CrisisError(f"{until} is not a date.", "until") from None
    return request(config, every, places, _chosen(_element(view, "roles")), last)


def read_stop(view: Mapping[str, Any]) -> set[int]:
    """The cadence ids ticked in a submitted stop modal."""
    return {
        int(v)
        for v in _chosen(_element(view, "cadences"))
        if v.isascii() and v.isdigit() and len(v) < 10
    }
