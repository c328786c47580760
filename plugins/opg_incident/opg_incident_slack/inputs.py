"""The plugin's side of the OPGSlack backend's input contract (`InputHandler` in backends/opg_slack): record
each Slack input once, hand it to the interactions, and mark it handled exactly once — in the transaction
of the change it makes, or after handling when it made none."""
from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict

from opg_incident_core import outbox

log = logging.getLogger(__name__)
NEW, DUPLICATE = "new", "duplicate"
REMEMBERED = 10_000  # inputs handled lately by this process (the backend asks before marking one)


class SlackInputs:
    def __init__(self, service, interactions):
        self.service = service
        self.interactions = interactions
        self._done: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    # -- the contract -------------------------------------------------------------------------------
    def record(self, key: str, kind: str, payload: dict | None) -> str:
        return NEW if self.service.record_input(key, kind, payload) else DUPLICATE

    def handle_event(self, key: str | None, event: dict) -> None:
        with self.handling(None, key):
            self.interactions.on_event(event)

    def handle_interaction(self, key: str | None, kind: str, payload: dict) -> dict | None:
        # No origin channel: a click or a slash command gets no reply in the channel (a slash command's answer
        # is for the person alone), so what it causes is announced there as usual.
        with self.handling(None, key):
            return self.interactions.on_interaction(kind, payload)

    def handled(self, key: str) -> bool:
        with self._lock:
            return key in self._done

    def processed(self, key: str) -> None:
        self.service.mark_processed(key)

    # -- for the plugin's commands ------------------------------------------------------------------
    @contextlib.contextmanager
    def handling(self, channel: str | None, key: str | None):
        """Handle input `key` from `channel`: a change made inside marks it in its own transaction; when
        none did, it is marked on the way out (also after a refusal). Once either way."""
        with outbox.origin(channel, key):
            try:
                yield
            finally:
                if key:
                    if outbox.input_to_mark() is not None:  # no change took it
                        self.service.mark_processed(key)
                    self._remember(key)

    def _remember(self, key: str) -> None:
        with self._lock:
            self._done[key] = None
            if len(self._done) > REMEMBERED:
                self._done.popitem(last=False)
