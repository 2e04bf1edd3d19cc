"""How a Slack client shows a mrkdwn text (:func:`shown`), erring on the strict side."""

from __future__ import annotations

import re
from dataclasses import dataclass

_DATE_TOKEN = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
_ANGLE_TOKEN = re.compile(r"<([^>]*)>")
_PLACEHOLDER = "\ue000"  # a private-use character standing for a date token's fallback
_MARKS = {"*": "bold", "_": "italic", "~": "strike", "`": "code"}


@dataclass(frozen=True)
class Shown:
    """How a Slack client shows a mrkdwn text: the visible characters and what formatting,
    links and mentions it applied."""

    text: str
    styles: tuple[str, ...]


def shown(mrkdwn: str) -> Shown:
    """Render mrkdwn as a Slack client would, erring on the strict side: a formatting mark
    counts whenever *any* non-alphanumeric character (invisible ones included) stands before
    an opening mark or after a closing one, so an escape that only works by luck fails here.

    The one documented-in-practice way to show a mark literally is the fallback text of a date
    token with an invalid format, ``<!date^0^{_}|*>``: Slack always shows the fallback as plain
    text. A line-start ``>`` is a quote unless something visible-or-not (a soft hyphen) comes
    first."""
    styles: list[str] = []
    fallbacks: list[str] = []

    def date(match: re.Match[str]) -> str:
        fallbacks.append(match.group(1))
        return _PLACEHOLDER

    text = _DATE_TOKEN.sub(date, mrkdwn)

    def token(match: re.Match[str]) -> str:
        inner = match.group(1)
        styles.append("mention" if inner[:1] in "!@#" else "link")
        return inner.split("|", 1)[-1]

    text = _ANGLE_TOKEN.sub(token, text)
    if "```" in text:
        styles.append("pre")
        text = text.replace("```", "")
    lines = []
    # Any line break Unicode knows starts a line here, and any whitespace may lead a quote.
    for line in re.split(r"([\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029])", text):
        if line.lstrip().startswith("&gt;"):
            styles.append("quote")
            line = line.lstrip()[4:]
        lines.append(line)
    text = "".join(lines)
    for mark, style in _MARKS.items():
        m = re.escape(mark)
        pair = re.compile(rf"(^|[^0-9A-Za-z]){m}(?=[^\s{m}])([^\n]*?[^\s]){m}(?=$|[^0-9A-Za-z])")
        while (found := pair.search(text)) is not None:
            styles.append(style)
            text = text[: found.start()] + found.group(1) + found.group(2) + text[found.end() :]
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    for fallback in fallbacks:
        text = text.replace(_PLACEHOLDER, fallback, 1)
    return Shown(text.replace("\u00ad", ""), tuple(styles))
