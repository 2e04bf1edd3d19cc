"""The Telegram command menu and /help, from the person's side: everyone sees a reporter's
commands; a PACT chair also /meeting and /schedule; the Prevent and Cohesion Officer and admins
also /summary and /pact. Menus are set when a person links and again at start-up."""

from __future__ import annotations

from typing import Any

from bot.clock import FakeClock
from bot.common import Sender
from sim.scripts import until
from sim.world import SimWorld
from tests.conftest import make_config

PEOPLE = """name,role,wards,organisation,email
Cllr Asha Patel,councillor,Heath Town,Council,asha@example.org
Chris Chair,community_leader,Heath Town,Residents,chris@example.org
Sam Clarke,prevent_officer,all,Council,sam@example.org
Ada Admin,admin,all,Council,ada@example.org
"""
PACT = {"neighbourhoods": [{"key": "heath-town", "name": "Heath Town", "wards": ["Heath Town"],
                            "chair": "chris@example.org"}]}  # fmt: skip
REPORTER = ["return", "report", "status", "cancel", "help"]


def menu(world: SimWorld, chat: int | None = None) -> list[str]:
    """The commands the person in ``chat`` sees in the menu (everyone's when none of their own)."""
    own = world.fake.commands(f"chat:{chat}") if chat is not None else []
    return [command for command, _ in (own or world.fake.commands("default"))]


async def test_each_person_sees_the_commands_they_may_use(
    db_url: str, fake_telegram: Any, clock: FakeClock
) -> None:
    config = make_config(db_url, fake_telegram.base_url, pact=PACT)
    w = await SimWorld.start(config, fake_telegram, clock)
    try:
        await w.import_people(PEOPLE)
        asha = await w.link("asha@example.org", 801, "Asha")
        chris = await w.link("chris@example.org", 802, "Chris")
        sam = await w.link("sam@example.org", 803, "Sam")
        await until(lambda: fake_telegram.commands("default"))  # set at start-up
        await until(
            lambda: fake_telegram.commands("chat:802") and fake_telegram.commands("chat:803")
        )

        assert menu(w) == REPORTER
        assert menu(w, 801) == REPORTER  # a councillor has no menu of her own
        assert fake_telegram.commands("chat:801") == []
        assert menu(w, 802) == [
            "return",
            "report",
            "status",
            "cancel",
            "meeting",
            "schedule",
            "help",
        ]
        assert menu(w, 803) == [
            "return", "report", "status", "cancel", "summary", "pact", "crisis", "help"
        ]  # fmt: skip

        await sam.send_command("/help")
        help_text = (await sam.wait_for("/summary")).text or ""
        assert "/pact" in help_text and "/meeting" not in help_text
        await asha.send_command("/help")
        help_text = (await asha.wait_for("/status")).text or ""
        assert "/summary" not in help_text and "/pact" not in help_text
        assert "/meeting" not in help_text
        await chris.send_command("/help")
        help_text = (await chris.wait_for("/meeting")).text or ""
        assert "/schedule" in help_text and "/summary" not in help_text
    finally:
        await w.stop()


async def test_menus_are_set_at_start_up_for_people_already_linked(
    db_url: str, fake_telegram: Any, clock: FakeClock
) -> None:
    config = make_config(db_url, fake_telegram.base_url, pact=PACT)
    from bot.app import build_services

    services = await build_services(config, clock=clock, migrate=False)
    try:  # Ada linked while the bot was not running (e.g. before this version)
        await services.people.import_csv(PEOPLE, source="p.csv", actor="t")
        link = (await services.people.issue_invites(actor="t", email="ada@example.org"))[0]
        fake_telegram.user(804, "Ada")
        await services.people.link(Sender("telegram", 804, 804, None), link.url.split("start=")[1])
    finally:
        await services.close()
    w = await SimWorld.start(config, fake_telegram, clock)
    try:
        await until(lambda: fake_telegram.commands("chat:804"))
        assert menu(w, 804) == [
            "return", "report", "status", "cancel", "meeting", "schedule", "summary", "pact",
            "crisis", "help",
        ]  # fmt: skip
        assert menu(w) == REPORTER
    finally:
        await w.stop()
