"""The backend's connections to Slack: the Web API client (pointed at SLACK_API_URL, retrying on 429 after
Retry-After, repeated look-ups answered from memory, each call that reaches Slack told to API_OBSERVERS)
and the Socket Mode socket (without Nagle's delay, read in large reads, each envelope handed from the
socket's thread straight to the workers)."""
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


SOCKET_READ_BYTES = 16384  # slack_sdk's default is 1,024


def _in_large_reads(receive_messages):
    """slack_sdk reads its Socket Mode socket 1,024 bytes at a time: an event's envelope (1-2 KB) took two or
    three reads, each a system call and a hand-over of the interpreter to another thread. In larger reads a
    burst of envelopes comes in a few. (Not larger still: slack_sdk parses the frames of one read by recursion,
    one level per frame.)"""
    def receive(*args, **kwargs):
        kwargs["receive_buffer_size"] = max(kwargs.get("receive_buffer_size") or 0, SOCKET_READ_BYTES)
        return receive_messages(*args, **kwargs)

    receive.opg_large_reads = True
    return receive


def socket_mode_without_nagle() -> None:
    """Patch slack_sdk's Socket Mode connection (once, however often this is called): no Nagle, large reads."""
    if not getattr(_sm_connection._establish_new_socket_connection, "opg_nodelay", False):
        _sm_connection._establish_new_socket_connection = _without_nagle(
            _sm_connection._establish_new_socket_connection)
    if not getattr(_sm_connection._receive_messages, "opg_large_reads", False):
        _sm_connection._receive_messages = _in_large_reads(_sm_connection._receive_messages)


def socket_mode_client_class(base):
    """slack_sdk's Socket Mode client, handing each envelope from the thread that reads the socket straight to
    the workers that handle it. slack_sdk puts it on a queue for a third thread that only parses it and
    hands it on: one more hand-over of the interpreter, and two more thread switches, for every envelope."""
    if getattr(base, "opg_direct", False):
        return base

    class SocketModeClient(base):
        opg_direct = True

        def enqueue_message(self, message: str):
            """As slack_sdk's process_message does, on this thread; a disconnect (or what is not a JSON
            object) goes slack_sdk's way."""
            parsed = None
            if message.startswith("{"):
                try:
                    parsed = json.loads(message)
                except ValueError:
                    parsed = None
            if not isinstance(parsed, dict) or parsed.get("type") == "disconnect":
                return super().enqueue_message(message)
            self.message_workers.submit(self.run_message_listeners, parsed, message)

    return SocketModeClient
