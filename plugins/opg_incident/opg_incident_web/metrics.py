"""Prometheus metrics (prometheus_client) for opg-incident; an adapter: the core only emits plain
telemetry events (opg_incident_core.telemetry) and answers counting queries (opg_incident_core.health).

Counted in this process: inputs received / duplicate / handled by kind, Slack Web API calls and errors by
method and error, how long Slack waited for its ack, reminders sent. Read from the database at each
scrape (the same for every replica): inbox backlog and lag, outbox depth, oldest age and failures, open
incidents by severity.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector

from opg_incident_core import health, storage, telemetry

ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0)
REMEMBERED_KEYS = 10_000  # inputs whose kind is kept until they are handled


class Metrics:
    """The metrics of one process, in a registry of their own. `close()` stops listening."""

    def __init__(self, clock: Callable, settings: Callable | None = None, inbox_window_minutes: int = 60):
        self.registry = CollectorRegistry()
        r = self.registry
        self.inputs_received = Counter("opg_incident_inputs_received", "Chat inputs recorded for the first time",
                                       ["kind"], registry=r)
        self.inputs_duplicate = Counter("opg_incident_inputs_duplicate", "Chat inputs delivered again (not redone)",
                                        ["kind"], registry=r)
        self.inputs_handled = Counter("opg_incident_inputs_handled", "Chat inputs handled by this process",
                                      ["kind"], registry=r)
        self.slack_calls = Counter("opg_incident_slack_api_calls", "Slack Web API calls", ["method"], registry=r)
        self.slack_errors = Counter("opg_incident_slack_api_errors", "Slack Web API calls that failed",
                                    ["method", "error"], registry=r)
        self.ack_seconds = Histogram("opg_incident_ack_seconds", "Time from receiving a Slack input to its ack",
                                     ["kind"], buckets=ACK_BUCKETS, registry=r)
        self.reminders_sent = Counter("opg_incident_reminders_sent", "Reminders sent by this process",
                                      ["reminder"], registry=r)
        ProcessCollector(registry=r)
        r.register(_DatabaseCollector(clock, settings, inbox_window_minutes))
        self._kinds: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        telemetry.subscribe(self.record)

    def close(self) -> None:
        telemetry.unsubscribe(self.record)

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def record(self, event: str, fields: dict) -> None:
        if event == "input":
            kind = fields.get("kind") or "unknown"
            if fields.get("outcome") == "duplicate":
                self.inputs_duplicate.labels(kind).inc()
                return
            self.inputs_received.labels(kind).inc()
            with self._lock:
                self._kinds[fields.get("key")] = kind
                while len(self._kinds) > REMEMBERED_KEYS:
                    self._kinds.popitem(last=False)
        elif event == "input_handled":
            with self._lock:
                kind = self._kinds.pop(fields.get("key"), "replayed")  # received by an earlier run or a replica
            self.inputs_handled.labels(kind).inc()
        elif event == "slack_call":
            self.slack_calls.labels(fields.get("method") or "unknown").inc()
            if fields.get("error"):
                self.slack_errors.labels(fields.get("method") or "unknown", fields["error"]).inc()
        elif event == "ack":
            self.ack_seconds.labels(fields.get("kind") or "unknown").observe(float(fields.get("seconds") or 0.0))
        elif event == "reminder_sent":
            self.reminders_sent.labels(fields.get("key") or "unknown").inc()


class _DatabaseCollector:
    """Gauges read from the database at each scrape; `opg_incident_database_up` 0 when it cannot be read."""

    def __init__(self, clock: Callable, settings: Callable | None, inbox_window_minutes: int):
        self.clock, self.settings, self.window = clock, settings, inbox_window_minutes

    def describe(self):
        return []  # no collection at registration

    def collect(self):
        up = GaugeMetricFamily("opg_incident_database_up", "1 when the database answered this scrape")
        db = storage.database.obj
        opened = db is not None and db.is_closed()
        try:
            now = self.clock()
            inbox, out, open_by_severity = (health.inbox_state(now, self.window), health.outbox_state(now),
                                            health.open_incidents())
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        finally:
            if opened and not db.is_closed():
                db.close()  # a scrape thread keeps no connection
        up.add_metric([], 1)
        yield up
        yield _gauge("opg_incident_inbox_unhandled",
                     f"Inputs recorded in the last {self.window} minutes and not handled yet", inbox.pending)
        yield _gauge("opg_incident_inbox_lag_seconds", "Age of the oldest of those inputs", inbox.oldest_age_seconds)
        yield _gauge("opg_incident_outbox_depth", "Outbox items waiting to be sent to Slack", out.pending)
        yield _gauge("opg_incident_outbox_oldest_age_seconds", "Age of the oldest waiting outbox item",
                     out.oldest_age_seconds)
        yield _gauge("opg_incident_outbox_overdue_seconds", "How long the most overdue outbox item has been due "
                     "and not sent", out.overdue_seconds)
        yield _gauge("opg_incident_outbox_failed", "Outbox items given up after every retry (kept 14 days)",
                     out.failed)
        family = GaugeMetricFamily("opg_incident_open_incidents", "Open incidents (drills included) by severity",
                                   labels=["severity"])
        known = [s.key for s in self.settings().severities] if self.settings else []
        for severity in dict.fromkeys([*known, *open_by_severity]):
            family.add_metric([severity or "none"], open_by_severity.get(severity, 0))
        if None not in open_by_severity:
            family.add_metric(["none"], 0)
        yield family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


_process_metrics: Metrics | None = None


def process_metrics(clock: Callable, settings: Callable | None = None) -> Metrics:
    """The metrics of this process, made once and kept across reloads of the plugin."""
    global _process_metrics
    if _process_metrics is None:
        _process_metrics = Metrics(clock, settings)
    return _process_metrics
