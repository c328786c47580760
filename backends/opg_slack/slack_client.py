"""The backend's connections to Slack: the Web API client (pointed at SLACK_API_URL, retrying on 429 after
Retry-After, repeated look-ups answered from memory, each call that reaches Slack told to API_OBSERVERS)
and the Socket Mode socket (without Nagle's delay, read in large reads, each envelope handed from the
socket's thread straight to the workers, a refresh switching to the new connection at once)."""
import json
import logging
import socket
import threading
import time

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.socket_mode.builtin import connection as _sm_connection
from slack_sdk.web import WebClient as _SdkWebClient

# Look-ups errbot's backend repeats for every message (users.info and team.info for each sender,
# conversations.info for each channel): answered from memory for a while (seconds).
CACHED_LOOKUPS = {"users.info": 600.0, "team.info": 600.0, "bots.info": 600.0, "conversations.info": 60.0,
                  "conversations.open": 600.0}  # a person's DM channel never changes
# Who wants to know of each Web API call that reached Slack (the plugin's metrics register here):
# f(method, error), error None or Slack's error code ("ratelimited", "http_5xx", "network", ...).
API_OBSERVERS: list = []
log = logging.getLogger(__name__)


def observed_call(call, method: str, **kwargs):
    """`call(method, **kwargs)`, told to API_OBSERVERS with how it went."""
    error = None
    try:
        return call(method, **kwargs)
    except SlackApiError as exc:
        response = exc.response
        data = response.data if response is not None and isinstance(response.data, dict) else {}
        status = getattr(response, "status_code", 200) or 200
        error = "ratelimited" if status == 429 else (data.get("error") or ("http_5xx" if status >= 500 else "error"))
        raise
    except Exception:
        error = "network"
        raise
    finally:
        for observe in list(API_OBSERVERS):
            try:
                observe(method, error)
            except Exception:
                log.debug("A Slack API observer failed", exc_info=True)


def client_class(base_url: str):
    class WebClient(_SdkWebClient):
        """slack_sdk's client, pointed at SLACK_API_URL, retrying on 429 after Retry-After, with
        repeated look-ups cached."""

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("base_url", base_url)
            kwargs.setdefault("retry_handlers", [RateLimitErrorRetryHandler(max_retry_count=2)])
            super().__init__(*args, **kwargs)
            self._lookups: dict = {}
            self._lookups_lock = threading.Lock()
            self._asking: dict = {}  # look-up key -> the lock of the one call asking it now

        def api_call(self, api_method, **kwargs):
            ttl = CACHED_LOOKUPS.get(api_method)
            if ttl is None:
                return observed_call(super().api_call, api_method, **kwargs)
            args = {k: v for k, v in (kwargs.get("params") or kwargs.get("data") or {}).items() if v is not None}
            key = (api_method, json.dumps(args, sort_keys=True, default=str))
            with self._lookups_lock:
                hit = self._lookups.get(key)
                if not (hit and time.monotonic() - hit[0] < ttl):
                    hit = None
                    asking = self._asking.setdefault(key, threading.Lock())
            if hit:
                return hit[1]
            with asking:  # one call per look-up: threads asking the same wait for its answer (single flight)
                with self._lookups_lock:
                    hit = self._lookups.get(key)
                if hit and time.monotonic() - hit[0] < ttl:
                    return hit[1]
                response = observed_call(super().api_call, api_method, **kwargs)
                with self._lookups_lock:
                    if len(self._lookups) > 10_000:
                        self._lookups.clear()
                    self._lookups[key] = (time.monotonic(), response)
                    self._asking.pop(key, None)
            return response

    return WebClient


def _without_nagle(connect):
    """slack_sdk sets TCP_NODELAY on its Socket Mode socket only through a proxy; without it every small
    ack frame can wait ~40 ms for the previous frame's TCP ACK (Nagle)."""
    def establish(*args, **kwargs):
        sock = connect(*args, **kwargs)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass
        return sock

    establish.opg_nodelay = True
    return establish


SOCKET_READ_BYTES = 16384  # slack_sdk's default receive_buffer_size is 1,024
# slack_sdk read its Socket Mode socket 1,024 bytes at a time: an event's envelope (1-2 KB) took two or three
# reads, each a system call and a hand-over of the interpreter to another thread; in larger reads a burst of
# envelopes comes in a few. (Not larger still: slack_sdk parses the frames of one read by recursion, one level
# per frame.)


def socket_mode_without_nagle() -> None:
    """Patch slack_sdk's Socket Mode connection (once, however often this is called): no Nagle."""
    if not getattr(_sm_connection._establish_new_socket_connection, "opg_nodelay", False):
        _sm_connection._establish_new_socket_connection = _without_nagle(
            _sm_connection._establish_new_socket_connection)


def _wake_reader(session) -> None:
    """Shut the session's socket down so that its reader's blocking `recv` returns now (what was already
    received still comes first), not after its receive timeout (3 s)."""
    sock = getattr(session, "sock", None)
    if sock is not None:
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # not SSLSocket's: it drops the TLS the read is in
        except OSError:
            pass


def socket_mode_client_class(base):
    """slack_sdk's Socket Mode client, handing each envelope from the thread that reads the socket straight to
    the workers that handle it, reading in large reads, and switching to a new connection at once.

    slack_sdk puts each envelope on a queue for a third thread that only parses it and hands it on: one more
    hand-over of the interpreter, and two more thread switches, for every envelope. After a `disconnect`
    (refresh_requested, warning) its connect() closes the old connection before the new one becomes current,
    and that close waits for the old reader, blocked in `recv` for up to 3 s: the new connection was not read
    (nor anything acked) for those seconds, and Slack tells the person of an error at 3 s."""
    if getattr(base, "opg_direct", False):
        return base

    class SocketModeClient(base):
        opg_direct = True

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("receive_buffer_size", SOCKET_READ_BYTES)
            super().__init__(*args, **kwargs)

        def enqueue_message(self, message: str):
            """As slack_sdk's process_message does, on this thread; a disconnect (or what is not a JSON
            object, or anything that goes wrong here) goes slack_sdk's way, through its queue."""
            try:
                parsed = json.loads(message) if message.startswith("{") else None
                if isinstance(parsed, dict) and parsed.get("type") != "disconnect":
                    self.message_workers.submit(self.run_message_listeners, parsed, message)
                    return
            except Exception:  # a RecursionError, a submit after close...: the read's other frames go on
                if not getattr(self, "_opg_enqueue_warned", False):
                    self._opg_enqueue_warned = True
                    log.warning("A Socket Mode message goes through slack_sdk's queue", exc_info=True)
            return super().enqueue_message(message)

        def disconnect(self) -> None:
            """slack_sdk's, without waiting up to 3 s for the reader's `recv` (close() stops the bot this way)."""
            if self.current_session is not None:
                _wake_reader(self.current_session)
            super().disconnect()

        def connect(self) -> None:
            """slack_sdk's connect(), but the new session is current before the old one is closed, and the old
            one's reader is woken first: what it has received (all that came before the `disconnect`, after which
            Slack sends nothing more there) is still handled, acked on the new session."""
            old_session, old_state = self.current_session, self.current_session_state
            if self.wss_uri is None:
                self.wss_uri = self.issue_new_wss_url()
            session = _sm_connection.Connection(
                url=self.wss_uri, logger=self.logger, ping_interval=self.ping_interval,
                trace_enabled=self.trace_enabled, all_message_trace_enabled=self.all_message_trace_enabled,
                ping_pong_trace_enabled=self.ping_pong_trace_enabled, receive_buffer_size=self.receive_buffer_size,
                proxy=self.proxy, proxy_headers=self.proxy_headers, on_message_listener=self._on_message,
                on_error_listener=self._on_error, on_close_listener=self._on_close, ssl_context=self.web_client.ssl)
            session.connect()
            # The state first: slack_sdk's reader thread, idle, takes up the current session with the current state
            self.current_session_state = _sm_connection.ConnectionState()
            self.current_session = session
            self.auto_reconnect_enabled = self.default_auto_reconnect_enabled
            if old_state is not None:
                old_state.terminated = True  # after the switch: once the old reader stops it takes up the new one
            if old_session is not None:
                _wake_reader(old_session)
                old_session.close()
            if not self.current_app_monitor_started:
                self.current_app_monitor_started = True
                self.current_app_monitor.start()
            self.logger.info(f"A new session has been established (session id: {self.session_id()})")

    return SocketModeClient
