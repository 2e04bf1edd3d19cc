"""Slack's documented Block Kit limits, written once for every modal the adapter builds (the
fake Slack enforces the same ones: sim/fake_slack/blocks.py)."""

MAX_BLOCKS = 100  # blocks in a modal
MAX_CHECKBOXES = 10  # options of a checkboxes element
MAX_OPTIONS = 100  # options of a static or multi-static select, or of one option group
MAX_LABEL = 2000  # an input block's label
MAX_OPTION_TEXT = 75  # an option's text
MAX_OPTION_VALUE = 150  # an option's value
MAX_CONTEXT_TEXT = 3000  # a context element's text
MAX_TITLE = 24  # a modal's title
