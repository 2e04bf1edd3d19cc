"""The composition root: builds the core services on storage, inside functions.

Nothing here runs at import time. :func:`build_services` opens the database and wires the core
(each service gets its collaborators in its constructor, built in dependency order, no setters);
the CLI and :class:`bot.runtime.Runtime` (the running process: Telegram, Slack, HTTP, the outbox,
the scheduler and leader election) both start from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.actions.service import ActionService
from bot.clock import Clock, SystemClock
from bot.common import Waker
from bot.config import Config, ConfigError
from bot.delivery.direct import DirectReplies
from bot.delivery.seen import SeenRequests
from bot.forms import load_form
from bot.forms.versions import FormService
from bot.health import HealthService
from bot.pact.public import PublicPactService
from bot.pact.service import PactService
from bot.people.privacy import PrivacyService
from bot.people.service import PeopleService
from bot.returns.campaigns import CampaignService
from bot.returns.conversation import ConversationService
from bot.returns.crisis import CrisisService
from bot.returns.reports import ReportingService
from bot.returns.web import WebLinks, WebReturnService, WebSigner
from bot.returns.web_buttons import WebButtonService
from bot.state import StateService
from bot.summaries.service import SummaryService
from handlers.files import MatplotlibCharts
from storage.database import Database
from storage.leader import database_status
from storage.migrate import upgrade

if TYPE_CHECKING:
    from bot.ports import MessageLinks
    from handlers.doctor import Check


@dataclass
class WakeRelay:
    """The "messages were queued" signal: services call it after a commit that queued messages;
    the outbox dispatcher, which the runtime builds after the services (it needs the platforms'
    clients), subscribes to it. The CLI runs with no subscriber (the running bot polls)."""

    targets: list[Waker] = field(default_factory=list)

    def subscribe(self, target: Waker) -> None:
        """Call ``target`` on every wake from now on."""
        self.targets.append(target)

    def __call__(self) -> None:
        for target in self.targets:
            target()


@dataclass
class Services:
    """Everything the adapters and the CLI call."""

    config: Config
    db: Database
    clock: Clock
    forms: FormService
    people: PeopleService
    campaigns: CampaignService
    conversation: ConversationService
    actions: ActionService
    reporting: ReportingService
    summaries: SummaryService
    state: StateService
    wake: WakeRelay
    pact: PactService
    health: HealthService
    privacy: PrivacyService
    seen: SeenRequests
    crisis: CrisisService
    web: WebReturnService | None = None  # the web form, when TENSIONBOT_WEB_SECRET is set
    public_pact: PublicPactService | None = None  # the public PACT pages (web.public_pact)
    web_buttons: WebButtonService | None = None  # emails' buttons on the web (with the form)

    async def close(self) -> None:
        """Release the database."""
        await self.db.dispose()

    def reconfigure(self, config: Config) -> None:
        """Swap in a reloaded configuration (see :func:`reload_problem` for what may change)."""
        self.config = config
        for service in (
            self.people,
            self.campaigns,
            self.conversation,
            self.actions,
            self.reporting,
            self.summaries,
            self.pact,
            self.privacy,
        ):
            service.config = config
        if self.web is not None:
            self.web.config = config
        if self.public_pact is not None:
            self.public_pact.config = config
        if self.web_buttons is not None:
            self.web_buttons.config = config
        self.actions.teams = {t.key: t for t in config.teams}


#: The sections a SIGHUP may change without a restart: they are read when used, never cached in a
#: connection, a schedule or a keyboard.
RELOADABLE = ("teams", "routing", "deadlines", "escalation")


def reload_problem(running: Config, new: Config) -> str | None:
    """Why ``new`` cannot replace ``running`` without a restart, or None."""
    keep = set(RELOADABLE)
    before = running.model_dump(exclude=keep)
    after = new.model_dump(exclude=keep)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        return (
            f"[{'], ['.join(changed)}] changed, which needs a restart (a reload applies only "
            f"{', '.join(RELOADABLE)})"
        )
    return None


def _message_links(config: Config) -> MessageLinks | None:
    """The teams' platform's message links (a stored "Where exactly?" link is shown as one)."""
    if not config.teams_connected:
        return None
    from handlers.slack.links import SlackMessageLinks  # the teams' platform: Slack

    return SlackMessageLinks()


async def build_services(
    config: Config, *, clock: Clock | None = None, migrate: bool = True
) -> Services:
    """Open the database (migrating it), load the form and wire the core services."""
    clock = clock or SystemClock()
    definition = load_form(config.form.path)
    key = config.secrets.encryption_key
    db = Database(
        config.database.url,
        echo=config.database.echo,
        encryption_key=key.get_secret_value() if key is not None else None,
        sqlite_busy_seconds=config.database.sqlite_busy_seconds,
    )
    if migrate:
        await upgrade(db.engine)
    wake = WakeRelay()
    # Each service is built after what it needs: no setters, no cycles. Identity (people) is
    # below returns: linking someone tells the campaigns through the ``on_linked`` port.
    forms = FormService(definition, clock)
    web_secret = config.secrets.web_secret
    signer = WebSigner(web_secret.get_secret_value()) if web_secret is not None else None
    web_links = WebLinks(config, signer) if signer is not None else None
    campaigns = CampaignService(config, db.uow, clock, forms, wake, web_links)
    people = PeopleService(
        config, db.uow, clock, forms, on_linked=campaigns.deliver_open_returns, wake=wake
    )
    actions = ActionService(config, db.uow, clock, forms, wake, _message_links(config))
    pact = PactService(config, db.uow, clock, wake)
    direct = DirectReplies()  # the runtime attaches its dispatcher: replies sent at once
    conversation = ConversationService(
        config, db.uow, clock, forms, people, actions, pact, wake, direct
    )
    seen = SeenRequests(db.uow)
    reporting = ReportingService(config, db.uow, clock, forms, actions, wake, seen)
    summaries = SummaryService(config, db.uow, clock, forms, pact, charts=MatplotlibCharts())
    async with db.uow() as uow:
        await forms.current(uow)  # store the form version now, failing early if it is wrong
        await uow.commit()
    web_form = (
        WebReturnService(config, db.uow, clock, forms, actions, wake, seen, signer)
        if signer is not None
        else None
    )
    public_pact = PublicPactService(config, db.uow, clock) if config.web.public_pact else None
    web_buttons = (
        WebButtonService(config, db.uow, clock, actions, pact, wake, seen, signer)
        if signer is not None
        else None
    )
    return Services(
        config,
        db,
        clock,
        forms,
        people,
        campaigns,
        conversation,
        actions,
        reporting,
        summaries,
        StateService(db.uow),
        wake,
        pact,
        HealthService(db.uow, clock),
        PrivacyService(config, db.uow, clock, db),
        seen,
        CrisisService(config, db.uow, clock, campaigns, wake),
        web_form,
        public_pact,
        web_buttons,
    )


async def doctor(config: Config) -> list[Check]:
    """``tensionbot doctor``: the live platforms (handlers/doctor.py), the proxy, and the
    database (reachable and migrated; nothing is migrated here)."""
    # The checks talk to Telegram and Slack through their libraries: loaded for this command
    # only, never by the running service (which loads Slack only when it is configured).
    from handlers.doctor import Check, proxy_check, slack_checks, telegram_checks

    checks = [*proxy_check(config), *await telegram_checks(config), *await slack_checks(config)]
    db = Database(config.database.url)
    try:
        status = await database_status(db.engine)
    finally:
        await db.dispose()
    where = config.database.url.split("@")[-1]
    if not status.reachable:
        checks.append(
            Check(False, f"database unreachable ({status.error})", f"check database.url ({where})")
        )
    elif not status.current:
        at = f"at migration {status.revision}" if status.revision else "without tables yet"
        checks.append(
            Check(
                False,
                f"database {at}; this version expects migration {status.head}",
                "run `tensionbot db upgrade` (`tensionbot run` also migrates when it starts)",
            )
        )
    else:
        checks.append(Check(True, f"database reachable and migrated ({status.head})"))
    return checks


def telegram_token(config: Config) -> str:
    """The Telegram token from the environment, or a clear error."""
    if config.secrets.telegram_token is None:
        raise ConfigError(
            "TENSIONBOT_TELEGRAM_TOKEN is not set: the bot needs a Telegram token to run "
            "(try `make demo` to see it work offline)"
        )
    return config.secrets.telegram_token.get_secret_value()
