"""Button codec and Telegram rendering: compact, validated, escaped."""

from __future__ import annotations

import pytest

from bot.buttons import Action, BadPayload, Kind
from bot.messages import MessageBuilder, bold, code
from handlers.telegram.render import MAX_TEXT, render_keyboard, render_text


def test_round_trip_and_size() -> None:
    action = Action(Kind.ANSWER, target=2**40, seq=99999, value=19)
    data = action.encode()
    assert len(data.encode()) <= 64
    assert Action.decode(data) == action


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
        Action.decode(data)


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
