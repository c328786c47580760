"""Slack's limits in the fake: ack deadlines, rate limits by tier and per channel, and the hook that fails
an end-to-end test on a Slack error nobody planned (issue 13 part 1)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.response import SocketModeResponse

from fake_slack import FakeSlack

ALICE = "U0ALICE001"
TESTS = Path(__file__).resolve().parent


@pytest.fixture
def fake():
    with FakeSlack() as fake:
        fake.add_user(ALICE, "alice")
        fake.add_channel("general", members=[ALICE], channel_id="C0GENERAL1")
        fake.add_channel("random", members=[ALICE], channel_id="C0RANDOM01")
        yield fake
        assert not fake.internal_errors


@pytest.fixture
def web(fake):
    return WebClient(token=fake.bot_token, base_url=fake.api_url)


def limited(call, **kwargs) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        call(**kwargs)
    assert info.value.response.status_code == 429 and info.value.response["error"] == "ratelimited"
    return info.value


# --- a Socket Mode ack after 3 s does not count ---------------------------------------------------------
def test_a_socket_mode_ack_after_3_seconds_does_not_count(fake):
    delays = []

    def answer(client, req):
        time.sleep(delays.pop(0))
        client.send_socket_mode_response(SocketModeResponse(req.envelope_id, payload={"text": "on it"}))

    app = SocketModeClient(app_token=fake.app_token, web_client=WebClient(token=fake.bot_token,
                                                                           base_url=fake.api_url))
    app.socket_mode_request_listeners.append(answer)
    app.connect()
    try:
        fake.wait_until_connected()
        delays[:] = [0.0, 3.3]
        quick = fake.slash_command("/opg-incident", "db down", ALICE, "C0GENERAL1")
        assert quick.ok and [m["text"] for m in fake.ephemeral_for(ALICE)] == ["on it"]
        late = fake.slash_command("/opg-incident", "db down", ALICE, "C0GENERAL1")
        assert late.late and not late.ok and late.latency > 3  # Slack showed the person operation_timeout
        assert len(fake.ephemeral_for(ALICE)) == 1  # the late ack's reply is not shown
        assert [p.error for p in fake.unexpected_errors()] == ["operation_timeout"]
        fake.expect_error("operation_timeout", envelopes=[quick.envelope_id])  # another delivery's: no cover
        assert [p.envelope_id for p in fake.unexpected_errors()] == [late.envelope_id]
        fake.expect_error("operation_timeout", envelopes=[late.envelope_id])
        assert fake.unexpected_errors() == []
    finally:
        app.auto_reconnect_enabled, app.closed = False, True
        fake.drop_connections()
        app.close()


# --- rate limits --------------------------------------------------------------------------------------
def test_methods_are_rate_limited_by_their_tier(fake, web):
    for i in range(20):  # conversations.create is Tier 2: 20 per minute
        web.conversations_create(name=f"inc-{i}")
    error = limited(web.conversations_create, name="inc-20")
    assert int(error.response.headers["retry-after"]) >= 50  # the window frees a slot in about a minute
    assert web.conversations_info(channel="C0GENERAL1")["ok"]  # Tier 3: counted on its own
    assert [c.error for c in fake.calls][-2:] == ["ratelimited", None]
    assert [p.error for p in fake.unexpected_errors()] == ["ratelimited"]


def test_chat_post_message_is_paced_per_channel_with_short_bursts(fake, web):
    for i in range(10):  # a burst of 10 goes through
        web.chat_postMessage(channel="C0GENERAL1", text=f"reply {i}")
    error = limited(web.chat_postMessage, channel="C0GENERAL1", text="one too many")
    assert error.response.headers["retry-after"] == "1"
    assert web.chat_postMessage(channel="C0RANDOM01", text="another channel")["ok"]
    time.sleep(1.05)  # one message per second per channel
    assert web.chat_postMessage(channel="C0GENERAL1", text="a second later")["ok"]
    limited(web.chat_postMessage, channel="general", text="by name: the same channel")
    with FakeSlack(relax=("rate_limits",)) as lenient:
        lenient.add_channel("general", channel_id="C0GENERAL1")
        bot = WebClient(token=lenient.bot_token, base_url=lenient.api_url)
        assert all(bot.chat_postMessage(channel="C0GENERAL1", text=str(i))["ok"] for i in range(30))


# --- errors the app received: injected, expected, unexpected -------------------------------------------
def test_the_ledger_tells_injected_expected_and_unexpected_errors_apart(fake, web):
    fake.fail_next("chat.postMessage", error="is_archived")
    with pytest.raises(SlackApiError):
        web.chat_postMessage(channel="C0GENERAL1", text="injected")
    with pytest.raises(SlackApiError):
        web.conversations_join(channel="C0NOPE0001")
    with pytest.raises(SlackApiError):
        web.chat_postEphemeral(channel="C0GENERAL1", user="U0NOPE0001", text="x")
    assert [(p.method, p.error) for p in fake.unexpected_errors()] == [
        ("conversations.join", "channel_not_found"), ("chat.postEphemeral", "user_not_found")]
    fake.expect_error("channel_not_found", "conversations.join")
    fake.expect_error("user_not_found")
    fake.assert_no_unexpected_errors()
    assert [injected for injected, _ in fake.slack_errors()] == [True, False, False]


HOOKED = '''
import pytest
from slack_sdk import WebClient
from fake_slack import FakeSlack

pytestmark = pytest.mark.e2e


@pytest.fixture
def web():
    with FakeSlack() as fake:
        yield fake, WebClient(token=fake.bot_token, base_url=fake.api_url)


def _refused(web):
    try:
        web.conversations_info(channel="C0NOPE0001")
    except Exception:
        pass


def test_unplanned(web):
    _refused(web[1])


def test_declared(web):
    web[0].expect_error("channel_not_found")
    _refused(web[1])


def test_injected(web):
    web[0].fail_next("conversations.info", error="channel_not_found")
    _refused(web[1])
'''


def run_hooked(tmp_path, name: str, source: str) -> str:
    """pytest on one test file with the hooks of pytest_plugin.py; its -rfE output."""
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from fake_slack.pytest_plugin import (  # noqa: F401
            pytest_runtest_call, pytest_runtest_setup, pytest_runtest_teardown)
    '''))
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    e2e: end to end\n")
    (tmp_path / name).write_text(source)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    return run.stdout + run.stderr


def test_an_end_to_end_test_fails_on_a_slack_error_it_did_not_inject_or_expect(tmp_path):
    out = run_hooked(tmp_path, "test_hooked.py", HOOKED)
    assert "1 failed, 2 passed" in out, out
    assert "FAILED test_hooked.py::test_unplanned" in out
    assert "conversations.info: channel_not_found" in out


SHARED = '''
import threading

import pytest
from slack_sdk import WebClient
from fake_slack import FakeSlack

pytestmark = pytest.mark.e2e


def _refused(web, channel="C0NOPE0001"):
    try:
        web.conversations_info(channel=channel)
    except Exception:
        pass


@pytest.fixture(scope="module")
def shared():
    with FakeSlack() as fake:
        web = WebClient(token=fake.bot_token, base_url=fake.api_url)
        yield fake, web
        _refused(web, "C0SHUTDOWN")  # the bot meets a refusal as it stops


@pytest.fixture
def in_flight():
    """Work the test started that is still running when its body ends (the outbox, say)."""
    threads = []
    yield threads
    for thread in threads:
        thread.join()


def test_1_clean(shared):
    pass


def test_2_unplanned(shared):
    _refused(shared[1])


def test_3_clean_after_an_error(shared):
    pass


def test_4_declared(shared):
    shared[0].expect_error("channel_not_found")
    _refused(shared[1])


def test_5_the_expectation_ended_with_its_test(shared):
    _refused(shared[1], "C0AFTER001")


def test_6_an_error_after_the_body(shared, in_flight):
    late = threading.Timer(0.3, _refused, (shared[1], "C0INFLIGHT"))
    late.start()
    in_flight.append(late)


def test_7_last(shared):
    pass
'''


def test_a_fake_shared_by_a_module_is_checked_in_every_test_and_after_teardown(tmp_path):
    """A module-scoped fake is checked in its 2nd and later tests, from where the previous test ended
    (test 3 is not blamed for test 2's error); a test's expect_error ends with it; an error that comes
    after the test body (work in flight) or while the fixtures stop fails the test at teardown."""
    out = run_hooked(tmp_path, "test_shared.py", SHARED)
    assert "2 failed, 5 passed, 2 errors" in out, out
    assert "FAILED test_shared.py::test_2_unplanned" in out
    assert "FAILED test_shared.py::test_5_the_expectation_ended_with_its_test" in out
    assert "channel C0AFTER001" in out
    assert "ERROR test_shared.py::test_6_an_error_after_the_body" in out
    assert "channel C0INFLIGHT" in out
    assert "ERROR test_shared.py::test_7_last" in out
    assert "channel C0SHUTDOWN" in out
