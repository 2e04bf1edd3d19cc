"""What happened: the campaign status of every person, the reports, the December summary, the
PACT insight, each report's timeline (the steps its reporter is told of), the transcripts and the API calls,
and whether the story ended as it should."""

from __future__ import annotations

import json
import time

from bot.cli import format_status
from bot.domain import Report
from bot.pact.rules import markdown as pact_markdown
from bot.returns.campaign_status import CampaignStatus
from bot.summaries.chat import headline
from bot.summaries.model import Summary
from handlers.files.spreadsheets import write as write_exports
from sim.demo.stage import LONDON, Stage, say


async def campaign_status(stage: Stage) -> CampaignStatus:
    """December's status, printed and written to campaign-status.json."""
    campaigns = stage.world.services.campaigns
    december = await campaigns.resolve("2026-12")
    assert december.id is not None
    status = await campaigns.status(december.id, actor="demo")
    say("\n" + format_status(status))
    (stage.out / "campaign-status.json").write_text(json.dumps(status.as_dict(), indent=2))
    return status


async def the_reports(stage: Stage) -> list[Report]:
    """December's reports (not the seeded history), one line each: never their free text."""
    async with stage.world.services.db.uow() as uow:
        reports: list[Report] = []
        for p in await uow.people.all():
            assert p.id is not None
            reports.extend(await uow.reports.for_person(p.id, limit=50))
    reports = sorted((r for r in reports if r.source != "history"), key=lambda r: r.reference)
    form = stage.form
    category = form.question("category")
    say("\nReports (free text is in the database only):")
    for r in reports:
        say(
            f"  {r.reference}  {r.source:<7} {r.ward:<12} "
            f"{form.display_value(category, r.category):<38} level {r.level}  {r.basis}"
        )
    return reports


async def the_summary(stage: Stage) -> Summary:
    """December's summary, printed and exported to summary/."""
    summary = await stage.world.services.summaries.build("2026-12", actor="demo")
    files = write_exports(summary, stage.out / "summary")
    say("\nSummary for December 2026 (summary/summary.md):")
    for line in headline(summary).plain_text().splitlines()[1:]:
        say(f"  {line}")
    say(f"  exports: {', '.join(f.name for f in files)}")
    return summary


async def pact_insight(stage: Stage) -> None:
    """Which times and venues drew people to PACT meetings this season."""
    insight = await stage.world.services.pact.insight("2026-09", "2026-12")
    say("\nPACT meetings, September to December 2026 (which times and venues draw people):")
    for line in pact_markdown(insight).splitlines()[1:]:
        if line.strip() and not line.startswith("_"):
            say(f"  {line}")


async def timelines(stage: Stage, reports: list[Report]) -> None:
    """Each report's timeline: the steps its reporter is told of (the messages themselves, which
    name who acted, are in transcripts/)."""
    say(
        "\nEach report's timeline, the steps its reporter is told of (their messages: transcripts/):"
    )
    async with stage.world.services.db.uow() as uow:
        for r in reports:
            assert r.id is not None
            say(f"  {r.reference}")
            events = []
            for action in await uow.actions.for_report(r.id):
                assert action.id is not None
                events += [e for e in await uow.actions.events(action.id) if e.for_reporter]
            for e in sorted(events, key=lambda e: (e.at, e.id or 0)):
                when = e.at.astimezone(LONDON).strftime("%d %b %H:%M")
                say(f"    {when}  {e.text}")
            if not events:
                say("    (not routed)")


def transcripts_and_calls(stage: Stage, started: float) -> None:
    """Each person's chat transcript to transcripts/; the platforms' API call counts."""
    people = dict(stage.users)
    if stage.stranger is not None:
        people["stranger"] = stage.stranger
    for key, user in people.items():
        (stage.out / "transcripts" / f"{key}.txt").write_text(user.transcript())
    telegram, slack = stage.telegram, stage.slack
    sent = len(telegram.calls_for("sendMessage")) + len(telegram.calls_for("editMessageText"))
    say(
        f"\nTelegram API calls: {len(telegram.calls)} ({sent} messages sent or edited), "
        f"{telegram.throttled} throttled"
    )
    say(
        f"Output: {stage.out.resolve()} (database, people.csv, invites.csv, "
        f"campaign-status.json, transcripts/)"
    )
    posts = sum(len(slack.calls_for(m)) for m in ("chat.postMessage", "chat.update"))
    say(
        f"Slack API calls: {len(slack.calls)} ({posts} posts or updates), "
        f"{slack.throttled} throttled"
    )
    say(f"Done in {time.monotonic() - started:.1f} s")


def verdict(status: CampaignStatus, summary: Summary, escalations: int) -> int:
    """0 if the story ended as it should (something escalated, the planted pocket of concern
    found, the campaign counts as scripted), else 1 with the unexpected counts printed."""
    ok = (
        escalations >= 1
        and any(p.ward == "Heath Town" for p in summary.pockets)
        and (
            # Fatima's urgent report answered the return (urgent_report_answers_return).
            # Ruth answered on the web, Linda (blocked the bot) sent nil from the fallback
            # email, David (never linked) had the form by email and never answered.
            status.counts.get("responded") == 5
            and status.counts.get("nil") == 4
            and status.counts.get("unreachable") is None
            and status.counts.get("no_reply") == 2
        )
    )
    if not ok:
        say(f"UNEXPECTED campaign counts: {status.counts}")
    return 0 if ok else 1
