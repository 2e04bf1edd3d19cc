"""The core never names a platform: no ``"telegram"`` or ``"slack"`` in its code.

Which platform a message goes to is data (a person's address, an outbox row's channel) or comes
from the configuration, whose format names the platforms (``bot.config``: ``TEAMS_PLATFORM``,
``PLATFORM_NAMES``). The composition roots (``bot.app``, ``bot.runtime``) and the command line
wire the platforms in and may name them. Docstrings and comments may describe them.
"""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).resolve().parents[1] / "bot"
ALLOWED = {"config", "cli", "runtime.py", "app.py"}  # the wiring and the config format
PLATFORMS = {"telegram", "slack"}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def platform_literals(path: Path) -> list[str]:
    """``line: 'literal'`` for every string constant in ``path`` (docstrings aside) that is a
    platform's name or says one as a word (a log line, a text saying "Slack")."""
    tree = ast.parse(path.read_text(), str(path))
    docs = _docstrings(tree)
    return [
        f"{node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docs
        and {w.strip(".,:;'\"()").lower() for w in node.value.split()} & PLATFORMS
    ]


def test_the_core_names_no_platform() -> None:
    found = [
        f"{path.relative_to(BOT.parent)}:{hit}"
        for path in sorted(BOT.rglob("*.py"))
        if path.relative_to(BOT).parts[0] not in ALLOWED
        for hit in platform_literals(path)
    ]
    assert found == []


def test_the_check_finds_a_platform_named_in_code(tmp_path: Path) -> None:
    code = tmp_path / "x.py"
    code.write_text(
        '"""Posts to Slack."""\n\nCHANNEL = "slack"\nlog = "refused telegram user %s"\n'
    )
    assert platform_literals(code) == ["3: 'slack'", "4: 'refused telegram user %s'"]
