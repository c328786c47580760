"""Every Slack error the app received, and which of them the test asked for.

The fake knows what it injected (fail_next, delay_next, rate_limit: `Call.injected`); a test declares
the errors it provokes on purpose with `fake.expect_error("not_in_channel")` (optionally per method, or
only for some deliveries: `envelopes=[...]`).
Anything else is a refusal the app got from Slack that nobody planned, which the end-to-end tests
must not pass over (the pytest hook in pytest_plugin.py fails them):
  * a Web API answer with `ok: false` or an HTTP error status (rate limits included);
  * a slash command or interaction acked after Slack's 3 s (Slack shows the person
    `operation_timeout` and ignores the ack);
  * a response_url post Slack refused;
  * an answer riding on an ack that Slack refuses (a slash command's reply with invalid blocks, a
    view_submission's response_action with an invalid view or errors for no input block).

`ledger_mark()` is a position in all of these; `slack_errors(since=mark)` lists only what came after it
(the pytest hook checks each test from its own mark, so a fake shared by a module is checked per test).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable, Optional


@dataclass
class Problem:
    error: str
    method: str
    detail: str
    envelope_id: Optional[str] = None  # the delivery it is about (late acks, refused ack answers)

    def __str__(self) -> str:
        return f"{self.method}: {self.error} ({self.detail})"


@dataclass(frozen=True)
class Mark:
    """How far the ledger went: failed calls, per delivery (failures, acks), refused hooks and ack answers,
    and how many expectations were declared."""
    calls: int
    deliveries: dict
    hooks: int
    answers: int
    expected: int


class ErrorLedger:
    """Mixin for FakeSlack (needs calls_log, log)."""

    def _init_ledger(self) -> None:
        self._expected: list = []
        self._ledger_lock = threading.Lock()
        self.hook_errors: list = []  # (status, text, url kind) of refused response_url posts
        self.answer_errors: list = []  # (error, what, detail, envelope id) of answers on acks Slack refused

    def expect_error(self, error: str, method: Optional[str] = None, *,
                     envelopes: Optional[Iterable[str]] = None) -> None:
        """Declare that the app may receive `error` (from `method`, or from any) in this test; with
        `envelopes`, only for those deliveries (late acks, refused ack answers)."""
        with self._ledger_lock:
            self._expected.append((error, method, None if envelopes is None else frozenset(envelopes)))

    def _expected_error(self, problem: Problem) -> bool:
        with self._ledger_lock:
            return any(e == problem.error and m in (None, problem.method)
                       and (ids is None or problem.envelope_id in ids) for e, m, ids in self._expected)

    def ledger_mark(self) -> Mark:
        with self._ledger_lock:
            expected = len(self._expected)
        return Mark(self.calls_log.failed_count(),
                    {d.envelope_id: (len(d.failures), len(d.acks)) for d in self.log.all()},
                    len(self.hook_errors), len(self.answer_errors), expected)

    def forget_expectations(self, mark: Mark) -> None:
        """Drop the expectations declared after `mark` (a test's own, on a fake that outlives it)."""
        with self._ledger_lock:
            del self._expected[mark.expected:]

    def slack_errors(self, since: Optional[Mark] = None) -> list:
        """Every Problem the app met (after `since`), injected or not: (injected, Problem)."""
        problems = []
        for call in self.calls_log.failed(since.calls if since else 0):
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
            failures, acks = since.deliveries.get(delivery.envelope_id, (0, 0)) if since else (0, 0)
            kind = delivery.payload.get("command") or delivery.payload.get("type") or delivery.type
            if "http_timeout" in delivery.failures[failures:]:
                problems.append((False, Problem("operation_timeout", f"ack of {kind}", "HTTP answer too late",
                                                delivery.envelope_id)))
            for ack in delivery.acks[acks:]:
                if ack.late:
                    problems.append((False, Problem("operation_timeout", f"ack of {kind}",
                                                    f"acked after {ack.latency:.2f}s", delivery.envelope_id)))
        for status, text, kind in list(self.hook_errors)[since.hooks if since else 0:]:
            problems.append((False, Problem(text, f"response_url ({kind})", f"HTTP {status}")))
        for error, what, detail, envelope_id in list(self.answer_errors)[since.answers if since else 0:]:
            problems.append((False, Problem(error, what, detail, envelope_id)))
        return problems

    def unexpected_errors(self, since: Optional[Mark] = None) -> list:
        """Problems neither injected by the fake nor declared with expect_error."""
        return [p for injected, p in self.slack_errors(since)
                if not injected and not self._expected_error(p)]

    def assert_no_unexpected_errors(self, since: Optional[Mark] = None) -> None:
        unexpected = self.unexpected_errors(since)
        if unexpected:
            raise AssertionError("the app received Slack errors the test did not inject or expect "
                                 "(declare wanted ones with fake.expect_error(...)):\n  "
                                 + "\n  ".join(str(p) for p in unexpected))
