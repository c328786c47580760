"""Every Slack Web API call of the plugin, in one place: clear errors, cached look-ups, no tokens in logs."""
from __future__ import annotations

import contextlib
import logging
import threading
import time

from slack_sdk.errors import SlackApiError, SlackClientError

from opg_incident_core import telemetry

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


TRANSIENT = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
             "team_added_to_org", "http_5xx", "network"}


class SlackError(Exception):
    """A Slack call failed; the message is fit to show to people (no tokens, no stack traces)."""

    def __init__(self, method: str, code: str, retry_after: float | None = None):
        self.method, self.code, self.retry_after = method, code, retry_after
        super().__init__(f"Slack refused {method}: {EXPLAIN.get(code, code)}")

    @property
    def transient(self) -> bool:
        """Worth trying again later (rate limits, Slack's own errors, the network)."""
        return self.code in TRANSIENT


class SlackGateway:
    def __init__(self, client, clock=time.monotonic):
        self._client = client
        self._clock = clock
        self._cache: dict[tuple, tuple[float, object]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def call(self, method: str, **params) -> dict:
        if not _wants_json(method):
            params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()}
        try:
            response = self._client.api_call(method, json=params) if _wants_json(method) \
                else self._client.api_call(method, data=params)
        except SlackApiError as exc:
            response = exc.response
            data = response.data if response is not None and isinstance(response.data, dict) else {}
            status = getattr(response, "status_code", 200) or 200
            code = data.get("error") or ("http_5xx" if status >= 500 else "error")
            retry_after = None
            if status == 429:
                code = "ratelimited"
                headers = {k.lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
                value = headers.get("retry-after")
                retry_after = float(value[0] if isinstance(value, list) else value or 1)
            telemetry.emit("slack_call", method=method, error=code)
            raise SlackError(method, code, retry_after) from None
        except (SlackClientError, OSError) as exc:
            log.warning("Slack %s: %s", method, type(exc).__name__)
            telemetry.emit("slack_call", method=method, error="network")
            raise SlackError(method, "network") from None
        telemetry.emit("slack_call", method=method, error=None)
        return response.data if hasattr(response, "data") else response

    # -- exactly once -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def once(self, key: str, verify: bool):
        """Posts inside carry `key` as message metadata; with `verify` (an earlier attempt may have got
        through), a post first looks for a message with that key and does not post it again."""
        self._local.key, self._local.verify, self._local.posts = key, verify, 0
        try:
            yield
        finally:
            self._local.key = self._local.verify = None

    def _already_posted(self, channel: str, key: str, thread_ts: str | None) -> str | None:
        if thread_ts:
            data = self.call("conversations.replies", channel=channel, ts=thread_ts, limit=50,
                             include_all_metadata=True)
        else:
            data = self.call("conversations.history", channel=channel, limit=50, include_all_metadata=True)
        for message in data.get("messages") or []:
            if ((message.get("metadata") or {}).get("event_payload") or {}).get("key") == key:
                return message["ts"]
        return None

    # -- messages -----------------------------------------------------------------------------------
    def post(self, channel: str, text: str, blocks: list | None = None, thread_ts: str | None = None) -> str:
        params = dict(channel=channel, text=text, unfurl_links=False, unfurl_media=False)
        if blocks:
            params["blocks"] = blocks
        if thread_ts:
            params["thread_ts"] = thread_ts
        key = getattr(self._local, "key", None)
        if key:
            self._local.posts += 1
            key = f"{key}.{self._local.posts}"  # each post of a step has its own key, in the same order
            if getattr(self._local, "verify", False):
                found = self._already_posted(channel, key, thread_ts)
                if found:
                    log.info("Not posting %s again: it reached Slack before", key)
                    return found
            params["metadata"] = {"event_type": "opg_outbox", "event_payload": {"key": key}}
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
        """Create a channel; if one by that name exists that this bot created (an earlier attempt that
        got through), take it instead of making another."""
        try:
            channel = self.call("conversations.create", name=name, is_private=False)["channel"]
        except SlackError as exc:
            if exc.code != "name_taken":
                raise
            existing = self._own_channel(name)
            if existing is None:
                raise
            return existing
        self._remember(("channel", channel["name"]), channel["id"])
        return channel["id"]

    def _own_channel(self, name: str) -> str | None:
        self._cache.pop(("channel", name), None)
        channel_id = self.channel_id(name)
        if channel_id is None:
            return None
        info = self.call("conversations.info", channel=channel_id)["channel"]
        if info.get("creator") == self.bot_user_id() and not info.get("is_archived"):
            return channel_id
        return None

    def bot_user_id(self) -> str:
        found = self._cached(("auth", "user_id"))
        if found is None:
            found = self.call("auth.test")["user_id"]
            self._remember(("auth", "user_id"), found)
        return found

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
