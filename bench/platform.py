"""The simulated platform process: the fake Telegram Bot API server (sim/fake_telegram/)
and the simulated reporters, in a process of their own so that they do not share the bot's CPU
or event loop (the real Telegram is on another machine).

Started by :class:`bench.common.Platform` as ``python -m bench.platform '<options JSON>'``. It
prints ``{"base_url": ...}`` and then answers one JSON command per stdin line with one JSON line
on stdout.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

from bot.config import DEFAULT_FORM_PATH
from bot.forms import FormDefinition, load_form
from sim.fake_telegram import FakeTelegram, SentMessage, SimUser, _Chat
from sim.scripts import tension

REPLY_METHODS = frozenset({"sendMessage", "editMessageText"})
STEP_TIMEOUT = 120.0


def _first_words(text: str, n: int = 6) -> str:
    return " ".join(text.split()[:n])


class BenchFake(FakeTelegram):
    """The fake server, plus one wake-up event per chat.

    ``SimUser.wait_for`` waits on one condition shared by every chat, so with 200 reporters each
    message wakes all 200 waiters (quadratic work in the *platform* process, which then limits
    the benchmark rather than the bot). Here each reporter waits on its own chat only.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chat_events: dict[int, asyncio.Event] = {}

    def _poke(self, chat_id: int | None) -> None:
        if chat_id is not None and (event := self.chat_events.get(chat_id)) is not None:
            event.set()

    async def _store(self, chat: _Chat, message: SentMessage) -> dict[str, Any]:
        result = await super()._store(chat, message)
        self._poke(message.chat_id)
        return result

    async def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        result = await super()._api_editMessageText(params)
        self._poke(int(params["chat_id"]))
        return result

    async def wait_text(self, user: SimUser, needle: str, timeout: float) -> None:
        """Wait until a bot message in the user's chat contains ``needle``."""
        event = self.chat_events.setdefault(user.chat_id, asyncio.Event())
        wanted = needle.casefold()

        def found() -> bool:
            chat = self._chats.get(user.chat_id)
            return chat is not None and any(
                wanted in (m.text or m.caption or "").casefold() for m in chat.messages
            )

        async def wait() -> None:
            while not found():
                event.clear()
                if found():
                    return
                await event.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise TimeoutError(f"{user.first_name} never got {needle!r}") from None


class Driver:
    """Simulated reporters filling in the form, recording when each update was pushed."""

    def __init__(self, fake: BenchFake, form: FormDefinition) -> None:
        self.fake = fake
        self.form = form
        self.pushed: list[tuple[int, float]] = []  # (chat id, monotonic time of the push)

    async def _push(self, user: SimUser, action: Any) -> None:
        self.pushed.append((user.chat_id, time.monotonic()))
        await action

    async def reporter(
        self, user: SimUser, ward: str, index: int, stop_after: int | None = None
    ) -> list[str]:
        """One reporter: /report, every question, Submit. With ``stop_after``, it stops once that
        many of its updates have been answered. Returns the steps it reached, in order: the id of
        each question it was asked, then ``review`` and ``submitted``; the last is where its
        acknowledged updates left its conversation."""
        answers = tension(
            ward,
            ("race", "religion", "crime_asb", "online", "event", "other")[index % 6],
            f"Benchmark tension number {index}: leaflets left outside the community centre.",
            level=str(1 + index % 3),
        )
        reached: list[str] = []
        await self._push(user, user.send_command("/report"))
        pushes = 1
        for q in self.form.visible_questions(answers):
            await self.fake.wait_text(user, _first_words(q.prompt), STEP_TIMEOUT)
            reached.append(q.id)
            if pushes == stop_after:
                return reached
            value = answers.get(q.id, "")
            if q.kind == "text":
                if value:
                    await self._push(user, user.send_text(value))
                else:
                    await self._push(user, user.press("Skip"))
            elif q.kind == "ward":
                await self._push(user, user.press(value))
            else:
                label = next(o.label for o in q.options if o.value == value)
                await self._push(user, user.press(label))
            pushes += 1
        await self.fake.wait_text(user, "Please check", STEP_TIMEOUT)
        reached.append("review")
        if pushes == stop_after:
            return reached
        await self._push(user, user.press("Submit"))
        await self.fake.wait_text(user, "has been submitted", STEP_TIMEOUT)
        reached.append("submitted")
        return reached

    async def run(
        self, first_id: int, count: int, wards: list[str], stop_after: int | None = None
    ) -> dict[str, Any]:
        """All reporters at once; latency = push of an update -> first reply call to the chat.
        ``stop_after``: each reporter stops after that many answered updates (``reached``: the
        steps each reached, by chat id)."""
        users = [self.fake.user(first_id + i, first_name=f"R{i}") for i in range(count)]
        self.fake.calls.clear()
        self.pushed.clear()
        started = time.monotonic()
        results = await asyncio.gather(
            *(self.reporter(u, wards[i % len(wards)], i, stop_after) for i, u in enumerate(users)),
            return_exceptions=True,
        )
        finished = time.monotonic()
        errors = [repr(r)[:300] for r in results if isinstance(r, BaseException)]
        replies: dict[int, list[float]] = {}
        for call in self.fake.calls:
            if call.method in REPLY_METHODS and call.status == 200 and call.chat_id is not None:
                replies.setdefault(call.chat_id, []).append(call.at)
        latencies: list[float] = []
        unanswered = 0
        for chat, t0 in self.pushed:
            later = [t for t in replies.get(chat, []) if t >= t0]
            if later:
                latencies.append(min(later) - t0)
            else:
                unanswered += 1
        return {
            "updates": len(self.pushed),
            "seconds": finished - started,
            "latencies": latencies,
            "unanswered": unanswered,
            "errors": errors[:5],
            "error_count": len(errors),
            "completed": count - len(errors),
            "reached": {
                str(u.chat_id): r
                for u, r in zip(users, results, strict=True)
                if isinstance(r, list)
            }
            if stop_after
            else {},
        }


def fanout_stats(fake: FakeTelegram, first: int, count: int, needle: str) -> dict[str, Any]:
    """Per chat: successful sends whose text contains ``needle`` (duplicates, losses); the
    achieved send rate; the busiest one-second window; 429s answered."""
    per_chat: Counter[int] = Counter()
    times: list[float] = []
    for call in fake.calls:
        if call.method != "sendMessage" or call.status != 200 or call.chat_id is None:
            continue
        times.append(call.at)
        if needle in str(call.params.get("text", "")):
            per_chat[call.chat_id] += 1
    chats = range(first, first + count)
    duplicates = sum(max(0, per_chat[c] - 1) for c in chats)
    lost = sum(1 for c in chats if per_chat[c] == 0)
    times.sort()
    window, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0:
            j += 1
        window = max(window, i - j + 1)
    return {
        "sent_ok": len(times),
        "first_at": times[0] if times else None,
        "last_at": times[-1] if times else None,
        "duplicates": duplicates,
        "lost": lost,
        "throttled": fake.throttled,
        "max_1s_window": window,
        "calls": len(fake.calls),
    }


async def main(options: dict[str, Any]) -> None:
    """Serve commands until ``quit``."""
    fake = BenchFake(
        token=options["token"],
        bot_username="bench_bot",
        global_rate=options.get("global_rate"),
        per_chat_rate=options.get("per_chat_rate"),
    )
    base_url = await fake.start()
    form = load_form(DEFAULT_FORM_PATH)
    driver = Driver(fake, form)
    print(json.dumps({"base_url": base_url}), flush=True)
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            request = json.loads(line)
            cmd = request.pop("cmd")
            answer: dict[str, Any]
            try:
                if cmd == "quit":
                    print(json.dumps({"ok": True}), flush=True)
                    break
                if cmd == "users":
                    for i in range(request["count"]):
                        fake.user(request["first"] + i, first_name=f"R{i}")
                    answer = {"ok": True}
                elif cmd == "fanout_stats":
                    answer = fanout_stats(
                        fake, request["first"], request["count"], request["needle"]
                    )
                elif cmd == "webhook":
                    answer = {"url": fake._webhook_url}
                elif cmd == "webhook_pending":
                    answer = {"pending": fake.webhook_pending}
                elif cmd == "method_count":
                    answer = {"count": len(fake.calls_for(request["method"]))}
                elif cmd == "converse":
                    answer = await driver.run(
                        request["first"],
                        request["count"],
                        request["wards"],
                        request.get("stop_after"),
                    )
                else:
                    answer = {"error": f"unknown command {cmd}"}
            except Exception as exc:  # report, do not die: the worker decides
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(answer), flush=True)
    finally:
        await fake.stop()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
