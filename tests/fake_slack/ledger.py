"""Every Slack error the app received, and which of them the test asked for.

The fake knows what it injected (fail_next, delay_next, rate_limit: `Call.injected`); a test declares
the errors it provokes on purpose with `fake.expect_error("not_in_channel")` (optionally per method).
Anything else is a refusal the app got from Slack that nobody planned, which the end-to-end tests
must not pass over (the pytest hook in pytest_plugin.py fails them):
  * a Web API answer with `ok: false` or an HTTP error status (rate limits included);
  * a slash command or interaction acked after Slack's 3 s (Slack shows the person
    `operation_timeout` and ignores the ack);
  * a response_url post Slack refused.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional


@dataclass
class Problem:
    error: str
    method: str
    detail: str

    def __str__(self) -> str:
        return f"{self.method}: {self.error} ({self.detail})"


class ErrorLedger:
    """Mixin for FakeSlack (needs calls_log, log, hook_errors)."""

    def _init_ledger(self) -> None:
        self._expected: list = []
        self._ledger_lock = threading.Lock()
        self.hook_errors: list = []  # (status, text, url kind) of refused response_url posts

    def expect_error(self, error: str, method: Optional[str] = None) -> None:
        """Declare that the app may receive `error` (from `method`, or from any) in this test."""
        with self._ledger_lock:
            self._expected.append((error, method))

    def _expected_error(self, error: str, method: str) -> bool:
        with self._ledger_lock:
            return any(e == error and m in (None, method) for e, m in self._expected)

    def slack_errors(self) -> list:
        """Every Problem the app met, injected or not."""
        problems = []
        for call in self.calls_log.all():
            if call.ok:
                continue
            error = call.error or f"http_{call.status}"
            detail = f"HTTP {call.status}" + (", injected" if call.injected else "")
            where = call.params.get("channel") or call.params.get("channel_id")
            if isinstance(where, str):
                detail += f", channel {where}"
            if call.response and isinstance(call.response, dict) and call.response.get("needed"):
                detail += f", needed {call.response['needed']}"
            problems.append((call.injected, Problem(error, call.method, detail)))
        for delivery in self.log.all():
            if delivery.type == "events_api":
                continue
            if "http_timeout" in delivery.failures:
                kind = delivery.payload.get("command") or delivery.payload.get("type") or delivery.type
                problems.append((False, Problem("operation_timeout", f"ack of {kind}", "HTTP answer too late")))
            for ack in delivery.acks:
                if ack.late:
                    kind = delivery.payload.get("command") or delivery.payload.get("type") or delivery.type
                    problems.append((False, Problem("operation_timeout", f"ack of {kind}",
                                                    f"acked after {ack.latency:.2f}s")))
        for status, text, kind in list(self.hook_errors):
            problems.append((False, Problem(text, f"response_url ({kind})", f"HTTP {status}")))
        return problems

    def unexpected_errors(self) -> list:
        """Problems neither injected by the fake nor declared with expect_error."""
        return [p for injected, p in self.slack_errors()
                if not injected and not self._expected_error(p.error, p.method)]

    def assert_no_unexpected_errors(self) -> None:
        unexpected = self.unexpected_errors()
        if unexpected:
            raise AssertionError("the app received Slack errors the test did not inject or expect "
                                 "(declare wanted ones with fake.expect_error(...)):\n  "
                                 + "\n  ".join(str(p) for p in unexpected))
