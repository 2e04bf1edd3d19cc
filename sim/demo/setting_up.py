"""Before December: the partnership's people, a year of history, last season's PACT meetings,
the invitation links, a stranger who is refused and a chat that blocks the bot."""

from __future__ import annotations

from bot.summaries.hatecrime import HateCrimeService
from handlers.files import cells
from sim.demo.stage import DECEMBER_PACT, PEOPLE_CSV, Stage, current_form, say
from sim.history import hate_crime_csv, pact_season_csv, record_pact_season, seed_reports

# Who taps their invitation link: the email's local part, their Telegram id and first name.
# David Green never does.
LINKED = {
    "asha.patel": (1001, "Asha"), "tom.hughes": (1002, "Tom"), "yusuf.khan": (1003, "Yusuf"),
    "sarah.jones": (1004, "Sarah"), "mark.evans": (1005, "Mark"),
    "gurpreet.singh": (1006, "Gurpreet"), "linda.brown": (1007, "Linda"),
    "grace.okafor": (1009, "Grace"), "fatima.ali": (1010, "Fatima"),
}  # fmt: skip


async def people_and_history(stage: Stage) -> None:
    """people.csv is imported (twice: no duplicates), with a year of past reports and police
    hate-crime figures with a planted spike in Heath Town this December, imported through the
    same CSV path as real figures."""
    world, out = stage.world, stage.out
    result = await world.import_people(PEOPLE_CSV)
    say(f"- imported people.csv: {result.created} people")
    async with world.services.db.uow() as uow:
        historian = (await uow.people.all())[0]
    assert historian.id is not None
    wards = list(stage.config.partnership.wards)
    past = await seed_reports(
        world.services.db.uow,
        person_id=historian.id,
        form_version_id=(await current_form(world)).id,
        wards=wards,
        month="2026-12",
    )
    figures_csv = hate_crime_csv(wards, "2026-12", hotspot="Heath Town")
    (out / "hate-crime.csv").write_text(figures_csv)
    imported = await HateCrimeService(stage.config, world.services.db.uow, stage.clock).import_csv(
        figures_csv, source=str(out / "hate-crime.csv"), actor="demo"
    )
    say(
        f"- a year of history: {past} past tension reports and {imported.total} recorded "
        f"hate crimes ({imported.months[0]} to {imported.months[-1]}, hate-crime.csv)"
    )
    again = await world.import_people(PEOPLE_CSV)
    say(f"- re-imported it: {again.created} created, {again.unchanged} unchanged (no duplicates)")


async def pact_season(stage: Stage) -> None:
    """Last season's PACT meetings and December's, imported from one CSV; the past ones recorded
    by their chairs (through the same checks and storage as the chat flows)."""
    services, path = stage.world.services, stage.out / "pact-meetings.csv"
    path.write_text(pact_season_csv() + DECEMBER_PACT)
    season = await services.pact.import_csv(
        path.read_text(), source="pact-meetings.csv", actor="demo"
    )
    recorded = await record_pact_season(services.pact, services.db.uow)
    say(
        f"- PACT: {season.created} meetings of three neighbourhoods imported from "
        f"pact-meetings.csv (September to December, varied venues and times); the "
        f"{recorded} past ones recorded by their chairs"
    )


async def invitations(stage: Stage) -> None:
    """Personal invitation links are issued (invites.csv) and nine people tap theirs."""
    links = await stage.world.services.people.issue_invites(actor="demo")
    with (stage.out / "invites.csv").open("w", newline="") as handle:
        writer = cells.csv_writer(handle)  # as `tensionbot invites`: names never formulas
        writer.writerow(["name", "email", "link"])
        writer.writerows([x.person.name, x.person.email, x.url] for x in links)
    say(f"- issued {len(links)} personal invitation links (invites.csv)")
    for key, (uid, first) in LINKED.items():
        link = next(x for x in links if x.person.email.startswith(key))
        user = stage.telegram.user(uid, first_name=first)
        await user.send_command("/start", link.url.split("start=", 1)[1])
        stage.users[key] = user
    for user in stage.users.values():
        await user.wait_for("Welcome")
    say(f"- {len(stage.users)} people tapped their link and are connected; David Green never did")


async def a_stranger_and_a_blocked_chat(stage: Stage) -> None:
    """Someone without an invitation (or with a forged one) is refused; Linda blocks the bot."""
    stranger = stage.stranger = stage.telegram.user(666, first_name="Stranger")
    await stranger.send_command("/start")
    await stranger.wait_for("only for people invited")
    await stranger.send_command("/start", "forged-token-123")
    await stranger.wait_for("not valid")
    say("- an unknown Telegram user was politely refused; nothing about them was stored")
    stage.telegram.block(stage.users["linda.brown"].chat_id)
    say("- Linda Brown has since blocked the bot")
