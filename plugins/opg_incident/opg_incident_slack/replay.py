"""Crash replay: Slack inputs a process recorded and acked but never handled (it died: a previous run of
this bot, or another replica) are taken over and handled now, through the backend like new ones."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class InputReplay:
    """`replay(received_before)`: take over the unfinished inputs received before then, and handle them."""

    def __init__(self, service, inputs, backend):
        self.service = service
        self.inputs = inputs  # SlackInputs: what this process still holds is not taken over from itself
        self.backend = backend  # OPGSlack: replay_inputs([(key, kind, payload)])

    def __call__(self, received_before) -> None:
        try:
            self.service.hold_inputs(self.inputs.in_hand())  # ours, queued behind a storm: lease renewed
            inputs = self.service.take_over_inputs(received_before)
            if inputs:
                log.info("Replaying %d input(s) a process recorded and did not finish", len(inputs))
                self.backend.replay_inputs(inputs)
        except Exception:
            log.exception("Replaying unfinished inputs failed")
