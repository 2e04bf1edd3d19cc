"""The Slack app manifest asks for exactly the scopes the bot's features need, and the table of
those needs (handlers/slack/scopes.py) covers every Web API method the Slack handlers call."""

from __future__ import annotations

import ast
from pathlib import Path

from handlers.slack import scopes
from sim.fake_slack import METHOD_SCOPES
from sim.manifest import manifest_scopes

HANDLERS = Path(__file__).resolve().parents[1] / "handlers" / "slack"


def _called_methods() -> set[str]:
    """Web API methods called as ``client.<method>(...)`` anywhere in handlers/slack."""
    called: set[str] = set()
    for path in HANDLERS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            owner = node.func.value
            owner_name = (
                owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            )
            if owner_name != "client":
                continue
            name = node.func.attr
            if name in scopes.SDK_METHODS:
                called.update(scopes.SDK_METHODS[name])
            elif "_" in name:
                family, _, rest = name.partition("_")
                called.add(f"{family}.{rest}")
    return called


def test_the_manifest_asks_for_exactly_the_scopes_the_features_need() -> None:
    assert sorted(manifest_scopes()) == sorted(scopes.needed_scopes())


def test_every_web_api_method_the_handlers_call_is_in_the_scope_table() -> None:
    called = _called_methods()
    assert {"chat.postMessage", "files.completeUploadExternal", "views.open"} <= called
    assert called - scopes.methods() == set()


def test_the_table_agrees_with_slack_on_each_methods_scope() -> None:
    for use in scopes.USES:
        if use.method in METHOD_SCOPES:
            assert use.scope == METHOD_SCOPES[use.method], use
