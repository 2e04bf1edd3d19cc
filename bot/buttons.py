"""A typed, versioned codec for button payloads.

Telegram callback data is at most 64 bytes; Slack button values at most 2,000 characters. A
payload is ``"<version>.<kind>.<target>.<seq>.<value>"`` with integers only, so it is short and
every field is validated on the way in. Anything that does not decode is treated as forged.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

CODEC_VERSION = "1"
MAX_LEN = 64


class Kind(StrEnum):
    """What a button does."""

    START = "s"  # start the return for campaign <target>
    NIL = "n"  # nil return for campaign <target>
    ANSWER = "a"  # choose option <value> of the current question of conversation <target>
    SKIP = "k"  # skip an optional question
    BACK = "b"
    REVIEW_SUBMIT = "u"
    REVIEW_EDIT = "e"  # open the list of answers to edit
    EDIT_FIELD = "f"  # edit question number <value>
    ADD_ANOTHER = "m"
    CANCEL = "x"
    ACK = "A"  # officer: acknowledge action <target> at version <seq>
    UPDATE = "U"  # officer: add an update (opens a form)
    CLOSE = "C"  # officer: resolve or close (opens a form)
    REASSIGN = "R"  # officer: pass to another team (opens a form)
    RECATEGORISE = "G"  # officer: correct the category (opens a form); the report is re-routed
    STILL = "P"  # reporter: action <target> is still a problem
    SORTED = "Q"  # reporter: action <target> is sorted now
    PACT_RECORD = "M"  # chair: record PACT meeting <target>
    PACT_CANCELLED = "N"  # chair: PACT meeting <target> did not take place
    PACT_PICK = "T"  # chair: choice <value> at the current step of PACT recording <target>
    PACT_REPORT_BACK = "B"  # owner team: report back on PACT priority <target> (opens a form)
    WARD = "W"  # reporter: change the draft's ward to ward number <value> (conversation <target>)


class BadPayload(ValueError):
    """The payload is not one we made."""


@dataclass(frozen=True)
class ButtonAction:
    """A decoded button payload."""

    kind: Kind
    target: int  # a campaign id (START, NIL) or a conversation id
    seq: int = 0
    value: int = 0

    def encode(self) -> str:
        """The compact string form."""
        data = f"{CODEC_VERSION}.{self.kind.value}.{self.target}.{self.seq}.{self.value}"
        if len(data.encode()) > MAX_LEN:  # pragma: no cover - ints keep it far below
            raise ValueError("button payload too long")
        return data

    @classmethod
    def decode(cls, data: str) -> ButtonAction:
        """Parse a payload; raise :class:`BadPayload` for anything malformed."""
        if not isinstance(data, str) or len(data) > MAX_LEN:
            raise BadPayload("payload too long")
        parts = data.split(".")
        if len(parts) != 5 or parts[0] != CODEC_VERSION:
            raise BadPayload("unknown payload version")
        # Only the canonical digits encode() writes: int() would also take "+1", " 1", "01",
        # "1_0" and non-ASCII digits, which are not payloads we made.
        if not all(p.isascii() and p.isdigit() and (p == "0" or p[0] != "0") for p in parts[2:]):
            raise BadPayload("malformed payload")
        try:
            kind = Kind(parts[1])
            target, seq, value = (int(p) for p in parts[2:])
        except ValueError as exc:
            raise BadPayload("malformed payload") from exc
        if min(target, seq, value) < 0 or max(target, seq, value) > 2**53:
            raise BadPayload("payload out of range")
        return cls(kind=kind, target=target, seq=seq, value=value)
