"""Block Kit modals for PACT meetings: the chair's record of a meeting and an owner team's
report back, and reading their submitted state back.

Everything a person wrote (venue, priority titles, names, reports back) goes into ``plain_text``
objects, which Slack never parses for mentions or links; the one ``mrkdwn`` line is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from bot.common import local_time
from bot.domain import MAX_NOTE
from bot.pact.records import REVIEW_OPTIONS, errors_by_field, record_from_fields
from bot.pact.rules import FORMAT_LABELS, MAX_NEW_PRIORITIES, PUBLIC_WARNING
from bot.pact.service import MAX_TITLE as MAX_PRIORITY_TITLE
from bot.pact.service import MeetingRecord, RecordContext
from handlers.slack.ids import ViewId
from handlers.slack.limits import (
    MAX_BLOCKS,
    MAX_CHECKBOXES,
    MAX_CONTEXT_TEXT,
    MAX_LABEL,
    MAX_OPTION_TEXT,
    MAX_OPTIONS,
    MAX_TITLE,
)
from handlers.slack.render import escape

NEW_PRIORITY_SLOTS = MAX_NEW_PRIORITIES  # a slot for each new priority a meeting may set


def _text(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _trim(text, limit)}


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": _text(label, MAX_OPTION_TEXT), "value": value}


def _modal(callback_id: str, title: str, meta: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": meta,
        "title": _text(title, MAX_TITLE),
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_text(text, MAX_CONTEXT_TEXT)]}


def _input(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool = False
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": _text(label, MAX_LABEL),
        "element": {**element, "action_id": block_id},
    }
    if optional:
        block["optional"] = True
    return block


def _count(max_value: int) -> dict[str, Any]:
    return {
        "type": "number_input",
        "is_decimal_allowed": False,
        "min_value": "0",
        "max_value": str(max_value),
    }


def record_modal(context: RecordContext, max_attendance: int, tz: ZoneInfo) -> dict[str, Any]:
    """The chair's "Record the PACT meeting" modal (private_metadata: the meeting id).

    Block ids: ``public``, ``new``, ``partners``, ``review_<priority id>`` and
    ``reviewnote_<priority id>`` for each open priority, ``priority_<n>`` and ``owner_<n>`` for
    up to three new ones. Slack allows 100 blocks in a modal: priorities beyond what fits are
    left out and the modal says so (the core then reports them as unreviewed)."""
    m = context.meeting
    assert m.id is not None
    fmt = FORMAT_LABELS.get(m.format, m.format)
    blocks: list[dict[str, Any]] = [
        _context(
            f"{context.neighbourhood.name} PACT meeting, {local_time(m.starts_at, tz)}, "
            f"at {m.venue} ({fmt})."
        ),
        _input("public", "Members of the public present", _count(max_attendance)),
        _input(
            "new",
            "Of them, at a PACT meeting for the first time",
            _count(max_attendance),
        ),
    ]
    partners = context.partners[:MAX_OPTIONS]
    if partners:
        options = [_option(str(pid), name) for pid, name in partners]
        element: dict[str, Any] = (
            {"type": "checkboxes", "options": options}
            if len(options) <= MAX_CHECKBOXES
            else {
                "type": "multi_static_select",
                "options": options,
                "placeholder": _text("Choose the partners who came", 150),
            }
        )
        blocks.append(_input("partners", "Invited partners who came", element, optional=True))
    teams = context.teams[:MAX_OPTIONS]
    team_names = dict(context.teams)
    tail = 2 * NEW_PRIORITY_SLOTS if teams else 1
    blocks.append(_context(PUBLIC_WARNING))  # before anything that is published
    room = max(0, (MAX_BLOCKS - len(blocks) - tail - 1) // 2)  # -1: the "not shown" note
    shown = context.priorities[:room]
    for p in shown:
        assert p.id is not None
        owner = team_names.get(p.owner_team, p.owner_team)
        blocks.append(
            _input(
                f"review_{p.id}",
                f"Priority: {p.title} ({owner})",
                {
                    "type": "static_select",
                    "placeholder": _text("Closed or carried?", 150),
                    "options": [_option(v, label) for v, label in REVIEW_OPTIONS],
                },
            )
        )
        note: dict[str, Any] = {
            "type": "plain_text_input",
            "multiline": True,
            "max_length": MAX_NOTE,
        }
        if p.report_back:
            note["initial_value"] = p.report_back[:MAX_NOTE]
        blocks.append(_input(f"reviewnote_{p.id}", "What was done (you said, we did)", note))
    hidden = len(context.priorities) - len(shown)
    if hidden:
        blocks.append(
            _context(
                f"{hidden} more open priorities do not fit in this form (Slack shows at most "
                f"{MAX_BLOCKS} blocks). Please record this meeting in Telegram, or ask the "
                "Prevent and Cohesion Officer to close old priorities first."
            )
        )
    if teams:
        for n in range(1, NEW_PRIORITY_SLOTS + 1):
            blocks.append(
                _input(
                    f"priority_{n}",
                    f"New priority {n}",
                    {"type": "plain_text_input", "max_length": MAX_PRIORITY_TITLE},
                    optional=True,
                )
            )
            blocks.append(
                _input(
                    f"owner_{n}",
                    f"Who owns new priority {n}",
                    {
                        "type": "static_select",
                        "placeholder": _text("Choose a team", 150),
                        "options": [_option(key, name) for key, name in teams],
                    },
                    optional=True,
                )
            )
    else:
        blocks.append(_context("No teams are configured, so no new priority can be set here."))
    return _modal(ViewId.PACT_RECORD, "Record the PACT meeting", str(m.id), blocks)


def report_back_modal(priority_id: int, title: str, neighbourhood: str) -> dict[str, Any]:
    """An owner team's "what was done" for one priority (private_metadata: the priority id)."""
    return _modal(
        ViewId.PACT_REPORT_BACK,
        "Report back",
        str(priority_id),
        [
            _context(f"{neighbourhood}: {title}"),
            _context(PUBLIC_WARNING),
            _input(
                "text",
                "What was done, for the chair to tell residents",
                {"type": "plain_text_input", "multiline": True, "max_length": MAX_NOTE},
            ),
        ],
    )


def done_modal(title: str, text: str) -> dict[str, Any]:
    """A closing confirmation (replaces a submitted modal)."""
    return {
        "type": "modal",
        "title": _text(title, MAX_TITLE),
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": _trim(escape(text), 3000)}}
        ],
    }


# --------------------------------------------------------------------- reading a submission


def state(view: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """block_id -> the state of its (single) element."""
    out: dict[str, dict[str, Any]] = {}
    values = (view.get("state") or {}).get("values") or {}
    for block_id, actions in values.items():
        for element in (actions or {}).values():
            if isinstance(element, dict):
                out[str(block_id)] = element
                break
    return out


def _value(element: Mapping[str, Any] | None) -> str:
    """A text or number input's value, or a single select's chosen value ('' when empty)."""
    if not element:
        return ""
    if "selected_option" in element:
        return str((element.get("selected_option") or {}).get("value") or "")
    return str(element.get("value") or "")


def _chosen(element: Mapping[str, Any] | None) -> list[str]:
    if not element:
        return []
    return [str(o.get("value", "")) for o in element.get("selected_options") or []]


def read_record(
    view: Mapping[str, Any], max_attendance: int
) -> tuple[MeetingRecord | None, dict[str, str], list[int]]:
    """The record in a submitted modal (:func:`bot.pact.records.record_from_fields`: the
    block ids are its field names)."""
    fields = {
        block: _chosen(element) if "selected_options" in element else [_value(element)]
        for block, element in state(view).items()
    }
    return record_from_fields(fields, max_attendance)


def record_errors(errors: Mapping[str, str], slots: list[int], blocks: set[str]) -> dict[str, str]:
    """The core's errors by field as errors by block id (the same names); an error for a block
    the modal does not have (a priority left out of a full modal) goes on ``public``."""
    return errors_by_field(errors, slots, blocks)
