"""Neutral messages as email: a subject, a plain-text part and an HTML part, each span escaped.

A button's payload means nothing in an inbox: before rendering, the messenger has the core turn
each button into a span linking to its personal page on the web (``bot.returns.web_buttons``),
or into words saying how to answer; a form's buttons are already the web form's link. A span
with a link is the link's text in the HTML part and "text <address>" in the plain part; a span
that is a whole http(s) address becomes a link in the HTML part. Whatever buttons are left are
left out. Attachments (a PACT invitation's .ics) are attached as files.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from bot.messages import OutgoingMessage, Span

URL = re.compile(r"https?://[^\s<>\"']+")
SUBJECT_MAX = 140
STYLE_TAGS = {"bold": "strong", "italic": "em", "code": "code"}
ICS_METHOD = re.compile(rb"^METHOD:([A-Z-]+)\r?$", re.MULTILINE)


def calendar_params(data: bytes) -> dict[str, str]:
    """``method=`` for a calendar attachment's Content-Type, from its METHOD line (PUBLISH for
    PACT invitations and their updates): mail clients read the method from the Content-Type,
    so it must say what the file says."""
    found = ICS_METHOD.search(data)
    return {"method": found.group(1).decode("ascii")} if found else {}


CONTENT_TYPES = {".ics": ("text", "calendar"), ".png": ("image", "png"), ".csv": ("text", "csv")}


def subject(message: OutgoingMessage) -> str:
    """The first non-empty line, shortened (a form: its title; a reminder: "Reminder: ...")."""
    for line in message.lines:
        text = " ".join("".join(s.text for s in line).split())
        if text:
            return text if len(text) <= SUBJECT_MAX else text[: SUBJECT_MAX - 1] + "…"
    return "Message from the partnership"


def _span_plain(span: Span) -> str:
    return f"{span.text} <{span.link}>" if span.link else span.text


def plain(message: OutgoingMessage) -> str:
    """The plain-text part."""
    return (
        "\n\n".join("".join(_span_plain(s) for s in line) for line in message.lines if line) + "\n"
    )


def _span_html(span: Span) -> str:
    if span.link is not None and URL.fullmatch(span.link):
        href = html.escape(span.link, quote=True)
        return f'<a href="{href}">{html.escape(span.text)}</a>'
    if URL.fullmatch(span.text):
        href = html.escape(span.text, quote=True)
        return f'<a href="{href}">{href}</a>'
    text = html.escape(span.text)
    tag = STYLE_TAGS.get(span.style)
    return f"<{tag}>{text}</{tag}>" if tag else text


def html_part(message: OutgoingMessage) -> str:
    """The HTML part: one paragraph per line, escaped; no images, scripts or remote content."""
    paragraphs = "\n".join(
        f"<p>{''.join(_span_html(s) for s in line)}</p>" for line in message.lines if line
    )
    return (
        '<!doctype html>\n<html lang="en-GB"><head><meta charset="utf-8">'
        f"<title>{html.escape(subject(message))}</title></head>\n"
        f'<body style="font-family: Arial, sans-serif; font-size: 16px; line-height: 1.5">\n'
        f"{paragraphs}\n</body></html>\n"
    )


def message_id(key: str, from_address: str) -> str:
    """The same Message-ID for every try of one outbox row (its idempotency key), so a retried
    send is recognisable; it reveals nothing about the key."""
    digest = hashlib.sha256(f"tensionbot:{key}".encode()).hexdigest()[:40]
    return f"<{digest}@{from_address.rsplit('@', 1)[1]}>"


def build(
    message: OutgoingMessage,
    *,
    key: str,
    recipient: str,
    from_address: str,
    from_name: str,
    now: datetime,
) -> EmailMessage:
    """The whole email (multipart/alternative, with any attachments)."""
    email = EmailMessage()
    email["From"] = formataddr((from_name, from_address))
    email["To"] = recipient
    email["Subject"] = subject(message)
    email["Date"] = format_datetime(now)
    email["Message-ID"] = message_id(key, from_address)
    # A service message, not marketing: no List-Unsubscribe. Ask for no auto-replies.
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(plain(message))
    email.add_alternative(html_part(message), subtype="html")
    for attachment in message.attachments:
        suffix = attachment.filename[attachment.filename.rfind(".") :].lower()
        maintype, subtype = CONTENT_TYPES.get(suffix, ("application", "octet-stream"))
        email.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype,
            filename=attachment.filename,
            params=calendar_params(attachment.data) if suffix == ".ics" else {},
        )
    return email
