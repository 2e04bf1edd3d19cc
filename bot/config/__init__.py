"""Configuration: one validated pydantic model, loaded once from TOML, secrets from the environment.

Nothing here reads files or the environment at import time; :func:`load_config` is called by the
composition root and the result is passed explicitly to whoever needs it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from bot.config.base import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_FORM_PATH,
    ENV_ENCRYPTION_KEY,
    ENV_MIGRATION_DATABASE_URL,
    ENV_SLACK_APP_TOKEN,
    ENV_SLACK_BOT_TOKEN,
    ENV_SLACK_SIGNING_SECRET,
    ENV_TELEGRAM_TOKEN,
    ENV_TELEGRAM_WEBHOOK_SECRET,
    ConfigError,
    HttpUrl,
    _Section,
)
from bot.config.email import ENV_SMTP_PASSWORD, EmailConfig
from bot.config.sections import PLATFORM_NAMES as PLATFORM_NAMES
from bot.config.sections import TEAMS_PLATFORM as TEAMS_PLATFORM
from bot.config.sections import (
    ClusterConfig,
    DatabaseConfig,
    DeadlineConfig,
    EscalationConfig,
    EscalationRung,
    FormConfig,
    InviteConfig,
    NeighbourhoodConfig,
    NetworkConfig,
    OutboxConfig,
    PactConfig,
    PactPublicConfig,
    PartnershipConfig,
    PrivacyConfig,
    RoutingConfig,
    RoutingRule,
    ScheduleConfig,
    ServerConfig,
    SlackConfig,
    SummaryConfig,
    TeamConfig,
    TelegramConfig,
    WardsConfig,
)
from bot.config.web import ENV_WEB_SECRET, WebConfig
from bot.wards import did_you_mean, unknown_ward


def _fernet_keys(value: str) -> str:
    """Check one Fernet key, or several separated by commas (32 url-safe base64 bytes each)."""
    import base64
    import binascii

    parts = [p.strip() for p in value.split(",") if p.strip()]
    for part in parts:
        try:
            raw = base64.urlsafe_b64decode(part.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raw = b""
        if len(part) != 44 or len(raw) != 32:
            raise ConfigError(
                f"{ENV_ENCRYPTION_KEY}: not a Fernet key (44 characters of url-safe base64, "
                "32 bytes; several keys are separated by commas). Make one with: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            )
    return ",".join(parts)


def _database_url(value: SecretStr | None) -> SecretStr | None:
    """A migration URL from the environment, checked like ``database.url`` (never echoed)."""
    if value is not None and not value.get_secret_value().startswith(
        ("sqlite+aiosqlite://", "postgresql+asyncpg://")
    ):
        raise ConfigError(
            f"{ENV_MIGRATION_DATABASE_URL}: must start with 'sqlite+aiosqlite://' or "
            "'postgresql+asyncpg://'"
        )
    return value


def _web_secret(value: SecretStr | None) -> SecretStr | None:
    """The web form's signing secret: long enough not to be guessed (never echoed)."""
    if value is not None and len(value.get_secret_value()) < 32:
        raise ConfigError(f"{ENV_WEB_SECRET}: at least 32 characters (e.g. openssl rand -hex 32)")
    return value


class Secrets(BaseModel):
    """Secrets, only ever from the environment."""

    model_config = ConfigDict(frozen=True)

    telegram_token: SecretStr | None = None
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None  # Socket Mode only
    encryption_key: SecretStr | None = None  # Fernet key(s), comma-separated; first encrypts
    telegram_webhook_secret: SecretStr | None = None  # shared by every process behind one URL
    # `tensionbot db upgrade` connects with this when set (deploy/README.md: the audit log on
    # PostgreSQL); the service itself never uses it.
    migration_database_url: SecretStr | None = None
    web_secret: SecretStr | None = None  # signs web-form links, sessions and CSRF tokens
    smtp_password: SecretStr | None = None  # the [email] server's login

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Secrets:
        """Read the secrets from an environment mapping (``os.environ`` by default)."""

        def get(name: str) -> SecretStr | None:
            value = env.get(name, "").strip()
            return SecretStr(value) if value else None

        return cls(
            telegram_token=get(ENV_TELEGRAM_TOKEN),
            slack_bot_token=get(ENV_SLACK_BOT_TOKEN),
            slack_signing_secret=get(ENV_SLACK_SIGNING_SECRET),
            slack_app_token=get(ENV_SLACK_APP_TOKEN),
            encryption_key=(
                SecretStr(_fernet_keys(key.get_secret_value()))
                if (key := get(ENV_ENCRYPTION_KEY)) is not None
                else None
            ),
            telegram_webhook_secret=get(ENV_TELEGRAM_WEBHOOK_SECRET),
            migration_database_url=_database_url(get(ENV_MIGRATION_DATABASE_URL)),
            web_secret=_web_secret(get(ENV_WEB_SECRET)),
            smtp_password=get(ENV_SMTP_PASSWORD),
        )


class Config(_Section):
    """The whole configuration."""

    @property
    def platforms(self) -> frozenset[str]:
        """The platforms the bot sends on: Telegram always, Slack when its token is set, email
        when ``[email] host`` is set (a person's email address is their ``people.email``)."""
        on = {"telegram"}
        if self.secrets.slack_bot_token is not None:
            on.add("slack")
        if self.email.host is not None:
            on.add("email")
        return frozenset(on)

    @property
    def teams_connected(self) -> bool:
        """Whether the bot can post to the partnership's channels (:data:`TEAMS_PLATFORM`)."""
        return TEAMS_PLATFORM in self.platforms

    @model_validator(mode="after")
    def _names_refer_to_known_things(self) -> Config:
        keys = [t.key for t in self.teams]
        if len(set(keys)) != len(keys):
            raise ValueError("teams: keys must be unique")
        hoods = [n.key for n in self.pact.neighbourhoods]
        if len(set(hoods)) != len(hoods):
            raise ValueError("pact.neighbourhoods: keys must be unique")
        wards = list(self.partnership.wards)
        problems: list[str] = []

        def teams_at(where: str, named: list[str]) -> None:
            for team in named:
                if team not in keys:
                    problems.append(f"{where}: unknown team {team!r}{did_you_mean(team, keys)}")

        def wards_at(where: str, named: list[str]) -> None:
            known = {w.casefold() for w in wards}
            for ward in named:
                if ward != "*" and ward.casefold() not in known:
                    problems.append(f"{where}: {unknown_ward(ward, wards)}")

        for i, rule in enumerate(self.routing.rules):
            teams_at(f"routing.rules.{i}.teams", rule.teams)
            wards_at(f"routing.rules.{i}.wards", rule.wards)
        if self.routing.default_team is not None:
            teams_at("routing.default_team", [self.routing.default_team])
        for i, hood in enumerate(self.pact.neighbourhoods):
            wards_at(f"pact.neighbourhoods.{i}.wards", hood.wards)
        if problems:
            raise ValueError("\n  ".join(problems))
        return self

    partnership: PartnershipConfig = PartnershipConfig()
    database: DatabaseConfig = DatabaseConfig()
    telegram: TelegramConfig = TelegramConfig()
    slack: SlackConfig = SlackConfig()
    server: ServerConfig = ServerConfig()
    network: NetworkConfig = NetworkConfig()
    cluster: ClusterConfig = ClusterConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    outbox: OutboxConfig = OutboxConfig()
    form: FormConfig = FormConfig()
    invites: InviteConfig = InviteConfig()
    teams: list[TeamConfig] = Field(default_factory=list)
    deadlines: DeadlineConfig = DeadlineConfig()
    escalation: EscalationConfig = EscalationConfig()
    summaries: SummaryConfig = SummaryConfig()
    routing: RoutingConfig = RoutingConfig()
    pact: PactConfig = PactConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    wards: WardsConfig = WardsConfig()
    web: WebConfig = WebConfig()
    email: EmailConfig = EmailConfig()
    secrets: Secrets = Field(default_factory=Secrets, exclude=True)
    source: str = Field(default="<built-in defaults>", exclude=True)


def _format_errors(source: str, exc: ValidationError) -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        msg = msg.removeprefix("Value error, ")
        lines.append(f"  {msg}" if key == "<root>" else f"  {key}: {msg}")
    return "\n".join(lines)


def _relative_to(base: Path, config: Config) -> Config:
    """Resolve the relative paths in ``config`` against ``base`` (the config file's folder), so
    ``--config ../config.toml`` means the same files wherever it is run from."""
    update: dict[str, object] = {}
    if not config.form.path.is_absolute():
        update["form"] = config.form.model_copy(
            update={"path": (base / config.form.path).resolve()}
        )
    beat = config.server.heartbeat_file
    if beat is not None and not beat.is_absolute():
        update["server"] = config.server.model_copy(update={"heartbeat_file": base / beat})
    boundaries = config.wards.boundaries_file
    if boundaries is not None and not boundaries.is_absolute():
        update["wards"] = config.wards.model_copy(
            update={"boundaries_file": (base / boundaries).resolve()}
        )
    prefix = "sqlite+aiosqlite:///"
    url = config.database.url
    if url.startswith(prefix):
        rest = url.removeprefix(prefix)
        file, sep, query = rest.partition("?")
        if file and file != ":memory:" and not file.startswith(("/", "file:")):
            absolute = (base / file).resolve()
            database = config.database.model_copy(update={"url": f"{prefix}{absolute}{sep}{query}"})
            update["database"] = database
    return config.model_copy(update=update) if update else config


def _check_categories(config: Config) -> None:
    """Every category named in routing must be one of the form's (a misspelt private category
    would send extremism reports to unrestricted teams)."""
    from bot.forms import FormError, load_form

    try:
        form = load_form(config.form.path)
    except FormError as exc:
        raise ConfigError(f"{config.source}: form.path: {exc}") from None
    try:
        categories = [o.value for o in form.question("category").options]
    except KeyError:
        return  # a form without a category question: routing by category cannot apply
    known = {c.casefold() for c in categories}
    named = [
        (f"routing.rules.{i}.categories", c)
        for i, rule in enumerate(config.routing.rules)
        for c in rule.categories
        if c != "*"
    ] + [("routing.private_categories", c) for c in config.routing.private_categories]
    problems = [
        f"  {where}: unknown category {c!r}{did_you_mean(c, categories)}"
        for where, c in named
        if c.casefold() not in known
    ]
    if problems:
        raise ConfigError("\n".join([f"{config.source}: invalid configuration", *problems]))


def _check_boundaries(config: Config) -> None:
    """The boundaries file, if named, must load and name only the partnership's wards."""
    from bot.boundaries import BoundaryError, load_boundaries

    path = config.wards.boundaries_file
    if path is None:
        return
    try:
        load_boundaries(path, config.partnership.wards)
    except BoundaryError as exc:
        raise ConfigError(f"{config.source}: wards.boundaries_file: {exc}") from None


def delivery_problem(config: Config) -> str | None:
    """Why routed tensions could never reach a team with this configuration, or None.

    Checked by ``run`` and ``check-config`` (not by every admin command, which may be run
    without the Slack secrets in the environment): teams are configured but Slack is not, and
    routing is not explicitly ``deliver = "log_only"``."""
    secrets = config.secrets
    slack_on = secrets.slack_bot_token is not None and secrets.slack_signing_secret is not None
    if config.teams and not slack_on and config.routing.deliver != "log_only":
        return (
            f"{config.source}: {len(config.teams)} team(s) are configured but Slack is off "
            f"({ENV_SLACK_BOT_TOKEN} and {ENV_SLACK_SIGNING_SECRET} are not both set), so no "
            "routed tension could reach a team. Set them, or set routing.deliver = "
            '"log_only" to record and log routed tensions without sending them'
        )
    if config.pact.public.slack_channel is not None and not slack_on:
        return (
            f"{config.source}: pact.public.slack_channel is set but Slack is off "
            f"({ENV_SLACK_BOT_TOKEN} and {ENV_SLACK_SIGNING_SECRET} are not both set), so "
            "PACT announcements could not reach it. Set them, or remove the key"
        )
    return None


def config_from_mapping(
    data: Mapping[str, object],
    *,
    source: str,
    env: Mapping[str, str] | None = None,
    base: Path | None = None,
) -> Config:
    """Validate a parsed TOML mapping; errors name the source and the dotted key.

    Relative paths are resolved against ``base`` when given (the config file's folder); the
    categories routing names are checked against the form."""
    if "secrets" in data:
        raise ConfigError(
            f"{source}: secrets: tokens are read only from the environment "
            f"({ENV_TELEGRAM_TOKEN}, {ENV_SLACK_BOT_TOKEN}, {ENV_SLACK_SIGNING_SECRET})"
        )
    secrets = Secrets.from_env(os.environ if env is None else env)
    try:
        config = Config.model_validate({**data, "secrets": secrets, "source": source})
    except ValidationError as exc:
        raise ConfigError(_format_errors(source, exc)) from None
    if base is not None:
        config = _relative_to(base, config)
    _check_categories(config)
    _check_boundaries(config)
    return config


def load_config(path: Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Load the configuration file at ``path`` (it must exist: there is no silent fallback to
    built-in defaults). Relative paths in it are relative to its folder."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such configuration file (pass --config PATH; start from "
            "config.example.toml)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read configuration: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return config_from_mapping(data, source=str(path), env=env, base=path.resolve().parent)


__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_FORM_PATH",
    "ENV_ENCRYPTION_KEY",
    "ENV_MIGRATION_DATABASE_URL",
    "ENV_SLACK_APP_TOKEN",
    "ENV_SLACK_BOT_TOKEN",
    "ENV_SLACK_SIGNING_SECRET",
    "ENV_SMTP_PASSWORD",
    "ENV_TELEGRAM_TOKEN",
    "ENV_TELEGRAM_WEBHOOK_SECRET",
    "ENV_WEB_SECRET",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "DatabaseConfig",
    "DeadlineConfig",
    "EmailConfig",
    "EscalationConfig",
    "EscalationRung",
    "FormConfig",
    "HttpUrl",
    "InviteConfig",
    "NeighbourhoodConfig",
    "NetworkConfig",
    "OutboxConfig",
    "PactConfig",
    "PactPublicConfig",
    "PartnershipConfig",
    "PrivacyConfig",
    "RoutingConfig",
    "RoutingRule",
    "ScheduleConfig",
    "Secrets",
    "ServerConfig",
    "SlackConfig",
    "SummaryConfig",
    "TeamConfig",
    "TelegramConfig",
    "WardsConfig",
    "WebConfig",
    "config_from_mapping",
    "delivery_problem",
    "load_config",
]
