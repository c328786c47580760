"""Slack's rate limits, kept on our side so that Slack never has to refuse us (api.slack.com/apis/rate-limits).

  * chat.postMessage: about one message per second per channel, with short bursts: a token bucket per
    channel (BURST messages, refilled at RATE a second), a little under Slack's own.
  * Other methods by their tier, per minute for the whole workspace (the bot's token): Tier 2 20, Tier 3 50,
    Tier 4 100; we stay a few calls under each.

`wait(method, channel)` says how long a call must wait and, when it may go now, counts it. The gateway sleeps
that long before the call (short waits) or gives up with a `ratelimited` of its own (the outbox tries again).
The outbox's acknowledgements ask `post_wait` first, so that they wait as pending items (and merge) instead.
"""
from __future__ import annotations

import threading
import time
from collections import deque

WINDOW = 60.0
RATE = 1.0    # chat.postMessage per second per channel
BURST = 4     # Slack allows bursts "for short periods" (its fake: 10): two replicas bursting at once stay within
TIER = {2: 18, 3: 45, 4: 95}  # calls per minute: Slack's 20, 50, 100 less a margin
# The tiers of the methods the bot calls (Slack's method pages); "Special" ones and the rest are not limited.
METHOD_TIER = {
    "chat.update": 3, "chat.postEphemeral": 4, "reactions.add": 3, "conversations.open": 3,
    "conversations.info": 3, "conversations.members": 4, "conversations.list": 2, "conversations.create": 2,
    "conversations.invite": 3, "conversations.join": 3, "conversations.setTopic": 2, "conversations.archive": 2,
    "conversations.unarchive": 2, "conversations.history": 3, "conversations.replies": 3, "users.info": 4,
    "views.open": 4, "views.update": 4, "views.push": 4, "bookmarks.add": 2, "bookmarks.edit": 2,
    "bookmarks.list": 3, "usergroups.users.list": 2, "pins.list": 2,
}


class Pace:
    def __init__(self, clock=time.monotonic, rate: float = RATE, burst: int = BURST):
        self._clock = clock
        self.rate, self.burst = rate, burst
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}
        self._windows: dict[str, deque] = {}

    def limit(self, method: str) -> int | None:
        tier = METHOD_TIER.get(method)
        return TIER[tier] if tier else None

    def wait(self, method: str, channel: str | None = None) -> float:
        """Seconds before this call may go (0: it goes now, and is counted)."""
        with self._lock:
            if method == "chat.postMessage":
                return self._bucket(channel or "?", take=True)
            limit = self.limit(method)
            if limit is None:
                return 0.0
            hits, now = self._window(method), self._clock()
            if len(hits) >= limit:
                return max(0.01, WINDOW - (now - hits[0]))
            hits.append(now)
            return 0.0

    def post_wait(self, channel: str) -> float:
        """Seconds before a message could be posted in `channel` (nothing is counted)."""
        with self._lock:
            return self._bucket(channel, take=False)

    def used(self, method: str) -> int:
        """Calls of `method` counted in the last minute."""
        with self._lock:
            return len(self._window(method))

    def _bucket(self, channel: str, take: bool) -> float:
        now = self._clock()
        tokens, last = self._buckets.get(channel, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[channel] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[channel] = (tokens - 1.0 if take else tokens, now)
        return 0.0

    def _window(self, method: str) -> deque:
        hits, now = self._windows.setdefault(method, deque()), self._clock()
        while hits and now - hits[0] >= WINDOW:
            hits.popleft()
        return hits
