"""The fast path for conversational replies: sent by the process that handled the update, right
after its commit, not by a later pass of the dispatcher.

A reply is queued in the same transaction as the update's other effects, already claimed by this
process (``sending``, with the dispatcher's lease), and handed to
:meth:`~bot.delivery.outbox.OutboxDispatcher.send_now` once the transaction has committed: the
same rate limits (per chat and global), the same 429 pause and the same recorder as every
other send. The outbox row is the reply's record and its recovery: if the process dies before
the result is recorded, the lease runs out and the dispatcher's recovery sends the reply again
(replies are at least once, as they always were). A reply that would overtake an earlier message
to the same chat still waiting or being sent is queued ``pending`` instead, for the dispatcher.

Until a dispatcher is attached (the CLI, a process that does not send) there is no fast path:
replies are queued ``pending`` and the dispatcher is woken as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.clock import Clock
from bot.domain import OutboxMessage


class FastSender(Protocol):
    """What the fast path needs of the dispatcher (:class:`~bot.delivery.outbox.OutboxDispatcher`)."""

    clock: Clock  # real time: leases are compared with it by recovery
    lease: timedelta

    async def send_now(
        self, rows: Sequence[OutboxMessage], after: asyncio.Future[Any] | None = None
    ) -> None: ...


class DirectReplies:
    """The hand-off from a conversation turn to this process's dispatcher.

    The sends run as tasks of their own, so neither the update's acknowledgement nor the next
    update (polling takes them one by one) waits for a rate limit or for the platform. One
    chat's replies go out in order: a turn's replies queued while earlier ones to the same chat
    are still in this process's hands are sent after them (:meth:`in_flight` names those rows,
    so that queuing does not see them as "waiting" and leave the new ones to the dispatcher).
    """

    def __init__(self) -> None:
        self._sender: FastSender | None = None
        self._chats: dict[tuple[str, str], asyncio.Task[None]] = {}  # each chat's last send
        self._ids: dict[tuple[str, str], set[int]] = {}  # rows each chat has in flight here
        self._tasks: set[asyncio.Task[None]] = set()

    def attach(self, sender: FastSender) -> None:
        """Send replies through ``sender`` from now on (the runtime, once it has built the
        dispatcher)."""
        self._sender = sender

    def lease_until(self) -> datetime | None:
        """Until when a reply queued now is claimed by this process; None: no fast path (queue
        it ``pending`` for the dispatcher)."""
        if self._sender is None:
            return None
        return self._sender.clock.now() + self._sender.lease

    def in_flight(self, channel: str, recipient: str) -> list[int]:
        """The rows to this chat that this process holds and has not finished sending."""
        return sorted(self._ids.get((channel, recipient), ()))

    def send(self, rows: Sequence[OutboxMessage]) -> None:
        """Start sending the claimed ``rows`` (one chat's, after their transaction has
        committed), after this process's earlier sends to the same chat."""
        if not rows or self._sender is None:
            return
        chat = (rows[0].channel, rows[0].recipient)
        ids = self._ids.setdefault(chat, set())
        ids.update(r.id for r in rows if r.id is not None)
        task = asyncio.create_task(self._send_after(self._chats.get(chat), chat, rows))
        self._chats[chat] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_after(
        self,
        previous: asyncio.Task[None] | None,
        chat: tuple[str, str],
        rows: Sequence[OutboxMessage],
    ) -> None:
        assert self._sender is not None
        try:
            await self._sender.send_now(rows, after=previous)
        finally:
            ids = self._ids.get(chat)
            if ids is not None:
                ids.difference_update(r.id for r in rows)
                if not ids:
                    del self._ids[chat]
            if self._chats.get(chat) is asyncio.current_task():
                del self._chats[chat]

    async def drain(self) -> None:
        """Wait for every send started here (stopping: after the last update was taken)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
