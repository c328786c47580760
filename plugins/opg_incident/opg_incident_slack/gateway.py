"""Every Slack Web API call of the plugin, in one place: clear errors, cached look-ups, no tokens in logs."""
from __future__ import annotations

import contextlib
import logging
import threading
import time

from slack_sdk.errors import SlackApiError, SlackClientError

from opg_incident_core import telemetry

from .errors import EXPLAIN, TRANSIENT, SlackError  # noqa: F401 (re-exported)
from .pace import Pace

log = logging.getLogger(__name__)

LOOKUP_TTL = 600.0  # seconds a user or channel look-up is trusted
MAX_LOOK_BACK_PAGES = 25  # of 200 messages: how far a retried post looks for itself
MAX_PACE_WAIT = 15.0  # longer than this for our own pace: not now (the outbox tries again later)

_counting = threading.local()  # set while call() asks Slack: call() counts that one itself


def backend_call(method: str, error: str | None) -> None:
    """An observer of the backend's Web API client (its `api_observers`): the calls errbot's backend makes on
    its own (users.info, conversations.info... for each message) go to the metrics like ours."""
    if not getattr(_counting, "on", False):
        telemetry.emit("slack_call", method=method, error=error)


JSON_METHODS = frozenset({"chat.postMessage", "chat.update", "chat.postEphemeral", "views.open", "views.update",
                          "views.push"})  # sent as JSON (Block Kit); the rest as a form


class SlackGateway:
    """`user_client`: a client with a person's user token (SLACK_USER_TOKEN), for the one thing Slack lets no
    bot do: unarchive a channel."""

    def __init__(self, client, clock=time.monotonic, *, user_client=None, pace: Pace | None = None):
        self._client = client
        self._user_client = user_client
        self._clock = clock
        self._stopping = threading.Event()
        self.pace = pace or Pace()
        self._cache: dict[tuple, tuple[float, object]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def can_unarchive(self) -> bool:
        return self._user_client is not None

    def _keep_pace(self, method: str, channel) -> None:
        """Wait our turn under Slack's limits (pace.py); a long wait is a rate limit of our own (retried later)."""
        while True:
            wait = self.pace.wait(method, channel if isinstance(channel, str) else None)
            if wait <= 0:
                return
            if wait > MAX_PACE_WAIT or self._stopping.wait(wait):  # a long wait, or the bot is stopping
                telemetry.emit("slack_call", method=method, error="paced")
                raise SlackError(method, "ratelimited", retry_after=wait)

    def stop(self) -> None:
        """The bot stops: a call waiting its turn is refused as rate limited (the outbox keeps its item)."""
        self._stopping.set()

    def call(self, method: str, *, as_user: bool = False, **params) -> dict:
        if not method in JSON_METHODS:
            params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()}
        client = self._user_client if as_user else self._client
        self._keep_pace(method, params.get("channel"))
        _counting.on = True
        try:
            response = client.api_call(method, json=params) if method in JSON_METHODS \
                else client.api_call(method, data=params)
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
        finally:
            _counting.on = False
        telemetry.emit("slack_call", method=method, error=None)
        return response.data if hasattr(response, "data") else response

    # -- exactly once -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def once(self, key: str, verify: bool, since: float | None = None):
        """Posts inside carry `key` as message metadata; with `verify` (an earlier attempt may have got
        through), a post first looks for a message with that key, among all posted since `since` (epoch
        seconds), and does not post it again."""
        self._local.key, self._local.verify, self._local.posts, self._local.since = key, verify, 0, since
        try:
            yield
        finally:
            self._local.key = self._local.verify = self._local.since = None

    def _already_posted(self, channel: str, key: str, thread_ts: str | None) -> str | None:
        """Every message since the item was made, page by page (a busy channel buries it past one page)."""
        since = getattr(self._local, "since", None)
        params = dict(channel=channel, limit=200, include_all_metadata=True)
        if since:
            params["oldest"] = f"{since:.6f}"
        method = "conversations.replies" if thread_ts else "conversations.history"
        if thread_ts:
            params["ts"] = thread_ts
        for _ in range(MAX_LOOK_BACK_PAGES):
            data = self.call(method, **params)
            for message in data.get("messages") or []:
                if ((message.get("metadata") or {}).get("event_payload") or {}).get("key") == key:
                    return message["ts"]
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor or not since:  # without a start, the newest page only
                return None
            params["cursor"] = cursor
        log.warning("Looked through %s pages of %s for %s without finding it: posting it", MAX_LOOK_BACK_PAGES,
                    channel, key)
        return None

    # -- messages -----------------------------------------------------------------------------------
    def post(self, channel: str, text: str, blocks: list | None = None, thread_ts: str | None = None,
             meta: dict | None = None) -> str:
        """`meta`: more of the message's metadata (event_payload), e.g. the messages an answer answers."""
        return self._post(channel, text, blocks, thread_ts, meta)[1]

    def _post(self, channel: str, text: str, blocks: list | None = None, thread_ts: str | None = None,
              meta: dict | None = None) -> tuple[str, str]:
        """(the channel Slack posted in, the ts): a person's id as `channel` posts in their DM with the app."""
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
                    return channel, found
            params["metadata"] = {"event_type": "opg_outbox", "event_payload": {"key": key, **(meta or {})}}
        elif meta:
            params["metadata"] = {"event_type": "opg_outbox", "event_payload": dict(meta)}
        data = self.call("chat.postMessage", **params)
        if channel[:1] in "CG":
            self._remember(("member", channel), True)  # it could post there: it is in it (is_member)
        return data.get("channel") or channel, data["ts"]

    def update(self, channel: str, ts: str, text: str, blocks: list | None = None) -> None:
        self.call("chat.update", channel=channel, ts=ts, text=text, blocks=blocks or [])

    def ephemeral(self, channel: str, user: str, text: str) -> None:
        self.call("chat.postEphemeral", channel=channel, user=user, text=text)

    def respond(self, response_url: str, text: str) -> bool:
        """An ephemeral answer through a slash command's response_url (30 minutes, 5 answers); False if refused."""
        from slack_sdk.webhook import WebhookClient

        if not response_url.startswith(("https://", "http://")):
            return False
        try:
            response = WebhookClient(response_url, timeout=10).send_dict(
                {"response_type": "ephemeral", "replace_original": False, "text": text})
        except Exception as exc:  # noqa: BLE001 - the caller falls back to a direct message
            log.warning("Could not answer through a response_url: %s", type(exc).__name__)
            return False
        return response.status_code == 200

    def dm(self, user: str, text: str, blocks: list | None = None) -> tuple[str, str]:
        """(DM channel, ts): posted to the person's id (no conversations.open, unless a retry must look there first)."""
        channel = self._cached(("dm", user), ttl=None)
        if channel is None and getattr(self._local, "key", None) and getattr(self._local, "verify", False):
            channel = self.dm_channel(user)
        try:
            channel, ts = self._post(channel or user, text, blocks)
        except SlackError as exc:
            if channel or exc.code != "channel_not_found":
                raise
            raise SlackError("chat.postMessage", "user_not_found") from exc  # no such person: so no DM with them
        if channel[:1] == "D":
            self._remember(("dm", user), channel)
        return channel, ts

    def dm_channel(self, user: str) -> str:
        """The direct message channel with `user` (its id never changes: remembered)."""
        found = self._cached(("dm", user), ttl=None)
        if found is None:
            found = self.call("conversations.open", users=user)["channel"]["id"]
            self._remember(("dm", user), found)
        return found

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
        if channel.get("creator"):  # a new channel: only its maker is in it (for its first invites)
            self._remember(("new", channel["id"]), {channel["creator"]})
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

    def is_member(self, channel: str) -> bool:
        """Whether the bot is in `channel` (cached; joining sets it)."""
        found = self._cached(("member", channel))
        if found is None:
            found = bool(self.call("conversations.info", channel=channel)["channel"].get("is_member"))
            self._remember(("member", channel), found)
        return found

    def join(self, channel: str) -> None:
        self.call("conversations.join", channel=channel)
        self._remember(("member", channel), True)

    def members(self, channel: str) -> set[str]:
        """The people in `channel` now (people join and leave all the time: not cached)."""
        found, cursor = set(), None
        while True:
            params = dict(channel=channel, limit=1000, **({"cursor": cursor} if cursor else {}))
            data = self.call("conversations.members", **params)
            found |= set(data.get("members") or [])
            cursor = (data.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return found

    def invite(self, channel: str, users: list[str]) -> None:
        """Invite those of `users` who are not in `channel` yet (Slack refuses a call inviting only members; with
        force, one who cannot be invited does not stop the others)."""
        users = [u for u in dict.fromkeys(users) if u and u[:1] in "UW"]
        if not users:
            return
        with self._lock:
            new = self._cache.pop(("new", channel), None)  # the channel this gateway just made: nobody but us
        members = new[1] if new and self._clock() - new[0] < LOOKUP_TTL else self.members(channel)
        users = [u for u in users if u not in members and u != self._cached(("auth", "user_id"))]
        if not users:
            return
        try:
            self.call("conversations.invite", channel=channel, users=",".join(users), force=True)
        except SlackError as exc:
            if exc.code not in ("already_in_channel", "cant_invite_self"):
                raise

    # -- bookmarks ----------------------------------------------------------------------------------
    def bookmarks(self, channel: str) -> list[dict]:
        return list(self.call("bookmarks.list", channel_id=channel).get("bookmarks") or [])

    def add_bookmark(self, channel: str, title: str, link: str) -> None:
        self.call("bookmarks.add", channel_id=channel, title=title, type="link", link=link)

    def edit_bookmark(self, channel: str, bookmark: str, title: str, link: str) -> None:
        self.call("bookmarks.edit", channel_id=channel, bookmark_id=bookmark, title=title, link=link)

    def set_topic(self, channel: str, topic: str) -> None:
        self.call("conversations.setTopic", channel=channel, topic=topic[:250])

    def archive(self, channel: str) -> None:
        try:
            self.call("conversations.archive", channel=channel)
        except SlackError as exc:
            if exc.code != "already_archived":
                raise

    def is_archived(self, channel: str) -> bool:
        # include_locale: not the backend client's cached conversations.info of the same channel (a minute old)
        return bool(self.call("conversations.info", channel=channel, include_locale=True)["channel"]
                    .get("is_archived"))

    def unarchive(self, channel: str) -> None:
        """With the user token (Slack answers a bot token not_in_channel): see can_unarchive."""
        if self._user_client is None:
            raise SlackError("conversations.unarchive", "not_in_channel")
        try:
            self.call("conversations.unarchive", as_user=True, channel=channel)
        except SlackError as exc:
            if exc.code != "not_archived":
                raise

    def workspace_url(self) -> str:
        """https://<workspace>.slack.com/ (auth.test), for links to a channel: <url>archives/<id>."""
        found = self._cached(("auth", "url"))
        if found is None:
            data = self.call("auth.test")
            found = data.get("url") or "https://slack.com/"
            self._remember(("auth", "url"), found)
            self._remember(("auth", "user_id"), data.get("user_id"))
        return found

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
    def _cached(self, key: tuple, ttl: float | None = LOOKUP_TTL):
        with self._lock:
            hit = self._cache.get(key)
        if hit and (ttl is None or self._clock() - hit[0] < ttl):
            return hit[1]
        return None

    def _remember(self, key: tuple, value) -> None:
        with self._lock:
            self._cache[key] = (self._clock(), value)


def user_client(token: str, base_url: str):
    """A Web API client with a person's user token (SLACK_USER_TOKEN): see SlackGateway.unarchive."""
    from slack_sdk import WebClient
    from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

    return WebClient(token=token, base_url=base_url, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)])
