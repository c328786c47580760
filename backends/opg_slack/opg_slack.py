"""OPGSlack: errbot's SlackV3 backend plus what it drops (pins, edits, renames, slash commands, buttons,
modals), exactly-once delivery, and a configurable Web API base URL.

It relies on private parts of errbot-backend-slackv3 0.3.2 (pinned); tests/test_backend_contract.py
fails when they change. Plugins receive:
  callback_slack_input(key, kind) -> bool          record the input durably; False for a redelivery
  callback_slack_event(event)                      pin_added/pin_removed/message_changed/... events
  callback_slack_interaction(kind, payload) -> ack slash_commands / interactive; the ack goes back to Slack
"""
import json
import logging
import queue
import socket
import threading
import time
from urllib.parse import parse_qs

import slackv3.slackv3 as _slackv3  # the module, not the class: one ErrBot subclass per backend module
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.builtin import connection as _sm_connection
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web import WebClient as _SdkWebClient

log = logging.getLogger(__name__)

# Events errbot's backend does not route; they go to callback_slack_event.
ROUTED_EVENTS = ("pin_added", "pin_removed", "channel_rename")
# Message subtypes that are not chat: edits and deletions of (maybe pinned) messages, pin notices.
ROUTED_SUBTYPES = ("message_changed", "message_deleted")
IGNORED_SUBTYPES = ("pinned_item", "unpinned_item", "channel_join", "channel_topic", "channel_purpose",
                    "channel_name", "bot_add", "message_replied")
# HTTP mode: Slack's request URLs (served by the plugin's web server, which calls handle_http).
HTTP_PATHS = {"/slack/events": "events", "/slack/commands": "commands", "/slack/interactive": "interactive"}
EVENT_WORKERS = 8
# Who wants to know how long Slack waited for each ack (the plugin's metrics register here): f(kind, seconds).
ACK_OBSERVERS: list = []


# Look-ups errbot's backend repeats for every message (users.info and team.info for each sender,
# conversations.info for each channel): answered from memory for a while (seconds).
CACHED_LOOKUPS = {"users.info": 600.0, "team.info": 600.0, "bots.info": 600.0, "conversations.info": 60.0}


def _client_class(base_url: str):
    class WebClient(_SdkWebClient):
        """slack_sdk's client, pointed at SLACK_API_URL, retrying on 429 after Retry-After, with
        repeated look-ups cached."""

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("base_url", base_url)
            kwargs.setdefault("retry_handlers", [RateLimitErrorRetryHandler(max_retry_count=2)])
            super().__init__(*args, **kwargs)
            self._lookups: dict = {}
            self._lookups_lock = threading.Lock()

        def api_call(self, api_method, **kwargs):
            ttl = CACHED_LOOKUPS.get(api_method)
            if ttl is None:
                return super().api_call(api_method, **kwargs)
            key = (api_method, json.dumps(kwargs.get("params") or kwargs.get("data") or {}, sort_keys=True,
                                          default=str))
            now = time.monotonic()
            with self._lookups_lock:
                hit = self._lookups.get(key)
            if hit and now - hit[0] < ttl:
                return hit[1]
            response = super().api_call(api_method, **kwargs)
            with self._lookups_lock:
                if len(self._lookups) > 10_000:
                    self._lookups.clear()
                self._lookups[key] = (now, response)
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


if not getattr(_sm_connection._establish_new_socket_connection, "opg_nodelay", False):
    _sm_connection._establish_new_socket_connection = _without_nagle(_sm_connection._establish_new_socket_connection)


class OPGSlackBackend(_slackv3.SlackBackend):
    HTTP_PATHS = tuple(HTTP_PATHS)
    ack_observers = ACK_OBSERVERS  # the plugin appends f(kind, seconds) to time the acks    serves_http = False  # True in HTTP mode, once handle_http is ready

    def __init__(self, config):
        super().__init__(config)
        base_url = config.BOT_IDENTITY.get("base_url") or "https://slack.com/api/"
        if not base_url.endswith("/"):
            base_url += "/"
        self.base_url = base_url
        _slackv3.WebClient = _client_class(base_url)  # serve_once() builds its client from this name

    def update_alternate_prefixes(self):
        """Mentioning the bot (`@opg-incident summary ...`) makes a command, whatever its name is."""
        # Not the backend's own: it looks `@name` prefixes up with users.list on every start.
        prefixes = [p for p in self.bot_config.BOT_ALT_PREFIXES if not p.startswith("@")]
        prefixes.append(f"<@{self.auth['user_id']}>")
        if getattr(self.bot_config, "BOT_ALT_PREFIX_CASEINSENSITIVE", False):
            prefixes = [p.lower() for p in prefixes]
        self.bot_alt_prefixes = tuple(prefixes)

    # -- plugin dispatch ----------------------------------------------------------------------------
    def _ask_plugins(self, method: str, *args):
        """Call `method` on every active plugin that has it; return the first non-None answer."""
        answer = None
        for plugin in self.plugin_manager.get_all_active_plugins():
            handler = getattr(plugin, method, None)
            if handler is None:
                continue
            try:
                result = handler(*args)
            except Exception:
                log.exception("%s of %s failed", method, plugin.name)
                continue
            if answer is None:
                answer = result
        return answer

    def _interaction(self, key: str | None, kind: str, payload: dict):
        """The ack of a slash command or interaction: the plugin's, or "try again" while none is ready."""
        recorded = self._record(key, kind)
        if recorded is None:  # the database failed: the plugin tells the person (an ephemeral answer)
            told = self._ask_plugins("callback_slack_unrecorded", kind, payload)
            if told is not None:
                return told or None
        if recorded is None:  # at start-up, before the plugin is active: nothing may be lost silently
            log.warning("A %s arrived before the bot was ready; the person is asked to try again", kind)
            if kind == "slash_commands":
                return {"response_type": "ephemeral", "text": "I am just starting up: try again in a few seconds."}
            if payload.get("type") == "view_submission":
                return {"response_action": "errors",
                        "errors": {"title": "I am just starting up: press the button again in a few seconds."}}
            return None
        if not recorded:
            return None  # a redelivery: handled once already
        try:
            return self._ask_plugins("callback_slack_interaction", kind, payload)
        finally:
            self._processed(key)

    def _record(self, key: str | None, kind: str, payload: dict | None = None) -> bool | None:
        """True: recorded now; False: recorded before (a redelivery); None: not recorded (no plugin ready
        yet, as while errbot activates them at start-up, or the database failed)."""
        if not key:
            return True
        answer = self._ask_plugins("callback_slack_input", key, kind, payload)
        return answer if isinstance(answer, bool) else None

    def _processed(self, key: str | None) -> None:
        if key:
            self._ask_plugins("callback_slack_processed", key)

    # -- events (both transports arrive here) -------------------------------------------------------
    def _receive_event(self, event_data) -> bool | None:
        """Record an event durably before it is acked. True: new, ack it and handle it; False: ack only (a
        redelivery, or an event nobody acts on); None: not recorded, do not ack (Slack delivers it again)."""
        event = event_data.get("event") if isinstance(event_data, dict) else None
        if not isinstance(event, dict) or "type" not in event:
            log.debug("Ignoring a Slack payload without an event")
            return False
        if self._not_for_us(event):
            return False
        key = event_data.get("event_id")
        recorded = self._record(key, "events_api", event_data)
        if recorded is None:
            log.warning("Event %s could not be recorded yet; not acked, Slack delivers it again", key)
            return None
        if not recorded:
            log.info("Ignoring redelivered event %s", key)
        return recorded

    def _not_for_us(self, event: dict) -> bool:
        """Events nobody acts on (pin notices, joins, the bot's own messages): acked, not even recorded."""
        if event.get("type") != "message":
            return False
        if event.get("subtype") in IGNORED_SUBTYPES:
            return True
        own = (getattr(self, "auth", None) or {}).get("user_id")
        return event.get("subtype") is None and own is not None and event.get("user") == own

    def _dispatch_event(self, event_data: dict, key: str | None):
        """Hand an event to the plugins. It counts as processed when this returns, except a command that
        errbot queued for its pool: that one is marked when it has run (by the plugin, in the transaction
        of its change, or in _execute_and_send)."""
        event = event_data["event"]
        if key:
            event["_opg_input"] = key
        try:
            if event["type"] in ROUTED_EVENTS:
                return self._ask_plugins("callback_slack_event", event)
            return super()._generic_wrapper(event_data)
        finally:
            if not event.get("_opg_command") and not event.get("_opg_marked"):  # not a command (an unknown one,
                self._processed(key)  # `help`'s text, our own message), and no change marked it already

    # errbot's command path: a message found to be a command is queued, run, then answered.
    def _process_command(self, msg, cmd, args, match):
        event = msg.extras.get("slack_event")
        if isinstance(event, dict):
            event["_opg_command"] = True
        return super()._process_command(msg, cmd, args, match)

    def _process_command_filters(self, msg, cmd, args, dry_run=False):
        result = super()._process_command_filters(msg, cmd, args, dry_run)
        if not dry_run and result[0] is None:  # blocked (ACLs): it will not run
            self._processed((msg.extras.get("slack_event") or {}).get("_opg_input"))
        return result

    def _execute_and_send(self, cmd, args, match, msg, template_name=None):
        try:
            return super()._execute_and_send(cmd, args, match, msg, template_name)
        finally:
            self._processed((msg.extras.get("slack_event") or {}).get("_opg_input"))

    def replay_inputs(self, inputs) -> int:
        """Handle events a previous process recorded but never handled (it died after the ack)."""
        count = 0
        for key, _kind, payload in inputs:
            if isinstance(payload, dict) and isinstance(payload.get("event"), dict):
                log.info("Replaying event %s that a previous process recorded but did not handle", key)
                self._dispatch_event(payload, key)
                count += 1
            else:
                self._processed(key)
        return count

    def _handle_message(self, webclient, event):
        subtype = event.get("subtype")
        if subtype in ROUTED_SUBTYPES:
            return self._ask_plugins("callback_slack_event", event)  # never re-run an edited command
        if subtype in IGNORED_SUBTYPES:
            return None
        return super()._handle_message(webclient, event)

    # -- Socket Mode ----------------------------------------------------------------------------------
    def _sm_generic_event_handler(self, client, req):
        started = time.perf_counter()
        if req.type in ("slash_commands", "interactive"):
            payload = req.payload if isinstance(req.payload, dict) else {}
            ack = self._interaction(payload.get("trigger_id") or req.envelope_id, req.type, payload)
            self._sm_ack(client, req, started, ack or None)
            return
        if req.type == "events_api":
            # Durable record first, then the ack, then the work (a crash after the ack is replayed at start).
            payload = req.payload if isinstance(req.payload, dict) else {}
            if isinstance(payload.get("event"), dict) and not payload.get("event_id"):
                payload = dict(payload, event_id=req.envelope_id)
            is_new = self._receive_event(payload)
            if is_new is None:
                return
            self._sm_ack(client, req, started)
            if is_new:
                self._dispatch_event(payload, payload["event_id"])
            return
        self._sm_ack(client, req, started)

    @staticmethod
    def _sm_ack(client, req, started: float, payload=None) -> None:
        client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id, payload=payload))
        _observe_ack(req.type, started)

    # -- HTTP mode ------------------------------------------------------------------------------------
    def _setup_event_callbacks(self):
        """HTTP mode: the plugin's web server routes Slack's requests to `handle_http` (HTTP_PATHS)."""
        self._verifier = SignatureVerifier(self.signing_secret)
        self._event_workers = _Workers(EVENT_WORKERS, "opg-slack-events")
        self.serves_http = True
        self.connect_callback()  # errbot activates plugins here in HTTP mode

    def handle_http(self, path: str, body: bytes, headers) -> tuple[int, dict | None]:
        """One signed request from Slack: (status, JSON body or None). An event is acked once it is
        recorded and handled afterwards, so that the answer never waits for the work (Slack allows 3 s)."""
        started = time.perf_counter()
        try:
            return self._answer_http(path, body, headers)
        finally:
            kind = HTTP_PATHS.get(path, "")
            _observe_ack({"events": "events_api", "commands": "slash_commands"}.get(kind, kind), started)

    def _answer_http(self, path: str, body: bytes, headers) -> tuple[int, dict | None]:
        kind = HTTP_PATHS.get(path)
        if kind is None:
            return 404, None
        try:
            valid = self._verifier.is_valid_request(body, dict(headers))
        except (TypeError, ValueError, AttributeError):
            valid = False
        if not valid:
            return 403, None  # say nothing about why
        try:
            if kind == "events":
                data = json.loads(body)
                if not isinstance(data, dict):
                    raise ValueError("not an object")
                if data.get("type") == "url_verification":
                    return 200, {"challenge": str(data.get("challenge", ""))}
                is_new = self._receive_event(data)
                if is_new is None:
                    return 503, None  # Slack retries it
                if is_new:
                    self._event_workers.submit(self._dispatch_event, data, data.get("event_id"))
                return 200, None
            form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
            if kind == "commands":
                payload, interaction = form, "slash_commands"
            else:
                payload, interaction = json.loads(form.get("payload", "{}")), "interactive"
            if not isinstance(payload, dict):
                raise ValueError("payload is not an object")
            ack = self._interaction(payload.get("trigger_id"), interaction, payload)
        except (ValueError, AttributeError, RecursionError) as exc:
            log.warning("Ignoring a malformed Slack %s request: %s", kind, type(exc).__name__)
            return 400, None
        return 200, (ack or None)


class _Workers:
    """A few daemon threads that handle recorded events in the background (the process may exit at any
    moment: what they had not finished is in the inbox and replayed at the next start)."""

    def __init__(self, count: int, name: str):
        self._queue: queue.Queue = queue.Queue()
        for n in range(count):
            threading.Thread(target=self._run, daemon=True, name=f"{name}-{n}").start()

    def submit(self, fn, *args) -> None:
        self._queue.put((fn, args))

    def _run(self) -> None:
        while True:
            fn, args = self._queue.get()
            try:
                fn(*args)
            except Exception:
                log.exception("Handling a Slack event failed")


def _observe_ack(kind: str, started: float) -> None:
    seconds = time.perf_counter() - started
    for observe in list(ACK_OBSERVERS):
        try:
            observe(kind, seconds)
        except Exception:
            log.debug("An ack observer failed", exc_info=True)
