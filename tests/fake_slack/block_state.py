"""Reading and filling in views and messages the app posted: elements by action_id, state.values."""
from __future__ import annotations

from typing import Any, Iterator, Optional


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
