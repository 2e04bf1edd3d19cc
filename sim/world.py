"""A simulated world for the demo and the end-to-end tests: the real bot (services, PTB
Application, outbox dispatcher) wired to a fake clock and a local simulated Telegram server.

Only the network peer is simulated; everything on our side of the HTTP connection is the code
that runs in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.app import Services, build_services, telegram_token
from bot.clock import FakeClock
from bot.config import Config
from bot.people.importing import ImportResult
from bot.runtime import Runtime
from bot.summaries.service import post_scheduled

if TYPE_CHECKING:
    from sim.fake_telegram import FakeTelegram, SimUser


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (for the bot's own HTTP endpoints in tests and the demo)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimWorld:
    """The running bot plus handles to drive it."""

    def __init__(
        self, services: Services, runtime: Runtime, fake: FakeTelegram, clock: FakeClock
    ) -> None:
        self.services = services
        self.runtime = runtime
        self.fake = fake
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def start(
        cls,
        config: Config,
        fake: FakeTelegram,
        clock: FakeClock,
        *,
        lease: timedelta | None = None,
    ) -> SimWorld:
        """Build the services and start the bot (polling the fake server) in the background."""
        services = await build_services(config, clock=clock)
        runtime = Runtime(services, telegram_token(config), run_scheduler=False, lease=lease)
        world = cls(services, runtime, fake, clock)
        world._task = asyncio.create_task(runtime.run(), name="tensionbot")
        # Return once the bot takes requests (its HTTP server listens): a test's first Slack
        # request must not race the server's start. A start that fails raises here.
        serving = asyncio.ensure_future(runtime.serving.wait())
        await asyncio.wait({world._task, serving}, return_when=asyncio.FIRST_COMPLETED)
        if not serving.done():
            serving.cancel()
            world._task.result()  # the start-up error (or the bot stopped before serving)
            raise RuntimeError("the bot stopped before it served")
        return world

    async def stop(self) -> None:
        """Stop the bot and close the database."""
        self.runtime.stop()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.services.close()

    async def import_people(self, csv_text: str) -> ImportResult:
        """Import people exactly as ``tensionbot people import`` does."""
        return await self.services.people.import_csv(csv_text, source="people.csv", actor="sim")

    async def link(self, email: str, user_id: int, first_name: str) -> SimUser:
        """Issue an invitation and have the simulated person tap it (``/start <token>``)."""
        links = await self.services.people.issue_invites(actor="sim", email=email)
        token = links[0].url.split("start=", 1)[1]
        user = self.fake.user(user_id, first_name=first_name)
        await user.send_command("/start", token)
        await user.wait_for("Welcome")
        return user

    async def tick(self) -> None:
        """Run the scheduler's ticks once at the fake clock's time, and let them send."""
        await self.services.campaigns.tick()
        await self.services.crisis.tick()
        await self.services.actions.tick()
        await post_scheduled(self.services.summaries)
        await self.services.pact.tick()
        await self.settle()

    async def settle(self, timeout: float = 60.0) -> None:
        """Wait until every queued message that is due has been sent (or given up); news a
        reporter is held (``outbox.news_hold_seconds``, business time) is not due yet."""
        hold = timedelta(seconds=self.services.config.outbox.news_hold_seconds)

        async def quiet() -> None:
            while True:
                held_before = self.services.clock.now() - hold if hold else None
                async with self.services.db.uow() as uow:
                    busy = await uow.outbox.busy(held_before)
                if busy == 0:
                    return
                await asyncio.sleep(0.02)

        await asyncio.wait_for(quiet(), timeout)
