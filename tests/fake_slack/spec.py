"""Slack's Web API contract (methods.json, made by make_methods.py from Slack's OpenAPI spec and
docs.slack.dev) and the checks Slack makes before a method runs.

In order, like Slack answers them:
  * a JSON body sent to a method that does not read JSON is not read (docs: "json_input_supported"),
    so its arguments are missing; a token inside a JSON body is not read either (`not_authed`);
  * an argument the method does not have: `invalid_arg_name` (Slack's "argument whose name falls
    outside the bounds of accepted or expected values"). Slack itself ignores well-formed unknown
    names; the fake refuses them, because an argument Slack ignores is the bot's intent silently lost;
  * a JSON array or object where a string is expected: `invalid_array_arg`;
  * a required argument absent: `invalid_arguments` with "[ERROR] missing required field: x"
    (present but empty goes on to the method's own error, e.g. `channel_not_found`);
  * a wrong type (not a boolean, not a number, JSON that does not parse): `invalid_arguments`;
  * a channel name where Slack wants a conversation ID: `channel_not_found` (only chat.postMessage takes
    a name, docs: "an encoded ID or channel name"; issue 13 holds chat.postEphemeral to the ID);
  * a timestamp that is not one: `invalid_ts_latest` / `invalid_ts_oldest` for those arguments.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from .workspace import SlackError

METHODS_FILE = Path(__file__).with_name("methods.json")
NAME_OK = {"chat.postMessage"}  # "can be an encoded ID, or a name"
CONVERSATION_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
TIMESTAMP = re.compile(r"^\d{1,10}(\.\d{1,6})?$")
TIER_PER_MINUTE = {"t1": 1, "t2": 20, "t3": 50, "t4": 100}  # api.slack.com/apis/rate-limits ("+" = at least)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    args: dict
    required: tuple
    bot_scopes: tuple
    user_scopes: tuple
    tier: Optional[str]
    json: bool
    errors: tuple

    def id_args(self) -> list:
        """Arguments that must hold a conversation ID."""
        if self.name in NAME_OK:
            return []
        return [n for n, a in self.args.items() if a.get("subtype") in ("channel", "channel_group")
                or n in ("channel", "channel_id")]


def _load() -> dict:
    with open(METHODS_FILE) as f:
        raw = json.load(f)["methods"]
    return {name: MethodSpec(name, m["args"], tuple(m["required"]), tuple(m["bot_scopes"]),
                             tuple(m["user_scopes"]), m["tier"], m["json"], tuple(m["errors"]))
            for name, m in raw.items()}


SPECS = _load()


def invalid(message: str, pointer: str = "") -> SlackError:
    suffix = f" [json-pointer:/{pointer}]" if pointer else ""
    return SlackError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {message}{suffix}"]})


def _check_type(name: str, kind: str, value: Any, from_json: bool) -> None:
    if kind == "json":
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError:
                raise SlackError("invalid_blocks_format" if name == "blocks" else "invalid_arguments",
                                 response_metadata={"messages": [f"[ERROR] invalid JSON in {name}"]})
        elif not isinstance(value, (list, dict)):
            raise invalid(f"must be a JSON array or object", name)
        return
    if isinstance(value, (list, dict)):
        raise SlackError("invalid_array_arg", response_metadata={
            "messages": [f"[ERROR] {name} must not be an array or object"]})
    if kind == "boolean":
        ok = isinstance(value, bool) or str(value).lower() in ("true", "false", "1", "0")
        if not ok:
            raise invalid(f"{name} must be a boolean", name)
    elif kind == "number":
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+(\.\d+)?", str(value)):
            raise invalid(f"{name} must be a number", name)
    elif kind == "string" and from_json and not isinstance(value, str):
        raise invalid(f"{name} must be a string", name)


def check_call(spec: MethodSpec, params: dict, from_json: bool) -> None:
    """Raise the SlackError Slack would answer for these arguments, before the method runs."""
    for name, value in params.items():
        if name not in spec.args:
            raise SlackError("invalid_arg_name", response_metadata={
                "messages": [f"[ERROR] unknown argument {name!r} for {spec.name}"]})
        if value is None and from_json:
            continue
        _check_type(name, spec.args[name]["type"], value, from_json)
    for name in spec.required:
        if name not in params or params[name] is None:
            raise invalid(f"missing required field: {name}")
    for name in spec.id_args():
        value = params.get(name)
        if isinstance(value, str) and value and not CONVERSATION_ID.match(value):
            raise SlackError("channel_not_found")
    for name in ("latest", "oldest"):
        value = params.get(name)
        if name in spec.args and value not in (None, "") and not TIMESTAMP.match(str(value)):
            raise SlackError(f"invalid_ts_{name}")


def tier_limit(method: str) -> Optional[int]:
    """Calls per minute Slack allows for `method` (None: "Special", handled on its own)."""
    spec = SPECS.get(method)
    return TIER_PER_MINUTE.get(spec.tier) if spec else None
