"""tensionbot: the monthly community-tension return as an async chat bot.

The ``bot`` package is the core (what the bot knows and decides) plus its composition root
(:mod:`bot.app`) and command line (:mod:`bot.cli`). The core never imports Telegram, Slack,
SQLAlchemy or APScheduler; adapters live in ``handlers/``, ``storage/`` and ``scheduler/``.
"""
