"""Block Kit as Slack checks it, for messages (chat.*) and views (views.*).

Limits from api.slack.com/reference/block-kit/{blocks,block-elements,composition-objects} and
surfaces/modals: 50 blocks per message (100 in views); section text 1-3000, 10 fields of 2000;
header 150; input label and hint 2000; actions 1-25 elements; context 1-10 elements; block_id and
action_id 255, action_id unique within its block; button text 75, value 2000, url 3000; option text
75, value 150, description 75; 100 options in a select, 10 in checkboxes/radio buttons, 2-5 in an
overflow; placeholders 150; modal title/submit/close 24; private_metadata 3000; callback_id 255.
`plain_text` only (never mrkdwn) in headers, button texts, modal title/submit/close, input labels and
hints, placeholders, option texts of selects and overflows, confirm dialogs' title/confirm/deny.
Unknown block and element types, and elements where a block does not take them, are refused.
Violations: `invalid_blocks` (messages, with `errors` json-pointers) or `invalid_arguments` (views).
More than ~12,000 characters of text in a message's blocks: `msg_blocks_too_long` (Slack's cumulative
limit, not documented; "12,000 text characters with a buffer", slackapi/bolt-js#2509).
"""
from __future__ import annotations

import json
from typing import Any, Optional

from .workspace import SlackError

MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
MESSAGE_TEXT_MAX = 12_000
BLOCK_TYPES = {"section", "divider", "image", "actions", "context", "input", "file", "header", "video",
               "rich_text", "markdown", "table", "context_actions"}
SELECTS = {"static_select", "external_select", "users_select", "conversations_select", "channels_select",
           "multi_static_select", "multi_external_select", "multi_users_select",
           "multi_conversations_select", "multi_channels_select"}
INPUTS = {"plain_text_input", "email_text_input", "url_text_input", "number_input", "rich_text_input",
          "file_input"}
PICKERS = {"datepicker", "timepicker", "datetimepicker"}
CHOICES = {"checkboxes", "radio_buttons"}
IN_ACTIONS = SELECTS | PICKERS | CHOICES | {"button", "overflow", "workflow_button", "plain_text_input",
                                            "rich_text_input", "feedback_buttons", "icon_button"}
IN_INPUT = SELECTS | PICKERS | CHOICES | INPUTS
IN_ACCESSORY = SELECTS | PICKERS | CHOICES | {"button", "overflow", "image", "workflow_button"}
IN_CONTEXT = {"image", "plain_text", "mrkdwn"}


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
    return len(obj.get("text", "")) if isinstance(obj, dict) and isinstance(obj.get("text"), str) else 0


def text_chars(value: Any) -> int:
    """Characters of every `text` string in a block tree."""
    if isinstance(value, list):
        return sum(text_chars(v) for v in value)
    if isinstance(value, dict):
        return sum(len(v) if k == "text" and isinstance(v, str) else text_chars(v) for k, v in value.items())
    return 0


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

    def text(self, pointer: str, obj: Any, limit: int, min_len: int = 1, plain: bool = False) -> None:
        """A text object; `plain`: Slack takes only plain_text here."""
        if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
            self.fail(pointer, "must provide an object")
        elif plain and obj["type"] != "plain_text":
            self.fail(pointer + "/type", "must be plain_text")
        elif _text_len(obj) > limit:
            self.fail(pointer, "failed to match all allowed schemas")
            self.fail(pointer + "/text", f"must be less than {limit + 1} characters")
        elif _text_len(obj) < min_len:
            self.fail(pointer + "/text", f"must be more than {min_len - 1} characters")

    def optional_text(self, pointer: str, obj: Any, limit: int, plain: bool = True) -> None:
        if obj is not None:
            self.text(pointer, obj, limit, plain=plain)

    def count(self, pointer: str, items: Any, low: int, high: int) -> list:
        items = items if isinstance(items, list) else []
        if not low <= len(items) <= high:
            self.fail(pointer, f"must provide between {low} and {high} items")
        return items

    # --- composition objects ----------------------------------------------------------------------
    def option(self, pointer: str, option: Any, plain: bool) -> None:
        if not isinstance(option, dict):
            self.fail(pointer, "must provide an object")
            return
        self.text(pointer + "/text", option.get("text"), 75, plain=plain)
        if not isinstance(option.get("value"), str):
            self.fail(pointer + "/value", "must provide a string")
        self.max_len(pointer + "/value", option.get("value"), 150)
        self.optional_text(pointer + "/description", option.get("description"), 75, plain=plain)
        self.max_len(pointer + "/url", option.get("url"), 3000)

    def options(self, base: str, element: dict, low: int, high: int, plain: bool) -> None:
        """`options` (or `option_groups`) of the element at `base`, and its initial option(s)."""
        groups = element.get("option_groups")
        options = []
        if groups is not None:
            for i, group in enumerate(self.count(base + "/option_groups", groups, 1, 100)):
                group = group if isinstance(group, dict) else {}
                self.text(f"{base}/option_groups/{i}/label", group.get("label"), 75, plain=True)
                for j, option in enumerate(self.count(f"{base}/option_groups/{i}/options",
                                                      group.get("options"), 1, 100)):
                    self.option(f"{base}/option_groups/{i}/options/{j}", option, plain)
                    options.append(option)
        else:
            options = self.count(base + "/options", element.get("options"), low, high)
            for i, option in enumerate(options):
                self.option(f"{base}/options/{i}", option, plain)
        values = [o.get("value") for o in options if isinstance(o, dict)]
        for key in ("initial_option", "initial_options"):
            initial = element.get(key)
            chosen = initial if isinstance(initial, list) else [initial] if initial is not None else []
            for item in chosen:
                if not isinstance(item, dict) or item.get("value") not in values:
                    self.fail(f"{base}/{key}", "must match one of the options")

    def confirm(self, pointer: str, confirm: Any) -> None:
        if confirm is None:
            return
        confirm = confirm if isinstance(confirm, dict) else {}
        self.text(pointer + "/title", confirm.get("title"), 100, plain=True)
        self.text(pointer + "/text", confirm.get("text"), 300)
        self.text(pointer + "/confirm", confirm.get("confirm"), 30, plain=True)
        self.text(pointer + "/deny", confirm.get("deny"), 30, plain=True)

    # --- elements ---------------------------------------------------------------------------------
    def element(self, pointer: str, element: Any, allowed: set, action_ids: set) -> None:
        if not isinstance(element, dict) or "type" not in element:
            self.fail(pointer, "must provide an object")
            return
        kind = element["type"]
        if kind not in allowed:
            self.fail(pointer + "/type", f"unsupported type: {kind}")
            return
        action_id = element.get("action_id")
        self.max_len(pointer + "/action_id", action_id, 255)
        if action_id is not None:
            if action_id in action_ids:
                self.fail(pointer + "/action_id", "action_id must be unique within a block")
            action_ids.add(action_id)
        self.optional_text(pointer + "/placeholder", element.get("placeholder"), 150)
        self.confirm(pointer + "/confirm", element.get("confirm"))
        if kind == "button":
            self.text(pointer + "/text", element.get("text"), 75, plain=True)
            self.max_len(pointer + "/value", element.get("value"), 2000)
            self.max_len(pointer + "/url", element.get("url"), 3000)
            if element.get("style") not in (None, "primary", "danger"):
                self.fail(pointer + "/style", "must be one of primary, danger")
        elif kind in ("static_select", "multi_static_select"):
            self.options(pointer, element, 1, 100, plain=True)
        elif kind in CHOICES:
            self.options(pointer, element, 1, 10, plain=False)
        elif kind == "overflow":
            self.options(pointer, element, 2, 5, plain=True)
        elif kind == "plain_text_input":
            for key in ("min_length", "max_length"):
                if isinstance(element.get(key), int) and not 0 <= element[key] <= 3000:
                    self.fail(f"{pointer}/{key}", "must be between 0 and 3000")
        elif kind == "image":
            self.max_len(pointer + "/image_url", element.get("image_url"), 3000)
            self.max_len(pointer + "/alt_text", element.get("alt_text"), 2000)

    # --- blocks -----------------------------------------------------------------------------------
    def block(self, pointer: str, block: Any, block_ids: set) -> None:
        if not isinstance(block, dict) or "type" not in block:
            self.fail(pointer, "must provide an object")
            return
        kind = block["type"]
        if kind not in BLOCK_TYPES:
            self.fail(pointer + "/type", f"unsupported type: {kind}")
            return
        block_id = block.get("block_id")
        self.max_len(pointer + "/block_id", block_id, 255)
        if block_id is not None:
            if block_id in block_ids:
                self.fail(pointer + "/block_id", "duplicate block_id")
            block_ids.add(block_id)
        action_ids: set = set()
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
                self.element(pointer + "/accessory", block["accessory"], IN_ACCESSORY, action_ids)
        elif kind == "header":
            self.text(pointer + "/text", block.get("text"), 150, plain=True)
        elif kind == "actions":
            for i, element in enumerate(self.count(pointer + "/elements", block.get("elements"), 1, 25)):
                self.element(f"{pointer}/elements/{i}", element, IN_ACTIONS, action_ids)
        elif kind == "input":
            self.text(pointer + "/label", block.get("label"), 2000, plain=True)
            self.optional_text(pointer + "/hint", block.get("hint"), 2000)
            self.element(pointer + "/element", block.get("element"), IN_INPUT, action_ids)
        elif kind == "context":
            for i, element in enumerate(self.count(pointer + "/elements", block.get("elements"), 1, 10)):
                if isinstance(element, dict) and element.get("type") in ("plain_text", "mrkdwn"):
                    self.text(f"{pointer}/elements/{i}", element, 3000)
                else:
                    self.element(f"{pointer}/elements/{i}", element, IN_CONTEXT, action_ids)
        elif kind == "image":
            self.max_len(pointer + "/image_url", block.get("image_url"), 3000)
            self.max_len(pointer + "/alt_text", block.get("alt_text"), 2000)
            self.optional_text(pointer + "/title", block.get("title"), 2000)

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
    """Validated message blocks (None when absent); invalid_blocks / msg_blocks_too_long otherwise."""
    if blocks in (None, "", []):
        return None
    blocks = parse_json(blocks, "blocks")
    checker = BlockChecker("/blocks")
    checker.blocks(blocks, MESSAGE_BLOCKS_MAX)
    if checker.errors:
        raise SlackError("invalid_blocks", errors=checker.errors, response_metadata={
            "messages": [f"[ERROR] {e}" for e in checker.errors]})
    if text_chars(blocks) > MESSAGE_TEXT_MAX:
        raise SlackError("msg_blocks_too_long")
    return blocks


def check_view(view: Any) -> dict:
    """A validated view object; SlackError(invalid_arguments) like Slack's views.* methods."""
    if not view:
        raise SlackError("invalid_arguments", response_metadata={
            "messages": ["[ERROR] missing required field: view"]})
    view = parse_json(view, "view")
    if not isinstance(view, dict):
        raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] must be an object"]})
    checker = BlockChecker("/view")
    if view.get("type") not in ("modal", "home"):
        checker.fail("/type", "must be one of modal, home")
    if view.get("type") == "modal":
        for key in ("title", "submit", "close"):
            if key in view or key == "title":
                checker.text(f"/{key}", view.get(key), 24, plain=True)
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
