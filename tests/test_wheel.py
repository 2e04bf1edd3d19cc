"""The built wheel (what `pip install` and the Docker image get) holds the product and nothing
else: no simulators or demo (sim/), no benchmarks, no tests. The wheel is built from a copy of
this checkout with the project's own build backend, as `pip install .` builds it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from click.testing import CliRunner

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("bot", "handlers", "scheduler", "storage")
# Local state that is not source: environments, caches, build output, the demo's output.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis",
    "demo-output", "*.sqlite3*",
)  # fmt: skip


def _build_wheel(tmp_path: Path) -> zipfile.ZipFile:
    """Build the wheel from a copy of the checkout (a build writes into its source tree)."""
    source, out = tmp_path / "source", tmp_path / "wheel"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), "."],
        cwd=source,
        check=True,
        timeout=600,
    )
    (wheel,) = out.glob("tensionbot-*.whl")
    return zipfile.ZipFile(wheel)


def test_the_wheel_holds_the_product_and_no_simulator_demo_bench_or_tests(
    tmp_path: Path,
) -> None:
    with _build_wheel(tmp_path) as wheel:
        names = set(wheel.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = wheel.read(entry_points).decode()
    tops = {name.split("/", 1)[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == set(PRODUCT)
    assert not [n for n in names if "sim/" in n or "demo" in n or "bench" in n or "tests" in n]
    # Every product module is there, with the package data the product reads at run time.
    modules = {
        path.relative_to(ROOT).as_posix()
        for package in PRODUCT
        for path in (ROOT / package).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert {"bot/cli/__init__.py", "bot/app.py", "storage/migrations/env.py"} <= modules
    assert modules <= names, sorted(modules - names)
    assert {"bot/forms/tension_return.toml", "storage/migrations/script.py.mako"} <= names
    assert "tensionbot = bot.cli:main" in scripts


def test_the_product_command_line_has_no_demo() -> None:
    """The demo is `python -m sim.demo` (`make demo`) from a checkout: the installed command
    does not know it."""
    result = CliRunner().invoke(main, ["demo", "--help"])
    assert result.exit_code == 2
    assert "No such command 'demo'" in result.output


def test_the_demo_runs_from_the_checkout() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sim.demo", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--out" in result.stdout
