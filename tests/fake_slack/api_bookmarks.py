"""bookmarks.* (docs.slack.dev/reference/methods/bookmarks.add ...): links in a channel's header.

Only `type: link` bookmarks; the bot must be in the channel. Link at most 2048 characters and http(s).
"""
from __future__ import annotations

import time

from .web_api import Params, WebApi, method
from .workspace import SlackError

LINK_MAX = 2048


def _channel(api: WebApi, p: Params):
    ref = p.get("channel_id")
    if ref is None:
        raise SlackError("channel_not_found")
    return api.member_channel(ref)


def _link(p: Params) -> str:
    link = p.get("link")
    if link is None:
        return ""
    if len(link) > LINK_MAX or not link.startswith(("http://", "https://")):
        raise SlackError("invalid_link")
    return link


def _find(channel, bookmark_id) -> dict:
    for bookmark in channel.bookmarks:
        if bookmark["id"] == bookmark_id:
            return bookmark
    raise SlackError("not_found")


@method("bookmarks.add")
def bookmarks_add(api: WebApi, p: Params) -> dict:
    channel = _channel(api, p)
    if p.get("type") != "link":
        raise SlackError("invalid_bookmark_type")
    link = _link(p)
    if not link:
        raise SlackError("invalid_link")
    bookmark = {"id": api.ws.ids.new("Bk"), "channel_id": channel.id, "title": p.get("title"),
                "link": link, "emoji": p.get("emoji"), "icon_url": None, "type": "link",
                "entity_id": None, "date_created": int(time.time()), "date_updated": 0,
                "rank": chr(ord("a") + len(channel.bookmarks) % 26), "last_updated_by_user_id": api.caller,
                "last_updated_by_team_id": api.ws.team["id"], "shortcut_id": None, "app_id": api.ws.app_id}
    channel.bookmarks.append(bookmark)
    return {"bookmark": dict(bookmark)}


@method("bookmarks.edit")
def bookmarks_edit(api: WebApi, p: Params) -> dict:
    channel = _channel(api, p)
    bookmark = _find(channel, p.get("bookmark_id"))
    link = _link(p)
    bookmark.update({k: v for k, v in (("title", p.get("title")), ("emoji", p.get("emoji")),
                                       ("link", link or None)) if v is not None})
    bookmark.update(date_updated=int(time.time()), last_updated_by_user_id=api.caller)
    return {"bookmark": dict(bookmark)}


@method("bookmarks.remove")
def bookmarks_remove(api: WebApi, p: Params) -> dict:
    channel = _channel(api, p)
    channel.bookmarks.remove(_find(channel, p.get("bookmark_id")))
    return {}


@method("bookmarks.list")
def bookmarks_list(api: WebApi, p: Params) -> dict:
    channel = api.visible_channel(p.get("channel_id") or "")
    return {"bookmarks": [dict(b) for b in channel.bookmarks]}
