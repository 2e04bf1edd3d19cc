"""The tensionbot command line: every command has --help; bad input exits non-zero clearly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main

COMMANDS = [
    [],
    ["check-config"],
    ["health"],
    ["doctor"],
    ["db"],
    ["db", "upgrade"],
    ["people"],
    ["people", "import"],
    ["people", "list"],
    ["people", "deactivate"],
    ["people", "reactivate"],
    ["people", "erase"],
    ["people", "export"],
    ["privacy"],
    ["privacy", "retention"],
    ["invites"],
    ["campaign"],
    ["campaign", "open"],
    ["campaign", "status"],
    ["campaign", "web-link"],
    ["run"],
    ["routing"],
    ["routing", "check"],
    ["hatecrime"],
    ["hatecrime", "import"],
    ["summary"],
    ["pact"],
    ["pact", "schedule"],
    ["pact", "move"],
    ["pact", "cancel"],
    ["pact", "import"],
    ["pact", "list"],
    ["pact", "insight"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "tensionbot")
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def _config(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n[telegram]\nbot_username = "swp_bot"\n')
    return path


def test_people_invites_campaign_round_trip(tmp_path: Path, db_url: str) -> None:
    runner = CliRunner()
    config = _config(tmp_path, db_url)
    people = tmp_path / "people.csv"
    people.write_text(
        "name,role,wards,email\nAsha,councillor,Heath Town,asha@x.org\n"
        "Tom,councillor,Park;Penn,tom@x.org\n"
    )
    base = ["--config", str(config)]
    ok = runner.invoke(main, [*base, "people", "import", str(people)])
    assert ok.exit_code == 0, ok.output
    assert "2 created" in ok.output
    again = runner.invoke(main, [*base, "people", "import", str(people)])
    assert "0 created, 0 updated, 2 unchanged" in again.output

    bad = tmp_path / "bad.csv"
    bad.write_text("name,role,wards,email\nEve,councillor,Narnia,eve@x.org\n")
    failed = runner.invoke(main, [*base, "people", "import", str(bad)])
    assert failed.exit_code == 2
    assert "bad.csv: line 2: ward 'Narnia'" in failed.output
    assert "nothing was imported" in failed.output

    invites = runner.invoke(main, [*base, "invites", "--format", "csv"])
    assert invites.exit_code == 0, invites.output
    rows = invites.output.strip().splitlines()
    assert rows[0] == "name,email,link,expires"
    assert all("https://t.me/swp_bot?start=" in r for r in rows[1:]) and len(rows) == 3

    listed = runner.invoke(main, [*base, "people", "list", "--format", "json"])
    assert {p["telegram"] for p in json.loads(listed.output)} == {"not linked"}

    opened = runner.invoke(main, [*base, "campaign", "open", "--period", "2030-01"])
    assert opened.exit_code == 0, opened.output
    assert "opened: monthly:2030-01" in opened.output
    twice = runner.invoke(main, [*base, "campaign", "open", "--period", "2030-01"])
    assert "already open: monthly:2030-01" in twice.output

    status = runner.invoke(main, [*base, "campaign", "status", "--period", "2030-01", "--json"])
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    assert data["counts"] == {"unreachable": 2}
    assert {p["detail"] for p in data["people"]} == {"never linked"}

    # Tom leaves: the next return is not sent to him; an unknown email is named.
    left = runner.invoke(main, [*base, "people", "deactivate", "TOM@x.org"])
    assert left.exit_code == 0 and "Tom <tom@x.org> is inactive" in left.output, left.output
    nobody = runner.invoke(main, [*base, "people", "deactivate", "eve@x.org"])
    assert nobody.exit_code != 0 and "no person with email 'eve@x.org'" in nobody.output
    runner.invoke(main, [*base, "campaign", "open", "--period", "2030-02"])
    status = runner.invoke(main, [*base, "campaign", "status", "--period", "2030-02", "--json"])
    assert json.loads(status.output)["counts"] == {"unreachable": 1}
    back = runner.invoke(main, [*base, "people", "reactivate", "tom@x.org"])
    assert back.exit_code == 0 and "Tom <tom@x.org> is active" in back.output

    bad_period = runner.invoke(main, [*base, "campaign", "status", "--period", "2030-13"])
    assert bad_period.exit_code == 2 and "YYYY-MM" in bad_period.output
    extra = runner.invoke(main, [*base, "campaign", "open", "--extra", "--wards", "Atlantis"])
    assert extra.exit_code == 2 and "unknown ward(s): Atlantis" in extra.output


def test_run_without_a_token_says_what_is_missing(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TENSIONBOT_TELEGRAM_TOKEN", raising=False)
    result = CliRunner().invoke(main, ["--config", str(_config(tmp_path, db_url)), "run"])
    assert result.exit_code == 2
    assert "TENSIONBOT_TELEGRAM_TOKEN is not set" in result.output


def test_campaign_status_lists_crisis_cadences(tmp_path: Path, db_url: str) -> None:
    import asyncio

    from bot.app import build_services
    from bot.config import load_config
    from bot.returns.crisis import parse

    runner = CliRunner()
    config_path = _config(tmp_path, db_url)
    base = ["--config", str(config_path)]
    runner.invoke(main, [*base, "campaign", "open", "--period", "2030-01"])

    async def start() -> None:
        services = await build_services(load_config(config_path))
        try:
            request = parse("weekly Heath Town, Park until 2030-02-28", services.config)
            await services.crisis.start(request, "person:1")
        finally:
            await services.close()

    asyncio.run(start())
    status = runner.invoke(main, [*base, "campaign", "status", "--period", "2030-01"])
    assert status.exit_code == 0, status.output
    assert "Crisis cadences (/crisis):" in status.output
    assert "crisis 1: weekly return for Heath Town, Park" in status.output
    assert "until 2030-02-28; 1 sent" in status.output
    as_json = runner.invoke(main, [*base, "campaign", "status", "--period", "2030-01", "--json"])
    assert [c["every"] for c in json.loads(as_json.output)["crisis_cadences"]] == ["weekly"]


def test_a_rerun_of_invites_keeps_links_already_sent_and_shows_links_whole(
    tmp_path: Path, db_url: str
) -> None:
    """Re-running `invites` must not cancel the links already emailed out (issue 13): only
    --reissue replaces them. Written to a file or a pipe the default is CSV; the table never
    cuts a link short."""
    runner = CliRunner()
    base = ["--config", str(_config(tmp_path, db_url))]
    people = tmp_path / "people.csv"
    people.write_text(
        "name,role,wards,email\nAsha,councillor,Heath Town,asha@x.org\n"
        "Tom,councillor,Park;Penn,tom@x.org\n"
    )
    assert runner.invoke(main, [*base, "people", "import", str(people)]).exit_code == 0

    first = runner.invoke(main, [*base, "invites"])  # not a terminal: CSV by default
    assert first.exit_code == 0, first.output
    rows = first.stdout.strip().splitlines()
    assert rows[0] == "name,email,link,expires" and len(rows) == 3
    sent = {r.split(",")[1]: r.split(",")[2] for r in rows[1:]}

    again = runner.invoke(main, [*base, "invites"])
    assert again.exit_code == 0, again.output
    assert again.stdout.strip() == ""  # nobody needs a new link
    assert "2 people have an unused, unexpired link sent earlier" in again.stderr

    # Another person joins: only they get a link; Asha's and Tom's still work.
    people.write_text(people.read_text() + "Grace,community_leader,Penn,grace@x.org\n")
    assert runner.invoke(main, [*base, "people", "import", str(people)]).exit_code == 0
    table = runner.invoke(main, [*base, "invites", "--format", "table"])
    assert table.exit_code == 0, table.output
    (line,) = [x for x in table.stdout.splitlines() if "grace@x.org" in x]
    link = line.split()[-3]  # name email link date time
    assert link.startswith("https://t.me/swp_bot?start=") and len(link) > 40
    assert len(link.split("start=")[1]) == 32  # the whole token, not a cut-off column

    # --reissue replaces the earlier links; the old ones then say they were replaced.
    reissued = runner.invoke(main, [*base, "invites", "--reissue", "--format", "json"])
    assert reissued.exit_code == 0, reissued.output
    fresh = {row["email"]: row["link"] for row in json.loads(reissued.stdout)}
    assert set(fresh) == {"asha@x.org", "tom@x.org", "grace@x.org"}
    assert fresh["asha@x.org"] != sent["asha@x.org"]


def _tensionbot(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in its own process, so its logging is configured as in production."""
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )


def test_a_conflicting_import_names_rows_only_even_at_the_most_verbose(
    tmp_path: Path, db_url: str
) -> None:
    config = _config(tmp_path, db_url)
    header = "name,role,wards,organisation,email,slack_user_id\n"
    stored = tmp_path / "stored.csv"
    stored.write_text(header + "Orla Stored,officer,all,Police,orla.stored@x.org,U0ORLA\n")
    assert _tensionbot(config, "people", "import", str(stored)).returncode == 0
    secrets = ["Orla Stored", "orla.stored@x.org", "U0ORLA"]

    def refused(rows: list[tuple[str, str, str]]) -> str:
        bad = tmp_path / "bad.csv"
        bad.write_text(header + "".join(f"{n},officer,all,Police,{e},{s}\n" for n, e, s in rows))
        run = _tensionbot(config, "-vv", "people", "import", str(bad))
        output = run.stdout + run.stderr
        assert run.returncode == 2, output
        assert "nothing was imported" in output
        assert "Traceback" not in output and "IntegrityError" not in output
        everything = secrets + [v for row in rows for v in row if v]
        leaked = sorted({v for v in everything if v.lower() in output.lower()})
        assert leaked == [], f"personal data in the output: {leaked}"
        return output

    # Repeats within the file: a Slack id (lines 2 and 3), an email (lines 4 and 5).
    output = refused(
        [
            ("Gareth Fenwick", "gareth.fenwick@x.org", "U0TWIN"),
            ("Priya Ramaswamy", "priya.ramaswamy@x.org", "U0TWIN"),
            ("Tomasz Wolny", "tomasz.wolny@x.org", ""),
            ("Tomasz Again", "Tomasz.Wolny@x.org", ""),
        ]
    )
    assert "line 3: slack_user_id repeats line 2" in output
    assert "line 5: email repeats line 4" in output
    # A Slack id someone already stored has (a unique key in the database).
    output = refused(
        [
            ("Gareth Fenwick", "gareth.fenwick@x.org", ""),
            ("Halima Okafor", "halima.okafor@x.org", "U0ORLA"),
        ]
    )
    assert "line 3: slack_user_id is already someone else's" in output


def test_a_subject_access_export_is_private_from_its_first_byte(
    tmp_path: Path, db_url: str
) -> None:
    """``people export --out``: the file is the owner's alone (0600, also when it existed
    with a wider mode); a symlink or a FIFO at the path is refused, naming it, without
    following or blocking."""
    import os
    import stat

    config = _config(tmp_path, db_url)
    people = tmp_path / "people.csv"
    people.write_text("name,role,wards,email\nAsha Patel,councillor,Heath Town,asha@x.org\n")
    runner = CliRunner()
    base = ["--config", str(config)]
    assert runner.invoke(main, [*base, "people", "import", str(people)]).exit_code == 0
    out = tmp_path / "asha.json"
    out.write_text("old")
    out.chmod(0o644)
    done = runner.invoke(main, [*base, "people", "export", "asha@x.org", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "asha@x.org" in out.read_text()
    elsewhere = tmp_path / "elsewhere.json"
    link = tmp_path / "link.json"
    link.symlink_to(elsewhere)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for path in (link, fifo):
        refused = runner.invoke(main, [*base, "people", "export", "asha@x.org", "--out", str(path)])
        assert refused.exit_code == 2 and str(path) in refused.output, refused.output
    assert not elsewhere.exists()
