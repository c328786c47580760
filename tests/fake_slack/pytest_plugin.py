"""pytest hooks: an end-to-end test (marked `e2e`) fails when the app received a Slack error that the
test neither injected nor declared with `fake.expect_error(...)` (ledger.py).

tests/conftest.py imports these hooks. When a test fails, its report shows every Slack error the app
received (injected ones marked), and with FAKE_SLACK_CALLS=1 every Web API call.

Every running FakeSlack is checked, whatever the scope of the fixture that started it: at set-up each
fake's ledger position is recorded (a fake started later is checked from its beginning), right after the
test body the errors since then are checked, and again after teardown (errors from outbox work still in
flight when the body ended, or from the bot's shutdown). A fake shared by a module is checked from where
the previous test's check ended, and the expectations a test declares on it are forgotten after the test.
"""
from __future__ import annotations

import os
import sys

import pytest

_SINCE = pytest.StashKey[dict]()  # id(fake) -> (fake, Mark): where this test's check starts
_BODY = pytest.StashKey[dict]()  # id(fake) -> (fake, Mark): expectations before the test body
_CALL_OK = pytest.StashKey[bool]()
_CHECKED: dict = {}  # id(fake) -> (fake, Mark): where the last check ended, for fakes that outlive a test


def _live_lists() -> list:
    """fake.LIVE of every copy of the module (`fake_slack` and `tests.fake_slack` are both imported)."""
    return [m.LIVE for name, m in list(sys.modules.items())
            if name.endswith("fake_slack.fake") and hasattr(m, "LIVE")]


def _fakes() -> list:
    return [fake for live in _live_lists() for fake in list(live)]


def _marks() -> dict:
    return {id(fake): (fake, fake.ledger_mark()) for fake in _fakes()}


def _mark_of(marks: dict, fake):
    entry = marks.get(id(fake))
    return entry[1] if entry and entry[0] is fake else None


def _is_e2e(item) -> bool:
    return item.get_closest_marker("e2e") is not None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    for live in _live_lists():
        live[:] = [fake for fake in live if fake.running]  # stopped ones are done; module-scoped ones stay
    since = {}
    for fake in _fakes():
        checked = _mark_of(_CHECKED, fake)
        since[id(fake)] = (fake, checked or fake.ledger_mark())
    _CHECKED.clear()
    item.stash[_SINCE] = since


def _check(since: dict) -> None:
    for fake in _fakes():
        fake.assert_no_unexpected_errors(since=_mark_of(since, fake))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    item.stash[_BODY] = _marks()
    try:
        result = yield  # a failing test raises here: its own failure is reported, not ours
    except BaseException:
        errors = [f"{'injected ' if injected else ''}{problem}" for fake in _fakes()
                  for injected, problem in fake.slack_errors(_mark_of(item.stash.get(_SINCE, {}), fake))]
        if errors:
            item.add_report_section("call", "Slack errors the app received", "\n".join(errors))
        if os.environ.get("FAKE_SLACK_CALLS") == "1":  # every Web API call, to see what led there
            item.add_report_section("call", "Slack calls", "\n".join(
                f"{c.time:.3f} {c.method} {c.error or 'ok'} {c.params.get('channel', '')} "
                f"{str(c.params.get('text', ''))[:70]!r}" for fake in _fakes() for c in fake.calls))
        raise
    if _is_e2e(item):
        after_body = _marks()  # before the check: nothing that arrives meanwhile escapes the teardown check
        _check(item.stash.get(_SINCE, {}))
        item.stash[_SINCE] = after_body
    item.stash[_CALL_OK] = True
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield  # the fixtures are torn down: bots stopped, function-scoped fakes closed
    ended = _marks()
    try:
        if _is_e2e(item) and item.stash.get(_CALL_OK, False):
            _check(item.stash.get(_SINCE, {}))
    finally:
        body = item.stash.get(_BODY, {})
        for fake in _fakes():
            mark = _mark_of(body, fake)
            if mark is not None:
                fake.forget_expectations(mark)  # the test's own expectations end with it
        _CHECKED.update({key: entry for key, entry in ended.items() if entry[0].running})
    return result
