"""Configuration: defaults, validation errors naming the key, secrets from the environment."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from bot.cli import main
from bot.config import Config, ConfigError, config_from_mapping, load_config

ROOT = Path(__file__).resolve().parents[1]


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config.partnership.timezone == "Europe/London"
    assert len(config.partnership.wards) == 20
    assert config.database.url.startswith("sqlite+aiosqlite://")
    assert config.secrets.telegram_token is None


def test_secrets_come_only_from_the_environment() -> None:
    config = config_from_mapping({}, source="x", env={"TENSIONBOT_TELEGRAM_TOKEN": "1:abc"})
    assert config.secrets.telegram_token is not None
    assert config.secrets.telegram_token.get_secret_value() == "1:abc"
    assert "1:abc" not in repr(config)
    with pytest.raises(ConfigError, match="secrets"):
        config_from_mapping({"secrets": {"telegram_token": "x"}}, source="f.toml", env={})


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"schedule": {"close_day": 40}}, "schedule.close_day"),
        ({"schedule": {"reminder_days": [20]}}, "schedule"),
        ({"partnership": {"timezone": "Mars/Olympus"}}, "partnership.timezone"),
        ({"partnership": {"wards": ["Park", "park"]}}, "partnership.wards"),
        ({"database": {"url": "mysql://x"}}, "database.url"),
        ({"telegram": {"mode": "webhook"}}, "telegram"),
        ({"telegram": {"colour": "blue"}}, "telegram.colour"),
    ],
)
def test_bad_values_name_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping(data, source="my.toml", env={})
    assert "my.toml" in str(err.value)
    assert key in str(err.value)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "c.toml"
    bad.write_text("[partnership\nname=1")
    with pytest.raises(ConfigError, match=r"c\.toml: not valid TOML"):
        load_config(bad, env={})


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        ann = field.annotation
        inner = typing.get_args(ann)[0] if typing.get_origin(ann) is list else None
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys |= _keys(ann, f"{prefix}{name}.")
        elif isinstance(inner, type) and issubclass(inner, BaseModel):
            keys |= _keys(inner, f"{prefix}{name}.")  # documented as [[name]] tables
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_example_config_documents_every_key() -> None:
    text = (ROOT / "config.example.toml").read_text()
    documented: set[str] = set()
    section = ""
    for line in text.splitlines():
        if header := re.match(r"^\[\[?([a-z_.]+)\]\]?", line):
            section = header.group(1)
        elif key := re.match(r"^#?\s?([a-z_]+)\s*=", line):  # commented-out keys count too
            documented.add(f"{section}.{key.group(1)}")
    assert _keys(Config) <= documented, _keys(Config) - documented
    config = load_config(ROOT / "config.example.toml", env={})
    assert config.partnership.name == "Safer Wolverhampton Partnership"


def test_check_config_command(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["--config", str(ROOT / "config.example.toml"), "check-config"])
    assert ok.exit_code == 0, ok.output
    assert "configuration OK" in ok.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[schedule]\nopen_day = 0\n")
    failed = runner.invoke(main, ["--config", str(bad), "check-config"])
    assert failed.exit_code == 2
    assert "schedule.open_day" in failed.output
