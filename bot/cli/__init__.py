"""The ``tensionbot`` command line.

Every command loads the configuration once (``--config PATH``, default ``./config.toml``; a
missing file is an error, never a silent fall-back to defaults), validates it, and exits non-zero
with a message naming the file, line or key when something is wrong.

The commands live by group in this package (``ops``: run and the checks; ``people``;
``privacy``; ``campaigns``; ``pact``; ``summaries``); each registers itself on :data:`main`
when imported.
"""

from bot.cli import campaigns, ops, pact, people, privacy, summaries
from bot.cli.base import main
from bot.cli.campaigns import format_status

__all__ = ["campaigns", "format_status", "main", "ops", "pact", "people", "privacy", "summaries"]
