"""Plain hooks for counting what happens, with no metrics library in the core: code reports an event
with `emit(name, **fields)`, and an adapter (the Prometheus metrics of opg_incident_web) listens.

Events: `input` (key, kind, outcome received|duplicate), `input_handled` (key), `reminder_sent` (key),
`slack_call` (method, error: None or Slack's error code), `ack` (kind, seconds).
With no listener an emit costs a function call and an empty loop.
"""
from __future__ import annotations

import logging
from typing import Callable

log = logging.getLogger(__name__)
Listener = Callable[[str, dict], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def unsubscribe(listener: Listener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def emit(event: str, **fields) -> None:
    for listener in tuple(_listeners):
        try:
            listener(event, fields)
        except Exception:  # counting must never break the work it counts
            log.exception("A telemetry listener failed on %s", event)
