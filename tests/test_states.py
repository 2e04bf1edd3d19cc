"""The states of a team's action and of a delivered return: every move the rules allow, and a
refusal (with nothing changed) for every other one. The tables below are written out on their
own, not read from bot/domain.py, so a change to the rules must change them too."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain import Action, ActionState, Delivery, DeliveryState, IllegalMove

NOW = datetime(2026, 11, 20, tzinfo=UTC)

A = ActionState
ACTION_MOVES = {
    # acknowledge, add an update (also without acknowledging first), close / reassign / re-route
    A.OPEN: {A.ACKNOWLEDGED, A.IN_PROGRESS, A.CLOSED},
    # a further update; closed; the reporter says it is still a problem (reopened)
    A.ACKNOWLEDGED: {A.IN_PROGRESS, A.CLOSED, A.OPEN},
    A.IN_PROGRESS: {A.IN_PROGRESS, A.CLOSED, A.OPEN},
    A.CLOSED: set(),  # closed is closed: a new team's action is a new action
}

D = DeliveryState
DELIVERY_MOVES = {
    # sent (or in doubt, or refused) by the outbox; answered even before the send is confirmed
    D.QUEUED: {D.SENT, D.UNCERTAIN, D.UNREACHABLE, D.RESPONDED, D.NIL},
    D.SENT: {D.RESPONDED, D.NIL, D.UNREACHABLE},
    D.UNCERTAIN: {D.SENT, D.RESPONDED, D.NIL, D.UNREACHABLE},
    # linked again (queued anew); an urgent report or an old button still answers it
    D.UNREACHABLE: {D.QUEUED, D.UNREACHABLE, D.RESPONDED, D.NIL},
    D.RESPONDED: {D.RESPONDED},  # more reports for the same return: still responded
    D.NIL: {D.NIL, D.RESPONDED},  # "report a tension after all"
}


def _action(state: ActionState) -> Action:
    return Action(report_id=1, team_key="cohesion", created_at=NOW, state=state)


def _delivery(state: DeliveryState) -> Delivery:
    return Delivery(campaign_id=1, person_id=1, status=state)


@pytest.mark.parametrize("start", list(ActionState))
@pytest.mark.parametrize("end", list(ActionState))
def test_an_action_moves_only_where_the_rules_allow(start: ActionState, end: ActionState) -> None:
    action = _action(start)
    if end in ACTION_MOVES[start]:
        action.move_to(end)
        assert action.state is end
    else:
        with pytest.raises(IllegalMove):
            action.move_to(end)
        assert action.state is start


@pytest.mark.parametrize("start", list(DeliveryState))
@pytest.mark.parametrize("end", list(DeliveryState))
def test_a_delivery_moves_only_where_the_rules_allow(
    start: DeliveryState, end: DeliveryState
) -> None:
    delivery = _delivery(start)
    if end in DELIVERY_MOVES[start]:
        delivery.move_to(end)
        assert delivery.status is end
    else:
        with pytest.raises(IllegalMove):
            delivery.move_to(end)
        assert delivery.status is start


def test_a_closed_action_cannot_be_acknowledged_or_closed_again() -> None:
    action = _action(ActionState.OPEN)
    action.move_to(ActionState.CLOSED)
    for again in (ActionState.ACKNOWLEDGED, ActionState.CLOSED, ActionState.IN_PROGRESS):
        with pytest.raises(IllegalMove):
            action.move_to(again)
    assert action.state is ActionState.CLOSED


def test_a_state_read_back_as_text_still_moves_by_the_rules() -> None:
    """A record built from a stored string (as an old row or a raw query gives it) is held to
    the same rules."""
    action = _action(ActionState.OPEN)
    action.state = "closed"  # type: ignore[assignment]
    with pytest.raises(IllegalMove):
        action.move_to(ActionState.ACKNOWLEDGED)
    delivery = _delivery(DeliveryState.QUEUED)
    delivery.status = "responded"  # type: ignore[assignment]
    with pytest.raises(IllegalMove):
        delivery.move_to(DeliveryState.NIL)


@given(st.lists(st.sampled_from(list(ActionState)), max_size=12))
def test_any_sequence_of_moves_follows_the_table(moves: list[ActionState]) -> None:
    action = _action(ActionState.OPEN)
    for end in moves:
        before = action.state
        try:
            action.move_to(end)
        except IllegalMove:
            assert end not in ACTION_MOVES[before] and action.state is before
        else:
            assert end in ACTION_MOVES[before] and action.state is end


def test_answered_is_responded_or_nil() -> None:
    from bot.domain import ANSWERED

    assert {s for s in DeliveryState if s.answered} == {D.RESPONDED, D.NIL} == ANSWERED
