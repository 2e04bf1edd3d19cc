"""The audit log."""

from __future__ import annotations

from bot.domain import AuditEntry
from storage.repositories.base import _Repo


class SqlAuditRepo(_Repo):
    """The audit log (insert only)."""

    async def add(self, entry: AuditEntry) -> None:
        self.session.add(entry)
        await self.session.flush()
