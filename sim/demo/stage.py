"""The demo's stage: who is in it, where it happens, and what every scene shares.

A fresh SQLite file in ``--out``, a local simulated Telegram Bot API server and a simulated
Slack, a fake clock starting on 30 November 2026, and the real bot wired to them. The teams,
routing, deadlines, escalation, summaries and PACT settings are those of config.example.toml.
"""

from __future__ import annotations

import shutil
import tomllib
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.clock import FakeClock
from bot.config import Config, config_from_mapping
from bot.forms import FormDefinition
from bot.forms.versions import CurrentForm
from sim.fake_slack import FakeSlack, SlackUser
from sim.fake_telegram import FakeTelegram, SimUser
from sim.mail import MailInbox, mail_server
from sim.world import SimWorld, free_port

LONDON = ZoneInfo("Europe/London")
TOKEN = "7000000001:DEMO-TOKEN-not-a-real-one"  # noqa: S105 - for the simulator only
ROOT = Path(__file__).resolve().parents[2]
#: The demo's web-form secret (never a real one).
WEB_SECRET = "demo-web-secret-not-a-real-one-0123456789"  # noqa: S105

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
    ("C0SWPPACT", "swp-pact", []),  # public: PACT meetings announced, "you said, we did"
]
# The partnership's public Telegram channel (the bot is an administrator of it).
PUBLIC_CHANNEL = "@swp_pact"

DECEMBER_PACT = """heath-town,2026-12-03,18:30,Heath Town Community Centre,in_person,,90
penn,2026-12-05,11:00,Penn Library,in_person,,90
bilston,2026-12-09,14:00,Bilston Town Hall,in_person,,90
penn,2026-12-10,18:30,Blakenhall Community Centre,in_person,ruth.adeyemi@example.org,90
"""


def say(text: str) -> None:
    """Tell the story: one line of the demo's printed account."""
    print(text, flush=True)


@dataclass
class Stage:
    """What the scenes share. ``world`` (the running bot) is replaced when the story restarts
    it; ``users`` fills as people link their chats."""

    out: Path
    config: Config
    telegram: FakeTelegram
    slack: FakeSlack
    clock: FakeClock
    world: SimWorld
    form: FormDefinition
    jane: SlackUser  # police officer, Community Cohesion Team, chairs Penn's PACT meeting
    pc: SlackUser  # Neighbourhood Policing Team
    sam: SlackUser  # the Prevent and Cohesion Officer
    inbox: MailInbox  # what the demo's SMTP server on 127.0.0.1 received
    mail: AbstractAsyncContextManager[MailInbox]  # that server, stopped by close()
    users: dict[str, SimUser] = field(default_factory=dict)
    stranger: SimUser | None = None

    async def at(self, when: datetime) -> None:
        """Move the clock to ``when`` and let the scheduler tick once."""
        self.clock.set(when)
        await self.world.tick()

    async def restart(self) -> None:
        """Stop the bot once its work has settled, and start it again on the same database."""
        await self.world.settle()
        await self.world.stop()
        self.world = await SimWorld.start(self.config, self.telegram, self.clock)

    async def close(self) -> None:
        """Stop the bot, both simulated platforms and the mail server."""
        await self.world.stop()
        await self.telegram.stop()
        await self.slack.stop()
        await self.mail.__aexit__(None, None, None)


async def current_form(world: SimWorld) -> CurrentForm:
    """The form the bot is using, with its stored id."""
    async with world.services.db.uow() as uow:
        return await world.services.forms.current(uow)


def _example_sections() -> dict[str, object]:
    """Teams, routing, deadlines and escalation from config.example.toml (the demo's data)."""
    data = tomllib.loads((ROOT / "config.example.toml").read_text())
    keys = ("teams", "routing", "deadlines", "escalation", "summaries", "pact")
    return {k: data[k] for k in keys}


def _config(out: Path, telegram: FakeTelegram, slack: FakeSlack, inbox: MailInbox) -> Config:
    http_port = free_port()  # the one HTTP server: Slack's events and the web form
    sections = _example_sections()
    pact = dict(sections.pop("pact"))  # type: ignore[call-overload]
    return config_from_mapping(
        {
            "database": {"url": f"sqlite+aiosqlite:///{(out / 'tensionbot.sqlite3').resolve()}"},
            "telegram": {
                "api_base_url": telegram.base_url,
                "bot_username": "swp_tension_bot",
                "poll_timeout": 1,
                # Simulated people answer instantly, where a person takes seconds a question:
                # allow a longer burst per chat so the demo is not paced like a human.
                "per_chat_burst": 10,
            },
            "slack": {"api_base_url": slack.base_url, "port": http_port},
            # Email to a real SMTP server on 127.0.0.1; the web form on the bot's HTTP server.
            "web": {
                "base_url": f"http://127.0.0.1:{http_port}",
                "secure_cookies": False,
                "public_pact": True,
            },
            "email": {
                "host": "127.0.0.1",
                "port": inbox.port,
                "security": "none",
                "fallback": True,
            },
            # PACT meetings advertised in public: the pages, and the public channels.
            "pact": {
                **pact,
                "public": {"telegram_channel": PUBLIC_CHANNEL, "slack_channel": "C0SWPPACT"},
            },
            # Simplified, invented shapes for two wards (not the real boundaries).
            "wards": {
                "boundaries_file": str(Path(__file__).parents[1] / "data/wards_simplified.geojson")
            },
            **sections,
        },
        source="<demo>",
        env={
            "TENSIONBOT_WEB_SECRET": WEB_SECRET,
            "TENSIONBOT_TELEGRAM_TOKEN": TOKEN,
            "TENSIONBOT_SLACK_BOT_TOKEN": slack.token,
            "TENSIONBOT_SLACK_SIGNING_SECRET": slack.signing_secret,
        },
    )


async def open_stage(out: Path) -> Stage:
    """Recreate ``out``, start both simulated platforms and the bot on 30 November 2026."""
    if out.exists():
        shutil.rmtree(out)
    (out / "transcripts").mkdir(parents=True)
    (out / "people.csv").write_text(PEOPLE_CSV)
    telegram = FakeTelegram(token=TOKEN, bot_username="swp_tension_bot")
    await telegram.start()
    telegram.channel(PUBLIC_CHANNEL, title="Safer Wolverhampton PACT meetings")
    slack = FakeSlack(per_channel_rate=1)  # Slack's ~1 message/s per channel, enforced
    await slack.start()
    for channel, name, members in CHANNELS:
        slack.add_channel(channel, name, members)
    mail = mail_server()
    inbox = await mail.__aenter__()
    config = _config(out, telegram, slack, inbox)
    slack_url = f"http://127.0.0.1:{config.slack.port}{config.slack.path}"
    jane, pc, sam = (
        SlackUser(slack, u, slack_url) for u in ("U0JANESMITH", "U0PCKAUR", "U0SAMCLARKE")
    )
    clock = FakeClock(datetime(2026, 11, 30, 12, 0, tzinfo=LONDON))
    world = await SimWorld.start(config, telegram, clock)
    form = (await current_form(world)).definition
    return Stage(out, config, telegram, slack, clock, world, form, jane, pc, sam, inbox, mail)
