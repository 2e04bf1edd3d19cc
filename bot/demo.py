"""``make demo``: the whole monthly return, offline, on the real code.

A fresh SQLite file and a local simulated Telegram Bot API server; simulated councillors and
community leaders link their chats, get the December return, answer it (or not), are reminded,
and the return closes. Half-way through a conversation the bot is stopped and started again to
show nothing is lost. Prints the campaign status and the reports; leaves everything in ``--out``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot import cells, demo_email
from bot.clock import FakeClock
from bot.config import config_from_mapping
from bot.domain import Report
from bot.exports import write as write_exports
from bot.pact.rules import markdown as pact_markdown
from bot.sim.fake_slack import FakeSlack, SlackUser
from bot.sim.history import hate_crime_csv, pact_season_csv, record_pact_season, seed_reports
from bot.sim.scripts import (
    answer_question,
    fill_tension,
    select_value,
    tension,
    text_value,
    tick_value,
)
from bot.sim.scripts import (
    officer_step as scripted_officer_step,
)
from bot.sim.scripts import until as scripted_until
from bot.sim.world import SimWorld, free_port
from bot.summaries.hatecrime import HateCrimeService
from bot.summaries.service import headline

LONDON = ZoneInfo("Europe/London")
TOKEN = "7000000001:DEMO-TOKEN-not-a-real-one"  # noqa: S105 - for the simulator only

PEOPLE_CSV = """name,role,wards,organisation,email,slack_user_id,channel
Cllr Asha Patel,councillor,Heath Town,City of Wolverhampton Council,asha.patel@example.org,
Cllr Tom Hughes,councillor,Bilston South,City of Wolverhampton Council,tom.hughes@example.org,
Imam Yusuf Khan,community_leader,East Park;Heath Town,Central Mosque,yusuf.khan@example.org,
Rev. Sarah Jones,community_leader,Blakenhall,St Luke's Church,sarah.jones@example.org,
Cllr Mark Evans,councillor,Penn,City of Wolverhampton Council,mark.evans@example.org,
Gurpreet Singh,community_leader,Graiseley,Guru Nanak Gurdwara,gurpreet.singh@example.org,
Cllr Linda Brown,councillor,Wednesfield North,City of Wolverhampton Council,linda.brown@example.org,
Cllr David Green,councillor,Oxley,City of Wolverhampton Council,david.green@example.org,
Pastor Grace Okafor,community_leader,Ettingshall North,New Life Church,grace.okafor@example.org,
Cllr Fatima Ali,councillor,East Park,City of Wolverhampton Council,fatima.ali@example.org,
Jane Smith,officer,all,West Midlands Police,jane.smith@example.org,U0JANESMITH
Sam Clarke,prevent_officer,all,City of Wolverhampton Council,sam.clarke@example.org,U0SAMCLARKE
Bishop Ruth Adeyemi,community_leader,Park,St Peter's Church,ruth.adeyemi@example.org,,email
"""


# The teams' Slack channels and who is in them (as in config.example.toml).
CHANNELS = [
    ("C0COHESION", "cohesion", ["U0JANESMITH"]),
    ("G0PREVENT", "prevent", ["U0SAMCLARKE"]),
    ("C0WMPNPT", "wmp-npt", ["U0PCKAUR"]),
    ("C0SWPDUTY", "swp-duty", ["U0SAMCLARKE"]),
    ("C0SWPBOARD", "swp-board", ["U0SAMCLARKE"]),
]


def _example_sections() -> dict[str, object]:
    """Teams, routing, deadlines and escalation from config.example.toml (the demo's data)."""
    import tomllib

    data = tomllib.loads((Path(__file__).resolve().parents[1] / "config.example.toml").read_text())
    keys = ("teams", "routing", "deadlines", "escalation", "summaries", "pact")
    return {k: data[k] for k in keys}


DECEMBER_PACT = """heath-town,2026-12-03,18:30,Heath Town Community Centre,in_person,,90
penn,2026-12-05,11:00,Penn Library,in_person,,90
bilston,2026-12-09,14:00,Bilston Town Hall,in_person,,90
"""


def _say(text: str) -> None:
    print(text, flush=True)


async def run_demo(out: Path) -> int:
    """Run the demo into ``out`` (recreated). Returns the exit code."""
    from bot.sim.fake_telegram import FakeTelegram

    os.environ.setdefault("PTB_TIMEDELTA", "1")  # as the CLI does
    started = time.monotonic()
    if out.exists():
        shutil.rmtree(out)
    (out / "transcripts").mkdir(parents=True)
    (out / "people.csv").write_text(PEOPLE_CSV)

    fake = FakeTelegram(token=TOKEN, bot_username="swp_tension_bot")
    await fake.start()
    slack = FakeSlack(per_channel_rate=1)  # Slack's ~1 message/s per channel, enforced
    await slack.start()
    for channel, name, members in CHANNELS:
        slack.add_channel(channel, name, members)
    # Email to a real SMTP server on 127.0.0.1; the web form on the bot's one HTTP server.
    mail = demo_email.mail_server()
    inbox = await mail.__aenter__()
    http_port = free_port()
    config = config_from_mapping(
        {
            "database": {"url": f"sqlite+aiosqlite:///{(out / 'tensionbot.sqlite3').resolve()}"},
            "telegram": {
                "api_base_url": fake.base_url,
                "bot_username": "swp_tension_bot",
                "poll_timeout": 1,
                # Simulated people answer instantly, where a person takes seconds a question:
                # allow a longer burst per chat so the demo is not paced like a human.
                "per_chat_burst": 10,
            },
            "slack": {"api_base_url": slack.base_url, "port": http_port},
            "web": {"base_url": f"http://127.0.0.1:{http_port}", "secure_cookies": False},
            "email": {
                "host": "127.0.0.1",
                "port": inbox.port,
                "security": "none",
                "fallback": True,
            },
            **_example_sections(),
        },
        source="<demo>",
        env={
            "TENSIONBOT_WEB_SECRET": demo_email.WEB_SECRET,
            "TENSIONBOT_TELEGRAM_TOKEN": TOKEN,
            "TENSIONBOT_SLACK_BOT_TOKEN": slack.token,
            "TENSIONBOT_SLACK_SIGNING_SECRET": slack.signing_secret,
        },
    )
    slack_url = f"http://127.0.0.1:{config.slack.port}{config.slack.path}"
    jane, pc, sam = (
        SlackUser(slack, u, slack_url) for u in ("U0JANESMITH", "U0PCKAUR", "U0SAMCLARKE")
    )
    clock = FakeClock(datetime(2026, 11, 30, 12, 0, tzinfo=LONDON))
    world = await SimWorld.start(config, fake, clock)
    form = (await _current_form(world)).definition
    try:
        _say(f"tensionbot demo: {config.partnership.name}, simulated Telegram at {fake.base_url}")
        result = await world.import_people(PEOPLE_CSV)
        _say(f"- imported people.csv: {result.created} people")
        # A year of history (past reports, police hate-crime figures with a planted spike in
        # Heath Town this December), imported through the same CSV path as real figures.
        async with world.services.db.uow() as uow:
            historian = (await uow.people.all())[0]
        assert historian.id is not None
        past = await seed_reports(
            world.services.db.uow,
            person_id=historian.id,
            form_version_id=(await _current_form(world)).id,
            wards=list(config.partnership.wards),
            month="2026-12",
        )
        figures_csv = hate_crime_csv(
            list(config.partnership.wards), "2026-12", hotspot="Heath Town"
        )
        (out / "hate-crime.csv").write_text(figures_csv)
        imported = await HateCrimeService(config, world.services.db.uow, clock).import_csv(
            figures_csv, source=str(out / "hate-crime.csv"), actor="demo"
        )
        _say(
            f"- a year of history: {past} past tension reports and {imported.total} recorded "
            f"hate crimes ({imported.months[0]} to {imported.months[-1]}, hate-crime.csv)"
        )
        again = await world.import_people(PEOPLE_CSV)
        _say(
            f"- re-imported it: {again.created} created, {again.unchanged} unchanged (no duplicates)"
        )

        # ---- PACT: last season's meetings and December's, imported from one CSV; the past ones
        # recorded by their chairs (through the same checks and storage as the chat flows)
        (out / "pact-meetings.csv").write_text(pact_season_csv() + DECEMBER_PACT)
        season = await world.services.pact.import_csv(
            (out / "pact-meetings.csv").read_text(), source="pact-meetings.csv", actor="demo"
        )
        recorded = await record_pact_season(world.services.pact, world.services.db.uow)
        _say(
            f"- PACT: {season.created} meetings of three neighbourhoods imported from "
            f"pact-meetings.csv (September to December, varied venues and times); the "
            f"{recorded} past ones recorded by their chairs"
        )

        links = await world.services.people.issue_invites(actor="demo")
        with (out / "invites.csv").open("w", newline="") as handle:
            writer = cells.csv_writer(handle)  # as `tensionbot invites`: names never formulas
            writer.writerow(["name", "email", "link"])
            writer.writerows([x.person.name, x.person.email, x.url] for x in links)
        _say(f"- issued {len(links)} personal invitation links (invites.csv)")
        names = {
            "asha.patel": (1001, "Asha"), "tom.hughes": (1002, "Tom"), "yusuf.khan": (1003, "Yusuf"),
            "sarah.jones": (1004, "Sarah"), "mark.evans": (1005, "Mark"),
            "gurpreet.singh": (1006, "Gurpreet"), "linda.brown": (1007, "Linda"),
            "grace.okafor": (1009, "Grace"), "fatima.ali": (1010, "Fatima"),
        }  # fmt: skip
        users = {}
        for key, (uid, first) in names.items():
            link = next(x for x in links if x.person.email.startswith(key))
            user = fake.user(uid, first_name=first)
            await user.send_command("/start", link.url.split("start=", 1)[1])
            users[key] = user
        for user in users.values():
            await user.wait_for("Welcome")
        _say(f"- {len(users)} people tapped their link and are connected; David Green never did")

        stranger = fake.user(666, first_name="Stranger")
        await stranger.send_command("/start")
        await stranger.wait_for("only for people invited")
        await stranger.send_command("/start", "forged-token-123")
        await stranger.wait_for("not valid")
        _say("- an unknown Telegram user was politely refused; nothing about them was stored")

        fake.block(users["linda.brown"].chat_id)
        _say("- Linda Brown has since blocked the bot")

        # ---- 1 December, 09:00: the scheduler opens the December return
        clock.set(datetime(2026, 12, 1, 9, 0, tzinfo=LONDON))
        await world.tick()
        _say("- 1 Dec 09:00: the December return opened and the form went out")
        await scripted_until(
            lambda: any(m.kind == "document" for m in fake.messages(users["yusuf.khan"].chat_id))
        )
        _say(
            "  PACT invitations with a calendar file (.ics) went to the Heath Town and Penn "
            "meetings' councillors and partners; owner teams were asked to report back on their "
            "open priorities"
        )
        await demo_email.answer_on_the_web(inbox, out, _say, scripted_until, world.tick)

        asha, tom, yusuf = users["asha.patel"], users["tom.hughes"], users["yusuf.khan"]
        sarah, grace, gurpreet = (
            users["sarah.jones"],
            users["grace.okafor"],
            users["gurpreet.singh"],
        )

        async def nil_return(user: Any) -> None:
            await user.press("Nothing to report")
            await user.wait_for("nil return is recorded")

        async def asha_two_tensions() -> None:
            await asha.press("Report a tension")
            await fill_tension(
                asha,
                form,
                tension(
                    "Heath Town",
                    "religion",
                    "Leaflets hostile to the new mosque extension were pushed through doors on two streets.",
                    level="2",
                    basis="evidenced",
                    location="Around Chester Avenue",
                    since="Last weekend",
                ),
            )
            await asha.press("Add another tension")
            await fill_tension(
                asha,
                form,
                tension(
                    "Heath Town",
                    "gangs_youth",
                    "Groups of young people gathering at the shops after dark; residents feel unsafe.",
                    level="2",
                    already_reported="police",
                    external_ref="WMP 20/123456/26",
                ),
            )
            await asha.press("Submit all")
            await asha.wait_for("reports have been submitted")

        async def yusuf_back_and_edit() -> None:
            await yusuf.press("Report a tension")
            await answer_question(yusuf, form, "ward", "East Park")
            await answer_question(yusuf, form, "category", "race")
            await yusuf.wait_for("What is happening")
            await yusuf.press("Back")
            await answer_question(yusuf, form, "category", "online")
            await fill_tension(
                yusuf,
                form,
                tension(
                    "East Park",
                    "online",
                    "A local Facebook group is sharing a false rumour about a planned march.",
                    level="3",
                    basis="potential",
                    media="social",
                ),
                start_at="description",
            )
            await yusuf.press("Edit an answer")
            await yusuf.wait_for("Which answer do you want to change")
            await yusuf.press("Level")
            await answer_question(yusuf, form, "level", "2")
            await yusuf.wait_for("Please check")
            await yusuf.press("Submit")
            await yusuf.wait_for("has been submitted")

        # Four people answer at the same time, as they would.
        await asyncio.gather(
            nil_return(tom), nil_return(sarah), asha_two_tensions(), yusuf_back_and_edit()
        )
        _say(
            "- Tom and Sarah sent nil returns; Asha reported two tensions; Yusuf went Back and "
            "edited an answer before submitting"
        )
        # Grace sends a photo and an over-long answer; then the bot is stopped mid-conversation.
        await grace.press("Report a tension")
        await answer_question(grace, form, "ward", "Ettingshall North")
        await answer_question(grace, form, "category", "crime_asb")
        await grace.wait_for("What is happening")
        await grace.send_photo()
        await grace.wait_for("only take typed text")
        await grace.send_text("x" * 2500)
        await grace.wait_for("the limit here is 2,000")
        await world.settle()
        await world.stop()
        _say("- the bot was stopped in the middle of Grace's report ...")
        world = await SimWorld.start(config, fake, clock)
        _say("  ... and started again: Grace carries on at the same question")

        # Meanwhile Fatima sends an urgent report with /report (at any time, not the return).
        async def fatima_urgent() -> None:
            await users["fatima.ali"].send_command("/report")
            await fill_tension(
                users["fatima.ali"],
                form,
                tension(
                    "East Park",
                    "protest_extremism",
                    "Posters announcing a protest outside the hotel housing asylum seekers on Saturday.",
                    level="3",
                    basis="evidenced",
                    media="local",
                ),
            )
            await users["fatima.ali"].press("Submit")
            await users["fatima.ali"].wait_for("has been submitted")
            _say(
                "- Fatima sent an urgent report with /report: it counts as taking part in the "
                "open return, so she is not reminded"
            )

        fatima = asyncio.create_task(fatima_urgent())
        await grace.send_text(
            "Repeated graffiti and vandalism at the community centre on Spring Road."
        )
        for qid, value in tension("Ettingshall North", "crime_asb", "-").items():
            if qid in ("ward", "category", "description"):
                continue
            await answer_question(grace, form, qid, value)
        await grace.wait_for("Please check")
        await grace.press("Submit")
        await grace.wait_for("has been submitted")
        await fatima
        await asha.send_command("/status")
        await asha.wait_for("Your reports")

        # ---- officers act in Slack (each team in its own channel, at the same time); the
        # clock moves on 40 minutes before each step so the timelines read like a real day
        async def officer_step(*args: Any, **kwargs: Any) -> None:
            clock.advance(timedelta(minutes=40))
            await scripted_officer_step(*args, **kwargs)

        async def cohesion_team() -> None:
            await officer_step(slack, jane, "C0COHESION", "Leaflets hostile", "tb_ack")
            await officer_step(
                slack,
                jane,
                "C0COHESION",
                "Leaflets hostile",
                "tb_update",
                {
                    **text_value(
                        "text",
                        "We have met the mosque committee; the police will patrol "
                        "Chester Avenue this weekend.",
                    ),
                    **tick_value("for_reporter"),
                },
            )
            await officer_step(
                slack,
                jane,
                "C0COHESION",
                "Leaflets hostile",
                "tb_close",
                {
                    **select_value("outcome", "resolved"),
                    **text_value("note", "Leaflets removed; no further incidents reported."),
                },
            )
            await officer_step(
                slack,
                jane,
                "C0COHESION",
                "Facebook group",
                "tb_close",
                {
                    **select_value("outcome", "not_our_responsibility"),
                    **text_value(
                        "note",
                        "False rumours online: please report the post to Facebook; "
                        "we have told West Midlands Police's online team.",
                    ),
                },
            )

        async def police_team() -> None:
            await officer_step(slack, pc, "C0WMPNPT", "Groups of young people", "tb_ack")
            await officer_step(
                slack,
                pc,
                "C0WMPNPT",
                "Groups of young people",
                "tb_update",
                {
                    **text_value("text", "PCSOs will patrol the shops from 6pm to 10pm this week."),
                    **tick_value("for_reporter"),
                },
            )

        async def prevent() -> None:
            await officer_step(slack, sam, "G0PREVENT", "Posters announcing", "tb_ack")

        await asyncio.gather(cohesion_team(), police_team(), prevent())
        _say(
            "- officers acknowledged, updated and closed reports in Slack; the reporters were "
            "told each step on Telegram"
        )

        # ---- PACT: owners report back, then the chairs record their meetings
        await world.settle()
        reported = await _owner_reports_back(
            slack,
            jane,
            "C0COHESION",
            "Heath Town",
            "The council cleared the alleys on 28 November; CCTV now covers the hotspot.",
        )
        reported += await _owner_reports_back(
            slack, pc, "C0WMPNPT", "Heath Town", "Six evening patrols in November; two arrests."
        )
        _say(
            f"- PACT: the owner teams reported back in Slack on Heath Town's {reported} open "
            "priorities"
        )
        clock.set(datetime(2026, 12, 3, 20, 30, tzinfo=LONDON))
        await world.tick()
        await _asha_records_pact(world, asha)
        _say(
            "- 3 Dec: Asha chaired the Heath Town PACT meeting and recorded it in Telegram "
            "(an impossible count was refused; the owners' reports became 'you said, we did')"
        )

        clock.set(datetime(2026, 12, 5, 13, 0, tzinfo=LONDON))
        await world.tick()
        await _jane_records_pact_in_slack(slack, jane)
        _say(
            "- 5 Dec: Jane Smith (police) chaired the Penn meeting and recorded it in a Slack "
            "modal from the prompt in her direct messages"
        )

        # ---- 8 December: first reminder round (only to those who have not answered)
        clock.set(datetime(2026, 12, 8, 9, 0, tzinfo=LONDON))
        await world.tick()
        _say("- 8 Dec 09:00: reminders went to everyone who had not answered")
        await gurpreet.press("Nothing to report")
        await gurpreet.wait_for("nil return is recorded")

        # ---- 9 December: the Bilston PACT meeting did not take place; its chair says so and
        # schedules the next one in chat
        clock.set(datetime(2026, 12, 9, 16, 0, tzinfo=LONDON))
        await world.tick()
        await tom.wait_for("How did the Bilston PACT meeting go?")
        await tom.press("It was cancelled")
        await tom.wait_for("was cancelled")
        await tom.send_command("/schedule", "2027-01-13 18:30 in_person Bilston Community Centre")
        await tom.wait_for("Scheduled: Bilston PACT meeting")
        _say(
            "- 9 Dec: Tom recorded the Bilston PACT meeting as cancelled and scheduled the "
            "next one in chat (/schedule)"
        )

        # ---- 12 December: second round; 15 December 17:00: the return closes
        clock.set(datetime(2026, 12, 12, 9, 0, tzinfo=LONDON))
        await world.tick()
        clock.set(datetime(2026, 12, 15, 17, 0, tzinfo=LONDON))
        await world.tick()
        _say("- 15 Dec 17:00: the return closed")
        mark = users["mark.evans"]
        await mark.press("Report a tension")
        await mark.wait_for("closed on")
        _say("- Mark answered after the close and was pointed to /report")

        # ---- a crisis: an extra return for Heath Town with a 24-hour deadline
        clock.set(datetime(2026, 12, 16, 10, 0, tzinfo=LONDON))
        extra = await world.services.campaigns.open_extra(
            closes_at=clock.now() + timedelta(hours=24), wards=["Heath Town"], actor="demo"
        )
        await world.settle()
        await asha.wait_for("extra tension return")
        await asha.press("Nothing to report")
        await asha.wait_for("nil return is recorded")
        _say(f"- 16 Dec: an extra 24-hour return for Heath Town ({extra.key})")
        await _crisis_cadence(world, clock, slack, sam, asha)

        await world.settle()

        board = [u for u in slack.uploads if u.get("channel_id") == "C0SWPBOARD"]
        _say(
            f"- when the return closed, the summary went to #swp-board with {len(board)} "
            "charts (aggregates only, small counts suppressed)"
        )
        status_code, _ = await sam.slash("/tensions", "2026-12", channel_id="C0SWPBOARD")
        await scripted_until(
            lambda: (
                len([u for u in slack.uploads if u.get("channel_id") == "C0SWPBOARD"])
                >= len(board) + 3
            )
        )
        _say(
            f"- the Prevent and Cohesion Officer asked /tensions 2026-12 in Slack "
            f"(HTTP {status_code}) and got the summary with its charts"
        )
        before = len(slack.uploads)
        status_code, _ = await sam.slash("/pact", "", channel_id="C0SWPBOARD")
        await scripted_until(lambda: len(slack.uploads) > before)
        _say(f"- and /pact (HTTP {status_code}): which times and venues drew people, with a chart")
        escalations = [m for m in slack.top_level("C0SWPDUTY")]
        _say(
            f"- unacknowledged actions were reminded in their teams' threads and escalated: "
            f"{len(escalations)} to the duty channel, "
            f"{len(slack.calls_for('conversations.open'))} direct message(s) to the Prevent "
            "and Cohesion Officer"
        )

        # ---- results
        december = await world.services.campaigns.resolve("2026-12")
        assert december.id is not None
        status = await world.services.campaigns.status(december.id, actor="demo")
        from bot.cli import format_status

        _say("\n" + format_status(status))
        _say(await demo_email.answered_by_channel(world.services, december.id))
        (out / "campaign-status.json").write_text(json.dumps(status.as_dict(), indent=2))
        async with world.services.db.uow() as uow:
            reports: list[Report] = []
            for p in await uow.people.all():
                assert p.id is not None
                reports.extend(await uow.reports.for_person(p.id, limit=50))
        reports = sorted((r for r in reports if r.source != "history"), key=lambda r: r.reference)
        category = form.question("category")
        _say("\nReports (free text is in the database only):")
        for r in reports:
            _say(
                f"  {r.reference}  {r.source:<7} {r.ward:<12} "
                f"{form.display_value(category, r.category):<38} level {r.level}  {r.basis}"
            )
        summary = await world.services.summaries.build("2026-12", actor="demo")
        files = write_exports(summary, out / "summary")
        _say("\nSummary for December 2026 (summary/summary.md):")
        for line in headline(summary).plain_text().splitlines()[1:]:
            _say(f"  {line}")
        _say(f"  exports: {', '.join(f.name for f in files)}")

        insight = await world.services.pact.insight("2026-09", "2026-12")
        _say("\nPACT meetings, September to December 2026 (which times and venues draw people):")
        for line in pact_markdown(insight).splitlines()[1:]:
            if line.strip() and not line.startswith("_"):
                _say(f"  {line}")

        _say("\nEach report's timeline as the reporter saw it (on Telegram):")
        async with world.services.db.uow() as uow:
            for r in reports:
                assert r.id is not None
                _say(f"  {r.reference}")
                events = []
                for action in await uow.actions.for_report(r.id):
                    assert action.id is not None
                    events += [e for e in await uow.actions.events(action.id) if e.for_reporter]
                for e in sorted(events, key=lambda e: (e.at, e.id or 0)):
                    when = e.at.astimezone(LONDON).strftime("%d %b %H:%M")
                    _say(f"    {when}  {e.text}")
                if not events:
                    _say("    (not routed)")
        for key, user in {**users, "stranger": stranger}.items():
            (out / "transcripts" / f"{key}.txt").write_text(user.transcript())
        sent = len(fake.calls_for("sendMessage")) + len(fake.calls_for("editMessageText"))
        _say(
            f"\nTelegram API calls: {len(fake.calls)} ({sent} messages sent or edited), "
            f"{fake.throttled} throttled"
        )
        _say(
            f"Output: {out.resolve()} (database, people.csv, invites.csv, campaign-status.json, "
            f"transcripts/)"
        )
        posts = sum(len(slack.calls_for(m)) for m in ("chat.postMessage", "chat.update"))
        _say(
            f"Slack API calls: {len(slack.calls)} ({posts} posts or updates), "
            f"{slack.throttled} throttled"
        )
        _say(f"Done in {time.monotonic() - started:.1f} s")
        ok = (
            len(escalations) >= 1
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
            _say(f"UNEXPECTED campaign counts: {status.counts}")
        return 0 if ok else 1
    finally:
        await world.stop()
        await fake.stop()
        await slack.stop()
        await mail.__aexit__(None, None, None)


async def _crisis_cadence(
    world: SimWorld, clock: FakeClock, slack: FakeSlack, sam: SlackUser, asha: Any
) -> None:
    """The Prevent and Cohesion Officer starts a daily crisis return for Heath Town from Slack;
    the scheduler opens the next day's once; she stops it."""

    def extras() -> int:
        return sum("extra tension return" in (m.text or "") for m in asha.messages)

    def told() -> list[str]:
        return [r["text"] for r in slack.responses if r.get("user") == sam.user_id]

    before, answers = extras(), len(told())
    await sam.slash("/crisis", "daily Heath Town until 2026-12-20")
    await scripted_until(lambda: len(told()) > answers)
    await asha.wait_for(lambda m: extras() == before + 1)
    _say(f"- 16 Dec: Sam started a crisis cadence in Slack: {told()[-1]}")
    clock.set(datetime(2026, 12, 17, 10, 30, tzinfo=LONDON))
    await world.tick()
    await world.tick()  # a second tick the same day opens nothing more
    await asha.wait_for(lambda m: extras() == before + 2)
    await sam.slash("/crisis", "stop")
    await scripted_until(lambda: len(told()) > answers + 1)
    clock.set(datetime(2026, 12, 18, 10, 30, tzinfo=LONDON))
    await world.tick()
    assert extras() == before + 2, "a stopped cadence opened a return"
    _say(
        f"- 17 Dec: the scheduler opened the day's crisis return once; Sam sent /crisis stop "
        f"({told()[-1]}); none on 18 Dec"
    )


async def _current_form(world: SimWorld):  # type: ignore[no-untyped-def]
    async with world.services.db.uow() as uow:
        return await world.services.forms.current(uow)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(asyncio.run(run_demo(Path("demo-output"))))


async def _owner_reports_back(
    slack: FakeSlack, officer: SlackUser, channel: str, neighbourhood: str, text: str
) -> int:
    """An owner team member clicks "Report back" on each of the team's PACT requests for the
    neighbourhood and fills the modal. Returns how many."""
    posts = [
        m
        for m in slack.top_level(channel)
        if "please report back" in m.text and neighbourhood in m.text
    ]
    for post in posts:
        views = len(slack.views_opened())
        await officer.click(post, "tb_pact_report_back")
        view = await scripted_until(lambda v=views: slack.views_opened()[v:])
        _, body = await officer.submit_view(view[0], text_value("text", text))
        if body is not None and body.get("response_action") == "errors":
            raise AssertionError(f"the report-back was refused: {body}")
    return len(posts)


async def _asha_records_pact(world: SimWorld, asha: Any) -> None:
    """The chair records the Heath Town meeting in Telegram, one question at a time."""
    async with world.services.db.uow() as uow:
        open_now = len(await uow.pact.open_priorities("heath-town"))
    await asha.wait_for("How did the Heath Town and East Park PACT meeting go?")
    await asha.press("Record the meeting")
    await asha.wait_for("How many members of the public came?")
    await asha.send_text("38")
    await asha.wait_for("first time")
    await asha.send_text("45")
    await asha.wait_for("cannot be more than the members of the public")
    await asha.send_text("11")
    await asha.wait_for("Which partners were there?")
    for partner in ("Imam Yusuf Khan", "Jane Smith"):
        await asha.press(partner)
        await asha.wait_for(lambda m, p=partner: any(b[0] == f"✓ {p}" for b in m.buttons()))
    await asha.press("Done")
    for k in range(open_now):
        await asha.wait_for(f"Priority {k + 1} of {open_now}")
        await asha.press("Closed" if k % 2 == 0 else "Carried")
        question = await asha.wait_for("What was done?")
        if any(b[0] == "Use their report" for b in question.buttons()):
            await asha.press("Use their report")
        else:
            await asha.send_text("Raised with the housing association; follow-up in January.")
    await asha.wait_for("New priority 1")
    await asha.send_text("Cars racing on Wednesfield Road at night")
    await asha.wait_for("Which team owns")
    await asha.press("Neighbourhood Policing Team")
    await asha.wait_for("New priority 2")
    await asha.press("No more new priorities")
    await asha.wait_for("Please check the record")
    await asha.press("Save the record")
    await asha.wait_for("Saved:")


async def _jane_records_pact_in_slack(slack: FakeSlack, jane: SlackUser) -> None:
    """The Slack chair taps "Record the meeting" in her DM and fills the modal."""
    prompt = await scripted_until(
        lambda: next(
            (m for m in slack.dm(jane.user_id) if "How did the Penn" in m.text and m.blocks), None
        )
    )
    views = len(slack.views_opened())
    await jane.click(prompt, "tb_pact_record")
    view = (await scripted_until(lambda: slack.views_opened()[views:]))[0]
    values: dict[str, dict[str, Any]] = {
        "public": {"public": {"type": "number_input", "value": "16"}},
        "new": {"new": {"type": "number_input", "value": "5"}},
        **select_value("owner_1", "npt"),
        **text_value("priority_1", "Parking on pavements outside Woodfield school"),
    }
    for block in view["blocks"]:
        block_id = block.get("block_id", "")
        if block_id == "partners":
            first = block["element"]["options"][0]
            values["partners"] = {"partners": {"type": "checkboxes", "selected_options": [first]}}
        elif block_id.startswith("review_"):
            values.update(select_value(block_id, "closed"))
        elif block_id.startswith("reviewnote_"):
            done = block["element"].get("initial_value") or "Raised with the school; wardens visit."
            values.update(text_value(block_id, done))
    _, body = await jane.submit_view(view, values)
    if body is not None and body.get("response_action") == "errors":
        raise AssertionError(f"the PACT record was refused: {body}")
