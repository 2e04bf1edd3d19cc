"""Neutral messages -> Slack Block Kit. Every span is escaped for mrkdwn here.

Escaping ``&``, ``<`` and ``>`` is what stops user text from becoming a mention (``<!channel>``,
``<@U…>``) or a link (``<http://…|…>``): Slack only parses those inside angle brackets.
"""

from __future__ import annotations

from typing import Any

from bot.buttons import Action, BadPayload, Kind
from bot.messages import Button, OutgoingMessage, Span

MAX_SECTION = 3000  # Slack's limit for a section's text
MAX_FALLBACK = 3000
_WRAP = {"bold": "*", "italic": "_", "code": "`"}
ACTION_IDS = {
    Kind.ACK: "tb_ack",
    Kind.UPDATE: "tb_update",
    Kind.CLOSE: "tb_close",
    Kind.REASSIGN: "tb_reassign",
    Kind.RECATEGORISE: "tb_recategorise",
    Kind.PACT_RECORD: "tb_pact_record",
    Kind.PACT_CANCELLED: "tb_pact_cancelled",
    Kind.PACT_REPORT_BACK: "tb_pact_report_back",
}
"""Kinds with a Bolt listener. Any other kind (e.g. ``PACT_PICK``, which only Telegram sends)
still gets a stable ``tb_<kind>`` action_id; no listener matches it, so a click on one does
nothing (Bolt answers 404 and logs it)."""


def escape(text: str) -> str:
    """Escape text for mrkdwn (and plain ``text`` fields, which Slack parses the same way)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _span(span: Span) -> str:
    text = escape(span.text)
    if span.style == "plain" or not text.strip():
        return text
    mark = _WRAP[span.style]
    # Formatting marks only work when they touch non-space characters.
    inner = text.strip()
    lead, trail = text[: len(text) - len(text.lstrip())], text[len(text.rstrip()) :]
    return f"{lead}{mark}{inner.replace(mark, '')}{mark}{trail}"


def action_id(button: Button, index: int) -> str:
    """A stable action_id per button kind (Bolt listeners match on it)."""
    try:
        kind = Action.decode(button.data).kind
    except BadPayload:
        return f"tb_button_{index}"
    return ACTION_IDS.get(kind, f"tb_{kind.name.lower()}")


def render(message: OutgoingMessage) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for chat.postMessage / chat.update."""
    lines = ["".join(_span(s) for s in line) for line in message.lines]
    blocks: list[dict[str, Any]] = []
    chunk = ""
    for line in lines:
        candidate = f"{chunk}\n{line}" if chunk else line
        if len(candidate) > MAX_SECTION and chunk:
            blocks.append(_section(chunk))
            chunk = line
        else:
            chunk = candidate
    if chunk.strip():
        blocks.append(_section(chunk))
    for r, row in enumerate(message.buttons):
        elements = []
        for i, button in enumerate(row):
            element: dict[str, Any] = {
                "type": "button",
                "text": {"type": "plain_text", "text": button.label[:75], "emoji": True},
                "action_id": action_id(button, i),
                "value": button.data,
            }
            if r == 0 and i == 0:
                element["style"] = "primary"
            elements.append(element)
        blocks.append({"type": "actions", "block_id": f"buttons_{r}", "elements": elements})
    fallback = escape(message.plain_text())
    return fallback[:MAX_FALLBACK], blocks


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_SECTION]}}
