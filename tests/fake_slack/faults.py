"""Faults on demand for the Web API: errors, HTTP 429 with Retry-After, 5xx, slow answers,
and optional per-method rate limits (a sliding window, off unless a test sets one)."""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Optional


@dataclass
class Fault:
    """What the next matching call(s) get instead of (or before) the normal answer.

    `status=None` with `error=None` only delays (`delay` seconds) and then answers normally.
    """

    method: str
    status: Optional[int] = 429
    error: Optional[str] = None
    retry_after: Optional[int] = 1
    delay: float = 0.0
    body: Any = None
    times: int = 1

    @property
    def replaces_answer(self) -> bool:
        return self.status is not None or self.error is not None

    def response(self) -> tuple:
        """(status, headers, body) to send."""
        status = self.status if self.status is not None else 200
        headers = {}
        if status == 429:
            headers["retry-after"] = str(self.retry_after if self.retry_after is not None else 1)
        if self.body is not None:
            return status, headers, self.body
        default_error = {429: "ratelimited"}.get(status, "fatal_error" if status >= 500 else None)
        return status, headers, {"ok": False, "error": self.error or default_error}


class Faults:
    """Queued faults per method ("*" matches any) and optional rate limits."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queue: list[Fault] = []
        self._limits: dict[str, tuple] = {}
        self._hits: dict[str, deque] = {}
        self._losses: list = []  # [method, match, left]: the call acts, its answer is lost

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._queue.append(fault)

    def take(self, method: str) -> Optional[Fault]:
        """The first queued fault for `method`, consuming one of its `times`."""
        with self._lock:
            for fault in self._queue:
                if fault.method in (method, "*"):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._queue.remove(fault)
                    return fault
        return None

    def lose(self, method: str, times: int, match: dict) -> list:
        """The next `times` calls of `method` with params matching `match` take effect, but their answer
        is lost (internal_error). Returns [left], counting down."""
        left = [times]
        with self._lock:
            self._losses.append((method, dict(match), left))
        return left

    def take_loss(self, method: str, params: dict) -> bool:
        with self._lock:
            for name, match, left in self._losses:
                if name == method and left[0] > 0 and all(params.get(k) == v for k, v in match.items()):
                    left[0] -= 1
                    return True
        return False

    def rate_limit(self, method: str, limit: Optional[int], period: float = 60.0) -> None:
        """Allow `limit` calls of `method` per `period` seconds; `limit=None` removes the limit."""
        with self._lock:
            if limit is None:
                self._limits.pop(method, None)
            else:
                self._limits[method] = (limit, period)
                self._hits[method] = deque()

    def check_rate(self, method: str) -> Optional[Fault]:
        """A 429 fault when `method` is over its limit, else None (and the call is counted)."""
        with self._lock:
            if method not in self._limits:
                return None
            limit, period = self._limits[method]
            hits, now = self._hits[method], time.monotonic()
            while hits and now - hits[0] >= period:
                hits.popleft()
            if len(hits) >= limit:
                wait = max(1, int(period - (now - hits[0]) + 0.999))
                return Fault(method, 429, retry_after=wait)
            hits.append(now)
            return None

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._losses.clear()
            self._limits.clear()
            self._hits.clear()
