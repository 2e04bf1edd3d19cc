"""How the fake Slack reads a request's parameters, as Slack does: the query string plus a JSON,
urlencoded or multipart body, with JSON-encoded fields decoded."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sim.fake_slack.records import JSON_FIELDS, _SlackError


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query string plus JSON, urlencoded or multipart body, JSON-encoded fields decoded."""
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _SlackError("invalid_json") from None
            if not isinstance(body, dict):
                raise _SlackError("invalid_json")
            params.update(body)
        else:
            params.update(await _form(request))
    for key in JSON_FIELDS:
        value = params.get(key)
        if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
            try:
                params[key] = json.loads(value)
            except ValueError:
                raise _SlackError(
                    "invalid_blocks_format" if key == "blocks" else "invalid_arguments"
                ) from None
    return params


async def _form(request: web.Request) -> dict[str, Any]:
    """Fields of a urlencoded or multipart body (uploaded files as bytes)."""
    fields: dict[str, Any] = {}
    for key, value in (await request.post()).items():
        fields[key] = value.file.read() if isinstance(value, web.FileField) else value
    return fields
