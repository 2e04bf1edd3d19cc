"""Block Kit and views checked against Slack's documented limits (``invalid_blocks`` and
``invalid_arguments`` with Slack's error details), and stored as Slack stores them."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from typing import Any

from sim.fake_slack.records import NOT_INTERACTIVE, _SlackError


def _plain_text_errors(obj: Any, limit: int, where: str) -> list[str]:
    if obj is None:
        return []
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [f"must provide an object [json-pointer:{where}]"]
    if len(obj["text"]) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _element_errors(element: dict[str, Any], where: str) -> list[str]:
    errors: list[str] = []
    kind = element.get("type")
    if not isinstance(kind, str):
        return [f"missing required field: type [json-pointer:{where}]"]
    if len(str(element.get("action_id", ""))) > 255:
        errors.append(f"must be less than 256 characters [json-pointer:{where}/action_id]")
    if kind == "button":
        if "text" not in element:
            errors.append(f"missing required field: text [json-pointer:{where}]")
        errors += _plain_text_errors(element.get("text"), 75, f"{where}/text")
        if len(str(element.get("value", ""))) > 2000:
            errors.append(f"must be less than 2001 characters [json-pointer:{where}/value]")
    for i, option in enumerate(element.get("options") or []):
        errors += _plain_text_errors(option.get("text"), 75, f"{where}/options/{i}/text")
        if len(str(option.get("value", ""))) > 150:
            errors.append(
                f"must be less than 151 characters [json-pointer:{where}/options/{i}/value]"
            )
    if len(element.get("options") or []) > 100:
        errors.append(f"must provide at most 100 items [json-pointer:{where}/options]")
    return errors


def _block_errors(block: Any, where: str) -> list[str]:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        return [f"missing required field: type [json-pointer:{where}]"]
    errors: list[str] = []
    kind = block["type"]
    if len(str(block.get("block_id", ""))) > 255:
        errors.append(f"must be less than 256 characters [json-pointer:{where}/block_id]")
    if kind == "section":
        if "text" not in block and "fields" not in block:
            errors.append(f"must provide either text or fields [json-pointer:{where}]")
        text = block.get("text")
        if isinstance(text, dict) and len(str(text.get("text", ""))) > 3000:
            errors.append(f"must be less than 3001 characters [json-pointer:{where}/text/text]")
        if len(block.get("fields") or []) > 10:
            errors.append(f"must provide at most 10 items [json-pointer:{where}/fields]")
    elif kind == "header":
        errors += _plain_text_errors(block.get("text"), 150, f"{where}/text")
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            errors.append(f"must provide 1 to 25 items [json-pointer:{where}/elements]")
    elif kind == "input":
        errors += _plain_text_errors(block.get("label"), 2000, f"{where}/label")
        if not isinstance(block.get("element"), dict):
            errors.append(f"missing required field: element [json-pointer:{where}]")
    seen: set[str] = set()
    elements = list(block.get("elements") or []) if kind == "actions" else []
    for name in ("accessory", "element"):
        if isinstance(block.get(name), dict):
            elements.append(block[name])
    for i, element in enumerate(elements):
        if not isinstance(element, dict):
            errors.append(f"must provide an object [json-pointer:{where}/elements/{i}]")
            continue
        errors += _element_errors(element, f"{where}/elements/{i}")
        action_id = element.get("action_id")
        if action_id is not None and action_id in seen:
            errors.append(f"action_id already exists: {action_id} [json-pointer:{where}]")
        seen.add(str(action_id))
    return errors


def _details(errors: list[str]) -> dict[str, Any]:
    return {"errors": errors, "response_metadata": {"messages": [f"[ERROR] {e}" for e in errors]}}


def _checked_blocks(blocks: Any, limit: int, ids: Iterator[int]) -> list[dict[str, Any]]:
    """Blocks as Slack stores them (missing block_id / action_id filled in), or invalid_blocks."""
    if blocks is None:
        return []
    if not isinstance(blocks, list):
        raise _SlackError("invalid_blocks_format")
    blocks = copy.deepcopy(blocks)
    errors: list[str] = []
    if len(blocks) > limit:
        errors.append(f"must provide at most {limit} items [json-pointer:/blocks]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        errors += _block_errors(block, f"/blocks/{i}")
        if isinstance(block, dict) and "block_id" in block:
            if block["block_id"] in block_ids:
                errors.append(
                    f"block_id already exists: {block['block_id']} [json-pointer:/blocks]"
                )
            block_ids.add(str(block["block_id"]))
    if errors:
        raise _SlackError("invalid_blocks", **_details(errors))
    for block in blocks:
        while "block_id" not in block:
            candidate = _short_id(next(ids), "b")
            if candidate not in block_ids:
                block["block_id"] = candidate
                block_ids.add(candidate)
        for name in ("accessory", "element"):
            element = block.get(name)
            if isinstance(element, dict) and element.get("type") not in NOT_INTERACTIVE:
                element.setdefault("action_id", _short_id(next(ids), "a"))
        if block["type"] == "actions":
            for element in block["elements"]:
                element.setdefault("action_id", _short_id(next(ids), "a"))
    return blocks


def _short_id(n: int, salt: str) -> str:
    """A short opaque id like Slack's generated block_ids ("Xk3=")."""
    return hashlib.sha256(f"{salt}{n}".encode()).hexdigest()[:5]


def _view_errors(view: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    if not isinstance(view.get("blocks"), list):
        return ["missing required field: blocks [json-pointer:/view]"]
    if view["type"] == "modal":
        if "title" not in view:
            errors.append("missing required field: title [json-pointer:/view]")
        errors += _plain_text_errors(view.get("title"), 24, "/view/title")
        errors += _plain_text_errors(view.get("submit"), 24, "/view/submit")
        errors += _plain_text_errors(view.get("close"), 24, "/view/close")
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view["blocks"])
        if has_input and "submit" not in view:
            errors.append("submit is required when an input block is present [json-pointer:/view]")
    if len(str(view.get("private_metadata", ""))) > 3000:
        errors.append("must be less than 3001 characters [json-pointer:/view/private_metadata]")
    if len(str(view.get("callback_id", ""))) > 255:
        errors.append("must be less than 256 characters [json-pointer:/view/callback_id]")
    return errors
