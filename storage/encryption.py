"""Optional encryption at rest of free-text columns (Fernet, key from the environment).

The key never lives in module state: :func:`attach_cipher` hangs a ``MultiFernet`` on one
engine's dialect object, and the column types below look for it on the ``dialect`` SQLAlchemy
passes to every bind and result conversion. An engine made without a key stores and reads
plaintext as before; an engine with a key writes ciphertext and still reads older plaintext rows,
so encryption can be switched on for an existing database.

Stored form: ``fernet:<token>``. In a JSON column that is a JSON string (the column type does not
change); in a text column it is the text itself.

cryptography is imported only when text is first encrypted or decrypted (:class:`Cipher`): the
column types are in every process's tables, and a process that has not touched an encrypted
value (without a key, or idle) does not hold cryptography (about 7–9 MiB resident).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import JSON, Dialect, Text, TypeDecorator

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

PREFIX = "fernet:"
_ATTR = "tensionbot_cipher"


class EncryptionError(Exception):
    """Encrypted data cannot be read (no key configured, or the wrong key)."""


class Cipher:
    """A ``MultiFernet`` over the keys, made (and cryptography imported) on first use."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = keys
        self._fernet: MultiFernet | None = None

    def _made(self) -> MultiFernet:
        if self._fernet is None:
            from cryptography.fernet import Fernet, MultiFernet  # see the module's docstring

            self._fernet = MultiFernet([Fernet(k.encode()) for k in self._keys])
        return self._fernet

    def encrypt(self, data: bytes) -> bytes:
        """A Fernet token of ``data`` under the first key."""
        return self._made().encrypt(data)

    def decrypt(self, token: bytes) -> bytes:
        """``token``'s data under any of the keys (cryptography's InvalidToken otherwise)."""
        return self._made().decrypt(token)


def make_cipher(keys: str) -> Cipher:
    """A cipher from one key or several separated by commas (the first encrypts; all decrypt, so
    an old key can stay listed while rows are rotated). ValueError for a malformed key, checked
    now as Fernet checks it (32 url-safe base64 bytes), without importing cryptography."""
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        raise ValueError("no key")
    for part in parts:
        try:
            raw = base64.urlsafe_b64decode(part.encode("ascii"))
        except (binascii.Error, UnicodeEncodeError):
            raise ValueError("Fernet key must be 32 url-safe base64-encoded bytes.") from None
        if len(raw) != 32:
            raise ValueError("Fernet key must be 32 url-safe base64-encoded bytes.")
    return Cipher(parts)


def attach_cipher(dialect: Dialect, cipher: Cipher | None) -> None:
    """Make the encrypted column types of this engine (its dialect) use ``cipher``."""
    setattr(dialect, _ATTR, cipher)


def _cipher(dialect: Dialect) -> Cipher | None:
    return cast("Cipher | None", getattr(dialect, _ATTR, None))


def _encrypt(plain: str, dialect: Dialect) -> str:
    cipher = _cipher(dialect)
    if cipher is None or plain == "":
        return plain  # an empty text reveals nothing, and stays comparable in SQL
    return PREFIX + cipher.encrypt(plain.encode()).decode()


def _decrypt(stored: str, dialect: Dialect) -> str:
    cipher = _cipher(dialect)
    if cipher is None:
        raise EncryptionError(
            "the database holds encrypted text but TENSIONBOT_ENCRYPTION_KEY is not set"
        )
    from cryptography.fernet import InvalidToken  # loaded already: the cipher is made of it

    try:
        return cipher.decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise EncryptionError(
            "encrypted text cannot be decrypted with TENSIONBOT_ENCRYPTION_KEY (wrong key?)"
        ) from None


def _is_token(value: str) -> bool:
    return value.startswith(PREFIX + "gAAAAA")


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON column whose value is encrypted (as a JSON string) when the engine has a key."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None or _cipher(dialect) is None:
            return value
        return _encrypt(json.dumps(value, ensure_ascii=False, separators=(",", ":")), dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if isinstance(value, str) and _is_token(value):
            return json.loads(_decrypt(value, dialect))
        return value


class EncryptedText(TypeDecorator[str]):
    """A text column encrypted when the engine has a key (``Text``: ciphertext is longer)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return _encrypt(value, dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        assert isinstance(value, str)
        return _decrypt(value, dialect) if _is_token(value) else value
