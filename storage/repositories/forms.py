"""Report form versions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.domain import FormVersion
from storage import tables
from storage.repositories.base import _Repo


class SqlFormRepo(_Repo):
    """Form versions."""

    async def get(self, form_id: int) -> FormVersion | None:
        return await self.session.get(FormVersion, form_id)

    async def by_version(self, version: str) -> FormVersion | None:
        stmt = select(FormVersion).where(tables.form_versions.c.version == version)
        return (await self.session.scalars(stmt)).first()

    async def ensure(self, form: FormVersion) -> FormVersion:
        """Store this version unless it is stored already (another process may race us)."""
        existing = await self.by_version(form.version)
        if existing is not None:
            return existing
        try:
            async with self.session.begin_nested():
                self.session.add(form)
            return form
        except IntegrityError:
            stored = await self.by_version(form.version)
            assert stored is not None
            return stored
