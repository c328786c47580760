"""Block Kit rules the fake enforces, and helpers to read and fill in views.

Limits come from api.slack.com/reference/block-kit/{blocks,block-elements} and surfaces/modals:
50 blocks per message (100 in views), section text 1-3000 chars, 10 fields of 2000, header 150,
25 elements per actions block, button text 75 and value 2000, ids 255, modal title/submit/close 24,
private_metadata 3000, callback_id 255.
"""
from __future__ import annotations

import json
from typing import Any, Iterator, Optional

from .workspace import SlackError

MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100


def parse_json(value: Any, name: str) -> Any:
    """Form-encoded arrays and objects arrive as JSON strings."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise SlackError(f"invalid_{name}_format" if name == "blocks" else "invalid_arguments",
                             response_metadata={"messages": [f"[ERROR] invalid JSON in {name}"]})
    return value


def _text_len(obj: Any) -> int:
    return len(obj.get("text", "")) if isinstance(obj, dict) else 0


class BlockChecker:
    """Collects Block Kit violations as Slack's json-pointer error strings."""

    def __init__(self, root: str):
        self.root = root
        self.errors: list[str] = []

    def fail(self, pointer: str, message: str) -> None:
        self.errors.append(f"{message} [json-pointer:{self.root}{pointer}]")

    def max_len(self, pointer: str, value: Any, limit: int) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.fail(pointer, f"must be less than {limit + 1} characters")

    def text(self, pointer: str, obj: Any, limit: int, min_len: int = 1) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
            self.fail(pointer, "must provide an object")
        elif _text_len(obj) > limit:
            self.fail(pointer, "failed to match all allowed schemas")
            self.fail(pointer + "/text", f"must be less than {limit + 1} characters")
        elif _text_len(obj) < min_len:
            self.fail(pointer + "/text", f"must be more than {min_len - 1} characters")

    def element(self, pointer: str, element: Any) -> None:
        if not isinstance(element, dict) or "type" not in element:
            self.fail(pointer, "must provide an object")
            return
        self.max_len(pointer + "/action_id", element.get("action_id"), 255)
        if element["type"] == "button":
            self.text(pointer + "/text", element.get("text"), 75)
            self.max_len(pointer + "/value", element.get("value"), 2000)

    def block(self, pointer: str, block: Any, block_ids: set) -> None:
        if not isinstance(block, dict) or "type" not in block:
            self.fail(pointer, "must provide an object")
            return
        block_id = block.get("block_id")
        self.max_len(pointer + "/block_id", block_id, 255)
        if block_id is not None:
            if block_id in block_ids:
                self.fail(pointer + "/block_id", "duplicate block_id")
            block_ids.add(block_id)
        kind = block["type"]
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self.fail(pointer, "must provide either text or fields")
            if "text" in block:
                self.text(pointer + "/text", block["text"], 3000)
            fields = block.get("fields", [])
            if len(fields) > 10:
                self.fail(pointer + "/fields", "must provide no more than 10 items")
            for i, item in enumerate(fields):
                self.text(f"{pointer}/fields/{i}", item, 2000)
            if "accessory" in block:
                self.element(pointer + "/accessory", block["accessory"])
        elif kind == "header":
            self.text(pointer + "/text", block.get("text"), 150)
        elif kind == "actions":
            elements = block.get("elements") or []
            if not 1 <= len(elements) <= 25:
                self.fail(pointer + "/elements", "must provide between 1 and 25 items")
            for i, element in enumerate(elements):
                self.element(f"{pointer}/elements/{i}", element)
        elif kind == "input":
            self.text(pointer + "/label", block.get("label"), 2000)
            self.element(pointer + "/element", block.get("element"))
        elif kind == "context":
            if len(block.get("elements") or []) > 10:
                self.fail(pointer + "/elements", "must provide no more than 10 items")

    def blocks(self, blocks: Any, limit: int) -> None:
        if not isinstance(blocks, list):
            self.fail("", "must provide an array")
            return
        if len(blocks) > limit:
            self.fail("", f"no more than {limit} items allowed")
        block_ids: set = set()
        for i, block in enumerate(blocks):
            self.block(f"/{i}", block, block_ids)


def check_message_blocks(blocks: Any) -> Optional[list]:
    """Validated message blocks (None when absent); SlackError(invalid_blocks) on violations."""
    if blocks in (None, "", []):
        return None
    blocks = parse_json(blocks, "blocks")
    checker = BlockChecker("/blocks")
    checker.blocks(blocks, MESSAGE_BLOCKS_MAX)
    if checker.errors:
        raise SlackError("invalid_blocks", errors=checker.errors, response_metadata={
            "messages": [f"[ERROR] {e}" for e in checker.errors]})
    return blocks


def check_view(view: Any) -> dict:
    """A validated view object; SlackError(invalid_arguments) like Slack's views.* methods."""
    if not view:
        raise SlackError("invalid_arguments", response_metadata={
            "messages": ["[ERROR] missing required field: view"]})
    view = parse_json(view, "view")
    checker = BlockChecker("/view")
    if view.get("type") not in ("modal", "home"):
        checker.fail("/type", "must be one of modal, home")
    if view.get("type") == "modal":
        for key in ("title", "submit", "close"):
            if key in view or key == "title":
                checker.text(f"/{key}", view.get(key), 24)
        if any(b.get("type") == "input" for b in view.get("blocks", []) if isinstance(b, dict)) \
                and "submit" not in view:
            checker.fail("/submit", "must provide submit when view has input blocks")
    checker.max_len("/private_metadata", view.get("private_metadata"), 3000)
    checker.max_len("/callback_id", view.get("callback_id"), 255)
    checker.max_len("/external_id", view.get("external_id"), 255)
    checker.root = "/view/blocks"
    checker.blocks(view.get("blocks", []), VIEW_BLOCKS_MAX)
    if checker.errors:
        raise SlackError("invalid_arguments", response_metadata={
            "messages": [f"[ERROR] {e}" for e in checker.errors]})
    if len(json.dumps(view)) > 250_000:
        raise SlackError("view_too_large")
    return view


def iter_elements(blocks: list) -> Iterator[tuple]:
    """(block, element) for every interactive element in blocks."""
    for block in blocks or []:
        if block.get("type") == "actions":
            for element in block.get("elements", []):
                yield block, element
        elif block.get("type") == "section" and "accessory" in block:
            yield block, block["accessory"]
        elif block.get("type") == "input" and "element" in block:
            yield block, block["element"]


def find_action(blocks: list, action_id: str) -> tuple:
    """(block_id, element) of the element with `action_id`; LookupError when absent."""
    for block, element in iter_elements(blocks):
        if element.get("action_id") == action_id:
            return block.get("block_id", ""), element
    raise LookupError(f"no element with action_id {action_id!r}")


def _option(element: dict, value: str) -> dict:
    options = list(element.get("options", []))
    for group in element.get("option_groups", []):
        options.extend(group.get("options", []))
    for option in options:
        if option.get("value") == value:
            return option
    raise LookupError(f"{element.get('action_id')!r} has no option with value {value!r}")


_SELECTED = {"users_select": "selected_user", "conversations_select": "selected_conversation",
             "channels_select": "selected_channel", "datepicker": "selected_date",
             "timepicker": "selected_time", "multi_users_select": "selected_users",
             "multi_conversations_select": "selected_conversations",
             "multi_channels_select": "selected_channels"}


def state_entry(element: dict, value: Any) -> dict:
    """The state.values entry for `element` holding `value`. A dict value is used as is."""
    kind = element.get("type", "plain_text_input")
    if isinstance(value, dict):
        return {"type": kind, **value}
    if kind in ("static_select", "radio_buttons", "external_select"):
        option = _option(element, value) if value is not None else None
        return {"type": kind, "selected_option": option}
    if kind in ("checkboxes", "multi_static_select"):
        return {"type": kind, "selected_options": [_option(element, v) for v in value or []]}
    if kind in _SELECTED:
        return {"type": kind, _SELECTED[kind]: value}
    return {"type": kind, "value": value}


def _initial(element: dict) -> Any:
    for key in ("initial_value", "initial_user", "initial_conversation", "initial_channel",
                "initial_date", "initial_time", "initial_users", "initial_conversations"):
        if key in element:
            return element[key]
    if "initial_option" in element:
        return element["initial_option"]["value"]
    if "initial_options" in element:
        return [o["value"] for o in element["initial_options"]]
    return None


def fill_state(view: dict, values: Optional[dict]) -> dict:
    """state.values for a submission: every input block, `values` overriding initial values.

    `values` keys may be block_ids or action_ids; a value may be a plain value (text, option value,
    user id, list for multi-selects) or `{action_id: value}` for a block, or a ready state entry.
    """
    values = dict(values or {})
    state: dict = {}
    for block, element in iter_elements(view.get("blocks", [])):
        if block.get("type") != "input":
            continue
        block_id, action_id = block.get("block_id", ""), element.get("action_id", "")
        value = _initial(element)
        if block_id in values:
            given = values.pop(block_id)
            value = given.get(action_id, value) if isinstance(given, dict) and action_id in given \
                else given
        elif action_id in values:
            value = values.pop(action_id)
        state.setdefault(block_id, {})[action_id] = state_entry(element, value)
    if values:
        raise LookupError(f"no input blocks for {sorted(values)} in view {view.get('id')}")
    return {"values": state}
