"""Pacing departures and bounding arrivals: the channel-wide pacer makes up for late wake-ups
(which a bucket of capacity 1 loses for good), never lets more than ``floor(rate) + 1`` sends
leave in any second, and with the arrival guard behind it no window ever holds more arrivals
than the guard's limit, however late each send arrives, while the rate stays within a few
per cent of the configured one.

All on a manual clock: each wake-up is late by an amount the test chooses, and each send arrives
at the platform at the moment the test chooses between its departure and its answer.
"""

from __future__ import annotations

import bisect
import math
import random

from bot.delivery.arrival import ArrivalGuard, Window
from bot.delivery.limits import Pacer


class _Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _busiest(times: list[float]) -> int:
    times = sorted(times)
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


def _paced(pacer: Pacer, seconds: float, late: random.Random, most_late: float) -> list[float]:
    """Departures of a sender with a backlog that wakes up late by up to ``most_late``."""
    t, out = 100.0, []
    while t < 100.0 + seconds:
        wait = pacer.delay(t)
        if wait > 0:
            t += wait + late.uniform(0.0, most_late)  # the timer fires, the loop runs it late
            continue
        pacer.take(t)
        out.append(t)
        t += late.uniform(0.0, most_late / 10)  # the send itself takes a little
    return out


def test_a_rate_with_a_fraction_is_guarded_by_the_second_the_platform_counts_in() -> None:
    assert Window.for_rate(29.1) == Window(30, 1.0)
    assert Window.for_rate(97.0) == Window(97, 1.0)
    assert Window.for_rate(28.0) == Window(28, 1.0)


def test_late_wake_ups_are_made_up_and_no_second_holds_more_than_the_rate_plus_one() -> None:
    for rate in (29.1, 97.0, 291.0):
        sent = _paced(Pacer(rate), 20.0, random.Random(1), most_late=0.03)
        assert _busiest(sent) <= math.floor(rate) + 1, rate
        assert len(sent) >= 0.97 * rate * 20, (rate, len(sent) / 20)
        # The control: with no allowance to make up (a bucket of capacity 1), the same late
        # wake-ups are lost for good: the test would see it.
        lossy = _paced(Pacer(rate, catch_up=0.0), 20.0, random.Random(1), most_late=0.03)
        assert len(lossy) < 0.9 * rate * 20, (rate, len(lossy) / 20)


async def test_paced_and_guarded_sends_never_overfill_a_window_and_keep_the_rate() -> None:
    """The platform allows ``limit`` a second and the bot is set at 0.97 of it. Departures are
    paced (with late wake-ups), every send is admitted by the guard, and each arrives at the
    moment the test picks: as late as possible (just before its answer), as early as possible
    (at its departure), or anywhere between. Round trips vary between 1 and 15 ms (the fake
    platform's on a busy two-core machine: 5-9 ms on average, measured). No one-second window may hold more than the
    guard's limit, which is under the platform's; and the rate falls short of the configured one
    only by the round trip's share of a second (0.8% here) and a per cent of pacing."""
    for limit in (30, 100, 300):
        for arrive in ("late", "early", "anywhere"):
            rate = 0.97 * limit
            clock = _Clock()
            guard = ArrivalGuard(Window.for_rate(rate), Window(1, 1.0), now=clock)
            pacer = Pacer(rate)
            rng = random.Random(limit)
            in_flight: list[tuple[float, str, float]] = []  # (answer at, chat, departed)
            arrivals: list[float] = []
            n = 0
            end = 100.0 + 20.0
            while clock.t < end:
                # Answers that are due come back first.
                in_flight.sort()
                while in_flight and in_flight[0][0] <= clock.t:
                    answer, chat, left = in_flight.pop(0)
                    arrivals.append(
                        {"late": answer, "early": left, "anywhere": rng.uniform(left, answer)}[
                            arrive
                        ]
                    )
                    await guard.answered(chat)
                chat = f"c{n}"
                wait = max(pacer.delay(clock.t), guard.delay(chat) or 0.0)
                if math.isinf(wait):  # only an answer can make room
                    clock.t = in_flight[0][0]
                    continue
                if wait > 0:
                    clock.t += wait + rng.uniform(0.0, 0.005)
                    continue
                pacer.take(clock.t)
                await guard.admit(chat)
                in_flight.append((clock.t + rng.uniform(0.001, 0.015), chat, clock.t))
                n += 1
            assert _busiest(arrivals) <= Window.for_rate(rate).limit <= limit, (limit, arrive)
            arrivals.sort()
            achieved = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])  # as the bench counts
            # The guard's price is the round trip (each send counts from its departure until a
            # second after its answer): rate / (1 + mean round trip); the pacer's, a per cent.
            assert achieved >= 0.98 * rate / (1 + 0.008), (limit, arrive, achieved)
            assert achieved >= 0.94 * limit, (limit, arrive, achieved)


async def test_the_guard_alone_never_lets_more_than_its_limit_into_any_second() -> None:
    """Without the pacer (a burst: everything due at once, answers at once), the guard for
    29.1 a second lets at most 30 sends into any second. (Its window was 29 sends in 0.9966 s
    before: two full windows back to back put 58 into one second.)"""
    clock = _Clock()
    guard = ArrivalGuard(Window.for_rate(29.1), Window(1, 1.0), now=clock)
    sent: list[float] = []
    n = 0
    while clock.t < 105.0:
        chat = f"c{n}"
        wait = guard.delay(chat)
        if wait is not None:
            clock.t += wait
            continue
        await guard.admit(chat)
        sent.append(clock.t)
        await guard.answered(chat)  # the answer at once: the send arrived now
        n += 1
    assert _busiest(sent) <= 30
    assert len(sent) >= 5 * 29
