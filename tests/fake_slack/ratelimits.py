"""Slack's own rate limits (api.slack.com/apis/rate-limits), on unless FakeSlack(rate_limits=False).

  * Per method and token, by the method's tier: Tier 1 1, Tier 2 20, Tier 3 50, Tier 4 100 calls per
    minute (Slack says "1+", "20+" ...: the fake allows exactly that many in any 60 s window).
  * chat.postMessage ("Special"): about one message per second per channel, "bursts over that limit
    for short periods" allowed: a token bucket of `channel_burst` messages refilled at `channel_rate`
    per second. Other "Special" methods (auth.test, chat.getPermalink) are not limited.
    Slack does not say how long a burst may be ("if your app continues to exceed the limit over a longer
    period of time it will be rate limited"): 10 here.
Over a limit: HTTP 429, `Retry-After: <seconds>`, `{"ok": false, "error": "ratelimited"}`.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Optional

from .spec import tier_limit

WINDOW = 60.0


class RateLimiter:
    def __init__(self, enabled: bool = True, channel_rate: float = 1.0, channel_burst: int = 10,
                 clock=time.monotonic):
        self.enabled = enabled
        self.channel_rate = channel_rate
        self.channel_burst = channel_burst
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict = {}
        self._buckets: dict = {}
        self.limited: list = []  # (method, key, retry_after) of every 429 the limits gave

    def check(self, method: str, token_kind: Optional[str], channel: Optional[str]) -> Optional[int]:
        """Seconds to wait (the call is refused) or None (the call counts and goes ahead)."""
        if not self.enabled:
            return None
        with self._lock:
            if method == "chat.postMessage":
                wait = self._bucket(channel or "?")
            else:
                limit = tier_limit(method)
                wait = None if limit is None else self._window((token_kind, method), limit)
            if wait is not None:
                self.limited.append((method, channel, wait))
            return wait

    def _window(self, key: tuple, limit: int) -> Optional[int]:
        hits, now = self._windows.setdefault(key, deque()), self._clock()
        while hits and now - hits[0] >= WINDOW:
            hits.popleft()
        if len(hits) >= limit:
            return max(1, math.ceil(WINDOW - (now - hits[0])))
        hits.append(now)
        return None

    def _bucket(self, channel: str) -> Optional[int]:
        now = self._clock()
        tokens, last = self._buckets.get(channel, (float(self.channel_burst), now))
        tokens = min(float(self.channel_burst), tokens + (now - last) * self.channel_rate)
        if tokens < 1.0:
            self._buckets[channel] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.channel_rate))
        self._buckets[channel] = (tokens - 1.0, now)
        return None
