"""``python -m sim.demo --out demo-output`` (what ``make demo`` runs)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from bot.logs import configure_logging
from sim.demo.story import run_demo


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("demo-output"),
    show_default=True,
    help="Folder for the demo's database, transcripts and status.",
)
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def main(out: Path, verbose: int) -> None:
    """Run the whole product offline against a simulated Telegram and Slack, and print what
    happened. From a checkout only: the simulators are not part of the installed package."""
    configure_logging(verbose)
    sys.exit(asyncio.run(run_demo(out)))


if __name__ == "__main__":  # pragma: no cover
    main()
