"""python-telegram-bot's HTTP requests over aiohttp.

PTB sends through a replaceable :class:`telegram.request.BaseRequest`; its default uses httpx.
The bot already runs aiohttp (the webhook server, Slack), and an aiohttp client costs about a
third of the CPU per message (bench/RESULTS.md: 0.6 ms against 1.9 ms), which is what bounds a
fan-out on a small machine. Only the transport changes: PTB still builds every request and
turns every answer (429s included) into its own results and exceptions.

Except for what a failure says about whether Telegram saw the request, which only the transport
knows: :class:`NotSent` (no connection was made: safe to send again) and :class:`MaybeSent` (it
went out and no answer came: a timeout, a lost connection, a 504 Gateway Timeout, after which
Telegram may well have carried it out). Other answers, 5xx included, go to PTB as before.
"""

from __future__ import annotations

import aiohttp
from telegram._utils.defaultvalue import DefaultValue  # PTB's own sentinel types
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


class NotSent(NetworkError):
    """No connection to Telegram was made: it never saw the request."""


class MaybeSent(TimedOut):
    """The request went out and no answer came in time: Telegram may have carried it out."""


class AiohttpRequest(BaseRequest):
    """A :class:`BaseRequest` on one ``aiohttp.ClientSession`` (a pool of ``pool_size``),
    through ``proxy`` when one is given."""

    def __init__(
        self,
        *,
        pool_size: int = 8,
        read_timeout: float | None = 15.0,
        write_timeout: float | None = 15.0,
        connect_timeout: float | None = 10.0,
        media_write_timeout: float | None = 30.0,
        proxy: str | None = None,
    ) -> None:
        self._pool_size = pool_size
        self._proxy = proxy  # chosen by handlers.network.proxy_for; None: direct
        self._read = read_timeout
        self._write = write_timeout
        self._connect = connect_timeout
        self._media_write = media_write_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout (PTB adds the long-poll timeout to it for getUpdates)."""
        return self._read

    async def initialize(self) -> None:
        """Open the session (idempotent)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        """Close the session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request; (HTTP status, body). Timeouts become TimedOut, other transport
        failures NetworkError, as PTB expects."""
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = (
            request_data.multipart_data if request_data and request_data.contains_files else None
        )
        data: aiohttp.FormData | dict[str, str] | None = None
        if request_data is not None:
            fields = request_data.json_parameters
            if files:
                form = aiohttp.FormData()
                for name, value in fields.items():
                    form.add_field(name, value)
                for name, part in files.items():
                    filename, content, mimetype = part
                    form.add_field(name, content, filename=filename, content_type=mimetype)
                data = form
            else:
                data = fields
        read = self._read if isinstance(read_timeout, DefaultValue) else read_timeout
        connect = self._connect if isinstance(connect_timeout, DefaultValue) else connect_timeout
        write = self._media_write if files else self._write
        if not isinstance(write_timeout, DefaultValue):
            write = write_timeout
        # aiohttp has no separate write timeout: bound the whole request by read + write.
        total = None if read is None or write is None else read + write
        timeout = aiohttp.ClientTimeout(total=total, sock_connect=connect, sock_read=read)
        try:
            async with self._session.request(
                method, url, data=data, timeout=timeout, proxy=self._proxy
            ) as response:
                if response.status == 504:  # Telegram's front end gave up waiting for its back end
                    raise MaybeSent("504 Gateway Timeout")
                return response.status, await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise NotSent(f"aiohttp.{type(exc).__name__}: {exc}") from exc
        except TimeoutError as exc:
            raise MaybeSent("Timed out") from exc
        except aiohttp.ClientError as exc:
            raise MaybeSent(f"aiohttp.{type(exc).__name__}: {exc}") from exc
