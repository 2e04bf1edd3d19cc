"""Configuration sections (``[partnership]``, ``[telegram]``, ``[routing]``...), each a frozen,
strict pydantic model; :mod:`bot.config` assembles them into :class:`bot.config.Config`."""

from __future__ import annotations

import re
from datetime import date, time
from pathlib import Path
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from bot.config.base import DEFAULT_FORM_PATH, HttpUrl, _Section, _ward_key
from bot.wards import WOLVERHAMPTON_WARDS, retired, unknown_ward


class PartnershipConfig(_Section):
    """Who runs the bot."""

    name: str = "Safer Wolverhampton Partnership"
    short_name: str = "SWP"
    timezone: str = "Europe/London"
    contact: str = Field(
        default="the Prevent and Cohesion Officer (community.safety@wolverhampton.gov.uk)",
        description="Who an unknown user should contact to be added.",
    )
    wards: list[str] = Field(default_factory=lambda: list(WOLVERHAMPTON_WARDS))

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @field_validator("wards")
    @classmethod
    def _unique_wards(cls, value: list[str]) -> list[str]:
        cleaned = [w.strip() for w in value]
        if not cleaned or any(not w for w in cleaned):
            raise ValueError("wards must be a non-empty list of non-empty names")
        if len({w.casefold() for w in cleaned}) != len(cleaned):
            raise ValueError("wards must not repeat")
        gone = [w for w in cleaned if retired(w) is not None]
        if gone:
            raise ValueError("; ".join(unknown_ward(w, cleaned) for w in gone))
        return cleaned

    @property
    def tz(self) -> ZoneInfo:
        """The partnership's timezone as a ``ZoneInfo``."""
        return ZoneInfo(self.timezone)


class DatabaseConfig(_Section):
    """Where state lives. SQLite is the embedded default; PostgreSQL for production."""

    url: str = "sqlite+aiosqlite:///tensionbot.sqlite3"
    echo: bool = False
    # SQLite: how long a writer waits for another's write lock before the step fails (and the
    # update is not acknowledged, so Telegram sends it again).
    sqlite_busy_seconds: float = Field(default=10.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _supported_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with 'sqlite+aiosqlite://' or 'postgresql+asyncpg://'")
        return value


class TelegramConfig(_Section):
    """Telegram Bot API settings. The token comes from TENSIONBOT_TELEGRAM_TOKEN."""

    api_base_url: HttpUrl = "https://api.telegram.org"
    bot_username: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z][A-Za-z0-9_]{3,31}$",
        description="the bot's @username (without @) for invitation links; unset: asked of "
        "Telegram (getMe) with the token, so links always point at this bot",
    )
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_path: str = "/telegram"
    poll_timeout: int = Field(default=25, ge=0, le=60)
    global_rate: float = Field(default=28.0, gt=0, description="messages per second, all chats")
    per_chat_rate: float = Field(default=1.0, gt=0, description="messages per second, one chat")
    per_chat_burst: int = Field(
        default=3,
        ge=1,
        le=10,
        description="messages a chat may get back to back before per_chat_rate applies",
    )
    max_in_flight: int = Field(default=8, ge=1, le=64)
    outbox_lease_seconds: float = Field(
        default=30.0,
        ge=1,
        le=600,
        description="how long a claimed message may stay in flight before another process or a "
        "restart treats its sender as dead",
    )

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> TelegramConfig:
        if self.mode == "webhook" and not self.webhook_url:
            raise ValueError("mode = 'webhook' needs telegram.webhook_url")
        return self


class SlackConfig(_Section):
    """Slack for council and police teams. Tokens come from the environment."""

    api_base_url: HttpUrl = "https://slack.com"
    mode: Literal["http", "socket"] = Field(
        default="http",
        description="http: Slack calls our endpoint; socket: we connect out (development, "
        "needs TENSIONBOT_SLACK_APP_TOKEN)",
    )
    listen: str = "127.0.0.1"
    port: int = Field(default=3000, ge=1, le=65535)
    path: str = "/slack/events"
    per_channel_rate: float = Field(
        default=0.95,
        gt=0,
        description="posts per second to one channel: a little under Slack's 1/s, so network "
        "jitter never makes two posts land within one second",
    )
    global_rate: float = Field(
        default=20.0, gt=0, description="Web API posts per second, all channels"
    )


class NetworkConfig(_Section):
    """How tensionbot reaches Telegram and Slack."""

    proxy_url: HttpUrl | None = Field(
        default=None,
        description="an HTTP(S) proxy for every call to Telegram and Slack; unset: "
        "HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment",
    )


class ServerConfig(_Section):
    """The one HTTP server of ``tensionbot run``: the Telegram webhook, Slack's endpoint,
    /healthz, /readyz and /metrics."""

    listen: str | None = Field(
        default=None,
        description="address to listen on; unset: telegram.webhook_listen or slack.listen",
    )
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="unset: telegram.webhook_port in webhook mode, else slack.port when Slack "
        "is served over HTTP, else no HTTP server at all",
    )
    metrics: bool = Field(default=True, description="serve Prometheus metrics at /metrics")
    heartbeat_file: Path | None = Field(
        default=None,
        description="a file `tensionbot run` touches every cluster.leader_retry_seconds; "
        "`tensionbot health` checks it when there is no HTTP server (polling mode without "
        "server.port); relative to the config file's folder",
    )
    shutdown_seconds: float = Field(
        default=20.0,
        ge=1,
        le=300,
        description="on SIGTERM, how long in-flight requests and sends may take to finish",
    )


class ClusterConfig(_Section):
    """Several ``tensionbot run`` processes on one PostgreSQL database."""

    leader_retry_seconds: float = Field(
        default=3.0,
        ge=0.2,
        le=60,
        description="how often a follower tries to take over leadership (the scheduler and, "
        "in polling mode, the poller), and how often the leader checks it still holds it",
    )


class OutboxConfig(_Section):
    """What happens to messages whose delivery is uncertain."""

    uncertain_followup_hours: float = Field(
        default=2.0,
        gt=0,
        le=168,
        description="a form in flight when the bot stopped is not re-sent at once (at most "
        "once); this many hours later it is sent once more, worded so that a duplicate is "
        "harmless, unless the person has answered",
    )
    news_hold_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="news to a reporter about their reports (delivered, acknowledged, an "
        "update, closed) waits this long for more news to the same person, and all of it goes "
        "out as one message; 0 sends each piece at once",
    )


class ScheduleConfig(_Section):
    """When the monthly return opens, is chased, and closes (days of the month, local time)."""

    open_day: int = Field(default=1, ge=1, le=28)
    open_time: time = time(9, 0)
    reminder_days: list[int] = Field(default_factory=lambda: [8, 12])
    close_day: int = Field(default=15, ge=1, le=28)
    close_time: time = time(17, 0)
    tick_seconds: int = Field(default=60, ge=1, le=3600)
    urgent_report_answers_return: bool = Field(
        default=True,
        description="an urgent /report sent while a return is open counts as taking part in "
        "it: no reminders for that return",
    )

    @model_validator(mode="after")
    def _ordered(self) -> ScheduleConfig:
        if self.close_day <= self.open_day:
            raise ValueError("close_day must be after open_day")
        for day in self.reminder_days:
            if not self.open_day < day <= self.close_day:
                raise ValueError(
                    f"reminder day {day} must be after open_day ({self.open_day}) "
                    f"and not after close_day ({self.close_day})"
                )
        if sorted(set(self.reminder_days)) != self.reminder_days:
            raise ValueError("reminder_days must be increasing with no repeats")
        return self


class WardsConfig(_Section):
    """Ward boundaries, to check a shared location against the ward chosen (optional)."""

    boundaries_file: Path | None = Field(
        default=None,
        description="a GeoJSON FeatureCollection of ward polygons in WGS84 (as the ONS Open "
        "Geography Portal publishes them, ward name in WDyyNM or name); relative to the config "
        "file's folder. Without it a shared location is stored as 'not checked'",
    )


class FormConfig(_Section):
    """The form definition file (default: the standard tension return shipped with tensionbot)."""

    path: Path = DEFAULT_FORM_PATH
    max_text_length: int = Field(default=2000, ge=100, le=4000)


_KEY = r"^[a-z][a-z0-9_-]{0,39}$"

#: The platform of the partnership's own channels: the teams' channels and their members' user
#: ids, the escalation targets and the summary channels. The config names them in that
#: platform's terms (``slack_channel``, ``C…``/``U…`` ids), so the name lives here, with the
#: format; the core addresses those channels by this value and never names a platform itself.
TEAMS_PLATFORM: Final = "slack"

#: Every platform a person can be reached on, as the people CSV's ``channel`` column names them.
PLATFORM_NAMES: Final = ("telegram", "slack", "email")
_SLACK_CHANNEL = r"^[CDG][A-Z0-9]{2,20}$"
_SLACK_USER = r"^[UW][A-Z0-9]{2,20}$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class TeamConfig(_Section):
    """A council or police team that acts on routed tensions in its Slack channel."""

    key: str = Field(pattern=_KEY)
    name: str = Field(min_length=1, max_length=100)
    organisation: Literal["council", "police", "other"]
    slack_channel: str = Field(pattern=_SLACK_CHANNEL)
    members: list[str] = Field(
        default_factory=list,
        description="Slack user ids, or emails of imported people with a slack_user_id",
    )
    restricted: bool = Field(
        default=False,
        description="a need-to-know team that may receive private categories (e.g. Prevent)",
    )

    @property
    def room(self) -> str:
        """The team's channel: its address on :data:`TEAMS_PLATFORM`."""
        return self.slack_channel

    @field_validator("members")
    @classmethod
    def _slack_users(cls, value: list[str]) -> list[str]:
        import re

        bad = [
            str(i)
            for i, m in enumerate(value)
            if not (re.match(_SLACK_USER, m) or re.match(_EMAIL, m))
        ]
        if bad:  # the values are not repeated: they may be names, and this may reach a log
            raise ValueError(f"entries {', '.join(bad)} are neither Slack user ids nor emails")
        return [m.lower() if "@" in m else m for m in value]

    def has_member(self, slack_user_id: str, email: str | None) -> bool:
        """Whether the Slack user is a member: by id, or by the email of the person (from the
        people import) whose slack_user_id it is."""
        return slack_user_id in self.members or (
            email is not None and email.lower() in self.members
        )


class RoutingRule(_Section):
    """Tensions matching every condition go to ``teams``. ``"*"`` matches anything."""

    categories: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    wards: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    min_level: int = Field(default=1, ge=1, le=5)
    teams: list[str] = Field(min_length=1)


class RoutingConfig(_Section):
    """Routing is data: ordered rules, a default team, and categories that stay need-to-know."""

    rules: list[RoutingRule] = Field(default_factory=list)
    default_team: str | None = None
    private_categories: list[str] = Field(default_factory=lambda: ["protest_extremism"])
    deliver: Literal["slack", "log_only"] = Field(
        default="slack",
        description='"slack": routed tensions go to the teams\' Slack channels (Slack must be '
        'configured); "log_only": they are recorded and logged, never sent (e.g. a trial '
        "without Slack); reporters are told so in /status",
    )


class DeadlineConfig(_Section):
    """When a team must acknowledge an action, by level (working time in the partnership's zone)."""

    ack_working_days: int = Field(default=2, ge=1, le=20, description="levels below urgent_level")
    urgent_level: int = Field(default=3, ge=1, le=5, description="disorder and above")
    urgent_ack_hours: float = Field(default=4.0, gt=0, le=72, description="clock hours")
    working_day_start: time = time(9, 0)
    working_day_end: time = time(17, 0)
    holidays: str = Field(default="GB-ENG", description="bank holidays: country[-subdivision]")


class EscalationRung(_Section):
    """One step of the ladder for an unacknowledged action, ``after_hours`` past its deadline."""

    after_hours: float = Field(ge=0, le=24 * 14)
    target: str = Field(
        description='"team" (a reminder in the team\'s thread), a channel or a user'
    )

    @field_validator("target")
    @classmethod
    def _target(cls, value: str) -> str:
        import re

        if value != "team" and not re.match(r"^[CGDUW][A-Z0-9]{2,20}$", value):
            raise ValueError('must be "team", a Slack channel id or a Slack user id')
        return value


class EscalationConfig(_Section):
    """The escalation ladder (PagerDuty-style), climbed one rung per scheduler tick at most."""

    rungs: list[EscalationRung] = Field(
        default_factory=lambda: [EscalationRung(after_hours=0, target="team")]
    )

    @field_validator("rungs")
    @classmethod
    def _ordered(cls, value: list[EscalationRung]) -> list[EscalationRung]:
        hours = [r.after_hours for r in value]
        if hours != sorted(hours):
            raise ValueError("rungs must be in order of after_hours")
        return value


class SummaryConfig(_Section):
    """Scheduled summaries for the partnership's channels."""

    channels: list[str] = Field(
        default_factory=list,
        description="Slack channels that get the summary after a return; the only channels "
        "where /tensions and /pact answers are posted for all to see (elsewhere they go to "
        "the asker alone)",
    )
    quarterly_channels: list[str] = Field(
        default_factory=list,
        description="Slack channels that get the quarter's summary once the return of its "
        "last month closes (for boards that meet quarterly)",
    )
    suppress_below: int = Field(
        default=3,
        ge=3,
        le=10,
        description="counts below it are withheld (GSS guidance: below 3 at least; a lower "
        "value would publish ones and twos, so it is refused)",
    )
    false_discovery_rate: float = Field(
        default=0.05,
        gt=0,
        le=0.2,
        description="pockets of concern: the expected share of false alarms among the wards, "
        "categories and strands flagged in a month (Benjamini-Hochberg; docs/STATISTICS.md)",
    )

    @field_validator("channels", "quarterly_channels")
    @classmethod
    def _channels(cls, value: list[str]) -> list[str]:
        import re

        bad = [c for c in value if not re.match(_SLACK_CHANNEL, c)]
        if bad:
            raise ValueError(f"not Slack channel ids: {', '.join(bad)}")
        return value


class InviteConfig(_Section):
    """Telegram deep-link invitations."""

    expires_days: int = Field(default=14, ge=1, le=90)


class NeighbourhoodConfig(_Section):
    """A PACT neighbourhood: one or more wards that hold one series of meetings."""

    key: str = Field(pattern=_KEY)
    name: str = Field(min_length=1, max_length=100)
    wards: list[str] = Field(min_length=1)
    partners: list[str] = Field(
        default_factory=list,
        description="emails of partners invited to every meeting, besides the wards' councillors",
    )
    chair: str | None = Field(default=None, description="the usual chair's email")


_TELEGRAM_CHANNEL = re.compile(r"^(@[A-Za-z][A-Za-z0-9_]{4,31}|-100[0-9]{6,15})$")


class PactPublicConfig(_Section):
    """``[pact.public]``: the public channels where meetings are announced (scheduled, moved,
    cancelled) and each recorded meeting's "you said, we did" is posted. Everything posted
    there is public: no names, only the neighbourhood, time, venue, format and priorities."""

    telegram_channel: str | None = Field(
        default=None,
        description='a public Telegram channel: its @username (e.g. "@swp_pact") or its id '
        '("-100…"); the bot must be an administrator of it, allowed to post',
    )
    slack_channel: str | None = Field(
        default=None,
        description='a Slack channel id (e.g. "C0123ABCD"); the bot must be a member of it',
    )

    @field_validator("telegram_channel")
    @classmethod
    def _telegram_channel(cls, value: str | None) -> str | None:
        if value is not None and not _TELEGRAM_CHANNEL.match(value):
            raise ValueError(
                'not a Telegram channel: give its @username ("@swp_pact": 5 to 32 letters, '
                'digits or underscores after the @) or its numeric id ("-100" and digits)'
            )
        return value

    @field_validator("slack_channel")
    @classmethod
    def _slack_channel(cls, value: str | None) -> str | None:
        if value is not None and not re.match(_SLACK_CHANNEL, value):
            raise ValueError(
                'not a Slack channel id (e.g. "C0123ABCD"; the channel\'s name will not do: '
                "in Slack, open the channel's details to copy its id)"
            )
        return value

    def channels(self) -> tuple[tuple[str, str], ...]:
        """The public channels as neutral (platform, address) pairs, as the core takes them."""
        pairs = (("telegram", self.telegram_channel), ("slack", self.slack_channel))
        return tuple((platform, address) for platform, address in pairs if address)


class PactConfig(_Section):
    """PACT (Partners and Communities Together) meetings."""

    public: PactPublicConfig = PactPublicConfig()

    neighbourhoods: list[NeighbourhoodConfig] = Field(
        default_factory=list, description="empty: one neighbourhood per ward"
    )
    reminder_days_before: int = Field(default=3, ge=0, le=28)
    owner_reminder_days_before: int = Field(
        default=7, ge=1, le=60, description="owners report back on priorities this long before"
    )
    record_chase_hours: int = Field(default=48, ge=1, le=24 * 14)
    default_duration_minutes: int = Field(default=90, ge=15, le=8 * 60)
    max_attendance: int = Field(
        default=1000, ge=10, le=100_000, description="a count above this is taken as a typo"
    )
    review_date: date | None = Field(
        default=None,
        description="a change (venue, time, format) to review: attendance before and after it "
        "in the summary's PACT section and exports",
    )

    def all_neighbourhoods(self, wards: list[str]) -> list[NeighbourhoodConfig]:
        """The configured neighbourhoods, or one per ward when none are configured."""
        if self.neighbourhoods:
            return list(self.neighbourhoods)
        return [NeighbourhoodConfig(key=_ward_key(w), name=w, wards=[w]) for w in wards]


class PrivacyConfig(_Section):
    """Retention (UK GDPR storage limitation): free text and personal data only as long as
    needed; aggregates are kept. Encryption at rest is switched on by TENSIONBOT_ENCRYPTION_KEY."""

    retention_months: int = Field(
        default=14,
        ge=1,
        le=120,
        description="free text (report answers, action updates, PACT report-backs, sent "
        "messages, conversation drafts) older than this is redacted",
    )
    personal_data_months: int = Field(
        default=14,
        ge=0,
        le=120,
        description="people marked inactive this long ago are anonymised; 0: never",
    )
    tick_hours: int = Field(
        default=24, ge=1, le=24 * 7, description="how often the scheduler runs the retention"
    )
