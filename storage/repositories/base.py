"""What every repository shares: the session it adds to and flushes (never commits)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession


class _Repo:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
