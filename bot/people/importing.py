"""The people import: a CSV parsed and validated completely, then stored in bulk (keyed by email).

All or nothing. Every problem names its line only: never a name or an email (they are personal
data, and an error message ends up in terminals and logs). The service entry point is
:meth:`bot.people.service.PeopleService.import_csv`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from bot.common import audit
from bot.config import PLATFORM_NAMES
from bot.domain import Role
from bot.ports import AlreadyExists, PersonDetails, UnitOfWork
from bot.wards import unknown_ward

CSV_COLUMNS = ("name", "role", "wards", "organisation", "email", "slack_user_id", "channel")
CHANNELS = PLATFORM_NAMES  # a person's preferred channel (people.channel)
REQUIRED_COLUMNS = frozenset({"name", "role", "wards", "email"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")


class ImportError_(Exception):
    """A CSV import was refused; nothing was imported. ``problems`` name file and line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class ImportResult:
    """What an import did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class ImportRow:
    """One valid row of a people CSV."""

    line: int
    name: str
    role: str
    wards: list[str]
    organisation: str
    email: str
    slack_user_id: str | None
    channel: str | None = None


def parse_csv(text: str, source: str, all_wards: Sequence[str]) -> list[ImportRow]:
    """Validate a people CSV completely (``all_wards``: the partnership's wards); raise with every
    problem found."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    problems: list[str] = []
    missing = REQUIRED_COLUMNS - set(header)
    unknown = set(header) - set(CSV_COLUMNS)
    if missing:
        problems.append(f"{source}: line 1: missing column(s): {', '.join(sorted(missing))}")
    if unknown:
        problems.append(f"{source}: line 1: unknown column(s): {', '.join(sorted(unknown))}")
    if problems:
        raise ImportError_(problems)
    reader.fieldnames = header
    wards = {w.casefold(): w for w in all_wards}
    roles = {r.value for r in Role}
    rows: list[ImportRow] = []
    seen: dict[str, int] = {}
    seen_slack: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        if None in raw:
            problems.append(f"{source}: line {line}: more fields than columns")
            continue
        values = {k: (v or "").strip() for k, v in raw.items()}
        if not any(values.values()):
            continue
        err = f"{source}: line {line}"
        name, role, email = values["name"], values["role"].lower(), values["email"].lower()
        if not name or len(name) > 200:
            problems.append(f"{err}: name must be 1 to 200 characters")
        if role not in roles:
            problems.append(
                f"{err}: role {values['role']!r} is not one of {', '.join(sorted(roles))}"
            )
        # Problems name the line, never the email or the Slack id: personal data.
        if not _EMAIL.match(email) or len(email) > 320:
            problems.append(f"{err}: email is not a valid address")
        elif email in seen:
            problems.append(f"{err}: email repeats line {seen[email]}")
        else:
            seen[email] = line
        ward_list: list[str] = []
        for w in (p.strip() for p in values["wards"].split(";")):
            if not w:
                continue
            if w.casefold() == "all":
                ward_list = list(all_wards)
            elif w.casefold() in wards:
                ward_list.append(wards[w.casefold()])
            else:
                problems.append(f"{err}: {unknown_ward(w, all_wards)}")
        slack = values.get("slack_user_id", "") or None
        if slack is not None and not _SLACK_ID.match(slack):
            problems.append(f"{err}: slack_user_id does not look like a user id (U… or W…)")
        elif slack is not None and slack in seen_slack:
            problems.append(f"{err}: slack_user_id repeats line {seen_slack[slack]}")
        elif slack is not None:
            seen_slack[slack] = line
        channel = values.get("channel", "").lower() or None
        if channel is not None and channel not in CHANNELS:
            problems.append(f"{err}: channel must be one of {', '.join(CHANNELS)} (or empty)")
        if role in ("councillor", "community_leader") and not ward_list:
            problems.append(f"{err}: a {role} needs at least one ward")
        rows.append(
            ImportRow(
                line,
                name,
                role,
                sorted(set(ward_list)),
                values.get("organisation", ""),
                email,
                slack,
                channel,
            )
        )
    if problems:
        raise ImportError_(problems)
    if not rows:
        raise ImportError_([f"{source}: no people in the file"])
    return rows


async def import_rows(
    uow: UnitOfWork, rows: Sequence[ImportRow], *, source: str, actor: str, now: datetime
) -> ImportResult:
    """Create or update people from parsed rows (keyed by email), and audit it, in ``uow``; the
    caller commits.

    One query reads everyone already stored; the new and the changed are then written in bulk,
    so the time grows with the file, not with its square."""
    result = ImportResult()
    stored = {d.email.lower(): d for d in await uow.people.details()}
    check_slack_ids(rows, stored, source)
    new: list[PersonDetails] = []
    changed: list[PersonDetails] = []
    for row in rows:
        wanted = PersonDetails(
            email=row.email,
            name=row.name,
            role=row.role,
            organisation=row.organisation,
            wards=tuple(row.wards),
            slack_user_id=row.slack_user_id,
            channel=row.channel,
        )
        before = stored.get(row.email)
        if before is None:
            new.append(wanted)
        elif replace(before, email=row.email) == replace(wanted, id=before.id):
            result.unchanged += 1  # listed again as they are (and active)
        else:
            changed.append(replace(wanted, id=before.id))
    result.created, result.updated = len(new), len(changed)
    try:
        await uow.people.import_many(new, changed, now)
    except AlreadyExists:
        # Checked above; this is someone stored by another process meanwhile.
        raise ImportError_(
            [f"{source}: a row conflicts with someone stored meanwhile; try again"]
        ) from None
    await audit(
        uow,
        now,
        actor,
        "people.import",
        source,
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
    )
    return result


def check_slack_ids(
    rows: Sequence[ImportRow], stored: Mapping[str, PersonDetails], source: str
) -> None:
    """Refuse a Slack user id that someone stored and not in the file already has (by line
    number only). Ids repeated within the file are refused by :func:`parse_csv`."""
    in_file = {row.email for row in rows}
    holders = {
        d.slack_user_id
        for email, d in stored.items()
        if d.slack_user_id is not None and email not in in_file
    }
    problems = [
        f"{source}: line {row.line}: slack_user_id is already someone else's"
        for row in rows
        if row.slack_user_id is not None and row.slack_user_id in holders
    ]
    if problems:
        raise ImportError_(problems)
