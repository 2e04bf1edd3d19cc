"""Button codec and Telegram rendering: compact, validated, escaped."""

from __future__ import annotations

import pytest

from bot.buttons import BadPayload, ButtonAction, Kind
from bot.messages import Button, MessageBuilder, bold, code
from handlers.telegram.render import MAX_TEXT, render_keyboard, render_text


def test_round_trip_and_size() -> None:
    action = ButtonAction(Kind.ANSWER, target=2**40, seq=99999, value=19)
    data = action.encode()
    assert len(data.encode()) <= 64
    assert ButtonAction.decode(data) == action


@pytest.mark.parametrize(
    "data",
    [
        "",
        "2.a.1.1.1",
        "1.z.1.1.1",
        "1.a.1.1",
        "1.a.x.1.1",
        "1.a.-1.1.1",
        "1.a.1.1.1.1",
        "x" * 65,
        "1.a.1.1.99999999999999999999",
    ],
)
def test_forged_payloads_are_refused(data: str) -> None:
    with pytest.raises(BadPayload):
        ButtonAction.decode(data)


def test_user_text_is_escaped_in_html() -> None:
    evil = '<b>hi</b> <a href="http://x">link</a> & <!channel> <@U123>'
    message = MessageBuilder().line(bold("Title"), " ", evil).line(code("TR-1")).build()
    text, mode = render_text(message)
    assert mode == "HTML"
    assert text.startswith("<b>Title</b> &lt;b&gt;hi&lt;/b&gt; &lt;a href=")
    assert "&amp;" in text and "<a " not in text and "<!channel>" not in text
    assert text.endswith("<code>TR-1</code>")


def test_over_long_messages_fall_back_to_plain_text() -> None:
    message = MessageBuilder().line(bold("x" * 3000)).line("<" * 3000).build()
    text, mode = render_text(message)
    assert mode is None
    assert len(text) == MAX_TEXT


def test_keyboard_rows() -> None:
    from bot.messages import Button

    message = (
        MessageBuilder()
        .line("q")
        .row(Button(label="A", data="1"), Button(label="B", data="2"))
        .build()
    )
    keyboard = render_keyboard(message)
    assert keyboard is not None
    assert [[b.text for b in row] for row in keyboard.inline_keyboard] == [["A", "B"]]
    assert render_keyboard(MessageBuilder().line("x").build()) is None


# Written out here on purpose, not read from handlers/slack/ids.py: buttons already posted in
# Slack keep their action ids and open modals their callback ids, so changing one orphans them.
SLACK_WIRE_IDS = {
    "tb_ack": Kind.ACK,
    "tb_update": Kind.UPDATE,
    "tb_close": Kind.CLOSE,
    "tb_reassign": Kind.REASSIGN,
    "tb_recategorise": Kind.RECATEGORISE,
    "tb_start": Kind.START,
    "tb_nil": Kind.NIL,
    "tb_still": Kind.STILL,
    "tb_sorted": Kind.SORTED,
    "tb_pact_record": Kind.PACT_RECORD,
    "tb_pact_cancelled": Kind.PACT_CANCELLED,
    "tb_pact_report_back": Kind.PACT_REPORT_BACK,
}


def test_slack_ids_keep_the_values_already_out_there() -> None:
    from handlers.slack.ids import BUTTONS, ActionId, Command, ShortcutId, ViewId, action_id_for

    assert {kind: str(aid) for kind, aid in BUTTONS.items()} == {
        kind: aid for aid, kind in SLACK_WIRE_IDS.items()
    }
    assert {str(a) for a in ActionId} == set(SLACK_WIRE_IDS)
    assert {str(v) for v in ViewId} == {
        "tb_update_modal",
        "tb_close_modal",
        "tb_reassign_modal",
        "tb_recategorise_modal",
        "tb_report_modal",
        "tb_pact_record_modal",
        "tb_pact_report_back_modal",
        "tb_crisis_start_modal",
        "tb_crisis_stop_modal",
    }
    assert {str(c) for c in Command} == {"/tensions", "/pact", "/crisis"}
    # Also in deploy/slack-manifest.yml: the workspace's shortcut menu sends these.
    assert {str(s) for s in ShortcutId} == {"tb_crisis_start", "tb_crisis_stop"}
    # A kind Slack has no listener for still gets a stable id.
    assert action_id_for(Kind.PACT_PICK) == "tb_pact_pick"


def test_every_slack_button_carries_its_kinds_action_id() -> None:
    from handlers.slack.render import render as render_slack

    builder = MessageBuilder().line("x")
    for kind in Kind:
        builder.row(Button(label=kind.name, data=ButtonAction(kind, 1).encode()))
    _, blocks = render_slack(builder.build())
    rendered = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    wire = {kind: aid for aid, kind in SLACK_WIRE_IDS.items()}
    assert rendered == [wire.get(kind, f"tb_{kind.name.lower()}") for kind in Kind]
