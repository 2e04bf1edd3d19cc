"""Routing as data: rules, the default team, private categories, and the gap check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bot.actions.routing import gaps, route
from bot.cli import main
from bot.config import ConfigError, config_from_mapping, load_config

ROOT = Path(__file__).resolve().parents[1]
TEAMS: list[dict[str, Any]] = [
    {"key": "cohesion", "name": "Cohesion", "organisation": "council", "slack_channel": "C01"},
    {"key": "npt", "name": "Police", "organisation": "police", "slack_channel": "C02"},
    {
        "key": "prevent",
        "name": "Prevent",
        "organisation": "council",
        "slack_channel": "G03",
        "restricted": True,
    },
]


def _config(rules: list[dict[str, Any]], **routing: Any) -> Any:
    return config_from_mapping(
        {
            "partnership": {"wards": ["Park", "Penn", "Heath Town"]},
            "teams": TEAMS,
            "routing": {"rules": rules, **routing},
        },
        source="t.toml",
        env={},
    )


def test_rules_add_teams_in_order_and_level_matters() -> None:
    config = _config(
        [
            {"categories": ["crime_asb"], "teams": ["npt", "cohesion"]},
            {"categories": ["*"], "min_level": 3, "teams": ["npt"]},
            {"categories": ["race"], "wards": ["park"], "teams": ["cohesion"]},
        ],
        default_team="cohesion",
    )
    assert route(config, category="crime_asb", ward="Penn", level=1).teams == ("npt", "cohesion")
    assert route(config, category="race", ward="Park", level=4).teams == ("npt", "cohesion")
    assert route(config, category="race", ward="Penn", level=2).teams == ("cohesion",)
    assert "default" in route(config, category="race", ward="Penn", level=2).reason


def test_private_categories_only_reach_restricted_teams() -> None:
    config = _config(
        [
            {"categories": ["protest_extremism"], "teams": ["cohesion", "prevent"]},
            {"categories": ["*"], "min_level": 3, "teams": ["npt"]},
        ],
        default_team="cohesion",
    )
    r = route(config, category="protest_extremism", ward="Park", level=5)
    assert r.teams == ("prevent",)
    assert "restricted teams only" in r.reason
    no_prevent = _config([], default_team="cohesion")
    assert route(no_prevent, category="protest_extremism", ward="Park", level=1).unrouted


def test_gaps_are_listed() -> None:
    config = _config([{"categories": ["race"], "wards": ["Park"], "teams": ["cohesion"]}])
    found = gaps(config, ["race", "religion"])
    assert ("race", "Park") not in {(g.category, g.ward) for g in found}
    assert {(g.category, g.ward) for g in found} >= {("race", "Penn"), ("religion", "Park")}
    assert all(g.levels == (1, 2, 3, 4, 5) for g in found)


@pytest.mark.parametrize(
    ("routing", "message"),
    [
        ({"rules": [{"teams": ["nobody"]}]}, "routing.rules.0.teams: unknown team 'nobody'"),
        ({"rules": [{"wards": ["Atlantis"], "teams": ["npt"]}]}, "not in partnership.wards"),
        ({"default_team": "ghost"}, "routing.default_team"),
    ],
)
def test_bad_routing_config_names_the_key(routing: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config_from_mapping({"teams": TEAMS, "routing": routing}, source="t.toml", env={})


def test_routing_check_command(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["--config", str(ROOT / "config.example.toml"), "routing", "check"])
    assert ok.exit_code == 0, ok.output
    assert "every category reaches a team" in ok.output
    example = load_config(ROOT / "config.example.toml", env={})
    assert route(example, category="protest_extremism", ward="Park", level=1).teams == ("prevent",)

    gappy = tmp_path / "gappy.toml"
    gappy.write_text(
        '[[teams]]\nkey = "npt"\nname = "Police"\norganisation = "police"\nslack_channel = "C0NPT"\n'
        '[[routing.rules]]\ncategories = ["crime_asb"]\nteams = ["npt"]\n'
    )
    failed = runner.invoke(main, ["--config", str(gappy), "routing", "check"])
    assert failed.exit_code == 1
    assert "reach NO team" in failed.output and "religion" in failed.output
    typo = tmp_path / "typo.toml"
    typo.write_text(
        '[[teams]]\nkey = "npt"\nname = "Police"\norganisation = "police"\nslack_channel = "C0NPT"\n'
        '[[routing.rules]]\ncategories = ["rasism"]\nteams = ["npt"]\n'
    )
    bad = runner.invoke(main, ["--config", str(typo), "routing", "check"])
    assert bad.exit_code == 2 and "rasism" in bad.output


def test_routing_check_names_member_emails_that_match_no_slack_user(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[database]\nurl = "sqlite+aiosqlite:///bot.sqlite3"\n'
        '[routing]\ndefault_team = "npt"\nprivate_categories = []\n'
        '[[teams]]\nkey = "npt"\nname = "Police"\norganisation = "police"\n'
        'slack_channel = "C0NPT"\nmembers = ["U0JANE", "dan@example.org", "ghost@example.org"]\n'
    )
    people = tmp_path / "people.csv"
    people.write_text(
        "name,role,wards,organisation,email,slack_user_id\n"
        "PC Dan Lee,officer,all,Police,Dan@Example.org,U0PC\n"
    )
    runner = CliRunner()
    assert (
        runner.invoke(main, ["--config", str(config), "people", "import", str(people)]).exit_code
        == 0
    )
    result = runner.invoke(main, ["--config", str(config), "routing", "check"])
    assert result.exit_code == 1, result.output
    assert "every category reaches a team" in result.output
    assert "teams.0.members.2: no imported person with a slack_user_id" in result.output
    assert "members.1" not in result.output
