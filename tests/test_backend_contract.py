"""The OPGSlack backend relies on private parts of errbot-backend-slackv3: these tests fail when they change.

They also drive the subclass's Socket Mode and HTTP entry points without any network, with the plugin's
real input handler (SlackInputs over a real database, SQLite and PostgreSQL) deciding what is a
redelivery.
"""
import hashlib
import hmac
import inspect
import json
import sys
import time
from importlib import metadata
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import Flask
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.request import SocketModeRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends" / "opg_slack"))
import opg_slack  # noqa: E402
import slackv3.slackv3 as slackv3_module  # noqa: E402
from opg_incident_web import register_slack_http  # noqa: E402
from opg_incident_slack.inputs import SlackInputs  # noqa: E402  the plugin's handler: its inbox dedupes


def test_pinned_versions():
    assert metadata.version("errbot") == "6.2.1"
    assert metadata.version("errbot-backend-slackv3") == "0.3.2"
    assert metadata.version("slack_sdk") == "3.48.0"


@pytest.mark.parametrize("name, params", [
    ("_sm_generic_event_handler", ["self", "client", "req"]),
    ("_setup_event_callbacks", ["self"]),
    ("_generic_wrapper", ["self", "event_data"]),
    ("_handle_message", ["self", "webclient", "event"]),
    ("update_alternate_prefixes", ["self"]),
    ("serve_once", ["self"]),
])
def test_private_methods_we_override_still_exist(name, params):
    method = getattr(slackv3_module.SlackBackend, name)
    assert list(inspect.signature(method).parameters) == params


def test_module_builds_its_web_client_from_a_global_we_replace():
    assert "WebClient(token=self.token" in inspect.getsource(slackv3_module.SlackBackend.serve_once)
    assert hasattr(slackv3_module, "WebClient")


def test_socket_mode_connections_go_without_nagle():
    from slack_sdk.socket_mode.builtin import connection
    assert getattr(connection._establish_new_socket_connection, "opg_nodelay", False)
    assert "_establish_new_socket_connection(" in inspect.getsource(connection.Connection.connect)


def test_generic_wrapper_dispatches_by_handler_name():
    source = inspect.getsource(slackv3_module.SlackBackend._generic_wrapper)
    assert 'f"_handle_{event_type}"' in source


def test_only_one_errbot_subclass_in_the_backend_module():
    from errbot.core import ErrBot
    found = [v for v in vars(opg_slack).values() if inspect.isclass(v) and issubclass(v, ErrBot)
             and v.__module__ == opg_slack.__name__]
    assert found == [opg_slack.OPGSlackBackend]
    assert not any(inspect.isclass(v) and issubclass(v, ErrBot) and v is not opg_slack.OPGSlackBackend
                   for v in vars(opg_slack).values())


# -- the subclass's entry points, without a network ------------------------------------------------
class Interactions:
    """Stands in for the plugin's Slack interactions behind its real input handler (SlackInputs: record an
    input once on a real database, refuse a redelivery, mark it handled once), and keeps what it is given."""

    def __init__(self):
        self.events, self.interactions = [], []

    def follow_channel_event(self, event):
        self.events.append(event)

    def on_interaction(self, kind, payload):
        self.interactions.append((kind, payload))
        return {"response_action": "errors", "errors": {"title": "no"}} if kind == "interactive" else None


def inbox() -> dict:
    """The plugin's inbox: key -> handled?"""
    from opg_incident_core import storage

    return {row.key: row.processed_at is not None for row in storage.InboxEntry.select()}


class Client:
    def __init__(self):
        self.responses = []

    def send_socket_mode_response(self, response):
        self.responses.append(response.to_dict())


@pytest.fixture
def backend(service):
    class Probe(opg_slack.OPGSlackBackend):
        plugin_manager = None  # errbot sets it in __init__, which this test skips

    bot = object.__new__(Probe)
    bot.plugin = Interactions()
    bot.register_inputs(SlackInputs(service, bot.plugin))
    bot.signing_secret = "secret"
    bot.bot_config = type("Config", (), {"BOT_PREFIX": "!"})()
    bot.bot_alt_prefixes = ("<@u0bot>",)
    bot._event_workers = type("Inline", (), {"submit": staticmethod(lambda fn, *args: fn(*args))})()  # handled at once
    return bot


def test_socket_mode_interaction_acks_with_the_plugins_answer(backend):
    client = Client()
    req = SocketModeRequest(type="interactive", envelope_id="env-1",
                            payload={"type": "view_submission", "trigger_id": "t1"})
    backend._sm_generic_event_handler(client, req)
    assert client.responses == [{"envelope_id": "env-1",
                                 "payload": {"response_action": "errors", "errors": {"title": "no"}}}]
    backend._sm_generic_event_handler(client, req)  # redelivered: acked, not handled again
    assert len(backend.plugin.interactions) == 1
    assert client.responses[-1] == {"envelope_id": "env-1"}
    assert inbox() == {"t1": True}


def test_socket_mode_pin_event_is_routed_once(backend):
    client = Client()
    payload = {"type": "event_callback", "event_id": "Ev1",
               "event": {"type": "pin_added", "channel_id": "C1", "item": {"message": {"ts": "1.2"}}}}
    for attempt in range(3):
        backend._sm_generic_event_handler(client, SocketModeRequest(type="events_api", envelope_id=f"e{attempt}",
                                                                    payload=payload, retry_attempt=attempt))
    assert [e["type"] for e in backend.plugin.events] == ["pin_added"]
    assert [r["envelope_id"] for r in client.responses] == ["e0", "e1", "e2"]
    assert inbox() == {"Ev1": True}


def test_edits_go_to_the_plugin_not_to_the_command_parser(backend):
    event = {"type": "message", "subtype": "message_changed", "channel": "C1",
             "message": {"ts": "1.2", "text": "!close", "user": "U1"}}
    backend._handle_message(None, event)
    assert backend.plugin.events == [event]


def _signed(body: bytes, secret="secret", ts=None):
    ts = str(int(time.time()) if ts is None else ts)
    sig = "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig,
            "Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def http(backend):
    app = Flask("probe")
    backend._verifier = SignatureVerifier("secret")
    backend._event_workers = type("Inline", (), {"submit": staticmethod(lambda fn, *args: fn(*args))})()
    register_slack_http(app, backend.HTTP_PATHS, backend.handle_http)
    return app.test_client()


def test_http_interaction_signed_returns_the_ack(http, backend):
    body = urlencode({"payload": json.dumps({"type": "view_submission", "trigger_id": "t9"})}).encode()
    response = http.post("/slack/interactive", data=body, headers=_signed(body))
    assert response.status_code == 200
    assert response.get_json() == {"response_action": "errors", "errors": {"title": "no"}}


@pytest.mark.parametrize("headers", [
    {},
    {"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=bad"},
    "stale", "wrong-secret", "not-a-number",
])
def test_http_refuses_unsigned_forged_and_stale_requests_saying_nothing(http, backend, headers):
    body = urlencode({"command": "/opg-incident", "text": "x", "trigger_id": "t1"}).encode()
    if headers == "stale":
        headers = _signed(body, ts=int(time.time()) - 301)
    elif headers == "wrong-secret":
        headers = _signed(body, secret="other")
    elif headers == "not-a-number":
        headers = dict(_signed(body), **{"X-Slack-Request-Timestamp": "soon"})
    response = http.post("/slack/commands", data=body, headers=headers)
    assert response.status_code == 403
    assert response.data == b""
    assert backend.plugin.interactions == []


def test_http_url_verification_and_event(http, backend):
    body = json.dumps({"type": "url_verification", "challenge": "abc"}).encode()
    assert http.post("/slack/events", data=body, headers=_signed(body)).get_json() == {"challenge": "abc"}
    body = json.dumps({"type": "event_callback", "event_id": "Ev7",
                       "event": {"type": "pin_removed", "channel_id": "C1"}}).encode()
    assert http.post("/slack/events", data=body, headers=_signed(body)).status_code == 200
    assert http.post("/slack/events", data=body, headers=_signed(body)).status_code == 200  # a retry
    assert [e["type"] for e in backend.plugin.events] == ["pin_removed"]
    assert inbox() == {"Ev7": True}


def test_repeated_lookups_are_answered_from_memory_and_the_base_url_is_used():
    from fake_slack import FakeSlack

    with FakeSlack() as fake:
        fake.add_user("U0ALICE01", "alice")
        channel = fake.add_channel("general", members=["U0ALICE01"])
        client = opg_slack._client_class(fake.api_url)(token=fake.bot_token)
        for _ in range(3):
            assert client.users_info(user="U0ALICE01")["user"]["name"] == "alice"
            client.conversations_info(channel=channel)
            client.chat_postMessage(channel=channel, text="hi")
        assert len(fake.calls_of("users.info")) == 1
        assert len(fake.calls_of("conversations.info")) == 1
        assert len(fake.calls_of("chat.postMessage")) == 3  # never cached


def test_a_lookup_asked_by_many_threads_at_once_is_one_call():
    """Single flight: threads handling one person's messages at once do not each ask Slack who they are."""
    import threading

    from fake_slack import FakeSlack

    with FakeSlack() as fake:
        fake.add_user("U0ALICE01", "alice")
        client = opg_slack._client_class(fake.api_url)(token=fake.bot_token)
        start, names = threading.Barrier(8), []

        def ask():
            start.wait()
            names.append(client.users_info(user="U0ALICE01")["user"]["name"])

        threads = [threading.Thread(target=ask) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert names == ["alice"] * 8
        assert len(fake.calls_of("users.info")) == 1


def test_an_interaction_before_the_plugin_is_ready_asks_to_try_again(backend, service):
    backend.register_inputs(None)  # errbot is still activating the plugin
    client = Client()
    backend._sm_generic_event_handler(client, SocketModeRequest(
        type="slash_commands", envelope_id="e1", payload={"trigger_id": "t1", "command": "/opg-incident"}))
    backend._sm_generic_event_handler(client, SocketModeRequest(
        type="interactive", envelope_id="e2", payload={"type": "view_submission", "trigger_id": "t2"}))
    assert "try again" in client.responses[0]["payload"]["text"]
    assert client.responses[1]["payload"]["response_action"] == "errors"
    assert inbox() == {} and backend.plugin.interactions == []


def test_slash_commands_and_clicks_are_acked_before_they_are_handled(backend):
    """Ack first, then the work (as Slack's Bolt does): the answer goes to the response_url. A handler that
    is still busy (opening a form, a slow database) has not held the ack back."""
    import threading

    started, release = threading.Event(), threading.Event()

    def busy(kind, payload):
        started.set()
        release.wait(10)
        return None
    backend.plugin.on_interaction = busy
    client = Client()
    backend._sm_generic_event_handler(client, SocketModeRequest(
        type="slash_commands", envelope_id="e-slash", payload={"trigger_id": "t-slash", "command": "/opg-incident"}))
    backend._sm_generic_event_handler(client, SocketModeRequest(
        type="interactive", envelope_id="e-click", payload={"type": "block_actions", "trigger_id": "t-click"}))
    assert [r["envelope_id"] for r in client.responses] == ["e-slash", "e-click"]  # both acked, empty...
    assert all("payload" not in r for r in client.responses)
    assert started.wait(5)  # ...while the handler is still at work
    release.set()


def test_handling_gives_way_to_acks_on_their_way_but_not_for_ever_and_not_inside_one():
    import threading

    from slack_acks import AckGate

    gate, done, waited = AckGate(most=5.0), threading.Event(), []
    with gate.acking():
        assert gate.give_way() == 0.0  # a form's validation runs inside its ack: it must not wait on itself
        threading.Thread(target=lambda: (waited.append(gate.give_way()), done.set())).start()
        time.sleep(0.3)
        assert not done.is_set()  # the handling waits while the ack is on its way
    assert done.wait(5) and 0.25 <= waited[0] < 5.0  # and goes on once it is sent
    short = AckGate(most=0.2)
    with short.acking():
        threading.Thread(target=lambda: waited.append(short.give_way())).start()
        time.sleep(0.6)
    assert 0.15 <= waited[1] < 0.5  # a long storm: it waits at most `most`


# slack_sdk's code that slack_client.py's Socket Mode client overrides, calls or copies (enqueue_message stands for
# process_message's parse-and-submit; connect() is slack_sdk's with the switch reordered; the reader thread's loop,
# its locks and its empty read on a shut-down socket are what connect() and disconnect() rely on): sha256 of the
# source (first 16 hex digits) as of slack_sdk 3.48.0.
SLACK_SDK_PINS = [
    ("slack_sdk.socket_mode.client", "BaseSocketModeClient.enqueue_message", "ac68864df3cff725"),
    ("slack_sdk.socket_mode.client", "BaseSocketModeClient.process_message", "30f90d2b25edafbb"),
    ("slack_sdk.socket_mode.client", "BaseSocketModeClient.run_message_listeners", "98244ed9290c0c89"),
    ("slack_sdk.socket_mode.client", "BaseSocketModeClient.connect_to_new_endpoint", "b42d1fe59cf2f718"),
    ("slack_sdk.socket_mode.builtin.client", "SocketModeClient.__init__", "78c51ffb1daeac9b"),
    ("slack_sdk.socket_mode.builtin.client", "SocketModeClient.connect", "3c69bfaaecc6deb5"),
    ("slack_sdk.socket_mode.builtin.client", "SocketModeClient.disconnect", "dca8d174509220f3"),
    ("slack_sdk.socket_mode.builtin.client", "SocketModeClient.close", "04fba67e46de17e7"),
    ("slack_sdk.socket_mode.builtin.client", "SocketModeClient._on_message", "e97c79e1e7dd599a"),
    ("slack_sdk.socket_mode.builtin.client", "SocketModeClient._on_close", "bd62247c54874e40"),
    ("slack_sdk.socket_mode.builtin.client", "SocketModeClient._run_current_session", "411d4a7f66ab054e"),
    ("slack_sdk.socket_mode.builtin.connection", "ConnectionState.__init__", "0bb4b9db57679b78"),
    ("slack_sdk.socket_mode.builtin.connection", "Connection.__init__", "54a29fe94cbe8761"),
    ("slack_sdk.socket_mode.builtin.connection", "Connection.disconnect", "0b0003ecaea4d8c2"),
    ("slack_sdk.socket_mode.builtin.connection", "Connection.close", "c2466ed0d4861139"),
    ("slack_sdk.socket_mode.builtin.connection", "Connection.run_until_completion", "1aba5cb0396360fa"),
    ("slack_sdk.socket_mode.builtin.internals", "_receive_messages", "de51135ceae616b3"),
    ("slack_sdk.socket_mode.builtin.internals", "_fetch_messages", "7b3d7cc4e4573fc3"),
    ("slack_sdk.socket_mode.builtin.internals", "_establish_new_socket_connection", "57c5e0951d8fb142"),
]


@pytest.mark.parametrize("module, name, pinned", SLACK_SDK_PINS)
def test_the_slack_sdk_code_the_socket_mode_client_relies_on_is_unchanged(module, name, pinned):
    import importlib

    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    digest = hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]
    assert digest == pinned, (
        f"slack_sdk's {module}.{name} changed (sha256 {digest}, pinned {pinned}): re-read the Socket Mode "
        "client in backends/opg_slack/slack_client.py (enqueue_message, connect, disconnect, __init__) against "
        "the new source, fix it if it no longer holds, then pin the new hash")


def test_the_backend_builds_the_projects_socket_mode_client(monkeypatch):
    """OPGSlackBackend() replaces the name errbot's serve_once() builds its Socket Mode client from: what it
    builds is the project's client, reading 16 KB at a time."""
    from types import SimpleNamespace

    import slack_client
    from slack_sdk.web import WebClient
    assert "self.slack_socket_mode = SocketModeClient(" in inspect.getsource(slackv3_module.SlackBackend.serve_once)
    monkeypatch.setattr(slackv3_module, "SocketModeClient", slackv3_module.SocketModeClient)  # put back after
    monkeypatch.setattr(slackv3_module, "WebClient", slackv3_module.WebClient)
    monkeypatch.setattr(slackv3_module.SlackBackend, "__init__", lambda self, config: None)
    opg_slack.OPGSlackBackend(SimpleNamespace(BOT_IDENTITY={}))
    client = slackv3_module.SocketModeClient(app_token="xapp-1", web_client=WebClient(token="xoxb-1"),
                                             on_message_listeners=[])  # as serve_once() does
    try:
        assert getattr(type(client), "opg_direct", False)
        assert type(client).__qualname__ == "socket_mode_client_class.<locals>.SocketModeClient"
        assert type(client).connect.__module__ == slack_client.__name__
        assert client.receive_buffer_size == slack_client.SOCKET_READ_BYTES
    finally:
        client.close()


def test_socket_mode_envelopes_go_from_the_socket_straight_to_the_workers():
    """slack_sdk's own queue and its processing (parse, a disconnect reconnects, the rest to the workers) are what
    enqueue_message stands for; what cannot be handed over here (a disconnect, not JSON, any failure) goes to the
    queue, and the read's other frames are still handed over."""
    from types import SimpleNamespace

    import slack_client
    from slack_sdk.socket_mode.builtin import client as builtin_client

    cls = slack_client.socket_mode_client_class(builtin_client.SocketModeClient)
    assert slack_client.socket_mode_client_class(cls) is cls
    client = cls.__new__(cls)  # no connection: only the hand-over is tried
    submitted, queued = [], []
    client.message_workers = SimpleNamespace(submit=lambda fn, *args: submitted.append((fn, args)))
    client.message_queue = SimpleNamespace(put=queued.append)
    client.logger = SimpleNamespace(isEnabledFor=lambda level: False)
    envelope = '{"envelope_id": "e1", "type": "events_api", "payload": {}}'
    client.enqueue_message(envelope)
    assert [(fn.__name__, args) for fn, args in submitted] == [
        ("run_message_listeners", ({"envelope_id": "e1", "type": "events_api", "payload": {}}, envelope))]
    client.enqueue_message('{"type": "disconnect", "reason": "refresh_requested"}')
    client.enqueue_message("not json")
    deep = '{"a":' + "[" * 100_000 + "]" * 100_000 + "}"  # json.loads: RecursionError, not a ValueError
    client.enqueue_message(deep)
    assert queued == ['{"type": "disconnect", "reason": "refresh_requested"}', "not json", deep]

    def closed(fn, *args):
        raise RuntimeError("cannot schedule new futures after shutdown")
    client.message_workers = SimpleNamespace(submit=closed)
    client.enqueue_message(envelope)
    assert queued[-1] == envelope and len(submitted) == 1


def test_socket_mode_events_are_acked_then_handled_by_the_event_workers(backend):
    """The thread that recorded and acked an event does not handle it: the event workers do, after the ack."""
    import threading

    from slack_acks import Workers

    started, release = threading.Event(), threading.Event()

    def busy(event):
        started.set()
        release.wait(10)
        backend.plugin.events.append(event)
    backend.plugin.follow_channel_event = busy
    backend._event_workers = None  # the real ones, made at the first event
    client = Client()
    payload = {"type": "event_callback", "event_id": "Ev9",
               "event": {"type": "pin_added", "channel_id": "C1", "item": {"message": {"ts": "1.2"}}}}
    backend._sm_generic_event_handler(client, SocketModeRequest(type="events_api", envelope_id="e9", payload=payload))
    assert [r["envelope_id"] for r in client.responses] == ["e9"]  # acked...
    assert isinstance(backend._event_workers, Workers)
    assert started.wait(5) and inbox() == {"Ev9": False}  # ...while a worker is still at it
    release.set()
    deadline = time.monotonic() + 5
    while inbox() != {"Ev9": True} and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inbox() == {"Ev9": True} and [e["type"] for e in backend.plugin.events] == ["pin_added"]
