"""Small durable state (e.g. the Telegram polling offset)."""

from __future__ import annotations

from bot.ports import UnitOfWorkFactory


class StateService:
    """Reads and writes named integers in the database."""

    def __init__(self, uow_factory: UnitOfWorkFactory) -> None:
        self.uow_factory = uow_factory

    async def get_int(self, key: str) -> int | None:
        """The stored value, or None."""
        async with self.uow_factory() as uow:
            value = await uow.state.get(key)
        return int(value) if value is not None else None

    async def set_int(self, key: str, value: int) -> None:
        """Store a value."""
        async with self.uow_factory() as uow:
            await uow.state.set(key, str(value))
            await uow.commit()
