"""The Slack app manifest in ``deploy/``, read for the simulated Slack.

The fake Slack's bot token has exactly the scopes the manifest asks for (in the tests and the
demo), so a Web API method whose scope the manifest lacks fails there as it would on a real
workspace installed from that manifest.
"""

from __future__ import annotations

from pathlib import Path

import yaml

MANIFEST_PATH = Path(__file__).resolve().parents[1] / "deploy" / "slack-manifest.yml"


def manifest_scopes(path: Path = MANIFEST_PATH) -> list[str]:
    """The bot token scopes (``oauth_config.scopes.bot``) the manifest asks for, in its order."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    scopes = data["oauth_config"]["scopes"]["bot"]
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ValueError(f"{path}: oauth_config.scopes.bot must be a list of scope names")
    return list(scopes)
