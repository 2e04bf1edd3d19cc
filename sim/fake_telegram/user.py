"""The simulated person: types, taps buttons, shares a location, blocks the bot, and waits for
what the bot says, all through the fake server as a phone would."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sim.fake_telegram.records import SentMessage

if TYPE_CHECKING:
    from sim.fake_telegram.server import FakeTelegram


class SimUser:
    """A simulated person in a private chat with the bot."""

    def __init__(
        self, fake: FakeTelegram, user_id: int, first_name: str, username: str | None
    ) -> None:
        self.fake = fake
        self.user_id = user_id
        self.chat_id = user_id
        self.first_name = first_name
        self.username = username
        self._message_ids = itertools.count(1_000_000)
        self._sent: list[str] = []  # what the person typed, for the transcript

    async def _push(self, update: dict[str, Any]) -> None:
        # Writing to a bot means the person has (un)blocked it: they can be reached again.
        chat = self.fake._chats.get(self.chat_id)
        if chat is not None:
            chat.blocked = False
        await self.fake.push_update(update)

    def _user_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            data["username"] = self.username
        return data

    def _message(self, **content: Any) -> dict[str, Any]:
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": self.chat_id, "type": "private", "first_name": self.first_name},
            "from": self._user_json(),
            **content,
        }

    async def send_text(self, text: str) -> None:
        """Type and send a message."""
        self._sent.append(text if len(text) < 200 else text[:200] + "…")
        content: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            length = len(text.split()[0])
            content["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        await self._push({"message": self._message(**content)})

    async def send_command(self, command: str, args: str = "") -> None:
        """Send ``/command args``."""
        await self.send_text(f"{command} {args}".strip())

    async def send_photo(self) -> None:
        """Send a photo."""
        self._sent.append("[photo]")
        await self._push(
            {
                "message": self._message(
                    photo=[{"file_id": "AgAD", "file_unique_id": "AQAD", "width": 90, "height": 90}]
                )
            }
        )

    async def send_sticker(self) -> None:
        """Send a sticker."""
        self._sent.append("[sticker]")
        await self._push(
            {
                "message": self._message(
                    sticker={
                        "file_id": "CAAD",
                        "file_unique_id": "AgAD",
                        "type": "regular",
                        "width": 512,
                        "height": 512,
                        "is_animated": False,
                        "is_video": False,
                    }
                )
            }
        )

    async def send_location(self, latitude: float, longitude: float) -> None:
        """Share a location (the paperclip's Location, as a phone sends it)."""
        self._sent.append("[location]")
        await self._push(
            {
                "message": self._message(
                    location={
                        "latitude": latitude,
                        "longitude": longitude,
                        "horizontal_accuracy": 12.5,
                    }
                )
            }
        )

    async def block_bot(self) -> None:
        """Block the bot (Telegram's "Stop and block bot"): later sends to the chat get 403, and
        the bot gets a ``my_chat_member`` update (new status ``kicked``) if it asked for that
        kind of update."""
        self.fake._chat(self.chat_id).blocked = True
        self._sent.append("[blocked the bot]")
        await self.fake.push_update(self._member_update("member", "kicked"))

    async def unblock_bot(self) -> None:
        """Unblock the bot: sends reach the chat again, and the bot gets a ``my_chat_member``
        update (new status ``member``) if it asked for that kind of update."""
        self.fake._chat(self.chat_id).blocked = False
        self._sent.append("[unblocked the bot]")
        await self.fake.push_update(self._member_update("kicked", "member"))

    def _member_update(self, old: str, new: str) -> dict[str, Any]:
        bot = self.fake._bot_user()

        def member(status: str) -> dict[str, Any]:
            # A banned member always carries until_date (0: for ever), as the Bot API sends.
            return {
                "user": bot,
                "status": status,
                **({"until_date": 0} if status == "kicked" else {}),
            }

        return {
            "my_chat_member": {
                "chat": {"id": self.chat_id, "type": "private", "first_name": self.first_name},
                "from": self._user_json(),
                "date": int(time.time()),
                "old_chat_member": member(old),
                "new_chat_member": member(new),
            }
        }

    async def send_voice(self) -> None:
        """Send a voice note."""
        self._sent.append("[voice note]")
        await self._push(
            {
                "message": self._message(
                    voice={"file_id": "AwAD", "file_unique_id": "AgAD", "duration": 3}
                )
            }
        )

    @property
    def messages(self) -> list[SentMessage]:
        """The bot's messages in this chat."""
        return self.fake.messages(self.chat_id)

    @property
    def last(self) -> SentMessage | None:
        """The newest bot message."""
        messages = self.messages
        return messages[-1] if messages else None

    async def press(self, label: str, message: SentMessage | None = None) -> str:
        """Tap the button whose text contains ``label`` (an exact match wins) on the newest
        message that has one."""
        candidates = [message] if message is not None else list(reversed(self.messages))
        wanted = label.casefold()
        for m in candidates:
            buttons = m.buttons()
            chosen = next((b for b in buttons if b[0].casefold() == wanted), None) or next(
                (b for b in buttons if wanted in b[0].casefold()), None
            )
            if chosen is None:
                continue
            self._sent.append(f"[taps {chosen[0]}]")
            query_id = f"{self.user_id}-{next(self._message_ids)}"
            await self._push(
                {
                    "callback_query": {
                        "id": query_id,
                        "from": self._user_json(),
                        "chat_instance": str(self.chat_id),
                        "data": chosen[1],
                        "message": self.fake._message_json(m),
                    }
                }
            )
            return query_id
        available = [b[0] for m in candidates[:3] for b in m.buttons()]
        raise AssertionError(
            f"no button {label!r} for {self.first_name}; newest buttons: {available}"
        )

    async def press_data(self, data: str, message: SentMessage | None = None) -> str:
        """Send a button tap with any callback data (a forged or stale payload, or a button
        already taken away), as if on ``message`` (default: the newest). Returns the tap's id."""
        self._sent.append(f"[taps a button with data {data!r}]")
        message = message or self.last
        query_id = f"{self.user_id}-{next(self._message_ids)}"
        await self._push(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self._user_json(),
                    "chat_instance": str(self.chat_id),
                    "data": data,
                    **({"message": self.fake._message_json(message)} if message else {}),
                }
            }
        )
        return query_id

    async def wait_for(
        self, match: str | Callable[[SentMessage], bool], timeout: float = 60.0, after: int = 0
    ) -> SentMessage:
        """Wait until a bot message in this chat matches (``str``: a case-insensitive substring
        of its text or caption). The timeout is generous on purpose: it only bounds a failure,
        a match returns at once, and a busy machine may take seconds. Candidates: the newest message when called, any message sent
        since, any message edited since, and with ``after`` every message from that index on."""
        predicate: Callable[[SentMessage], bool]
        if isinstance(match, str):
            needle = match.casefold()

            def predicate(m: SentMessage) -> bool:
                return needle in (m.text or m.caption or "").casefold()
        else:
            predicate = match
        seen_edits = {m.message_id: m.edits for m in self.messages}
        first = max(0, min(len(self.messages) - 1, after if after else len(self.messages)))

        def found() -> SentMessage | None:
            for i, m in enumerate(self.messages):
                edited = m.edits != seen_edits.get(m.message_id, m.edits)
                if (i >= first or edited) and predicate(m):
                    return m
            return None

        async def wait() -> SentMessage:
            async with self.fake.changed:
                while (m := found()) is None:
                    await self.fake.changed.wait()
                return m

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{self.first_name} never got {match!r} in {timeout}s. "
                f"Chat so far:\n{self.transcript()}"
            ) from None

    def transcript(self) -> str:
        """The chat so far, readable (bot messages as they stand now)."""
        lines = [f"Chat with {self.first_name} (id {self.user_id})"]
        for m in self.messages:
            body = m.text or m.caption or f"[{m.kind}]"
            buttons = " | ".join(b[0] for b in m.buttons())
            lines.append(f"--- bot #{m.message_id}{' (edited)' if m.edits else ''}\n{body}")
            if buttons:
                lines.append(f"    [{buttons}]")
        lines.append("--- what the person sent: " + " / ".join(self._sent))
        return "\n".join(lines)
