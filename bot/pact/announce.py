"""PACT meetings announced in public: a post to each public channel (``[pact.public]``) when a
meeting is scheduled, moved or cancelled, and the "you said, we did" once a meeting is recorded.

What is public: the neighbourhood, the date and time (local), the venue, the format, the public
page's link, and a recorded meeting's priorities with what was done. Never a name, the chair,
the invitees or who attended. The priorities and "what was done" are published as partners
wrote them (docs/DATA_PROTECTION.md says so; nothing is stripped).

Exactly once per change, across restarts: the meeting's public details and a version number are
kept in ``bot_state`` (``pact-public:<meeting id>``), written in the same transaction as the
change and the posts it queues, and each post's outbox key names the meeting, the version and
the channel. A change that changes nothing public (a re-import of the same season) queues
nothing. The channels are neutral (platform, address) pairs from the configuration; each
platform's adapter renders the neutral message, escaping every span.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.common import alert_admins, enqueue, local_time
from bot.config import Config
from bot.domain import MeetingStatus, OutboxMessage, OutboxStatus, PactMeeting, PactPriority
from bot.messages import MessageBuilder, OutgoingMessage, Span, bold, link
from bot.pact.rules import FORMAT_LABELS
from bot.ports import SendResult, UnitOfWork

PURPOSE = "pact_public"  # the outbox purpose of every public post


def _public_state(m: PactMeeting) -> list[str | bool]:
    """What the public sees of a meeting; a change to any of it is announced."""
    return [
        # In UTC: a meeting just scheduled carries the local offset, one read back from the
        # database UTC's, and the same instant must compare equal (a summer re-import).
        m.starts_at.astimezone(UTC).isoformat(),
        m.venue,
        m.format,
        m.status == MeetingStatus.CANCELLED.value,
    ]


def page_url(config: Config, neighbourhood: str) -> str | None:
    """The neighbourhood's public page, when the web serves it."""
    if not config.web.public_pact:
        return None
    return f"{config.web.base_url.rstrip('/')}/pact/{neighbourhood}"


def _hood_name(config: Config, key: str) -> str:
    hoods = config.pact.all_neighbourhoods(list(config.partnership.wards))
    return next((h.name for h in hoods if h.key == key), key)


def _details(m: PactMeeting, config: Config) -> str:
    when = local_time(m.starts_at, config.partnership.tz)
    return f"{when} at {m.venue} ({FORMAT_LABELS.get(m.format, m.format)})"


def _with_link(b: MessageBuilder, config: Config, neighbourhood: str) -> OutgoingMessage:
    url = page_url(config, neighbourhood)
    if url is not None:
        b.line("Every meeting, and a calendar to subscribe to: ", link(url, url))
    return b.build()


def meeting_announcement(
    m: PactMeeting, config: Config, before: list[str | bool] | None
) -> OutgoingMessage:
    """The post for a meeting newly scheduled (``before`` None), changed, cancelled or on
    again (``before``: its public details as last announced)."""
    hood = _hood_name(config, m.neighbourhood)
    tz = config.partnership.tz
    cancelled = m.status == MeetingStatus.CANCELLED.value
    b = MessageBuilder()
    if cancelled:
        b.line(bold(f"Cancelled: {hood} PACT meeting"))
        b.line(f"The meeting of {_details(m, config)} will not take place.")
        return _with_link(b, config, m.neighbourhood)
    if before is None:
        b.line(bold(f"{hood} PACT meeting"))
        b.line(f"{_details(m, config)}.")
    else:
        was_cancelled = bool(before[3])
        b.line(bold(f"{'On again' if was_cancelled else 'Changed'}: {hood} PACT meeting"))
        b.line(f"Now {_details(m, config)}.")
        if not was_cancelled:
            old_when = local_time(datetime.fromisoformat(str(before[0])), tz)
            old_format = FORMAT_LABELS.get(str(before[2]), str(before[2]))
            b.line(f"It was {old_when} at {before[1]} ({old_format}).")
    b.line(
        "Come and tell the police and the council what matters in your neighbourhood. "
        "Everyone is welcome."
    )
    return _with_link(b, config, m.neighbourhood)


async def announce_change(uow: UnitOfWork, config: Config, m: PactMeeting, now: datetime) -> int:
    """Queue one post per public channel if the meeting's public details changed since they
    were last announced (or were never announced); how many posts were queued. A meeting that
    is over is not announced (a past season imported, a cancellation recorded afterwards), but
    its details are remembered, so a later change is compared with them."""
    channels = config.pact.public.channels()
    if not channels or m.id is None:
        return 0
    key = f"pact-public:{m.id}"
    raw = await uow.state.get(key)
    stored = json.loads(raw) if raw else None
    state = _public_state(m)
    if stored is not None and stored["state"] == state:
        return 0
    if stored is None and state[3]:
        return 0  # cancelled before it was ever announced: nothing to take back
    version = (int(stored["v"]) if stored else 0) + 1
    await uow.state.set(key, json.dumps({"v": version, "state": state}))
    if m.ends_at <= now:
        return 0
    message = meeting_announcement(m, config, stored["state"] if stored else None)
    return await _post(uow, channels, message, f"pact-public:{m.id}:{version}", now)


#: The most a "you said, we did" post carries (its plain text): Telegram takes 4,096 characters
#: in a message and Slack 3,000 in a section, and a priority with what was done can be 1,300.
MAX_POST = 3000


def record_posts(
    m: PactMeeting,
    config: Config,
    reviewed: list[tuple[PactPriority, bool]],
    new: list[str],
) -> list[OutgoingMessage]:
    """A recorded meeting's "you said, we did": each priority reviewed (what was done, closed or
    carried) and the new ones, in as many posts as keep each under :data:`MAX_POST` (a priority
    is never split; the page link closes the last). Titles and notes are as partners wrote
    them; no names."""
    hood = _hood_name(config, m.neighbourhood)
    day = m.starts_at.astimezone(config.partnership.tz).strftime("%a %d %b %Y")
    heading = f"{hood} PACT meeting, {day}: you said, we did"
    pieces: list[list[list[Span]]] = [
        [
            [bold("You said: "), Span(text=priority.title)],
            [
                Span(text="We did: "),
                Span(text=priority.outcome),
                Span(text=" (done)" if closed else " (carried to the next meeting)"),
            ],
        ]
        for priority, closed in reviewed
    ]
    if new:
        pieces.append([[bold("New priorities:")], *([Span(text=f"• {t}")] for t in new)])
    if not pieces:
        pieces.append([[Span(text="No priorities were reviewed or set at this meeting.")]])
    room = MAX_POST - len(heading) - 200  # the heading's "(2 of 3)" and the page link
    posts: list[list[list[Span]]] = [[]]
    used = 0
    for piece in pieces:
        size = sum(len(s.text) for line in piece for s in line) + len(piece)
        if posts[-1] and used + size > room:
            posts.append([])
            used = 0
        posts[-1].extend(piece)
        used += size
    out = []
    for n, lines in enumerate(posts, 1):
        of = f" ({n} of {len(posts)})" if len(posts) > 1 else ""
        b = MessageBuilder().line(bold(heading + of))
        for line in lines:
            b.line(*line)
        out.append(_with_link(b, config, m.neighbourhood) if n == len(posts) else b.build())
    return out


async def announce_record(
    uow: UnitOfWork,
    config: Config,
    m: PactMeeting,
    reviewed: list[tuple[PactPriority, bool]],
    new: list[str],
    now: datetime,
) -> int:
    """Queue the meeting's "you said, we did" to each public channel, once per meeting (a
    correction recorded later posts nothing more): one outbox row per post and channel, the
    first keyed ``pact-public-record:<id>``, the next ``pact-public-record:<id>:<n>``."""
    channels = config.pact.public.channels()
    if not channels or m.id is None:
        return 0
    queued = 0
    for n, message in enumerate(record_posts(m, config, reviewed, new), 1):
        key = f"pact-public-record:{m.id}" + (f":{n}" if n > 1 else "")
        queued += await _post(uow, channels, message, key, now)
    return queued


async def _post(
    uow: UnitOfWork,
    channels: tuple[tuple[str, str], ...],
    message: OutgoingMessage,
    key: str,
    now: datetime,
) -> int:
    queued = 0
    for platform, address in channels:
        queued += await enqueue(
            uow,
            channel=platform,
            recipient=address,
            message=message,
            key=f"{key}:{platform}:{address}",
            now=now,
            purpose=PURPOSE,
            priority=1,
        )
    return queued


async def on_public_sent(
    uow: UnitOfWork, row: OutboxMessage, result: SendResult, now: datetime, config: Config
) -> None:
    """The dispatcher's hook: a public post the platform refused is reported to the admins (at
    its first failure, and again if it is given up), never dropped silently."""
    if row.purpose != PURPOSE or result.ok:
        return
    where = f"the public channel {row.recipient}"
    error = (result.error or "refused")[:200]
    hint = result.hint or "Is the bot in it, and allowed to post?"
    if row.status == OutboxStatus.FAILED.value:
        await alert_admins(
            uow,
            now,
            f"a PACT announcement was not posted to {where} ({error}) and is given up. {hint} "
            "The meeting is still on the public page.",
            key=f"pact-public:{row.id}:failed",
            platforms=config.platforms,
        )
    elif row.attempts == 1:
        await alert_admins(
            uow,
            now,
            f"cannot post a PACT announcement to {where} ({error}); it is retried for a "
            f"while. {hint}",
            key=f"pact-public:{row.id}:retrying",
            platforms=config.platforms,
        )
