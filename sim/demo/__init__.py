"""``make demo`` (``python -m sim.demo``): the whole monthly return, offline, on the real code.

A fresh SQLite file, a local simulated Telegram Bot API server and a simulated Slack; simulated
councillors and community leaders link their chats, get the December return, answer it (or
not), are reminded, and the return closes. Half-way through a conversation the bot is stopped
and started again to show nothing is lost. Teams work the routed reports in Slack, PACT meetings
are recorded, a crisis brings extra returns. Prints the campaign status, the reports, the
summary and each report's timeline; leaves everything in ``--out``.

The story is told scene by scene (``story.py`` runs them in order): ``setting_up`` (before
December), ``december`` (the return opens and people answer), ``officers`` (the teams in Slack),
``pact`` (PACT meetings), ``closing`` (reminders, the close, a crisis, the summary in Slack) and
``results`` (what is printed). ``stage`` holds what every scene shares.

From a checkout only: ``sim/`` is not part of the installed package.
"""

from sim.demo.story import run_demo

__all__ = ["run_demo"]
