"""Every Slack identifier tensionbot listens for, written once: button action ids, modal
callback ids, global shortcut callback ids and slash commands.

The renderers put these on the buttons and modals they build, the listeners match on them, and
the tests and the demo click them by name. They are part of the wire format: a message already
posted keeps its buttons' action ids, so changing a value here orphans every button out there
(``tests/test_codec_render.py`` pins the values).
"""

from __future__ import annotations

from enum import StrEnum

from bot.buttons import Kind


class ActionId(StrEnum):
    """The ``action_id`` of a button with a listener."""

    ACK = "tb_ack"
    UPDATE = "tb_update"
    CLOSE = "tb_close"
    REASSIGN = "tb_reassign"
    RECATEGORISE = "tb_recategorise"
    START = "tb_start"
    NIL = "tb_nil"
    STILL = "tb_still"
    SORTED = "tb_sorted"
    PACT_RECORD = "tb_pact_record"
    PACT_CANCELLED = "tb_pact_cancelled"
    PACT_REPORT_BACK = "tb_pact_report_back"


class ViewId(StrEnum):
    """The ``callback_id`` of a modal whose submission has a listener."""

    UPDATE = "tb_update_modal"
    CLOSE = "tb_close_modal"
    REASSIGN = "tb_reassign_modal"
    RECATEGORISE = "tb_recategorise_modal"
    REPORT = "tb_report_modal"
    PACT_RECORD = "tb_pact_record_modal"
    PACT_REPORT_BACK = "tb_pact_report_back_modal"
    CRISIS_START = "tb_crisis_start_modal"
    CRISIS_STOP = "tb_crisis_stop_modal"


class ShortcutId(StrEnum):
    """The ``callback_id`` of a global shortcut (declared in ``deploy/slack-manifest.yml``
    too)."""

    CRISIS_START = "tb_crisis_start"
    CRISIS_STOP = "tb_crisis_stop"


class Command(StrEnum):
    """Slash commands (declared in ``deploy/slack-manifest.yml`` too)."""

    TENSIONS = "/tensions"
    PACT = "/pact"
    CRISIS = "/crisis"


BUTTONS: dict[Kind, ActionId] = {
    Kind.ACK: ActionId.ACK,
    Kind.UPDATE: ActionId.UPDATE,
    Kind.CLOSE: ActionId.CLOSE,
    Kind.REASSIGN: ActionId.REASSIGN,
    Kind.RECATEGORISE: ActionId.RECATEGORISE,
    Kind.START: ActionId.START,
    Kind.NIL: ActionId.NIL,
    Kind.STILL: ActionId.STILL,
    Kind.SORTED: ActionId.SORTED,
    Kind.PACT_RECORD: ActionId.PACT_RECORD,
    Kind.PACT_CANCELLED: ActionId.PACT_CANCELLED,
    Kind.PACT_REPORT_BACK: ActionId.PACT_REPORT_BACK,
}
"""The button kinds with a listener, and the action id their buttons carry."""


def action_id_for(kind: Kind) -> str:
    """The action_id of a button of ``kind``. A kind without a listener (e.g. ``PACT_PICK``,
    which only Telegram sends) still gets a stable ``tb_<kind>``; no listener matches it, so a
    click on one does nothing (Bolt answers 404 and logs it)."""
    return BUTTONS.get(kind, f"tb_{kind.name.lower()}")
