"""Configuration basics shared by every section: the error type, environment variable names and
the strict section model."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
)

DEFAULT_CONFIG_PATH = Path("config.toml")
DEFAULT_FORM_PATH = Path(__file__).parent.parent / "forms" / "tension_return.toml"


ENV_TELEGRAM_TOKEN = "TENSIONBOT_TELEGRAM_TOKEN"  # noqa: S105 - the variable's name, not a secret
ENV_SLACK_BOT_TOKEN = "TENSIONBOT_SLACK_BOT_TOKEN"  # noqa: S105
ENV_SLACK_SIGNING_SECRET = "TENSIONBOT_SLACK_SIGNING_SECRET"  # noqa: S105
ENV_SLACK_APP_TOKEN = "TENSIONBOT_SLACK_APP_TOKEN"  # noqa: S105
ENV_ENCRYPTION_KEY = "TENSIONBOT_ENCRYPTION_KEY"
ENV_TELEGRAM_WEBHOOK_SECRET = "TENSIONBOT_TELEGRAM_WEBHOOK_SECRET"  # noqa: S105
#: A database URL for ``tensionbot db upgrade`` only (a role that owns the audit log as well).
ENV_MIGRATION_DATABASE_URL = "TENSIONBOT_MIGRATION_DATABASE_URL"


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


#: An http(s) base URL, stored without a trailing slash.
HttpUrl = Annotated[str, AfterValidator(_http_url)]


def _one_line(value: str) -> str:
    # Bound for a mail header or an SMTP command: a line break there would end the header
    # (or inject another), and the email library refuses it only at send time, per message.
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise ValueError("must be one line, without line breaks or control characters")
    return value


#: Text that goes into a mail header or a protocol line: one line, no control characters.
OneLine = Annotated[str, AfterValidator(_one_line)]


class ConfigError(Exception):
    """Configuration is missing or invalid; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _ward_key(ward: str) -> str:
    import re

    return (re.sub(r"[^a-z0-9]+", "-", ward.casefold()).strip("-") or "ward")[:40]
