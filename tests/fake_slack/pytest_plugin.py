"""pytest hooks: an end-to-end test (marked `e2e`) fails when the app received a Slack error that the
test neither injected nor declared with `fake.expect_error(...)` (ledger.py).

tests/conftest.py imports these hooks. When a test fails, its report shows every Slack error the app
received (injected ones marked), and with FAKE_SLACK_CALLS=1 every Web API call. The check runs right after the test body, on every FakeSlack
started since the test's set-up began (fixtures included).
"""
from __future__ import annotations

import os
import sys

import pytest


def _live_lists() -> list:
    """fake.LIVE of every copy of the module (`fake_slack` and `tests.fake_slack` are both imported)."""
    return [m.LIVE for name, m in list(sys.modules.items())
            if name.endswith("fake_slack.fake") and hasattr(m, "LIVE")]


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for live in _live_lists():
        live.clear()


def _fakes() -> list:
    return [fake for live in _live_lists() for fake in list(live)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    try:
        result = yield  # a failing test raises here: its own failure is reported, not ours
    except BaseException:
        errors = [f"{'injected ' if injected else ''}{problem}"
                  for fake in _fakes() for injected, problem in fake.slack_errors()]
        if errors:
            item.add_report_section("call", "Slack errors the app received", "\n".join(errors))
        if os.environ.get("FAKE_SLACK_CALLS") == "1":  # every Web API call, to see what led there
            item.add_report_section("call", "Slack calls", "\n".join(
                f"{c.time:.3f} {c.method} {c.error or 'ok'} {c.params.get('channel', '')} "
                f"{str(c.params.get('text', ''))[:70]!r}" for fake in _fakes() for c in fake.calls))
        raise
    if item.get_closest_marker("e2e") is not None:
        for fake in _fakes():
            fake.assert_no_unexpected_errors()
    return result
