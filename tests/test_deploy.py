"""Deployment files: the lock files pin every dependency with hashes, and the image installs from
the lock and checks its health in a way that works in polling mode too. (scripts/docker-smoke
builds and runs the image, or the same steps in a venv; it is too slow for the suite.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins(lock: Path) -> dict[str, list[str]]:
    """name -> the lines of its entry (a universal lock may pin one name per Python version)."""
    entries: dict[str, list[str]] = {}
    current: list[str] = []
    for line in lock.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            current = [line]
            entries.setdefault(_name(line), []).extend(current)
        elif line.strip().startswith("--hash="):
            current.append(line.strip())
            entries[_name(current[0])].append(line.strip())
    return entries


@pytest.mark.parametrize(
    ("lock", "extras"), [("requirements.lock", []), ("requirements-dev.lock", ["dev"])]
)
def test_the_lock_pins_every_dependency_with_hashes(lock: str, extras: list[str]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    pins = _pins(ROOT / lock)
    missing = sorted({_name(r) for r in wanted} - set(pins))
    assert not missing, f"{lock} lacks {missing}: run `make lock`"
    for name, lines in pins.items():
        assert "==" in lines[0], f"{lock}: {name} is not pinned to one version"
        assert any(line.startswith("--hash=sha256:") for line in lines), (
            f"{lock}: {name} has no hash"
        )


def test_the_image_installs_from_the_lock_and_checks_health_in_any_mode() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert "pip install --require-hashes -r requirements.lock" in dockerfile
    assert "pip install --no-deps ." in dockerfile
    assert re.search(r"MPLCONFIGDIR=/tmp/", dockerfile)  # HOME is not writable
    (healthcheck,) = re.findall(r"HEALTHCHECK[^\n]*\n\s*CMD (.*)", dockerfile)
    assert '"health"' in healthcheck and "8080" not in healthcheck
