"""`FakeSlack`: a loopback Slack (Web API + Socket Mode or signed HTTP delivery) for tests.

    with FakeSlack() as fake:                      # Socket Mode; FakeSlack(mode="http", app_url=...)
        fake.add_user("U1", "alice")
        channel = fake.add_channel("incidents", members=["U1"])
        ... start the app with fake.bot_env() / WebClient(base_url=fake.api_url) ...
        fake.wait_until_connected()
        fake.post_message(channel, "U1", "hello")
        fake.wait_for(lambda: fake.bot_messages(channel))

The server runs on its own event-loop thread; every method here is safe to call from tests.
"""
from __future__ import annotations

import os
import socket
import time
from typing import Any, Callable, Iterable, Optional
from urllib.parse import urlsplit

from .access import UserToken
from .actors import PersonActions
from .delivery import Ack, DeliveryLog, LoopThread
from .events import event_callback
from .faults import Fault, Faults
from .http_mode import HttpTransport
from .inspection import Inspection
from .ledger import ErrorLedger
from .manifest import Manifest, subscribed
from .ratelimits import RateLimiter
from .server import CallLog, Server
from .socket_mode import SocketModeTransport
from .web_api import WebApi
from .workspace import SlackError, Workspace

# Everything the fake can grant: for tests of the fake itself, not of the app (which gets its manifest's).
ALL_SCOPES = (
    "app_mentions:read", "bookmarks:read", "bookmarks:write", "channels:history", "channels:join",
    "channels:manage", "channels:read", "chat:write", "commands", "files:write", "groups:history",
    "groups:read", "groups:write", "im:history", "im:read", "im:write", "mpim:history", "mpim:read",
    "mpim:write", "pins:read", "pins:write", "reactions:read", "reactions:write", "team:read",
    "usergroups:read", "users:read", "users:read.email")
ALL_SUBSCRIPTIONS = frozenset({
    "message.channels", "message.groups", "message.im", "message.mpim", "app_mention", "pin_added",
    "pin_removed", "reaction_added", "reaction_removed", "member_joined_channel", "member_left_channel",
    "channel_created", "channel_archive", "channel_unarchive", "channel_rename", "group_archive",
    "group_unarchive", "group_rename"})
# Slack's rules a test may switch off with FakeSlack(relax=...): for tests of the fake itself that need
# many calls at once; no end-to-end test relaxes any (the app keeps them all). Every other rule always holds.
RELAXABLE = {
    "rate_limits": "Slack's rate limits: the method tiers and chat.postMessage's per-channel pace",
    "bot_unarchive": "a bot token may unarchive (Slack answers not_in_channel: only user tokens can)",
}
LIVE: list = []  # every FakeSlack started in this process (pytest_plugin.py checks them after each test)
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class FakeSlack(PersonActions, Inspection, ErrorLedger):
    """A fake Slack workspace on 127.0.0.1 with an ephemeral port, as strict as Slack.

    By default it grants what the repository's slack-app-manifest.yml grants (bot scopes, event
    subscriptions, the App Home's Messages tab); `scopes=` / `subscriptions=` / `manifest=` change that.
    `relax=("rate_limits", ...)` switches off the rules named in RELAXABLE; `channel_rate` and
    `channel_burst` tune chat.postMessage's per-channel limit (ratelimits.py).
    """

    def __init__(self, mode: str = "socket", *, bot_token: str = "xoxb-fake-bot-token",
                 app_token: str = "xapp-1-fake-app-token", signing_secret: str = "fake-signing-secret",
                 app_url: Optional[str] = None, http_paths: Optional[dict] = None,
                 ack_timeout: float = 3.0, max_retries: int = 3, retry_delay: float = 0.0,
                 trigger_ttl: float = 3.0, manifest: Optional[Manifest] = None,
                 scopes: Optional[Iterable[str]] = None, subscriptions: Optional[Iterable[str]] = None,
                 relax: Iterable[str] = (), channel_rate: float = 1.0, channel_burst: int = 10,
                 bot_name: str = "opg-incident", bot_user_id: str = "U0FAKEBOT1",
                 team_domain: str = "fake-workspace"):
        if mode not in ("socket", "http"):
            raise ValueError("mode must be 'socket' or 'http'")
        self.mode = mode
        self.bot_token, self.app_token, self.signing_secret = bot_token, app_token, signing_secret
        self.verification_token = "fake-verification-token"
        self.manifest = manifest or Manifest.load()
        self.scopes = tuple(self.manifest.scopes if scopes is None else scopes)
        self.subscriptions = set(self.manifest.events if subscriptions is None else subscriptions)
        self.relaxed: frozenset = frozenset()
        self.rate_limits = RateLimiter(True, channel_rate, channel_burst)
        self.relax(*relax)
        self.user_tokens: dict = {}
        self.workspace = Workspace(bot_user_id=bot_user_id, bot_name=bot_name,
                                   team_domain=team_domain, trigger_ttl=trigger_ttl)
        self.loop = LoopThread()
        self.log = DeliveryLog()
        self.calls_log = CallLog()
        self.faults = Faults()
        self.files: dict = {}
        self.internal_errors: list = []  # bugs in the fake itself; e2e tests may assert it is empty
        self._init_ledger()
        self.response_urls: dict = {}
        self.api = WebApi(self)
        self.socket = SocketModeTransport(self.loop, self.log, self.workspace.app_id,
                                          ack_timeout, max_retries)
        self.http = HttpTransport(self.loop, self.log, signing_secret, app_url, http_paths,
                                  ack_timeout, max_retries, retry_delay)
        self.server = Server(self)
        self._started = False

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "FakeSlack":
        # slack_sdk uses HTTP(S)_PROXY and ignores NO_PROXY: unset them while the fake runs
        self._saved_proxies = {v: os.environ.pop(v) for v in PROXY_VARS if v in os.environ}
        self.loop.start()
        self.loop.run(self.server.start())
        self._started = True
        LIVE.append(self)
        return self

    def stop(self) -> None:
        if self._started:
            self._started = False
            try:
                self.loop.run(self.server.stop(), timeout=5)
            finally:
                self.loop.stop()
                os.environ.update(self._saved_proxies)

    @property
    def running(self) -> bool:
        return self._started

    def __enter__(self) -> "FakeSlack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """Pass as `WebClient(base_url=...)` / BOT_IDENTITY["base_url"]."""
        return f"{self.base_url}/api/"

    @property
    def app_url(self) -> Optional[str]:
        return self.http.app_url

    @app_url.setter
    def app_url(self, url: str) -> None:
        """HTTP mode: where the app serves /slack/events, /slack/commands, /slack/interactive."""
        self.http.app_url = url

    @property
    def ack_timeout(self) -> float:
        """Seconds before an unacked event is redelivered (Slack: 3)."""
        return self.transport.ack_timeout

    @ack_timeout.setter
    def ack_timeout(self, seconds: float) -> None:
        self.socket.ack_timeout = self.http.ack_timeout = seconds

    @property
    def bot_user_id(self) -> str:
        return self.workspace.bot_user_id

    def issue_socket_url(self) -> str:
        return self.socket.issue_url(f"ws://127.0.0.1:{self.port}")

    def bot_env(self, base: Optional[dict] = None) -> dict:
        """Environment for an errbot child process (config.py's SLACK_* names), without proxies."""
        env = {k: v for k, v in (os.environ if base is None else base).items() if k not in PROXY_VARS}
        env.update(SLACK_BOT_TOKEN=self.bot_token, SLACK_API_URL=self.api_url,
                   NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        if self.mode == "socket":
            env["SLACK_APP_TOKEN"] = self.app_token
            env.pop("SLACK_SIGNING_SECRET", None)
        else:
            env["SLACK_SIGNING_SECRET"] = self.signing_secret
            env.pop("SLACK_APP_TOKEN", None)
        return env

    # --- seeding ---------------------------------------------------------------------------------
    def add_user(self, user_id: str, name: str, real_name: str = "", is_bot: bool = False,
                 email: Optional[str] = None, **attrs) -> str:
        """Add a person (or another bot) to the workspace; returns the id."""
        if is_bot:
            attrs.setdefault("bot_id", "B" + user_id[1:])
            self.workspace.bots[attrs["bot_id"]] = {
                "id": attrs["bot_id"], "deleted": False, "name": name, "updated": 1700000000,
                "app_id": "A" + user_id[1:], "user_id": user_id, "icons": {}}
        self.workspace.add_user(user_id, name, real_name=real_name or name, is_bot=is_bot,
                                email=email, **attrs)
        return user_id

    def add_channel(self, name: str, members: Iterable[str] = (), bot_member: bool = True,
                    is_private: bool = False, channel_id: Optional[str] = None,
                    topic: str = "", purpose: str = "", is_general: bool = False) -> str:
        """Add a channel (no events are sent); returns its id."""
        ws = self.workspace
        with ws.lock:
            member_ids = {self._user(m).id for m in members}
            if bot_member:
                member_ids.add(ws.bot_user_id)
            creator = next(iter(sorted(member_ids - {ws.bot_user_id})), ws.bot_user_id)
            channel = ws.add_channel(name, creator, is_private, member_ids, channel_id, is_general)
            channel.topic["value"], channel.purpose["value"] = topic, purpose
            return channel.id

    def add_usergroup(self, group_id: str, handle: str, users: Iterable[str] = (),
                      disabled: bool = False) -> str:
        """A user group (`<!subteam^S...>`) for usergroups.users.list; returns its id."""
        with self.workspace.lock:
            self.workspace.usergroups[group_id] = {
                "id": group_id, "handle": handle, "users": [self._user(u).id for u in users],
                "date_delete": 1700000000 if disabled else 0}
        return group_id

    def add_user_token(self, user: str, scopes: Iterable[str] = ("channels:write",),
                       token: Optional[str] = None) -> str:
        """A user token (xoxp-) for `user` with these user scopes; returns the token."""
        person = self._user(user)
        token = token or f"xoxp-fake-{person.id.lower()}"
        self.user_tokens[token] = UserToken(token, person.id, tuple(scopes))
        return token

    def channel_key(self, params: dict) -> Optional[str]:
        """The conversation id a call's `channel` names (for per-channel rate limits)."""
        ref = params.get("channel")
        if not isinstance(ref, str) or not ref:
            return None
        with self.workspace.lock:
            if ref[0] in "UW" and ref in self.workspace.users:
                return "dm:" + ref
            try:
                return self.workspace.channel(ref).id
            except SlackError:
                return ref

    def relax(self, *rules: str) -> None:
        """Switch off rules the app breaks today (RELAXABLE), e.g. in one end-to-end test."""
        unknown = set(rules) - set(RELAXABLE)
        if unknown:
            raise ValueError(f"no such rule to relax: {sorted(unknown)}; see RELAXABLE")
        self.relaxed = self.relaxed | frozenset(rules)
        self.rate_limits.enabled = "rate_limits" not in self.relaxed

    # --- deliveries ------------------------------------------------------------------------------
    @property
    def transport(self):
        return self.socket if self.mode == "socket" else self.http

    def send_envelope(self, kind: str, payload: dict,
                      accepts_response_payload: Optional[bool] = None) -> str:
        """Deliver a payload ("events_api", "slash_commands", "interactive"); returns envelope_id."""
        if accepts_response_payload is None:
            accepts_response_payload = kind == "slash_commands" or payload.get("type") in (
                "view_submission", "block_suggestion")
        if self.mode == "http" and not self.app_url:
            raise RuntimeError("FakeSlack(mode='http') needs app_url before delivering")
        delivery = self.log.new(kind, payload, accepts_response_payload)
        self.transport.deliver(delivery)
        return delivery.envelope_id

    def send_event(self, event: dict) -> str:
        """Wrap an event in an event_callback body and deliver it; returns envelope_id."""
        return self.send_envelope("events_api", event_callback(self.workspace, event), False)

    def emit(self, event: dict, channel=None) -> Optional[str]:
        """Deliver an event caused by a state change if the app subscribes and can see it."""
        if not subscribed(self.subscriptions, event, channel.channel_type if channel is not None else None):
            return None
        if channel is not None and self.workspace.bot_user_id not in channel.members:
            return None
        return self.send_event(event)

    def redeliver(self, envelope_id: str, reason: str = "timeout") -> str:
        """Deliver again now: same envelope and event id, retry_attempt + 1."""
        self.transport.redeliver(self.log.get(envelope_id), reason)
        return envelope_id

    def wait_ack(self, envelope_id: str, timeout: float = 10.0) -> Ack:
        """The first ack of a delivery (AckTimeout if none within `timeout`)."""
        return self.log.wait_ack(envelope_id, timeout)

    def disconnect(self, reason: str = "refresh_requested", connection_id: Optional[int] = None,
                   close_after: Optional[float] = None) -> list:
        """Send a Socket Mode `disconnect` (all open connections by default); returns their ids.
        With `close_after`, the server closes those sockets that many seconds later."""
        return self.loop.run(self.socket.disconnect(reason, connection_id, close_after))

    def drop_connections(self, connection_id: Optional[int] = None) -> list:
        """Close Socket Mode connections abruptly, without a disconnect message."""
        return self.loop.run(self.socket.drop(connection_id))

    def verify_url(self, timeout: float = 10.0) -> Ack:
        """HTTP mode: Slack's url_verification challenge to the events URL."""
        payload = {"token": self.verification_token, "challenge": "fake-challenge-123",
                   "type": "url_verification"}
        return self.wait_ack(self.send_envelope("events_api", payload, False), timeout)

    # --- faults ----------------------------------------------------------------------------------
    def fail_next(self, method: str, error: Optional[str] = None, status: Optional[int] = None,
                  retry_after: int = 1, times: int = 1, delay: float = 0.0, body: Any = None) -> None:
        """Make the next `times` calls of `method` ("*" = any) fail.

        Default: HTTP 429 + `retry-after` + `{"ok": false, "error": "ratelimited"}`. With only
        `error`: HTTP 200 `{"ok": false, "error": error}`. `status=500..`: a server error.
        `delay`: wait that long first (e.g. longer than the client's timeout).
        """
        if status is None:
            status = 200 if error else 429
        self.faults.add(Fault(method, status, error, retry_after, delay, body, times))

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        """Answer the next `times` calls of `method` normally, but only after `seconds`."""
        self.faults.add(Fault(method, None, None, None, seconds, None, times))

    def lose_answers(self, method: str, times: int = 1, **match) -> list:
        """The next `times` calls of `method` (params matching `match`) take effect, but the answer is
        lost: `internal_error`, as when a response never comes back. Returns [left] (counts down)."""
        return self.faults.lose(method, times, match)

    def rate_limit(self, method: str, limit: Optional[int], period: float = 60.0) -> None:
        """At most `limit` calls of `method` per `period` s, then 429s (None removes the limit)."""
        self.faults.rate_limit(method, limit, period)

    # --- waiting ---------------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
                 message: str = "") -> Any:
        """Poll `predicate` until it returns something truthy (which is returned)."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(message or f"condition not met within {timeout}s: {predicate}")
            time.sleep(interval)

    def wait_until_connected(self, timeout: float = 10.0, count: int = 1,
                             total: Optional[int] = None) -> list:
        """Socket Mode: until `count` usable connections (hello sent) are open, and at least
        `total` were ever opened (e.g. total=2 after a disconnect). HTTP mode: until the app
        has called auth.test and accepts connections on app_url."""
        if self.mode == "http":
            return self.wait_for(lambda: self.calls_of("auth.test") and self._app_reachable(),
                                 timeout, message="the app never called auth.test or never listened")
        return self.wait_for(
            lambda: len([c for c in self.socket.connections if c.usable]) >= count
            and len(self.socket.connections) >= (total or 0)
            and [c for c in self.socket.connections if c.usable], timeout,
            message=f"no Socket Mode connection within {timeout}s")

    def _app_reachable(self) -> bool:
        url = urlsplit(self.app_url or "")
        try:
            socket.create_connection((url.hostname, url.port or 80), timeout=0.5).close()
            return True
        except (OSError, TypeError):
            return False

    def wait_for_call(self, method: str, timeout: float = 10.0, **match) -> Any:
        """The first call of `method` with params matching `match`."""
        return self.wait_for(lambda: (self.calls_of(method, **match) or [None])[0], timeout,
                             message=f"no {method} call matching {match} within {timeout}s")

    def wait_for_message(self, channel: str, predicate: Optional[Callable[[dict], bool]] = None,
                         from_bot: bool = True, timeout: float = 10.0) -> dict:
        """The first message in `channel` (from the app by default) matching `predicate`."""
        def find():
            pool = self.bot_messages(channel) if from_bot else self.messages(channel)
            return next((m for m in pool if predicate is None or predicate(m)), None)
        return self.wait_for(find, timeout, message=f"no matching message in {channel}")
