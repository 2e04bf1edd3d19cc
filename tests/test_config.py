"""Configuration: defaults, validation errors naming the key, secrets from the environment."""

from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

from bot.cli import main
from bot.config import Config, ConfigError, config_from_mapping, load_config
from tests.conftest import make_config

ROOT = Path(__file__).resolve().parents[1]


SLACK = {
    "TENSIONBOT_SLACK_BOT_TOKEN": "xoxb-test-token",
    "TENSIONBOT_SLACK_SIGNING_SECRET": "test-signing-secret",
}


def test_defaults() -> None:
    config = config_from_mapping({}, source="x", env={})
    assert config.partnership.timezone == "Europe/London"
    assert len(config.partnership.wards) == 20
    assert config.database.url.startswith("sqlite+aiosqlite://")
    assert config.secrets.telegram_token is None


def test_a_missing_config_file_is_an_error_naming_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.toml: no such configuration file"):
        load_config(tmp_path / "nowhere.toml", env={})
    # The command line's default ./config.toml too: no silent fall-back to built-in defaults.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["people", "list"])
    assert result.exit_code == 2
    assert "config.toml: no such configuration file" in result.output
    assert not list(tmp_path.iterdir())  # and no empty database was created


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "elsewhere").mkdir()
    config_file = tmp_path / "etc" / "config.toml"
    form = (ROOT / "bot" / "forms" / "tension_return.toml").read_text()
    (tmp_path / "etc" / "form.toml").write_text(form)
    config_file.write_text(
        '[database]\nurl = "sqlite+aiosqlite:///data/bot.sqlite3"\n[form]\npath = "form.toml"\n'
    )
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = load_config(Path("../etc/config.toml"), env={})
    assert config.database.url == f"sqlite+aiosqlite:///{tmp_path / 'etc' / 'data' / 'bot.sqlite3'}"
    assert config.form.path == tmp_path / "etc" / "form.toml"
    # Absolute paths, in-memory databases and PostgreSQL are left alone.
    for url in (
        f"sqlite+aiosqlite:///{tmp_path}/abs.sqlite3",
        "sqlite+aiosqlite:///:memory:",
        "postgresql+asyncpg://u:p@db/x",
    ):
        config_file.write_text(f'[database]\nurl = "{url}"\n')
        assert load_config(config_file, env={}).database.url == url


def test_a_database_beside_the_config_file_is_found_from_another_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The trap in the issue: `--config ../config.toml people list` showed no one."""
    (tmp_path / "sub").mkdir()
    config_file = tmp_path / "config.toml"
    config_file.write_text('[database]\nurl = "sqlite+aiosqlite:///bot.sqlite3"\n')
    people = tmp_path / "people.csv"
    people.write_text("name,role,wards,organisation,email\nTom,councillor,Park,Council,tom@x.org\n")
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(main, ["people", "import", "people.csv"]).exit_code == 0
    monkeypatch.chdir(tmp_path / "sub")
    listed = runner.invoke(main, ["--config", "../config.toml", "people", "list"])
    assert listed.exit_code == 0, listed.output
    assert "tom@x.org" in listed.output
    assert not list((tmp_path / "sub").iterdir())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"routing": {"private_categories": ["protest_extremsim"]}},
            "routing.private_categories: unknown category 'protest_extremsim' "
            "(did you mean 'protest_extremism'?)",
        ),
        (
            {"routing": {"rules": [{"categories": ["relgion"], "teams": ["npt"]}]}},
            "routing.rules.0.categories: unknown category 'relgion' (did you mean 'religion'?)",
        ),
        (
            {"routing": {"rules": [{"teams": ["cohesoin"]}]}},
            "routing.rules.0.teams: unknown team 'cohesoin' (did you mean 'cohesion'?)",
        ),
        (
            {"routing": {"default_team": "NPT"}},
            "routing.default_team: unknown team 'NPT' (did you mean 'npt'?)",
        ),
        (
            {"routing": {"rules": [{"wards": ["Heath Twon"], "teams": ["npt"]}]}},
            "routing.rules.0.wards: ward 'Heath Twon' is not in partnership.wards "
            "(did you mean 'Heath Town'?)",
        ),
        (
            {"pact": {"neighbourhoods": [{"key": "b", "name": "B", "wards": ["Bilston East"]}]}},
            "pact.neighbourhoods.0.wards: ward 'Bilston East' no longer exists since May 2023 "
            "(The City of Wolverhampton (Electoral Changes) Order 2022): it was replaced by "
            "'Bilston South' and 'Bilston North'",
        ),
        (
            {"partnership": {"wards": ["Park", "Spring Vale"]}},
            "partnership.wards: ward 'Spring Vale' no longer exists since May 2023 "
            "(The City of Wolverhampton (Electoral Changes) Order 2022): it was replaced by "
            "'Ettingshall South and Spring Vale'",
        ),
    ],
)
def test_every_name_in_the_config_is_checked_with_a_suggestion(
    data: dict[str, Any], message: str
) -> None:
    teams = [
        {"key": "cohesion", "name": "C", "organisation": "council", "slack_channel": "C01"},
        {"key": "npt", "name": "P", "organisation": "police", "slack_channel": "C02"},
    ]
    with pytest.raises(ConfigError) as err:
        config_from_mapping({"teams": teams, **data}, source="my.toml", env={})
    assert "my.toml" in str(err.value)
    assert message in str(err.value)


def test_the_wards_are_wolverhamptons_since_2023() -> None:
    wards = config_from_mapping({}, source="x", env={}).partnership.wards
    assert len(wards) == len(set(wards)) == 20
    assert {"Bilston South", "Ettingshall North", "Ettingshall South and Spring Vale"} <= set(wards)
    assert not {"Bilston East", "Ettingshall", "Spring Vale"} & set(wards)
    example = load_config(ROOT / "config.example.toml", env={})
    assert example.partnership.wards == wards


def test_slack_off_with_teams_is_an_error_unless_routing_is_log_only(tmp_path: Path) -> None:
    """With no Slack, every routed action would fail; check-config and run say so up front."""
    config = tmp_path / "config.toml"
    body = (ROOT / "config.example.toml").read_text()
    config.write_text(body)
    runner = CliRunner()
    off = runner.invoke(main, ["--config", str(config), "check-config"], env=dict.fromkeys(SLACK))
    assert off.exit_code == 2
    assert "3 team(s) are configured but Slack is off" in off.output
    assert 'routing.deliver = "log_only"' in off.output
    run = runner.invoke(
        main,
        ["--config", str(config), "run"],
        env={"TENSIONBOT_TELEGRAM_TOKEN": "1:x", **dict.fromkeys(SLACK)},
    )
    assert run.exit_code == 2 and "Slack is off" in run.output
    on = runner.invoke(main, ["--config", str(config), "check-config"], env=SLACK)
    assert on.exit_code == 0, on.output
    config.write_text(body.replace('deliver = "slack"', 'deliver = "log_only"'))
    logged = runner.invoke(
        main, ["--config", str(config), "check-config"], env=dict.fromkeys(SLACK)
    )
    assert logged.exit_code == 0, logged.output
    assert "LOG ONLY" in logged.output


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
    example = str(ROOT / "config.example.toml")
    ok = runner.invoke(main, ["--config", example, "check-config"], env=SLACK)
    assert ok.exit_code == 0, ok.output
    assert "configuration OK" in ok.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[schedule]\nopen_day = 0\n")
    failed = runner.invoke(main, ["--config", str(bad), "check-config"])
    assert failed.exit_code == 2
    assert "schedule.open_day" in failed.output


@pytest.mark.parametrize("value", [1, 2])
def test_small_number_suppression_cannot_be_turned_down_below_three(
    db_url: str, value: int
) -> None:
    """GSS guidance withholds counts below 3: a lower ``suppress_below`` would publish ones
    and twos, so it is refused at load, naming the key."""
    with pytest.raises(ConfigError, match=r"summaries\.suppress_below"):
        make_config(db_url, summaries={"suppress_below": value})
