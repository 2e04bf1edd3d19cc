"""Slack adapter.

``app`` builds the Web API client, the Bolt app and its HTTP endpoint; ``listeners/`` holds the
Bolt listeners, one module per kind (buttons, modal submissions, slash commands, events), each
calling one core service; ``ids`` names every action id, modal callback id and command once;
``render`` turns neutral messages into Block Kit, ``views`` and ``pact_views`` build modals and
the App Home; ``messenger`` sends the outbox's messages.
"""
