"""Every Slack Web API call of the plugin, in one place: clear errors, cached look-ups, no tokens in logs."""
from __future__ import annotations

import logging
import threading
import time

from slack_sdk.errors import SlackApiError, SlackClientError

log = logging.getLogger(__name__)

LOOKUP_TTL = 600.0  # seconds a user or channel look-up is trusted
EXPLAIN = {
    "not_in_channel": "I am not in that channel; invite me with /invite",
    "channel_not_found": "I cannot see that channel",
    "is_archived": "that channel is archived",
    "missing_scope": "the Slack app lacks a permission (see slack-app-manifest.yml)",
    "ratelimited": "Slack is rate-limiting us; try again in a minute",
    "expired_trigger_id": "the form took too long to open; try again",
    "name_taken": "that channel name is taken",
    "invalid_auth": "the Slack token is not valid",
}


class SlackError(Exception):
    """A Slack call failed; the message is fit to show to people (no tokens, no stack traces)."""

    def __init__(self, method: str, code: str):
        self.method, self.code = method, code
        super().__init__(f"Slack refused {method}: {EXPLAIN.get(code, code)}")


class SlackGateway:
    def __init__(self, client, clock=time.monotonic):
        self._client = client
        self._clock = clock
        self._cache: dict[tuple, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def call(self, method: str, **params) -> dict:
        if not _wants_json(method):
            params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()}
        try:
            response = self._client.api_call(method, json=params) if _wants_json(method) \
                else self._client.api_call(method, data=params)
        except SlackApiError as exc:
            code = (exc.response.data or {}).get("error", "error") if exc.response is not None else "error"
            raise SlackError(method, code) from None
        except (SlackClientError, OSError) as exc:
            raise SlackError(method, type(exc).__name__) from None
        return response.data if hasattr(response, "data") else response

    # -- messages -----------------------------------------------------------------------------------
    def post(self, channel: str, text: str, blocks: list | None = None, thread_ts: str | None = None) -> str:
        params = dict(channel=channel, text=text, unfurl_links=False, unfurl_media=False)
        if blocks:
            params["blocks"] = blocks
        if thread_ts:
            params["thread_ts"] = thread_ts
        return self.call("chat.postMessage", **params)["ts"]

    def update(self, channel: str, ts: str, text: str, blocks: list | None = None) -> None:
        self.call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks or [])

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        self.call("chat.postEphemeral", channel=channel, user=user, text=text)

    def dm(self, user: str, text: str, blocks: list | None = None) -> tuple[str, str]:
        channel = self.call("conversations.open", users=user)["channel"]["id"]
        return channel, self.post(channel, text, blocks)

    def react(self, channel: str, ts: str, name: str) -> None:
        try:
            self.call("reactions.add", channel=channel, timestamp=ts, name=name)
        except SlackError as exc:
            if exc.code != "already_reacted":
                raise

    def permalink(self, channel: str, ts: str) -> str | None:
        try:
            return self.call("chat.getPermalink", channel=channel, message_ts=ts).get("permalink")
        except SlackError as exc:
            log.warning("No permalink for %s/%s: %s", channel, ts, exc.code)
            return None

    def message(self, channel: str, ts: str) -> dict | None:
        data = self.call("conversations.history", channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1)
        return next(iter(data.get("messages") or []), None)

    # -- views --------------------------------------------------------------------------------------
    def open_view(self, trigger_id: str, view: dict) -> str:
        return self.call("views.open", trigger_id=trigger_id, view=view)["view"]["id"]

    # -- channels -----------------------------------------------------------------------------------
    def channel_id(self, name: str) -> str | None:
        """The id of the channel called `name` (archived ones included), cached."""
        name = name.lstrip("#")
        found = self._cached(("channel", name))
        if found:
            return found
        cursor = None
        while True:
            params = dict(types="public_channel,private_channel", limit=1000, exclude_archived=False)
            if cursor:
                params["cursor"] = cursor
            data = self.call("conversations.list", **params)
            for channel in data.get("channels", []):
                self._remember(("channel", channel["name"]), channel["id"])
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                break
        return self._cached(("channel", name))

    def create_channel(self, name: str) -> str:
        channel = self.call("conversations.create", name=name, is_private=False)["channel"]
        self._remember(("channel", channel["name"]), channel["id"])
        return channel["id"]

    def join(self, channel: str) -> None:
        self.call("conversations.join", channel=channel)

    def invite(self, channel: str, users: list[str]) -> None:
        users = [u for u in dict.fromkeys(users) if u and u[:1] in "UW"]
        if not users:
            return
        try:
            self.call("conversations.invite", channel=channel, users=",".join(users))
        except SlackError as exc:
            if exc.code not in ("already_in_channel", "cant_invite_self"):
                raise

    def set_topic(self, channel: str, topic: str) -> None:
        self.call("conversations.setTopic", channel=channel, topic=topic[:250])

    def archive(self, channel: str) -> None:
        try:
            self.call("conversations.archive", channel=channel)
        except SlackError as exc:
            if exc.code != "already_archived":
                raise

    def unarchive(self, channel: str) -> None:
        try:
            self.call("conversations.unarchive", channel=channel)
        except SlackError as exc:
            if exc.code != "not_archived":
                raise

    # -- people -------------------------------------------------------------------------------------
    def user_name(self, user: str) -> str:
        found = self._cached(("user", user))
        if found is None:
            try:
                profile = self.call("users.info", user=user)["user"]
                found = (profile.get("profile") or {}).get("display_name") or profile.get("real_name") \
                    or profile.get("name") or user
            except SlackError:
                found = user
            self._remember(("user", user), found)
        return found

    # -- cache --------------------------------------------------------------------------------------
    def _cached(self, key: tuple):
        with self._lock:
            hit = self._cache.get(key)
        if hit and self._clock() - hit[0] < LOOKUP_TTL:
            return hit[1]
        return None

    def _remember(self, key: tuple, value) -> None:
        with self._lock:
            self._cache[key] = (self._clock(), value)


def _wants_json(method: str) -> bool:
    return method in ("chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "views.update",
                      "views.push")
