"""OPGSlack: errbot's SlackV3 backend plus what it drops (pins, edits, renames, slash commands, buttons,
modals), exactly-once delivery, and a configurable Web API base URL.

It relies on private parts of errbot-backend-slackv3 0.3.2 (pinned); tests/test_backend_contract.py
fails when they change. Beside it: slack_acks.py (acks first), slack_client.py (the Web API client and the
Socket Mode socket). A plugin takes Slack's inputs by registering one `InputHandler` (below) with
`register_inputs`; the backend imports nothing of it.
"""
import json
import re
import logging
import threading
import time
from typing import Protocol
from urllib.parse import parse_qs

import slackv3.slackv3 as _slackv3  # the module, not the class: one ErrBot subclass per backend module
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient

from slack_acks import ACK_OBSERVERS, AckGate, Workers, observe_ack  # noqa: F401 (ACK_OBSERVERS: for the plugin)
from slack_client import API_OBSERVERS, client_class as _client_class, socket_mode_without_nagle

log = logging.getLogger(__name__)

PERSON_MENTION = re.compile(r"(<@[UW][A-Z0-9]+(?:\|[^<>]*)?>)")
# Events errbot's backend does not route; they go to InputHandler.handle_event.
ROUTED_EVENTS = ("pin_added", "pin_removed", "channel_rename", "channel_archive", "channel_unarchive")
# Message subtypes that are not chat: edits and deletions of (maybe pinned) messages, pin notices.
ROUTED_SUBTYPES = ("message_changed", "message_deleted")
IGNORED_SUBTYPES = ("pinned_item", "unpinned_item", "channel_join", "channel_topic", "channel_purpose",
                    "channel_name", "bot_add", "message_replied")
# HTTP mode: Slack's request URLs (served by the plugin's web server, which calls handle_http).
HTTP_PATHS = {"/slack/events": "events", "/slack/commands": "commands", "/slack/interactive": "interactive"}
# Both modes: the threads that receive (waitress's 8, or slack_sdk's 10) record and ack each envelope; the work
# of the new ones is then queued for these two. (More, or handling on the thread that acked, had the threads
# passing the writer lock and the interpreter among themselves, at a cost on every hand-over: P1, P2a.)
EVENT_WORKERS = 2
AFTER_ACK_WORKERS = 4  # slash commands and clicks, handled once acked
_LATER_LOCK = threading.Lock()
ACKS = AckGate()  # the handling of inputs gives way to the acks of others (slack_acks)


NEW, DUPLICATE, NOT_READY = "new", "duplicate", "not_ready"


class InputHandler(Protocol):
    """The one contract between this backend and the plugin that handles Slack's inputs.

    Every input (an event, a slash command, a click or form) is `record`ed under its key before Slack gets
    its ack: "new" (ack, then handle), "duplicate" (a redelivery: ack only) or "not_ready" (no ack: Slack
    delivers it again). A new input is then handled once, and marked handled once:
    - `handle_event(key, event)`: pins, renames, edits and deletions of messages; the handler marks it.
    - `handle_interaction(key, kind, payload) -> ack body or None`: slash commands ("slash_commands") and
      clicks and forms ("interactive"); the handler marks it. `unrecorded(kind, payload)`: the ack of one
      the handler could not record (its database is down): the person is told.
    - a message goes through errbot: a command of the handler's runs with `msg.extras["opg_input"]` and the
      handler marks it; `handled(key)` says so. Any other message (chat, another plugin's command, a command
      the ACLs refused) is marked by the backend with `processed(key)`.
    The handler marks an input in the transaction of the change it makes, or after handling when it made
    none: exactly once either way."""

    def record(self, key: str, kind: str, payload: dict | None) -> str: ...

    def handle_event(self, key: str | None, event: dict) -> None: ...

    def handle_interaction(self, key: str | None, kind: str, payload: dict) -> dict | None: ...

    def unrecorded(self, kind: str, payload: dict) -> dict | None: ...

    def handled(self, key: str) -> bool: ...

    def processed(self, key: str) -> None: ...


socket_mode_without_nagle()  # at import, before errbot connects


class OPGSlackBackend(_slackv3.SlackBackend):
    HTTP_PATHS = tuple(HTTP_PATHS)
    ack_observers = ACK_OBSERVERS  # the plugin appends f(kind, seconds) to time the acks
    api_observers = API_OBSERVERS  # and f(method, error) to count the Web API calls
    serves_http = False  # True in HTTP mode, once handle_http is ready

    def __init__(self, config):
        super().__init__(config)
        base_url = config.BOT_IDENTITY.get("base_url") or "https://slack.com/api/"
        if not base_url.endswith("/"):
            base_url += "/"
        self.base_url = base_url
        _slackv3.WebClient = _client_class(base_url)  # serve_once() builds its client from this name
        # (imported here while the module's own imports are reworked for start-up time, P5: may join them)
        from slack_client import socket_mode_client_class
        _slackv3.SocketModeClient = socket_mode_client_class(_slackv3.SocketModeClient)  # and its socket from this

    def update_alternate_prefixes(self):
        """Mentioning the bot (`@opg-incident summary ...`) makes a command, whatever its name is."""
        # Not the backend's own: it looks `@name` prefixes up with users.list on every start.
        prefixes = [p for p in self.bot_config.BOT_ALT_PREFIXES if not p.startswith("@")]
        prefixes.append(f"<@{self.auth['user_id']}>")
        if getattr(self.bot_config, "BOT_ALT_PREFIX_CASEINSENSITIVE", False):
            prefixes = [p.lower() for p in prefixes]
        self.bot_alt_prefixes = tuple(prefixes)

    # -- the input handler ----------------------------------------------------------------------------
    _inputs: InputHandler | None = None

    def register_inputs(self, handler: InputHandler | None) -> None:
        """The plugin's handler of Slack's inputs (None when it deactivates: inputs wait, unacked)."""
        self._inputs = handler

    def _interaction(self, key: str | None, kind: str, payload: dict):
        """The ack of a slash command or interaction. Recorded first (durable), then acked at once and handled
        after the ack, as Slack's Bolt does: an answer then goes to the payload's response_url, and a form
        opens with the trigger (valid 3 s). Only a form's submission is handled before its ack: Slack shows
        its validation errors from the ack."""
        recorded = self._record(key, kind)
        if recorded == NOT_READY and self._inputs is not None:  # the database failed: the person is told
            told = self._inputs.unrecorded(kind, payload)
            if told is not None:
                return told or None
        if recorded == NOT_READY:  # at start-up, before the plugin is active: nothing may be lost silently
            log.warning("A %s arrived before the bot was ready; the person is asked to try again", kind)
            if kind == "slash_commands":
                return {"response_type": "ephemeral", "text": "I am just starting up: try again in a few seconds."}
            if payload.get("type") == "view_submission":
                return {"response_action": "errors",
                        "errors": {"title": "I am just starting up: press the button again in a few seconds."}}
            return None
        if recorded == DUPLICATE:
            return None  # a redelivery: handled once already
        if payload.get("type") == "view_submission":
            return self._handle_interaction(key, kind, payload)
        self._after_ack().submit(self._answer_later, key, kind, payload)
        return None

    def _handle_interaction(self, key, kind, payload):
        try:
            return self._inputs.handle_interaction(key, kind, payload)
        except Exception:
            log.exception("Handling a Slack %s failed", kind)
            return None

    def _answer_later(self, key, kind, payload) -> None:
        answer = self._handle_interaction(key, kind, payload)
        url = payload.get("response_url")
        if answer and isinstance(url, str) and url.startswith(("https://", "http://")):
            try:
                response = WebhookClient(url, timeout=10).send_dict(answer)
                if response.status_code != 200:
                    log.warning("Slack refused the answer to a %s: %s %s", kind, response.status_code,
                                response.body[:100])
            except Exception as exc:  # the person sees no answer: say so in the log
                log.warning("Could not answer a %s through its response_url: %s", kind, type(exc).__name__)

    def _after_ack(self) -> "Workers":
        with _LATER_LOCK:
            if getattr(self, "_later", None) is None:
                self._later = Workers(AFTER_ACK_WORKERS, "opg-slack-after-ack", ACKS)
            return self._later

    def _record(self, key: str | None, kind: str, payload: dict | None = None) -> str:
        """NEW: recorded now; DUPLICATE: recorded before (a redelivery); NOT_READY: not recorded (no handler
        yet, as while errbot activates the plugins at start-up, or the database failed)."""
        handler = self._inputs
        if handler is None:
            return NOT_READY
        if not key:
            return NEW
        try:
            return handler.record(key, kind, payload)
        except Exception:
            log.exception("Recording Slack input %s failed", key)
            return NOT_READY

    def _processed(self, key: str | None) -> None:
        """Mark an input the handler did not handle (and so did not mark)."""
        handler = self._inputs
        if key and handler is not None and not handler.handled(key):
            handler.processed(key)

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
        if recorded == NOT_READY:
            log.warning("Event %s could not be recorded yet; not acked, Slack delivers it again", key)
            return None
        if recorded == DUPLICATE:
            log.debug("Ignoring redelivered event %s", key)  # counted: opg_incident_inputs_duplicate_total
        return recorded == NEW

    def _not_for_us(self, event: dict) -> bool:
        """Events nobody acts on (pin notices, joins, the bot's own messages): acked, not even recorded."""
        if event.get("type") != "message":
            return False
        if event.get("subtype") in IGNORED_SUBTYPES:
            return True
        own = (getattr(self, "auth", None) or {}).get("user_id")
        return event.get("subtype") is None and own is not None and event.get("user") == own

    _handling = threading.local()  # the key of the event this thread is dispatching

    def _dispatch_event(self, event_data: dict, key: str | None):
        """Hand a recorded event on: routed events to the handler, messages to errbot. A message that is not
        the handler's command (chat, another plugin's command) is marked here when this returns; a command
        errbot queued for its pool is marked once it has run."""
        event = event_data["event"]
        ACKS.give_way()
        self._handling.key, self._handling.command = key, False
        try:
            if event["type"] in ROUTED_EVENTS:
                return self._inputs.handle_event(key, event)
            return super()._generic_wrapper(event_data)
        finally:
            queued = self._handling.command
            self._handling.key = self._handling.command = None
            if not queued:
                self._processed(key)

    # errbot's command path: a message found to be a command is queued, run, then answered.
    def _process_command(self, msg, cmd, args, match):
        key = getattr(self._handling, "key", None)
        if key:
            msg.extras["opg_input"] = key
            self._handling.command = True
        return super()._process_command(msg, cmd, args, match)

    def _process_command_filters(self, msg, cmd, args, dry_run=False):
        result = super()._process_command_filters(msg, cmd, args, dry_run)
        if not dry_run and result[0] is None:  # blocked (ACLs): it will not run
            self._processed(msg.extras.get("opg_input"))
        return result

    def _execute_and_send(self, cmd, args, match, msg, template_name=None):
        ACKS.give_way()  # errbot's pool runs the command: after the acks on their way
        try:
            return super()._execute_and_send(cmd, args, match, msg, template_name)
        finally:
            self._processed(msg.extras.get("opg_input"))  # unless the handler's command marked it

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

    def process_mentions(self, text):
        """errbot builds an identifier for every mention in a message, to write it back as it was: for a
        person that opens a DM with them (conversations.open) and looks it up (conversations.info), two calls
        per person mentioned in a command. People's mentions stay as Slack sent them (the plugin reads them
        from the text); channels' go through errbot's."""
        parts, mentioned = PERSON_MENTION.split(text), []
        for i in range(0, len(parts), 2):  # the text between people's mentions
            parts[i], found = super().process_mentions(parts[i])
            mentioned += found
        return "".join(parts), mentioned

    def _handle_member_joined_channel(self, webclient, event):
        """errbot looks up everyone who joins a channel (users.info) to tell whether it is the bot, and then the
        channel (conversations.info) for callback_room_joined, which no plugin here listens to: not done."""
        return None

    def _handle_message(self, webclient, event):
        subtype = event.get("subtype")
        if subtype in ROUTED_SUBTYPES:  # never re-run an edited command
            return self._inputs.handle_event(getattr(self._handling, "key", None), event)
        if subtype in IGNORED_SUBTYPES:
            return None
        return super()._handle_message(webclient, event)

    # -- Socket Mode ----------------------------------------------------------------------------------
    def _sm_generic_event_handler(self, client, req):
        started = time.perf_counter()
        with ACKS.acking():
            new_event = self._sm_ack_first(client, req, started)
        if new_event is not None:  # the work, once acked, by the event workers
            self._socket_event_workers().submit(self._dispatch_event, new_event, new_event["event_id"])

    def _socket_event_workers(self) -> "Workers":
        workers = getattr(self, "_event_workers", None)
        if workers is None:
            with _LATER_LOCK:
                if getattr(self, "_event_workers", None) is None:
                    self._event_workers = Workers(EVENT_WORKERS, "opg-slack-events")
                workers = self._event_workers
        return workers

    def _sm_ack_first(self, client, req, started: float) -> dict | None:
        """Record and ack a Socket Mode request; returns a new event to handle now."""
        if req.type in ("slash_commands", "interactive"):
            payload = req.payload if isinstance(req.payload, dict) else {}
            ack = self._interaction(payload.get("trigger_id") or req.envelope_id, req.type, payload)
            self._sm_ack(client, req, started, ack or None)
            return None
        if req.type == "events_api":
            # Durable record first, then the ack, then the work (a crash after the ack is replayed at start).
            payload = req.payload if isinstance(req.payload, dict) else {}
            if isinstance(payload.get("event"), dict) and not payload.get("event_id"):
                payload = dict(payload, event_id=req.envelope_id)
            is_new = self._receive_event(payload)
            if is_new is None:
                return None
            try:
                self._sm_ack(client, req, started)
            except Exception as exc:  # the socket went: Slack sends it again, and the inbox calls that a duplicate
                log.warning("The ack of event %s failed (%s); it is recorded and handled all the same",
                            payload.get("event_id"), type(exc).__name__)
            return payload if is_new else None
        self._sm_ack(client, req, started)
        return None

    @staticmethod
    def _sm_ack(client, req, started: float, payload=None) -> None:
        client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id, payload=payload))
        observe_ack(req.type, started)

    # -- HTTP mode ------------------------------------------------------------------------------------
    def _setup_event_callbacks(self):
        """HTTP mode: the plugin's web server routes Slack's requests to `handle_http` (HTTP_PATHS)."""
        self._verifier = SignatureVerifier(self.signing_secret)
        self._event_workers = Workers(EVENT_WORKERS, "opg-slack-events")
        self.serves_http = True
        self.connect_callback()  # errbot activates plugins here in HTTP mode

    def handle_http(self, path: str, body: bytes, headers) -> tuple[int, dict | None]:
        """One signed request from Slack: (status, JSON body or None). An event is acked once it is
        recorded and handled afterwards, so that the answer never waits for the work (Slack allows 3 s)."""
        started = time.perf_counter()
        try:
            with ACKS.acking():
                return self._answer_http(path, body, headers)
        finally:
            kind = HTTP_PATHS.get(path, "")
            observe_ack({"events": "events_api", "commands": "slash_commands"}.get(kind, kind), started)

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
