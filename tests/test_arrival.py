"""The arrival guard: however late sends arrive, no more than the limit arrive in any window.

The platform counts arrivals; the guard only knows when it let a send go and when its answer
came back. These tests play the worst case with a manual clock: a send that left at once and
arrived just before its answer came back, long after it left.
"""

from __future__ import annotations

import asyncio
import math

from bot.delivery.arrival import ArrivalGuard, Window


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_windows_for_the_configured_rates() -> None:
    assert Window.for_rate(28.0) == Window(28, 1.0)
    assert Window.for_rate(1.0) == Window(1, 1.0)
    assert Window.for_rate(1.0, burst=10) == Window(10, 10.0)
    assert Window.for_rate(0.5) == Window(1, 2.0)


async def test_one_chat_gets_its_next_send_a_window_after_the_answer_not_after_the_departure() -> (
    None
):
    clock = Clock()
    guard = ArrivalGuard(Window(30, 1.0), Window(1, 1.0), now=clock)
    await guard.admit("chat-1")
    assert guard.delay("chat-1") == math.inf  # one in flight: nothing more to that chat
    assert guard.delay("chat-2") is None  # another chat may go
    clock.t += 0.9  # the answer comes back late (the send may have arrived just now)
    await guard.answered("chat-1")
    assert guard.delay("chat-1") == 1.0  # a whole window after the answer
    clock.t += 0.999
    assert guard.delay("chat-1") is not None
    clock.t += 0.002
    assert guard.delay("chat-1") is None


async def test_the_channel_counts_what_is_in_flight_and_what_was_answered_within_the_window() -> (
    None
):
    clock = Clock()
    guard = ArrivalGuard(Window(3, 1.0), Window(1, 1.0), now=clock)
    for chat in ("a", "b", "c"):
        await guard.admit(chat)
    assert guard.delay("d") == math.inf
    clock.t += 0.5
    await guard.answered("a")
    assert guard.delay("d") == 1.0  # until the answered one leaves the window
    await guard.answered("b")
    await guard.answered("c")
    assert guard.delay("d") == 1.0
    clock.t += 1.0
    assert guard.delay("d") is None
    assert guard.in_flight == 0


async def test_a_waiting_send_goes_when_an_answer_makes_room() -> None:
    """The wake-up: a send waiting for room (only an answer can make it) goes as soon as the
    answer comes back (a window of 0 s here, so the answer makes room at once)."""
    clock = Clock()
    guard = ArrivalGuard(Window(1, 0.0), Window(1, 1.0), now=clock)
    await guard.admit("a")
    waiting = asyncio.create_task(guard.admit("b"))
    await asyncio.sleep(0)
    assert not waiting.done()
    await guard.answered("a")
    await asyncio.wait_for(waiting, 1)
    assert guard.counts() == {"b": 1}


async def test_under_any_delays_no_window_holds_more_arrivals_than_the_limit() -> None:
    """A simulation: each admitted send arrives at some moment between its departure and its
    answer, chosen adversarially (as late as possible, or as early); the arrivals in every
    one-second window are counted as the platform would."""
    limit = 5
    for arrive_late in (True, False):
        clock = Clock()
        guard = ArrivalGuard(Window(limit, 1.0), Window(1, 1.0), now=clock)
        arrivals: list[float] = []
        in_flight: list[tuple[str, float]] = []
        for step in range(400):
            chat = f"c{step % 7}"
            if guard.delay(chat) is None:
                await guard.admit(chat)
                in_flight.append((chat, clock.t))
            clock.t += 0.013 * (1 + step % 5)
            if in_flight and (step % 3 == 0 or len(in_flight) >= limit):
                done, left = in_flight.pop(0)
                arrivals.append(clock.t if arrive_late else left)
                await guard.answered(done)
        arrivals.sort()
        busiest = max(sum(1 for t in arrivals if s <= t < s + 1.0) for s in arrivals)
        assert 0 < busiest <= limit
