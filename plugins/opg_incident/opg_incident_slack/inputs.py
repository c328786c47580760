"""The plugin's side of the OPGSlack backend's input contract (`InputHandler` in backends/opg_slack): record
each Slack input once, hand it to the interactions, and mark it handled exactly once — in the transaction
of the change it makes, or after handling when it made none."""
from __future__ import annotations

import contextlib
import logging
import sys
from collections import OrderedDict

import threading
import time

import opg_incident_logs
from opg_incident_core import connection, outbox, storage

log = logging.getLogger(__name__)
NEW, DUPLICATE, NOT_READY = "new", "duplicate", "not_ready"
REMEMBERED = 10_000  # inputs handled lately by this process (the backend asks before marking one)
IN_HAND_FOR = 600.0  # seconds an input recorded here stays ours unhandled (then another process may take it)


class SlackInputs:
    def __init__(self, service, interactions, effects=None):
        self.service = service
        self.interactions = interactions
        self.effects = effects
        self._done: OrderedDict[str, None] = OrderedDict()
        self._in_hand: dict[str, float] = {}  # recorded here and not handled yet: key -> time.monotonic()
        self._lock = threading.Lock()

    # -- the contract -------------------------------------------------------------------------------
    def record(self, key: str, kind: str, payload: dict | None) -> str:
        """(An event the database cannot take goes to the local journal and counts as new.)"""
        try:
            new = self.service.record_input(key, kind, payload)
        except connection.UNAVAILABLE as exc:  # not journaled (a click): the person is told (`unrecorded`)
            log.warning("A Slack %s could not be recorded: the database is unavailable (%s)", kind,
                        connection.first_line(exc), extra={"input_key": key})
            return NOT_READY
        if new and key:
            with self._lock:
                self._in_hand[key] = time.monotonic()
        return NEW if new else DUPLICATE

    def in_hand(self) -> list[str]:
        """Inputs this process recorded and has not handled yet (queued behind others in a storm): it is alive
        and will handle them, so no process takes them over (their lease is renewed, Inbox.hold_inputs). Not
        after IN_HAND_FOR: an input stuck that long is left for a takeover."""
        oldest = time.monotonic() - IN_HAND_FOR
        with self._lock:
            for key in [key for key, since in self._in_hand.items() if since <= oldest]:
                log.warning("Input %s was recorded %.0f s ago and is not handled yet: left for a takeover",
                            key, IN_HAND_FOR, extra={"input_key": key})
                del self._in_hand[key]
            return list(self._in_hand)

    def unrecorded(self, kind: str, payload: dict) -> dict | None:
        """The ack of a click or slash command that could not be recorded: the person is told why."""
        if kind == "slash_commands":
            return {"response_type": "ephemeral", "text": connection.NOT_SAVED}
        if payload.get("type") == "view_submission":
            inputs = [b.get("block_id") for b in (payload.get("view") or {}).get("blocks") or []
                      if b.get("type") == "input" and b.get("block_id")]
            return {"response_action": "errors", "errors": {(inputs or ["title"])[0]: connection.NOT_SAVED}}
        user = (payload.get("user") or {}).get("id")
        channel = (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get("channel_id")
        if user and self.effects is not None:
            threading.Thread(target=self._tell_now, args=(user, channel, connection.NOT_SAVED), daemon=True,
                             name="opg-tell").start()  # not through the outbox: the database is down
        return {}

    def _tell_now(self, user, channel, text):
        try:
            self.effects.tell(user, channel, text)
        except Exception as exc:
            log.warning("Could not tell %s that their click was not saved: %s", user, exc)

    def handle_event(self, key: str | None, event: dict) -> None:
        with opg_incident_logs.about(None, key):  # its log lines name the input
            self._handle_event(key, event)

    def _handle_event(self, key: str | None, event: dict) -> None:
        def handle():  # again on a new connection when PostgreSQL dropped it (safe: AlreadyHandled)
            with self.handling(None, key):
                self.interactions.follow_channel_event(event)
        try:
            connection.retrying(storage.database.obj, handle, what="a Slack event")
        except connection.UNAVAILABLE as exc:  # left unhandled in the inbox: taken over and replayed later
            log.warning("Event %s was not handled: the database failed (%s); it is replayed later", key,
                        connection.first_line(exc))

    def handle_interaction(self, key: str | None, kind: str, payload: dict) -> dict | None:
        # No origin channel: a click or a slash command gets no reply in the channel (a slash command's answer
        # is for the person alone), so what it causes is announced there as usual.
        with opg_incident_logs.about(None, key), self.handling(None, key):
            return self.interactions.on_interaction(kind, payload)

    def handled(self, key: str) -> bool:
        with self._lock:
            return key in self._done

    def processed(self, key: str) -> None:
        try:
            self.service.mark_processed(key)
        finally:
            self._let_go(key)

    # -- for the plugin's commands ------------------------------------------------------------------
    @contextlib.contextmanager
    def handling(self, channel: str | None, key: str | None):
        """Handle input `key` from `channel`: a change made inside marks it in its own transaction; when
        none did, it is marked on the way out (also after a refusal). Once either way."""
        with outbox.origin(channel, key):
            failed = True
            try:
                yield
                failed = False
            finally:
                try:
                    if key and not (failed and _database_failed()):
                        if outbox.input_to_mark() is not None:  # no change took it
                            self.service.mark_processed(key)
                        self._remember(key)
                finally:
                    self._let_go(key)

    def _let_go(self, key: str | None) -> None:
        """Handled (or failed: then the inbox keeps it unhandled, for a takeover)."""
        if key:
            with self._lock:
                self._in_hand.pop(key, None)

    def _remember(self, key: str) -> None:
        with self._lock:
            self._done[key] = None
            if len(self._done) > REMEMBERED:
                self._done.popitem(last=False)


def _database_failed() -> bool:
    """Inside a `finally`: is the exception on its way out a database failure? (The input then stays
    unhandled in the inbox and is replayed, or the person was told it was not saved.)"""
    exc = sys.exc_info()[1]
    return isinstance(exc, connection.UNAVAILABLE)
