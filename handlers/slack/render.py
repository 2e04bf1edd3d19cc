"""Neutral messages -> Slack Block Kit. Every span is escaped for mrkdwn here.

Escaping ``&``, ``<`` and ``>`` is what stops user text from becoming a mention (``<!channel>``,
``<@U…>``) or a link (``<http://…|…>``): Slack only parses those inside angle brackets.

Slack documents no escape for its own formatting marks (``*bold*``, ``_italic_``, ``~strike~``,
`` `code` ``, a line-start ``>`` quote), and zero-width characters count as word breaks there, so
they would *make* formatting rather than stop it. Each mark in a span is therefore sent as the
fallback text of a date token with an invalid format, ``<!date^00000000^{_}|*>``, which Slack
always shows as plain text (the approach jsx-slack's ``<Escape>`` uses); a line-start ``>`` gets
an invisible soft hyphen in front. The text then shows exactly as typed.
"""

from __future__ import annotations

import re
from typing import Any

from bot.buttons import BadPayload, ButtonAction
from bot.messages import Button, OutgoingMessage, Span
from handlers.slack.ids import action_id_for

MAX_SECTION = 3000  # Slack's limit for a section's text
MAX_FALLBACK = 3000
_WRAP = {"bold": "*", "italic": "_", "code": "`"}


def escape(text: str) -> str:
    """Escape text against mentions and links (``&``, ``<``, ``>``): enough for ephemeral and
    fallback ``text`` fields, which are shown without formatting in notifications."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_FORMAT_MARK = re.compile(r"[*_~`]")
_QUOTE_START = re.compile(r"(^|[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029])(\s*)&gt;")


def literal_mark(mark: str) -> str:
    """A formatting mark Slack shows as itself: the fallback of an unformattable date."""
    return f"<!date^00000000^{{_}}|{mark}>"


def escape_mrkdwn(text: str) -> str:
    """Escape text for a mrkdwn field so it shows exactly as typed: no mention, link, bold,
    italic, strike-through, code or quote (see the module docstring)."""
    text = _FORMAT_MARK.sub(lambda m: literal_mark(m.group(0)), escape(text))
    return _QUOTE_START.sub("\\1\\2\u00ad&gt;", text)


def _span(span: Span) -> str:
    if span.link is not None:
        # Slack's link syntax; both parts escaped (a "|" or ">" cannot end either early).
        label = escape(span.text).replace("|", "¦")
        return f"<{escape(span.link).replace('|', '%7C')}|{label}>"
    if span.style == "plain" or not span.text.strip():
        return escape_mrkdwn(span.text)
    mark = _WRAP[span.style]
    # Formatting marks only work when they touch non-space characters.
    raw = span.text.replace(mark, "")
    lead, trail = raw[: len(raw) - len(raw.lstrip())], raw[len(raw.rstrip()) :]
    # Inside `code` Slack shows everything literally (tokens too), so only mentions are escaped.
    inner = escape(raw.strip()) if span.style == "code" else escape_mrkdwn(raw.strip())
    return f"{escape_mrkdwn(lead)}{mark}{inner}{mark}{escape_mrkdwn(trail)}"


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, never ending inside an escape token."""
    cut = text[:limit]
    if cut.rfind("<") > cut.rfind(">"):
        cut = cut[: cut.rfind("<")]
    return cut


def action_id(button: Button, index: int) -> str:
    """A stable action_id per button kind (Bolt listeners match on it)."""
    try:
        kind = ButtonAction.decode(button.data).kind
    except BadPayload:
        return f"tb_button_{index}"
    return action_id_for(kind)


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
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, MAX_SECTION)}}
