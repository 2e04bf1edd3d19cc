"""People and their invites."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from bot.domain import Invite, Person, Speaker
from bot.ports import AlreadyExists, PersonDetails
from storage import tables
from storage.repositories.base import _Repo

_BATCH = 10_000  # rows per bulk statement: bounded memory, few round trips
_IMPORTED = "slack"  # the platform of the people import's `slack_user_id` column


class SqlPeopleRepo(_Repo):
    """People."""

    async def get(self, person_id: int) -> Person | None:
        return await self.session.get(Person, person_id)

    async def by_email(self, email: str) -> Person | None:
        stmt = select(Person).where(func.lower(tables.people.c.email) == email.lower())
        return (await self.session.scalars(stmt)).first()

    async def by_address(self, platform: str, address: str) -> Person | None:
        params = {"platform": platform, "address": address}
        return (await self.session.scalars(_by_address(), params)).unique().first()

    async def by_chat(self, platform: str, chat: str) -> Person | None:
        a = tables.addresses.c
        stmt = (
            select(Person)
            .join(tables.addresses, a.person_id == tables.people.c.id)
            .where(a.platform == platform, a.chat == chat)
        )
        return (await self.session.scalars(stmt)).first()

    async def speaker(self, platform: str, address: str) -> Speaker | None:
        params = {"platform": platform, "address": address}
        row = (await self.session.execute(_speaker(), params)).first()
        return None if row is None else Speaker(*row)

    async def all(self) -> Sequence[Person]:
        stmt = select(Person).order_by(tables.people.c.name, tables.people.c.id)
        return (await self.session.scalars(stmt)).all()

    async def active_with_role(self, role: str) -> Sequence[Person]:
        p = tables.people.c
        stmt = select(Person).where(p.role == role, p.active.is_(True)).order_by(p.id)
        return (await self.session.scalars(stmt)).all()

    async def add(self, person: Person) -> None:
        self.session.add(person)
        await self.session.flush()

    async def flush(self) -> None:
        await self.session.flush()

    async def details(self) -> Sequence[PersonDetails]:
        p, a = tables.people.c, tables.addresses.c
        conn = await self.session.connection()
        slack = and_(a.person_id == p.id, a.platform == _IMPORTED)
        rows = await conn.execute(
            select(
                p.id,
                p.email,
                p.name,
                p.role,
                p.organisation,
                p.wards,
                a.address,
                p.active,
                p.channel,
            ).select_from(tables.people.outerjoin(tables.addresses, slack))
        )
        return [
            PersonDetails(
                email=r.email,
                name=r.name,
                role=r.role,
                organisation=r.organisation,
                wards=tuple(r.wards),
                slack_user_id=r.address,
                active=r.active,
                id=r.id,
                channel=r.channel,
            )
            for r in rows
        ]

    async def import_many(
        self, new: Sequence[PersonDetails], changed: Sequence[PersonDetails], now: datetime
    ) -> None:
        # Core executemany, not the ORM unit of work: a statement per batch, not per person
        # (100,000 people in seconds). The session's connection keeps it in the transaction.
        t, at = tables.people, tables.addresses
        conn = await self.session.connection()
        try:
            if changed:
                by_id = t.c.id == bindparam("pid")
                # Two people may swap Slack ids in one import: release the old ids first, so
                # no row briefly holds an id another row still has.
                # Every changed row, not only those given an id: one may give up an id that a
                # row earlier in the file takes.
                await conn.execute(
                    delete(at).where(
                        at.c.person_id == bindparam("pid"), at.c.platform == _IMPORTED
                    ),
                    [{"pid": d.id} for d in changed],
                )
                await conn.execute(
                    update(t)
                    .where(by_id)
                    .values(
                        name=bindparam("b_name"),
                        role=bindparam("b_role"),
                        organisation=bindparam("b_organisation"),
                        wards=bindparam("b_wards", type_=t.c.wards.type),
                        channel=bindparam("b_channel"),
                        active=True,
                        updated_at=now,
                    ),
                    [
                        {
                            "pid": d.id,
                            "b_name": d.name,
                            "b_role": d.role,
                            "b_organisation": d.organisation,
                            "b_wards": list(d.wards),
                            "b_channel": d.channel,
                        }
                        for d in changed
                    ],
                )
                await self._add_imported(conn, [(d.id, d.slack_user_id) for d in changed])
            for start in range(0, len(new), _BATCH):
                batch = new[start : start + _BATCH]
                ids = await conn.execute(
                    insert(t).returning(t.c.id, t.c.email, sort_by_parameter_order=True),
                    [
                        {
                            "name": d.name,
                            "role": d.role,
                            "email": d.email,
                            "organisation": d.organisation,
                            "wards": list(d.wards),
                            "channel": d.channel,
                            "active": True,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for d in batch
                    ],
                )
                made = [r.id for r in ids]
                await self._add_imported(
                    conn, [(pid, d.slack_user_id) for pid, d in zip(made, batch, strict=True)]
                )
        except IntegrityError:
            # `from None`: the driver's error carries the statement's parameters (names,
            # emails), which must not reach a traceback or a log.
            raise AlreadyExists("people: a unique key is taken") from None

    @staticmethod
    async def _add_imported(conn: Any, pairs: Sequence[tuple[int | None, str | None]]) -> None:
        """The import's addresses (its ``slack_user_id`` column): a Slack id is also where its
        direct messages are opened."""
        rows = [
            {"person_id": pid, "platform": _IMPORTED, "address": uid, "chat": uid}
            for pid, uid in pairs
            if uid is not None
        ]
        if rows:
            await conn.execute(insert(tables.addresses), rows)


class SqlInviteRepo(_Repo):
    """Invitations."""

    async def by_hash(self, token_hash: str) -> Invite | None:
        stmt = select(Invite).where(tables.invites.c.token_hash == token_hash)
        return (await self.session.scalars(stmt)).first()

    async def unused_for(self, person_id: int) -> Sequence[Invite]:
        c = tables.invites.c
        stmt = select(Invite).where(
            c.person_id == person_id, c.used_at.is_(None), c.revoked_at.is_(None)
        )
        return (await self.session.scalars(stmt)).all()

    async def add(self, invite: Invite) -> None:
        self.session.add(invite)
        await self.session.flush()


@functools.cache  # built once: every update asks it first
def _by_address() -> Any:
    """The person with an address (``:platform``, ``:address``) and all their addresses, in one
    query."""
    a = tables.addresses.c
    return (
        select(Person)
        .join(tables.addresses, a.person_id == tables.people.c.id)
        .where(a.platform == bindparam("platform"), a.address == bindparam("address"))
        .options(joinedload(Person.addresses))  # type: ignore[arg-type]
    )


def speaker_match() -> tuple[Any, ...]:
    """The join of an address and its person, and the conditions that make them the turn's
    speaker: the address (``:platform``, ``:address``) of an active person."""
    a, p = tables.addresses.c, tables.people.c
    joined = tables.addresses.join(tables.people, p.id == a.person_id)
    platform = bindparam("platform", type_=a.platform.type)
    address = bindparam("address", type_=a.address.type)
    return joined, (a.platform == platform, a.address == address, p.active.is_(True))


def speaker_columns() -> tuple[Any, ...]:
    """A :class:`~bot.domain.Speaker`'s columns, in its fields' order."""
    a, p = tables.addresses.c, tables.people.c
    return p.id, p.role, p.email, a.chat, p.blocked_at


@functools.cache  # built once: every turn without an update id asks it
def _speaker() -> Any:
    joined, match = speaker_match()
    return select(*speaker_columns()).select_from(joined).where(*match)
