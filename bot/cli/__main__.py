"""``python -m bot.cli``: the same as the ``tensionbot`` command."""

from bot.cli import main

main()
