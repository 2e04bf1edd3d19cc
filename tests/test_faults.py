"""Faults, seeded and repeated: platform errors injected at the fake Telegram and Slack servers
(429 with retry_after, 5xx, timeouts, 403 blocked), SIGKILL of ``tensionbot run`` at random
moments of a campaign's fan-out and of officers' actions, the PostgreSQL server restarted under
the bot and SQLite's write lock held by another process (these two with Telegram's updates by
polling and by webhook). Invariants: nothing lost, nothing sent twice, every 429 honoured
(measured at the fake from its call timestamps), blocked people marked unreachable and reported
to admins, no submitted report lost, no Telegram update lost (every update pushed at the fake
recorded as processed: ``updates_lost``).

Default: a few seeds per test (CI). ``pytest --long``: many. Figures (trials, messages checked,
duplicates, losses) are printed in the terminal summary and written to
``<pytest tmp>/fault-figures.json``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.clock import FakeClock
from bot.domain import DeliveryState
from handlers.slack.ids import ActionId
from handlers.slack.who import who
from sim.fake_slack import FakeSlack, SlackUser
from sim.fake_telegram import FakeTelegram
from sim.scripts import tension, until
from sim.world import SimWorld, free_port
from storage.tables import outbox
from tests.conftest import SLACK_ENV, backend, make_config
from tests.faults_helpers import (
    FigureBook,
    Figures,
    form_sends,
    slack_429s,
    telegram_429s,
    updates_lost,
)
from tests.helpers import slack_config, start_slack_world, telegram_chat, webhook_section

SHORT = {"platform": 3, "kill": 2, "postgres": 1, "lock": 1}
LONG = {"platform": 50, "kill": 50, "postgres": 10, "lock": 20}
# How Telegram's updates reach the bot; webhook is the production mode.
MODES = ["polling", "webhook"]
FORM_MARKER = "return for December 2026"
# The bot's HTTP read timeout in these tests (15 s in production). Not shorter: the bot and the
# fakes share this process, and on a busy machine an ordinary answer can take seconds; at 2 s
# such answers timed out, each was retried with a doubling backoff, and the acknowledgement did
# not reach Slack within the trial ("the simulated Slack never showed what was expected").
CLIENT_TIMEOUT = 10.0
# An injected timeout: the fake answers this late, having done nothing. The client's deadline
# (request sent + CLIENT_TIMEOUT) always falls before the fake's (request received + HANG) on
# this one event loop, however slow the machine: the client gives up first, by construction.
HANG = CLIENT_TIMEOUT + 2.0
TEAMS = [
    {
        "key": "cohesion",
        "name": "Cohesion Team",
        "organisation": "council",
        "slack_channel": "C0COHESION",
        "members": ["U0JANE"],
    }
]
ROUTING = {"default_team": "cohesion", "rules": []}
SLACK_POSTING = frozenset({"chat.postMessage", "chat.update"})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" in metafunc.fixturenames:
        kind = metafunc.function.__name__.split("_")[1]  # test_<kind>_...
        table = LONG if metafunc.config.getoption("--long") else SHORT
        metafunc.parametrize("seed", range(table[kind]))


@pytest.fixture(scope="module")
def figures(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FigureBook]:
    book = FigureBook(tmp_path_factory.getbasetemp() / "fault-figures.json")
    yield book
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    for line in book.summary():
        print(line)
        if reporter is not None:
            reporter.write_line(line)
    # Under pytest-xdist a worker's terminal is not shown: scripts/test-all names a file here
    # and prints it after the run.
    if out := os.environ.get("TENSIONBOT_FAULT_FIGURES"):
        Path(out).write_text("\n".join(book.summary()) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- platform faults


@pytest.fixture
def short_client_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bot's Telegram client times out after CLIENT_TIMEOUT (so an injected hang of HANG
    seconds is a timeout without making each trial 15 s longer)."""
    import bot.runtime
    from handlers.telegram.request import AiohttpRequest

    def request(**kwargs: Any) -> AiohttpRequest:
        kwargs["read_timeout"] = min(float(kwargs.get("read_timeout") or 15), CLIENT_TIMEOUT)
        return AiohttpRequest(**kwargs)

    monkeypatch.setattr(bot.runtime, "AiohttpRequest", request)


def _people_csv(n: int) -> str:
    rows = [f"Reporter {i},councillor,Park,Council,r{i}@example.org," for i in range(n)]
    rows += [
        "Rita Slack,community_leader,Heath Town,Mosque,rita@example.org,U0RITA",
        "Jane Smith,officer,all,Police,jane@example.org,U0JANE",
        "Ada Admin,admin,all,Council,ada@example.org,",
    ]
    return "name,role,wards,organisation,email,slack_user_id\n" + "\n".join(rows) + "\n"


async def _link(w: SimWorld, emails: dict[str, int]) -> dict[str, Any]:
    users: dict[str, Any] = {}
    for email, chat_id in emails.items():
        links = await w.services.people.issue_invites(actor="sim", email=email)
        user = w.fake.user(chat_id, first_name=email.split("@")[0])
        await user.send_command("/start", links[0].url.split("start=", 1)[1])
        users[email] = user
    for user in users.values():
        await user.wait_for("Welcome", timeout=60)
    return users


async def _inject_telegram(fake: FakeTelegram, rng: random.Random, chats: list[int]) -> int:
    """A random mix of faults at random moments of the fan-out."""
    n = 0
    for _ in range(rng.randint(6, 10)):
        await asyncio.sleep(rng.uniform(0.0, 0.5))
        kind = rng.choice(["429", "429", "500", "502", "timeout"])
        chat = rng.choice([None, None, rng.choice(chats)])
        if kind == "429":
            fake.inject(429, method="sendMessage", retry_after=1)
        elif kind == "timeout":
            # Telegram may have carried out a call it did not answer in time, or not.
            taken = rng.random() < 0.5
            fake.inject(0, method="sendMessage", chat_id=chat, hang=HANG, carried_out=taken)
        else:
            fake.inject(int(kind), method="sendMessage", chat_id=chat)
        n += 1
    return n


async def _alerts_sent(w: SimWorld) -> dict[int, bool]:
    """Per person blocked, whether the admins' alert about it was recorded as sent (not
    uncertain)."""
    async with w.services.db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbox.c.idempotency_key, outbox.c.status).where(
                    outbox.c.idempotency_key.like("alert:person:%:blocked:%")
                )
            )
        ).all()
    return {int(key.split(":")[2]): status == "sent" for key, status in rows}


def _forms_in_chats(fake: FakeTelegram, chats: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """The forms in each chat, as the person sees them: (first copies, follow-up copies)."""
    originals: dict[int, int] = {}
    follow_ups: dict[int, int] = {}
    for chat in chats:
        for m in fake.messages(chat):
            text = m.text or ""
            if FORM_MARKER in text:
                into = follow_ups if "In case our earlier message" in text else originals
                into[chat] = into.get(chat, 0) + 1
    return originals, follow_ups


async def _inject_slack(fake: FakeSlack, rng: random.Random) -> int:
    n = 0
    for _ in range(rng.randint(3, 6)):
        await asyncio.sleep(rng.uniform(0.0, 0.6))
        kind = rng.choice(["429", "500", "502", "timeout"])
        method = rng.choice(["chat.postMessage", "chat.update"])
        if kind == "429":
            fake.inject(method, status=429, retry_after=1)
        elif kind == "timeout":
            fake.inject(method, status=0, hang=HANG)
        else:
            fake.inject(method, status=int(kind))
        n += 1
    return n


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    fake.add_channel("C0COHESION", "cohesion", ["U0JANE"])
    fake.add_user("U0JANE", "jane")
    fake.add_user("U0RITA", "rita")
    yield fake
    await fake.stop()


async def test_platform_faults(
    seed: int,
    db_url: str,
    fake_telegram: FakeTelegram,
    slack: FakeSlack,
    short_client_timeouts: None,
    figures: FigureBook,
) -> None:
    rng = random.Random(seed)
    n = rng.randint(30, 50)
    clock = FakeClock(datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    w, port = await start_slack_world(
        db_url,
        fake_telegram,
        slack,
        clock,
        teams=TEAMS,
        routing=ROUTING,
        telegram={"global_rate": 25.0, "per_chat_rate": 5.0},
    )
    try:
        # The outbox's Slack client times out quickly too.
        w.runtime.dispatcher.messengers["slack"].client.timeout = int(CLIENT_TIMEOUT)  # type: ignore[attr-defined]
        await w.import_people(_people_csv(n))
        emails = {f"r{i}@example.org": 8000 + i for i in range(n)} | {"ada@example.org": 7000}
        users = await _link(w, emails)
        reporters = [8000 + i for i in range(n)]
        blocked = set(rng.sample(reporters, rng.randint(1, 3)))
        for chat in blocked:
            fake_telegram.block(chat)
        calls_before = len(fake_telegram.calls)

        # The fan-out, three Slack reports and an officer acknowledging them, all under faults.
        campaign, _ = await w.services.campaigns.open_monthly()
        tg_faults = asyncio.create_task(
            _inject_telegram(fake_telegram, rng, [c for c in reporters if c not in blocked])
        )
        sl_faults = asyncio.create_task(_inject_slack(slack, rng))
        n_reports = 3
        for k in range(n_reports):
            errors = await w.services.reporting.submit(
                who("U0RITA"),
                0,
                tension("Heath Town", "religion", f"Fault trial {seed} report {k}"),
            )
            assert errors == {}
        w.runtime.dispatcher.wake()
        posts = await until(
            lambda: (m := slack.top_level("C0COHESION")) and len(m) >= n_reports and m, 90
        )
        url = f"http://127.0.0.1:{port}/slack/events"
        jane = SlackUser(slack, "U0JANE", url)
        for post in posts:
            assert await jane.click(post, ActionId.ACK) == 200
        await asyncio.gather(tg_faults, sl_faults)
        await until(
            lambda: all("Status:* Acknowledged" in json.dumps(p.blocks) for p in posts), 120
        )
        await w.settle(timeout=180)
        # A form whose send got no answer (a timeout) is uncertain, not re-sent at once: the
        # campaign's follow-up sends it once more, worded so that a second copy is harmless.
        fake_telegram.clear_injections()  # the platform is well again
        clock.advance(timedelta(hours=w.services.config.outbox.uncertain_followup_hours))
        clock.advance(timedelta(minutes=1))
        await w.services.campaigns.tick()
        await w.settle(timeout=180)

        # ---- nothing lost, nothing sent twice (counted in the chats at the fake: a form
        # carried out but not answered is there too); the follow-up at most once more
        originals, follow_ups = _forms_in_chats(fake_telegram, reporters)
        forms = {c: originals.get(c, 0) + follow_ups.get(c, 0) for c in reporters}
        reachable = [c for c in reporters if c not in blocked]
        losses = [c for c in reachable if forms.get(c, 0) == 0]
        dups = [c for c in reporters if originals.get(c, 0) > 1 or follow_ups.get(c, 0) > 1]
        assert not [c for c in blocked if forms.get(c, 0)], "a blocked chat got the form"
        acks = [
            m for p in posts for m in slack.thread("C0COHESION", p.ts) if "Acknowledged" in m.text
        ]
        told = [m for m in slack.dm("U0RITA") if "acknowledged by" in m.text.lower()]
        dups_ack = (len(acks) - n_reports) + max(0, len(told) - n_reports)
        async with w.services.db.uow() as uow:
            people = {telegram_chat(p): p for p in await uow.people.all()}
            deliveries = {
                d.person_id: d for d in await uow.deliveries.for_campaign(campaign.id or 0)
            }
        # ---- blocked people: marked, their delivery unreachable, admins told once each
        admin_texts = [m.text or "" for m in fake_telegram.messages(7000)]
        sent_alerts = await _alerts_sent(w)
        for chat in blocked:
            person = people[chat]
            assert person.blocked_at is not None
            d = deliveries[person.id or 0]
            assert d.status == DeliveryState.UNREACHABLE.value and d.detail == "blocked the bot"
            alerts = [t for t in admin_texts if person.name in t and "blocked the bot" in t]
            # Once; an alert whose send got no answer is at most once (uncertain, not re-sent):
            # in the chat if Telegram carried it out, and never twice.
            told_once = {1} if sent_alerts.get(person.id or 0, True) else {0, 1}
            assert len(alerts) in told_once, f"admins told {len(alerts)} times: {person.name}"
        for chat in reachable:
            assert deliveries[people[chat].id or 0].status == DeliveryState.SENT.value
        # ---- every 429 honoured
        throttled, violations, concurrent = telegram_429s(fake_telegram)
        s_throttled, s_violations, s_concurrent = slack_429s(slack, SLACK_POSTING)
        row = Figures(
            "platform",
            seed,
            messages_checked=sum(forms.values()) + len(acks) + len(told) + len(blocked),
            duplicates=len(dups) + dups_ack,
            losses=len(losses),
            throttled_429=throttled + s_throttled,
            violations_429=violations + s_violations,
            concurrent_429=concurrent + s_concurrent,
            blocked=len(blocked),
            notes={
                "reporters": n,
                "telegram_calls": len(fake_telegram.calls) - calls_before,
                "slack_calls": len(slack.calls),
                "slack_429_violations": s_violations,
                "uncertain": w.runtime.dispatcher.stats.uncertain,
                "followed_up": sum(follow_ups.values()),
                "carried_out_unanswered": sum(forms.values())
                - sum(form_sends(fake_telegram, FORM_MARKER).values()),
            },
        )
        figures.add(row)
        print(row)
        assert not losses, f"forms lost: {losses}"
        assert not dups, f"forms sent twice: {dups}"
        assert len(acks) == n_reports and len(told) == n_reports, (len(acks), len(told))
        assert violations == 0, "a Telegram 429 was not honoured"
        assert s_violations == 0, "a Slack 429 was not honoured"
        del users
    finally:
        await w.stop()


# --------------------------------------------------------------------------- SIGKILL


def _kill_config(db_url: str, tg_url: str, slack_url: str, port: int) -> str:
    return f"""
[partnership]
wards = ["Bilston South", "Blakenhall", "Heath Town", "Park", "Penn"]
[database]
url = "{db_url}"
[telegram]
api_base_url = "{tg_url}"
bot_username = "swp_tension_bot"
poll_timeout = 1
global_rate = 12.0
per_chat_rate = 1.0
max_in_flight = {MAX_IN_FLIGHT}
outbox_lease_seconds = 1
[slack]
api_base_url = "{slack_url}"
port = {port}
[schedule]
tick_seconds = 3600
[routing]
default_team = "cohesion"
[[teams]]
key = "cohesion"
name = "Cohesion Team"
organisation = "council"
slack_channel = "C0COHESION"
members = ["U0JANE"]
"""


MAX_IN_FLIGHT = 2


async def test_kill_campaign_and_actions(
    seed: int,
    db_url: str,
    fake_telegram: FakeTelegram,
    slack: FakeSlack,
    tmp_path: Any,
    figures: FigureBook,
) -> None:
    from bot.app import build_services
    from tests.processes import BotProcess

    class SlackBot(BotProcess):
        def _env(self) -> dict[str, str]:
            return {**super()._env(), **SLACK_ENV}

    rng = random.Random(1000 + seed)
    n, n_reports = 30, 4
    port = free_port()
    config_file = tmp_path / "config.toml"
    config_file.write_text(_kill_config(db_url, fake_telegram.base_url, slack.base_url, port))
    bot = SlackBot(config_file, tmp_path / "bot.log")
    here = slack_config(
        db_url,
        fake_telegram.base_url,
        slack,
        port,
        teams=TEAMS,
        routing=ROUTING,
    )
    services = await build_services(here, migrate=False)
    try:
        await bot.start()
        people = tmp_path / "people.csv"
        people.write_text(_people_csv(n))
        await bot.cli("people", "import", str(people))
        out = await bot.cli("invites", "--format", "csv")
        users = []
        for line in out.strip().splitlines()[1:]:
            name, _email, link, _expires = line.split(",")
            if not name.startswith("Reporter "):
                continue
            user = fake_telegram.user(8000 + int(name.removeprefix("Reporter ")))
            await user.send_command("/start", link.split("start=")[1])
            users.append(user)
        for user in users:
            await user.wait_for("Welcome", timeout=60)
        for k in range(n_reports):
            assert (
                await services.reporting.submit(
                    who("U0RITA"),
                    0,
                    tension("Heath Town", "religion", f"Kill trial {seed} report {k}"),
                )
                == {}
            )
        posts = await until(
            lambda: (m := slack.top_level("C0COHESION")) and len(m) >= n_reports and m, 90
        )

        # The return opens (queued by this process: the bot's dispatcher finds it at its next
        # poll) and Jane acknowledges every action while the bot is killed at a random moment.
        await services.campaigns.open_monthly("2026-12", force=True)
        url = f"http://127.0.0.1:{port}/slack/events"
        jane = SlackUser(slack, "U0JANE", url)
        clicked: list[int] = []

        async def clicks() -> None:
            for i, post in enumerate(posts):
                await asyncio.sleep(rng.uniform(0.0, 0.4))
                try:
                    if await jane.click(post, ActionId.ACK) == 200:
                        clicked.append(i)
                except Exception:
                    pass

        clicker = asyncio.create_task(clicks())
        await asyncio.sleep(rng.uniform(0.8, 3.0))
        await bot.kill9()
        await clicker
        await asyncio.sleep(1.5)  # the dead process's leases expire
        await bot.start()

        async def settled() -> bool:
            async with services.db.uow() as uow:
                counts = await uow.outbox.counts()
            return counts.get("pending", 0) + counts.get("sending", 0) == 0

        deadline = asyncio.get_running_loop().time() + 180
        while not await settled():
            assert asyncio.get_running_loop().time() < deadline, "the outbox never settled"
            await asyncio.sleep(0.2)

        async def ack_counts() -> list[int]:
            async with services.db.uow() as uow:
                return [
                    sum(1 for e in await uow.actions.events(i + 1) if e.kind == "acknowledged")
                    for i in range(n_reports)
                ]

        applied_at_kill = await ack_counts()
        # Clicks lost to the kill: Jane clicks again on the message as it now stands.
        for i, count in enumerate(applied_at_kill):
            if count == 0:
                assert await jane.click(posts[i], ActionId.ACK) == 200
        deadline = asyncio.get_running_loop().time() + 120
        while min(await ack_counts()) == 0 or not await settled():
            assert asyncio.get_running_loop().time() < deadline, "acknowledgements never landed"
            await asyncio.sleep(0.2)
        final = await ack_counts()

        forms = form_sends(fake_telegram, FORM_MARKER)
        reporters = [u.chat_id for u in users]
        status = json.loads(await bot.cli("campaign", "status", "--period", "2026-12", "--json"))
        uncertain = {p["name"] for p in status["people"] if "uncertain" in p["detail"]}
        missing = {f"Reporter {c - 8000}" for c in reporters if forms.get(c, 0) == 0}
        dups = [c for c in reporters if forms.get(c, 0) > 1]
        row = Figures(
            "kill",
            seed,
            messages_checked=sum(forms.values()) + sum(final),
            duplicates=len(dups) + sum(max(0, c - 1) for c in final),
            losses=len(missing - uncertain),
            uncertain=len(uncertain),
            kills=1,
            notes={"clicks_before_kill": len(clicked), "applied_at_kill": applied_at_kill},
        )
        figures.add(row)
        print(row)
        assert not dups, f"forms sent twice: {dups}"
        assert missing <= uncertain, f"lost, not even uncertain: {missing - uncertain}"
        # At most telegram.max_in_flight forms can be in flight at the kill (the cap is per
        # channel: Slack's sends do not widen Telegram's).
        assert len(uncertain) <= MAX_IN_FLIGHT
        assert status["counts"].get("queued", 0) == 0
        assert final == [1] * n_reports, f"acknowledged events per action: {final}"
    finally:
        await bot.stop()
        await services.close()


# --------------------------------------------------------------------------- PostgreSQL restart


def _pg_bin(name: str) -> str | None:
    import glob
    import shutil

    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]
    return found if isinstance(found, str) else (found[0] if found else None)


@pytest.fixture
def own_postgres(tmp_path: Any) -> Iterator[tuple[str, Any]]:
    """A throwaway cluster like scripts/with-postgres starts, whose pg_ctl we keep."""
    import os
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from tests.conftest import backend

    if backend() != "postgresql":
        pytest.skip("PostgreSQL only")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("no PostgreSQL server binaries")
    data = Path(tempfile.mkdtemp(prefix="tensionbot-faults-pg."))  # the server user can enter
    run_as: list[str] = []
    if os.getuid() == 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "tensionbot-pg"], check=False)
        subprocess.run(["chown", "-R", "tensionbot-pg", str(data)], check=True)
        run_as = ["runuser", "-u", "tensionbot-pg", "--"]
    port = free_port()
    subprocess.run(
        [*run_as, initdb, "-D", str(data / "d"), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    opts = f"-h 127.0.0.1 -p {port} -k {data} -c fsync=off -c full_page_writes=off"

    def ctl(*args: str) -> None:
        cmd = [*run_as, pg_ctl, "-D", str(data / "d"), "-l", str(data / "log"), "-w", "-t", "30"]
        subprocess.run([*cmd, "-o", opts, *args], check=True, capture_output=True)

    ctl("start")
    yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres", ctl
    subprocess.run([*run_as, pg_ctl, "-D", str(data / "d"), "-m", "immediate", "stop"], check=False)
    shutil.rmtree(data, ignore_errors=True)


def _telegram(mode: str) -> dict[str, Any]:
    """The [telegram] settings of a delivery mode (webhook: on a free local port)."""
    if mode == "polling":
        return {}
    return webhook_section(free_port())


async def _start(config: Any, fake: FakeTelegram) -> SimWorld:
    clock = FakeClock(datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
    w = await SimWorld.start(config, fake, clock)
    if config.telegram.mode == "webhook":
        await until(lambda: fake.calls_for("setWebhook"), 30)
    return w


@pytest.mark.parametrize("mode", MODES)
async def test_postgres_restart_under_the_bot(
    seed: int,
    mode: str,
    own_postgres: tuple[str, Any],
    fake_telegram: FakeTelegram,
    figures: FigureBook,
) -> None:
    url, ctl = own_postgres
    rng = random.Random(2000 + seed)
    n = 12
    config = make_config(url, fake_telegram.base_url, telegram=_telegram(mode))
    w = await _start(config, fake_telegram)
    try:
        await w.import_people(_people_csv(n))
        users = await _link(w, {f"r{i}@example.org": 8000 + i for i in range(n)})
        await w.services.campaigns.open_monthly()
        for user in users.values():
            await user.wait_for(FORM_MARKER, timeout=60)
        since = len(fake_telegram.updates_pushed)

        async def submit(user: Any) -> None:
            await asyncio.sleep(rng.uniform(0.0, 3.0))
            await user.press("Nothing to report this time")

        submits = asyncio.gather(*(submit(u) for u in users.values()))
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        await asyncio.to_thread(ctl, "-m", "fast", "stop")
        await asyncio.sleep(rng.uniform(1.5, 3.0))
        await asyncio.to_thread(ctl, "start")
        await submits

        # Whoever was not told "recorded" submits again (as a person would); then everyone is.
        confirmed = 0
        for user in users.values():
            try:
                await user.wait_for("nil return is recorded", timeout=60)
                confirmed += 1
            except TimeoutError:
                await user.press("Nothing to report this time")
                await user.wait_for("nil return is recorded", timeout=60)
        async with w.services.db.uow() as uow:
            campaign = await uow.campaigns.by_key("monthly:2026-12")
            assert campaign is not None and campaign.id is not None
            deliveries = await uow.deliveries.for_campaign(campaign.id)
            linked = set()
            for user in users.values():
                person = await uow.people.by_address("telegram", str(user.user_id))
                assert person is not None
                linked.add(person.id)
        # Only the reporters who linked and answered (the CSV's others never had the form).
        lost = [
            d for d in deliveries if d.person_id in linked and d.status != DeliveryState.NIL.value
        ]
        assert len(linked) == n
        await until(lambda: fake_telegram.webhook_pending == 0, 60)
        unprocessed = await updates_lost(fake_telegram, since, w.services.db)
        row = Figures(
            "postgres",
            seed,
            messages_checked=n,
            losses=len(lost),
            updates_lost=len(unprocessed) + len(fake_telegram.webhook_dropped),
            notes={
                "mode": mode,
                "confirmed_first_time": confirmed,
                "webhook_5xx": sum(a.status >= 500 for a in fake_telegram.webhook_answers),
            },
        )
        figures.add(row)
        print(row)
        assert not lost, f"submitted returns lost: {lost}"
        assert not unprocessed, f"updates never processed: {unprocessed}"
        assert fake_telegram.webhook_dropped == []
    finally:
        await w.stop()


# --------------------------------------------------------------------------- SQLite locked


class _Failures(logging.Handler):
    """The poller's "update N failed; fetching it again" (the bot's sign that it failed)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "failed; fetching it again" in record.getMessage():
            self.count += 1


@pytest.mark.parametrize("mode", MODES)
async def test_lock_held_by_another_process(
    seed: int, mode: str, db_url: str, fake_telegram: FakeTelegram, figures: FigureBook
) -> None:
    """Another process holds SQLite's write lock for longer than the busy timeout while
    reporters send nil returns: the updates fail, are not acknowledged, and are processed once
    the lock is released (the test releases it once the bot has failed at least once)."""
    import aiosqlite

    if backend() != "sqlite":
        pytest.skip("SQLite's write lock")
    rng = random.Random(3000 + seed)
    n = 8
    config = make_config(
        db_url,
        fake_telegram.base_url,
        telegram=_telegram(mode),
        database={"sqlite_busy_seconds": 0.3},
    )
    w = await _start(config, fake_telegram)
    watcher = _Failures()
    logging.getLogger("handlers.telegram.transport").addHandler(watcher)
    try:
        await w.import_people(_people_csv(n))
        users = list((await _link(w, {f"r{i}@example.org": 8000 + i for i in range(n)})).values())
        await w.services.campaigns.open_monthly()
        for user in users:
            await user.wait_for(FORM_MARKER, timeout=60)
        await w.settle(timeout=60)
        chosen = rng.sample(users, rng.randint(1, n))
        since = len(fake_telegram.updates_pushed)
        answered = len(fake_telegram.webhook_answers)
        path = db_url.removeprefix("sqlite+aiosqlite:///")
        async with aiosqlite.connect(path, timeout=60) as other:
            await other.execute("BEGIN IMMEDIATE")  # the other process's write transaction
            for user in chosen:
                await user.press("Nothing to report this time")
            if mode == "webhook":
                await until(
                    lambda: any(a.status >= 500 for a in fake_telegram.webhook_answers[answered:]),
                    60,
                )
            else:
                await until(lambda: watcher.count > 0, 60)
            await other.rollback()
        for user in chosen:
            await user.wait_for("nil return is recorded", timeout=90)
        await until(lambda: fake_telegram.webhook_pending == 0, 90)
        await w.settle(timeout=60)
        unprocessed = await updates_lost(fake_telegram, since, w.services.db)
        told = {
            u.chat_id: sum("nil return is recorded" in (m.text or "") for m in u.messages)
            for u in chosen
        }
        dups = [c for c, k in told.items() if k > 1]
        row = Figures(
            "lock",
            seed,
            messages_checked=len(chosen),
            duplicates=len(dups),
            losses=sum(1 for k in told.values() if k == 0),
            updates_lost=len(unprocessed) + len(fake_telegram.webhook_dropped),
            notes={
                "mode": mode,
                "webhook_5xx": sum(
                    a.status >= 500 for a in fake_telegram.webhook_answers[answered:]
                ),
                "poll_refetches": watcher.count,
            },
        )
        figures.add(row)
        print(row)
        assert not unprocessed, f"updates never processed: {unprocessed}"
        assert fake_telegram.webhook_dropped == []
        assert not dups, f"told twice: {dups}"
    finally:
        logging.getLogger("handlers.telegram.transport").removeHandler(watcher)
        await w.stop()
