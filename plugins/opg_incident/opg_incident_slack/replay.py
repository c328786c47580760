"""Crash replay: Slack inputs a process recorded and acked but never handled (it died: a previous run of
this bot, or another replica) are taken over and handled now, through the backend like new ones."""
from __future__ import annotations

import logging

from opg_incident_core import connection, storage

log = logging.getLogger(__name__)


class InputReplay:
    """`replay(received_before)`: take over the unfinished inputs received before then, and handle them."""

    def __init__(self, service, inputs, backend):
        self.service = service
        self.inputs = inputs  # SlackInputs: what this process still holds is not taken over from itself
        self.backend = backend  # OPGSlack: replay_inputs([(key, kind, payload)])

    def __call__(self, received_before) -> None:
        db = storage.database.obj
        try:  # a connection the server dropped is opened again: holding is idempotent, and a claim is per row
            connection.retrying(db, lambda: self.service.hold_inputs(self.inputs.in_hand()),
                                what="renewing the inputs in hand")  # ours, queued behind a storm
            inputs = connection.retrying(db, lambda: self.service.take_over_inputs(received_before),
                                         what="taking over unfinished inputs")
            if inputs:
                log.info("Replaying %d input(s) a process recorded and did not finish", len(inputs))
                self.backend.replay_inputs(inputs)
        except connection.UNAVAILABLE as exc:  # the next round tries again: one line, not a traceback
            log.warning("Replaying unfinished inputs waits: the database is unavailable (%s)",
                        connection.first_line(exc))
        except Exception:
            log.exception("Replaying unfinished inputs failed")
