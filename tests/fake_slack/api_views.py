"""views.* methods and the modal stack (at most 3 views per user, api.slack.com/surfaces/modals)."""
from __future__ import annotations

import copy
import secrets
import time
from typing import Optional

from .blocks import check_view
from .web_api import Params, WebApi, method
from .workspace import SlackError, View, Workspace

STACK_MAX = 3


def _new_hash() -> str:
    return f"{int(time.time())}.{secrets.token_hex(4)}"


def make_view(ws: Workspace, user: str, spec: dict, previous: Optional[View] = None) -> View:
    """Store a new open view for `user` from the app's view spec."""
    view_id = ws.ids.new("V")
    data = {"id": view_id, "team_id": ws.team["id"], "type": spec.get("type", "modal"),
            "blocks": copy.deepcopy(spec.get("blocks", [])),
            "private_metadata": spec.get("private_metadata", ""),
            "callback_id": spec.get("callback_id", ""), "state": {"values": {}},
            "hash": _new_hash(), "title": spec.get("title"),
            "clear_on_close": bool(spec.get("clear_on_close", False)),
            "notify_on_close": bool(spec.get("notify_on_close", False)),
            "close": spec.get("close"), "submit": spec.get("submit"),
            "previous_view_id": previous.id if previous else None,
            "root_view_id": previous.data["root_view_id"] if previous else view_id,
            "app_id": ws.app_id, "external_id": spec.get("external_id", ""),
            "app_installed_team_id": ws.team["id"], "bot_id": ws.bot_user.bot_id}
    if spec.get("external_id") and any(v.data.get("external_id") == spec["external_id"]
                                       for v in ws.views.values() if v.open):
        raise SlackError("duplicate_external_id")
    view = View(view_id, user, data)
    ws.views[view_id] = view
    return view


def replace_view(view: View, spec: dict) -> None:
    """views.update / response_action "update": new content, same id, new hash."""
    keep = {k: view.data[k] for k in ("id", "team_id", "previous_view_id", "root_view_id",
                                      "app_id", "app_installed_team_id", "bot_id")}
    view.data.update({k: copy.deepcopy(v) for k, v in spec.items()})
    view.data.update(keep, state={"values": {}}, hash=_new_hash())


def push_view(ws: Workspace, user: str, spec: dict) -> View:
    stack = ws.view_stacks.setdefault(user, [])
    if not stack:
        raise SlackError("not_found")
    if len(stack) >= STACK_MAX:
        raise SlackError("push_limit_reached")
    view = make_view(ws, user, spec, previous=ws.views[stack[-1]])
    stack.append(view.id)
    return view


def close_views(ws: Workspace, user: str, view_id: str, clear: bool = False) -> None:
    """Close `view_id` (and everything above it), or the user's whole stack when `clear`."""
    stack = ws.view_stacks.get(user, [])
    if clear or view_id not in stack:
        closing = list(stack) if clear else [view_id]
    else:
        closing = stack[stack.index(view_id):]
    for vid in closing:
        ws.views[vid].open = False
        if vid in stack:
            stack.remove(vid)


@method("views.open")
def views_open(api: WebApi, p: Params) -> dict:
    spec = check_view(p.get("view"))
    trigger = api.ws.use_trigger(p.get("trigger_id"))
    for old in api.ws.view_stacks.get(trigger.user, []):
        api.ws.views[old].open = False
    view = make_view(api.ws, trigger.user, spec)
    api.ws.view_stacks[trigger.user] = [view.id]
    return {"view": copy.deepcopy(view.data)}


@method("views.push")
def views_push(api: WebApi, p: Params) -> dict:
    spec = check_view(p.get("view"))
    trigger = api.ws.use_trigger(p.get("trigger_id"))
    return {"view": copy.deepcopy(push_view(api.ws, trigger.user, spec).data)}


@method("views.update")
def views_update(api: WebApi, p: Params) -> dict:
    spec = check_view(p.get("view"))
    if not (p.get("view_id") or p.get("external_id")):
        raise SlackError("invalid_arguments", response_metadata={
            "messages": ["[ERROR] missing required field: view_id or external_id"]})
    view = api.ws.find_view(p.get("view_id"), p.get("external_id"))
    if p.get("hash") and p.get("hash") != view.data["hash"]:
        raise SlackError("hash_conflict")
    replace_view(view, spec)
    return {"view": copy.deepcopy(view.data)}


@method("views.publish")
def views_publish(api: WebApi, p: Params) -> dict:
    user = api.ws.user(p.require("user_id")).id
    spec = check_view(p.get("view"))
    if spec.get("type") != "home":
        raise SlackError("invalid_arguments", response_metadata={
            "messages": ["[ERROR] view type must be home"]})
    home = next((v for v in api.ws.views.values()
                 if v.user == user and v.data["type"] == "home"), None)
    if home is None:
        home = make_view(api.ws, user, spec)
    else:
        if p.get("hash") and p.get("hash") != home.data["hash"]:
            raise SlackError("hash_conflict")
        replace_view(home, spec)
    return {"view": copy.deepcopy(home.data)}
