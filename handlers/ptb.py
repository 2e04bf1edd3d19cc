"""python-telegram-bot, imported without its Telegram Passport support.

``import telegram`` imports ``cryptography`` (about 9 MiB resident, for as long as the process
runs) whenever it is installed, for Telegram Passport alone (``telegram/_bot.py`` and
``telegram/_passport/credentials.py``, each in ``try: ... except ImportError``). We use no
Passport, and PTB offers no switch for it (22.x); we need cryptography only for the Fernet
columns, and only when an encryption key is configured (``storage/encryption.py`` imports it
then). So the service's first ``import telegram`` runs with cryptography hidden: PTB takes the
branch it takes when cryptography is not installed (``CRYPTO_INSTALLED = False``: Passport
decryption raises a RuntimeError naming the missing extra; everything else is the same code),
and cryptography is importable again straight after. tests/test_startup_imports.py checks both.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator

#: PTB imports it only for Telegram Passport.
PASSPORT_ONLY = "cryptography"


@contextlib.contextmanager
def _hidden(name: str) -> Iterator[None]:
    """While inside, importing ``name`` or any of its submodules raises ModuleNotFoundError (a
    ``None`` in ``sys.modules``: the import system's documented way to stop an import)."""
    if name in sys.modules:  # loaded already (an encryption key, say): nothing left to save
        yield
        return
    sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if sys.modules.get(name, ...) is None:
            del sys.modules[name]


def import_telegram() -> None:
    """Import ``telegram`` and ``telegram.ext`` without Passport, unless already imported. Call
    it before anything else imports telegram (``tensionbot run`` does, first thing)."""
    if "telegram" in sys.modules:
        return
    with _hidden(PASSPORT_ONLY):
        importlib.import_module("telegram")
        importlib.import_module("telegram.ext")
