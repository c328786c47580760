"""The plugin's poll (errbot's poller, every INCIDENT_POLL_SECONDS): handovers nobody answered expire,
old inputs are forgotten, inputs of a replica that died are taken over, reminders and check-ins fall due,
and channels are archived on schedule."""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time

from opg_incident_logs import about

log = logging.getLogger(__name__)
PRUNE_EVERY = 24 * 3600  # seconds between housekeeping runs


class Schedule:
    def __init__(self, service, settings, reminders, effects=None, replay=None, lease_seconds: float = 30.0,
                 pruned_at: float = 0.0):
        self.service = service
        self.settings = settings  # () -> the current Settings
        self.reminders = reminders  # ReminderSchedule
        self.effects = effects  # None on the Text console: no channels to remind
        self.replay = replay  # InputReplay, with Slack: (received_before) -> None
        self.lease_seconds = lease_seconds
        self.pruned_at = pruned_at  # time.monotonic() of the last housekeeping

    def tick(self) -> None:
        """Every poll: expire unanswered handovers, send due reminders and check-ins, archive on schedule."""
        for outcome in self.service.expire_handovers():
            with about(outcome.incident.number):  # log lines name the incident
                log.info("A handover offer expired unanswered")
                if self.effects is not None:
                    self.effects.after(outcome)
        if time.monotonic() - self.pruned_at > PRUNE_EVERY:
            self.pruned_at = time.monotonic()
            log.info("Housekeeping: forgot %d old inputs and sent messages", self.service.prune())
        if self.effects is None:
            return  # the Text console has no channels to remind
        if self.replay is not None:  # inputs of a replica that died (held longer than a lease)
            self.replay(self.service.now() - dt.timedelta(seconds=self.lease_seconds))
        for reminder in self.reminders.due():
            with about(reminder.number):
                log.debug("Reminder %s is due", reminder.key)  # every poll until it is sent: DEBUG
                self.effects.job("remind", reminder.number, dataclasses.asdict(reminder),
                                 coalesce_key=f"remind:{reminder.number}:{reminder.key}")
        archive = self.settings().archive
        if archive.when == "after_delay":
            for number in self.service.due_for_archive(archive.delay_minutes):
                with about(number):
                    log.debug("The channel is due for archiving")
                    self.effects.job("archive", number, coalesce_key=f"archive:{number}")
