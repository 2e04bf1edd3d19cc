"""Block Kit modals for officers (plain_text inputs: nothing in them is parsed as mrkdwn)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.buttons import ButtonAction, Kind
from bot.domain import ANSWERED, MAX_NOTE
from bot.returns.reports import FormRequest, Home
from handlers.slack.ids import ActionId, ViewId
from handlers.slack.render import escape, escape_mrkdwn


def start_value(campaign_id: int) -> str:
    """The payload of a "Report a tension" button (campaign 0: an ad hoc report)."""
    return ButtonAction(Kind.START, campaign_id).encode()


START_ADHOC = start_value(0)

ERROR_BLOCK = {
    Kind.UPDATE: "text",
    Kind.CLOSE: "note",
    Kind.REASSIGN: "team",
    Kind.RECATEGORISE: "category",
}
"""Where an officer modal shows the core's refusal, by the kind of button that opened it."""


def _modal(callback_id: str, title: str, meta: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": meta,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": label[:75]}, "value": value}


def update_modal(meta: str) -> dict[str, Any]:
    """Add an update, optionally relayed to the reporter."""
    return _modal(
        ViewId.UPDATE,
        "Add an update",
        meta,
        [
            {
                "type": "input",
                "block_id": "text",
                "label": {"type": "plain_text", "text": "Update"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "multiline": True,
                    "max_length": MAX_NOTE,
                },
            },
            {
                "type": "input",
                "block_id": "for_reporter",
                "optional": True,
                "label": {"type": "plain_text", "text": "The reporter"},
                "element": {
                    "type": "checkboxes",
                    "action_id": "for_reporter",
                    "options": [_option("yes", "Tell the reporter this update")],
                },
            },
        ],
    )


def close_modal(meta: str, outcomes: Mapping[str, str]) -> dict[str, Any]:
    """Resolve or close with an outcome and a note."""
    return _modal(
        ViewId.CLOSE,
        "Resolve or close",
        meta,
        [
            {
                "type": "input",
                "block_id": "outcome",
                "label": {"type": "plain_text", "text": "Outcome"},
                "element": {
                    "type": "static_select",
                    "action_id": "outcome",
                    "options": [_option(k, v) for k, v in outcomes.items()],
                },
            },
            {
                "type": "input",
                "block_id": "note",
                "optional": True,
                "label": {
                    "type": "plain_text",
                    "text": "Note for the reporter (where to go instead, if not yours)",
                },
                "element": {
                    "type": "plain_text_input",
                    "action_id": "note",
                    "multiline": True,
                    "max_length": MAX_NOTE,
                },
            },
        ],
    )


def reassign_modal(meta: str, teams: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Pass the action to another team."""
    return _modal(
        ViewId.REASSIGN,
        "Reassign",
        meta,
        [
            {
                "type": "input",
                "block_id": "team",
                "label": {"type": "plain_text", "text": "Team"},
                "element": {
                    "type": "static_select",
                    "action_id": "team",
                    "options": [_option(k, v) for k, v in teams],
                },
            },
        ],
    )


def category_modal(meta: str, categories: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Correct the category: the report is routed again."""
    return _modal(
        ViewId.RECATEGORISE,
        "Change category",
        meta,
        [
            {
                "type": "input",
                "block_id": "category",
                "label": {"type": "plain_text", "text": "The right category"},
                "element": {
                    "type": "static_select",
                    "action_id": "category",
                    "options": [_option(k, v) for k, v in categories],
                },
            },
        ],
    )


def values(view: Mapping[str, Any]) -> dict[str, str]:
    """Flatten a submitted view's state into block_id -> value."""
    out: dict[str, str] = {}
    state = (view.get("state") or {}).get("values") or {}
    for block_id, actions in state.items():
        for element in actions.values():
            kind = element.get("type")
            if kind == "plain_text_input":
                out[block_id] = element.get("value") or ""
            elif kind == "static_select":
                out[block_id] = (element.get("selected_option") or {}).get("value", "")
            elif kind == "checkboxes":
                selected = element.get("selected_options") or []
                out[block_id] = "yes" if any(o.get("value") == "yes" for o in selected) else ""
    return out


def form_modal(request: FormRequest) -> dict[str, Any]:
    """The whole tension form in one modal (block ids are the question ids)."""
    form = request.form
    blocks: list[dict[str, Any]] = [
        {"type": "context", "elements": [{"type": "plain_text", "text": form.emergency_notice}]},
    ]
    for q in form.questions:
        label = q.label if q.show_if is None else f"{q.label} (if already reported)"
        element: dict[str, Any]
        if q.kind == "text":
            element = {
                "type": "plain_text_input",
                "action_id": q.id,
                "multiline": q.id in ("description", "impact"),
                "placeholder": {"type": "plain_text", "text": q.prompt[:150]},
            }
            if q.max_length:
                element["max_length"] = q.max_length
        else:
            options = (
                [(o.value, o.label) for o in q.options]
                if q.kind == "choice"
                else [(w, w) for w in request.wards]
            )
            element = {
                "type": "static_select",
                "action_id": q.id,
                "options": [_option(v, lbl) for v, lbl in options[:100]],
            }
        blocks.append(
            {
                "type": "input",
                "block_id": q.id,
                "optional": q.optional or q.show_if is not None,
                "label": {"type": "plain_text", "text": label[:2000]},
                "element": element,
                "hint": {"type": "plain_text", "text": q.prompt[:2000]},
            }
        )
    blocks.append(
        {"type": "context", "elements": [{"type": "plain_text", "text": form.prevent_notice}]}
    )
    return {
        "type": "modal",
        "callback_id": ViewId.REPORT,
        "private_metadata": str(request.campaign_id),
        "title": {"type": "plain_text", "text": "Report a tension"},
        "submit": {"type": "plain_text", "text": "Submit"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def home_view(home: Home | None, refusal: str = "") -> dict[str, Any]:
    """The App Home tab: report a tension, open returns, my reports (all text escaped)."""
    if home is None:
        return {
            "type": "home",
            "blocks": [{"type": "section", "text": {"type": "plain_text", "text": refusal}}],
        }
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Community tension reporting"}},
        {
            "type": "actions",
            "block_id": "home_actions",
            "elements": [
                {
                    "type": "button",
                    "style": "primary",
                    "action_id": ActionId.START,
                    "value": START_ADHOC,
                    "text": {"type": "plain_text", "text": "Report a tension"},
                }
            ],
        },
    ]
    for campaign_id, title, state in home.open_returns:
        answered = state in ANSWERED
        section: dict[str, Any] = {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*{escape(title)}*: "
                + ("answered, thank you" if answered else "waiting for your answer"),
            },
        }
        if not answered:
            section["accessory"] = {
                "type": "button",
                "action_id": ActionId.START,
                "value": start_value(campaign_id),
                "text": {"type": "plain_text", "text": "Answer it"},
            }
        blocks.append(section)
    if home.reports:
        blocks.append({"type": "divider"})
        lines = [
            f"`{escape(ref)}` {escape_mrkdwn(summary)} · _{escape(state)}_"
            for ref, summary, state in home.reports
        ]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}})
    return {"type": "home", "blocks": blocks}
