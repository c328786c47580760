"""Delivery of payloads to the app: records, acks, redelivery, and the event-loop thread.

A `Delivery` is one envelope (Socket Mode) or one request (HTTP mode) with every attempt and ack.
Transports (socket_mode.py, http_mode.py) share the redelivery rule: an `events_api` delivery
that is not acked within `ack_timeout` is sent again with `retry_attempt` + 1, up to `max_retries`.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

log = logging.getLogger(__name__)


class AckTimeout(TimeoutError):
    """The app did not acknowledge a delivery in time."""


@dataclass
class Ack:
    """The app's answer to a delivery: a Socket Mode ack frame or an HTTP response.

    `payload` is the ack's `payload` (Socket Mode) or the JSON response body (HTTP, else None);
    `latency` is seconds since the attempt it answers; `status` is 200 for Socket Mode acks.
    """

    envelope_id: str
    payload: Any
    status: int
    body: str
    time: float
    latency: float
    retry_attempt: int
    connection_id: Optional[int] = None
    headers: dict = field(default_factory=dict)
    late: bool = False  # after Slack's deadline: it does not count (Slack already gave up)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300 and not self.late


@dataclass
class Attempt:
    """One send of a delivery."""

    time: float
    monotonic: float
    retry_attempt: int
    retry_reason: str
    target: Any = None


@dataclass
class Delivery:
    """A payload sent to the app, with its attempts, acks and failures."""

    envelope_id: str
    type: str
    payload: dict
    accepts_response_payload: bool = False
    retry_attempt: int = 0
    retry_reason: str = ""
    auto_retry: bool = True
    attempts: list = field(default_factory=list)
    acks: list = field(default_factory=list)
    failures: list = field(default_factory=list)

    @property
    def event_id(self) -> Optional[str]:
        return self.payload.get("event_id")

    @property
    def acked(self) -> bool:
        return any(ack.ok for ack in self.acks)

    @property
    def duplicate_acks(self) -> bool:
        return len(self.acks) > 1

    def envelope(self) -> dict:
        """The Socket Mode frame for the current attempt."""
        frame = {"envelope_id": self.envelope_id, "type": self.type, "payload": self.payload,
                 "accepts_response_payload": self.accepts_response_payload}
        if self.type == "events_api":
            frame.update(retry_attempt=self.retry_attempt, retry_reason=self.retry_reason)
        return frame

    def last_attempt(self) -> Optional[Attempt]:
        return self.attempts[-1] if self.attempts else None


class DeliveryLog:
    """Every delivery by envelope id, with thread-safe waiting for acks."""

    def __init__(self):
        self._cond = threading.Condition()
        self._deliveries: dict[str, Delivery] = {}
        self.unknown_acks: list[dict] = []

    def new(self, kind: str, payload: dict, accepts_response_payload: bool) -> Delivery:
        delivery = Delivery(str(uuid.uuid4()), kind, payload, accepts_response_payload,
                            auto_retry=kind == "events_api")
        with self._cond:
            self._deliveries[delivery.envelope_id] = delivery
        return delivery

    def get(self, envelope_id: str) -> Delivery:
        with self._cond:
            return self._deliveries[envelope_id]

    def all(self) -> list:
        with self._cond:
            return list(self._deliveries.values())

    def record_ack(self, envelope_id: str, payload: Any, status=200, body="", connection_id=None,
                   headers=None, raw: Optional[dict] = None,
                   deadline: Optional[float] = None) -> Optional[Ack]:
        """Record an answer; with `deadline` (seconds), a later one is kept but marked `late`."""
        with self._cond:
            delivery = self._deliveries.get(envelope_id)
            if delivery is None:
                self.unknown_acks.append(raw or {"envelope_id": envelope_id, "payload": payload})
                return None
            attempt = delivery.last_attempt()
            now = time.monotonic()
            latency = now - attempt.monotonic if attempt else 0.0
            ack = Ack(envelope_id, payload, status, body, time.time(), latency,
                      attempt.retry_attempt if attempt else 0, connection_id, dict(headers or {}),
                      late=deadline is not None and latency > deadline)
            delivery.acks.append(ack)
            self._cond.notify_all()
            return ack

    def record_failure(self, delivery: Delivery, reason: str) -> None:
        with self._cond:
            delivery.failures.append(reason)
            self._cond.notify_all()

    def wait_ack(self, envelope_id: str, timeout: float) -> Ack:
        """The first answer to a delivery; AckTimeout when none comes within `timeout`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            delivery = self._deliveries[envelope_id]
            while not delivery.acks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AckTimeout(f"{delivery.type} {envelope_id} not acked within {timeout}s "
                                     f"(attempts={len(delivery.attempts)}, "
                                     f"failures={delivery.failures})")
                self._cond.wait(remaining)
            return delivery.acks[0]


class LoopThread:
    """An asyncio event loop running in a daemon thread, usable from synchronous tests."""

    def __init__(self, name="fake-slack"):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def start(self) -> None:
        self._thread.start()

    @property
    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def run(self, coro, timeout: float = 10.0) -> Any:
        """Run a coroutine on the loop and wait for its result (not from the loop thread)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def submit(self, coro) -> None:
        """Schedule a coroutine on the loop from any thread, without waiting."""
        if self.in_loop:
            self.loop.create_task(coro)
        else:
            asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, fn, *args) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


INTERACTIVE_DEADLINE = 3.0  # slash commands and interactions: Slack waits 3000 ms for the ack


class Transport:
    """Sends deliveries to the app and redelivers unacked events."""

    def deadline(self, delivery: Delivery) -> float:
        """Seconds Slack waits for the ack of `delivery` (events: ack_timeout, then it redelivers)."""
        return self.ack_timeout if delivery.type == "events_api" else max(INTERACTIVE_DEADLINE,
                                                                          self.ack_timeout)

    def __init__(self, loop: LoopThread, log: DeliveryLog, ack_timeout=3.0, max_retries=3):
        self.loop = loop
        self.log = log
        self.ack_timeout = ack_timeout
        self.max_retries = max_retries

    def deliver(self, delivery: Delivery) -> None:
        self.loop.submit(self._guarded_send(delivery))

    def redeliver(self, delivery: Delivery, reason: str = "timeout") -> None:
        """Send again now with the same envelope/event id and retry_attempt + 1."""
        delivery.retry_attempt += 1
        delivery.retry_reason = reason
        self.loop.submit(self._guarded_send(delivery))

    async def _guarded_send(self, delivery: Delivery) -> None:
        try:
            await self._send(delivery)
        except Exception as exc:  # keep the loop alive; make the failure visible on the delivery
            log.exception("fake Slack could not deliver %s", delivery.envelope_id)
            self.log.record_failure(delivery, f"internal error: {exc!r}")

    async def _send(self, delivery: Delivery) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Release network resources (on the loop)."""

    def _attempt(self, delivery: Delivery, target: Any = None) -> Attempt:
        attempt = Attempt(time.time(), time.monotonic(), delivery.retry_attempt,
                          delivery.retry_reason, target)
        delivery.attempts.append(attempt)
        return attempt

    def _retry_later(self, delivery: Delivery, reason: str, delay: float) -> None:
        """Redeliver after `delay` if the rules allow (events only, attempts left)."""
        if delivery.auto_retry and delivery.retry_attempt < self.max_retries:
            attempt = delivery.retry_attempt
            self.loop.loop.call_later(delay, self._retry_if_current, delivery, attempt, reason)

    def _retry_if_current(self, delivery: Delivery, attempt: int, reason: str) -> None:
        if not delivery.acked and delivery.retry_attempt == attempt:
            self.redeliver(delivery, reason)

    def _watch(self, delivery: Delivery) -> None:
        """Redeliver with retry_reason "timeout" unless acked within ack_timeout."""
        self._retry_later(delivery, "timeout", self.ack_timeout)
