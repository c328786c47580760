"""Operators' endpoints over Flask's test client, on a real database: /healthz, /readyz (the database
gone and back, on SQLite and on PostgreSQL behind a relay we cut; a stuck outbox), /metrics parsed with prometheus_client's parser after a scripted
incident (Slack calls through the real gateway and slack_sdk against the fake Slack)."""
from __future__ import annotations

import datetime as dt
import socket
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.request import SocketModeRequest

from opg_incident_core import IncidentService, load_settings, open_database, outbox, telemetry
from opg_incident_core.reminders import DueReminder, ReminderSchedule
from opg_incident_slack.gateway import SlackError, SlackGateway
from opg_incident_web import register_routes
from opg_incident_web.metrics import Metrics
from opg_incident_web.ops import chat_check, database_check, outbox_check, readiness_checks, register_ops_routes

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "backends" / "opg_slack"))
import opg_slack  # noqa: E402
import slack_client  # noqa: E402

TOKEN = "ops-test-token-1234"
TITLE = "Payments refused for every donor"


class Ops:
    """A Flask app with the living document (token-guarded) and the ops routes, on a SQLite file."""

    def __init__(self, tmp_path: Path):
        self.dir = tmp_path / "data"
        self.dir.mkdir()
        self.db = open_database(None, self.dir)
        self.settings = load_settings(ROOT / "plugins" / "opg_incident" / "settings.yml")
        self.now = dt.datetime(2025, 6, 3, 13, 0)
        self.service = IncidentService(lambda: self.settings, admins={"@admin"}, clock=self.clock)
        self.app = Flask("test_ops")
        register_routes(self.app, lambda: self.service, lambda: self.settings,
                        types.SimpleNamespace(INCIDENT_WEB_TOKEN=TOKEN))
        self.metrics = Metrics(self.clock, lambda: self.settings)
        register_ops_routes(self.app, metrics=self.metrics, readiness_checks=[
            ("database", database_check(self.clock)), ("outbox", outbox_check(self.clock, max_age_seconds=300)),
            ("chat", chat_check(types.SimpleNamespace(mode="text")))])
        self.client = self.app.test_client()

    def clock(self) -> dt.datetime:
        return self.now

    def scrape(self) -> dict:
        response = self.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.data
        assert response.content_type.startswith("text/plain")
        samples = {}
        for family in text_string_to_metric_families(response.get_data(as_text=True)):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples


@pytest.fixture
def ops(tmp_path):
    o = Ops(tmp_path)
    yield o
    o.metrics.close()
    o.db.close()


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# -- health -----------------------------------------------------------------------------------------

def test_healthz_and_readyz_answer_json_without_incident_data(ops):
    ops.service.declare(TITLE, "U01REPORT", severity="critical")
    health = ops.client.get("/healthz")
    assert (health.status_code, health.get_json()) == (200, {"status": "alive"})
    ready = ops.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ready", "checks": {"database": "ok", "outbox": "ok", "chat": "ok"}}
    for response in (health, ready):
        assert TITLE not in response.get_data(as_text=True) and "U01REPORT" not in response.get_data(as_text=True)


def test_readyz_flips_to_503_while_the_database_is_gone_and_back(ops, tmp_path):
    assert ops.client.get("/readyz").status_code == 200
    moved = tmp_path / "elsewhere"
    ops.dir.rename(moved)  # the volume went away
    try:
        gone = ops.client.get("/readyz")
        assert gone.status_code == 503
        body = gone.get_json()
        assert body["status"] == "not ready" and body["checks"]["database"].startswith("failing")
        assert ops.client.get("/healthz").status_code == 200  # alive all the same
    finally:
        moved.rename(ops.dir)
    back = ops.client.get("/readyz")
    assert (back.status_code, back.get_json()["checks"]["database"]) == (200, "ok")
    n = ops.service.declare("After the outage", "U01REPORT").incident.number
    assert ops.service.get(n).title == "After the outage"  # and it writes again


def test_readyz_says_the_outbox_is_stuck_when_its_oldest_item_is_too_old(ops):
    n = ops.service.declare(TITLE, "U01REPORT").incident.number
    ops.service.enqueue_job("post", n, {"channel": "C1", "text": "hello"})
    ops.now += dt.timedelta(seconds=299)
    assert ops.client.get("/readyz").status_code == 200
    ops.now += dt.timedelta(seconds=2)
    stuck = ops.client.get("/readyz")
    assert stuck.status_code == 503
    assert stuck.get_json()["checks"]["outbox"] == ("failing: an item has been due for 301 s and not sent "
                                                    "(1 waiting; limit 300 s)")
    assert value(ops.scrape(), "opg_incident_outbox_overdue_seconds") == 301


def test_an_item_waiting_out_a_long_retry_after_is_not_stuck_nor_what_queues_behind_it(ops):
    """Issue 16: only items whose next attempt time has passed count; one told to wait an hour (429 with
    Retry-After: 3600), and the items of its incident queued behind it, are waiting, not stuck."""
    n = ops.service.declare(TITLE, "U01REPORT").incident.number
    first = ops.service.enqueue_job("confluence_publish", n, {"by": "U01REPORT"})
    [claimed] = outbox.claim("worker-1", ops.now)
    assert claimed.id == first and outbox.retry(first, ops.now, 3600, "rate_limited", owner="worker-1")
    ops.service.enqueue_job("post", n, {"channel": "C1", "text": "after it"})  # due, but behind the first
    ops.now += dt.timedelta(minutes=30)
    ready = ops.client.get("/readyz")
    assert (ready.status_code, ready.get_json()["checks"]["outbox"]) == (200, "ok")
    m = ops.scrape()
    assert value(m, "opg_incident_outbox_overdue_seconds") == 0
    assert (value(m, "opg_incident_outbox_depth"), value(m, "opg_incident_outbox_oldest_age_seconds")) == (2, 1800)
    ops.now += dt.timedelta(minutes=30, seconds=301)  # its hour is up and nobody sent it: stuck
    stuck = ops.client.get("/readyz")
    assert stuck.status_code == 503 and "due for 301 s" in stuck.get_json()["checks"]["outbox"]


def test_the_outbox_limit_is_a_setting(ops):
    def ready_after(seconds: float, config) -> int:
        register_ops_routes(ops.app, readiness_checks=readiness_checks(ops.clock, types.SimpleNamespace(mode="text"),
                                                                       config))
        ops.now = start + dt.timedelta(seconds=seconds)
        return ops.client.get("/readyz").status_code

    start = ops.now
    ops.service.enqueue_job("post", None, {"channel": "C1", "text": "hello"})
    assert ready_after(599, types.SimpleNamespace()) == 200  # INCIDENT_READY_OUTBOX_SECONDS: 600 by default
    assert ready_after(601, types.SimpleNamespace()) == 503
    assert ready_after(119, types.SimpleNamespace(INCIDENT_READY_OUTBOX_SECONDS=120.0)) == 200
    assert ready_after(121, types.SimpleNamespace(INCIDENT_READY_OUTBOX_SECONDS=120.0)) == 503
    assert ready_after(1199, types.SimpleNamespace(INCIDENT_READY_OUTBOX_SECONDS=1200.0)) == 200


def test_chat_check_follows_the_backend():
    class SocketMode:
        connected = False

        def is_connected(self):
            return self.connected

    socket_mode = SocketMode()
    check = chat_check(types.SimpleNamespace(mode="slackv3", slack_socket_mode=socket_mode))
    with pytest.raises(Exception, match="not connected"):
        check()
    socket_mode.connected = True
    check()
    chat_check(types.SimpleNamespace(mode="slackv3", slack_socket_mode=None, auth={"user_id": "U0BOT"}))()
    with pytest.raises(Exception):
        chat_check(types.SimpleNamespace(mode="slackv3", slack_socket_mode=None, auth=None))()


# -- metrics ----------------------------------------------------------------------------------------

def test_metrics_are_guarded_like_the_living_document(ops):
    assert ops.client.get("/metrics").status_code == 401
    assert ops.client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert ops.client.get("/incidents").status_code == 401  # the same guard
    assert ops.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_metrics_after_a_scripted_incident(ops):
    from tests.fake_slack import FakeSlack

    svc = ops.service
    for i in range(3):
        assert svc.record_input(f"Ev{i}", "events_api", {"event": {"type": "message"}})
    assert svc.record_input("Tr1", "slash_commands")
    assert not svc.record_input("Ev0", "events_api", {"event": {"type": "message"}})  # redelivered
    svc.mark_processed("Ev0")
    svc.mark_processed("Tr1")
    svc.mark_processed("Tr1")  # once only

    first = svc.declare(TITLE, "U01REPORT", severity="critical", lead="U02LEAD").incident.number
    second = svc.declare("Slow search", "U01REPORT", severity="major").incident.number
    third = svc.declare("Something odd", "U01REPORT").incident.number
    svc.declare("Gone already", "U01REPORT", severity="major")
    svc.close(4, "@admin")
    ReminderSchedule(svc).sent(DueReminder(third, "severity_missing", "no severity"))
    ReminderSchedule(svc).sent(DueReminder(second, "role_missing:lead", "no lead"))
    ReminderSchedule(svc).sent(DueReminder(third, "severity_missing", "no severity"))
    svc.enqueue_job("post", first, {"channel": "C1", "text": "one"})
    ops.now += dt.timedelta(seconds=40)
    svc.enqueue_job("post", second, {"channel": "C1", "text": "two"})
    ops.now += dt.timedelta(seconds=5)

    with FakeSlack() as fake:
        fake.add_user("U02LEAD", "lead")
        channel = fake.add_channel("inc-1-payments", members=["U02LEAD"])
        gateway = SlackGateway(WebClient(token=fake.bot_token, base_url=fake.api_url))
        gateway.post(channel, "We are on it")
        gateway.post(channel, "Still on it")
        with pytest.raises(SlackError):
            gateway.post("C0MISSING", "nowhere")
    def observe(kind, seconds):  # as the plugin registers it
        telemetry.emit("ack", kind=kind, seconds=seconds)

    opg_slack.ACK_OBSERVERS.append(observe)
    for seconds in (0.003, 0.02, 0.2):  # acks, through the backend's own Socket Mode ack
        sent = []
        client = types.SimpleNamespace(send_socket_mode_response=sent.append)
        opg_slack.OPGSlackBackend._sm_ack(client, SocketModeRequest("events_api", "E1", {}),
                                          time.perf_counter() - seconds)
        assert sent[0].envelope_id == "E1"
    opg_slack.ACK_OBSERVERS.remove(observe)

    m = ops.scrape()
    assert value(m, "opg_incident_inputs_received_total", kind="events_api") == 3
    assert value(m, "opg_incident_inputs_received_total", kind="slash_commands") == 1
    assert value(m, "opg_incident_inputs_duplicate_total", kind="events_api") == 1
    assert value(m, "opg_incident_inputs_handled_total", kind="events_api") == 1
    assert value(m, "opg_incident_inputs_handled_total", kind="slash_commands") == 1
    assert value(m, "opg_incident_inbox_unhandled") == 2  # Ev1, Ev2
    assert value(m, "opg_incident_inbox_lag_seconds") == 45
    assert value(m, "opg_incident_open_incidents", severity="critical") == 1
    assert value(m, "opg_incident_open_incidents", severity="major") == 1  # the other one is closed
    assert value(m, "opg_incident_open_incidents", severity="none") == 1
    assert ("opg_incident_open_incidents", (("severity", "trivial"),)) in m  # known severities show 0
    assert value(m, "opg_incident_reminders_sent_total", reminder="severity_missing") == 2
    assert value(m, "opg_incident_reminders_sent_total", reminder="role_missing:lead") == 1
    assert value(m, "opg_incident_outbox_depth") == 2
    assert value(m, "opg_incident_outbox_oldest_age_seconds") == 45
    assert value(m, "opg_incident_slack_api_calls_total", method="chat.postMessage") == 3
    assert value(m, "opg_incident_slack_api_errors_total", method="chat.postMessage", error="channel_not_found") == 1
    assert value(m, "opg_incident_ack_seconds_count", kind="events_api") == 3
    assert value(m, "opg_incident_ack_seconds_bucket", kind="events_api", le="0.01") == 1
    assert value(m, "opg_incident_ack_seconds_bucket", kind="events_api", le="0.25") == 3
    assert value(m, "opg_incident_database_up") == 1
    assert TITLE not in str(m)


def test_the_backends_own_slack_calls_are_counted_once(ops):
    """errbot's backend asks Slack on its own (users.info for each sender...): through its client's observers
    (the plugin registers gateway.backend_call there) those calls are counted too; the plugin's calls, which
    go through the same client, still once."""
    from tests.fake_slack import FakeSlack
    from opg_incident_slack.gateway import backend_call

    with FakeSlack() as fake:
        fake.add_user("U02LEAD", "lead")
        client = slack_client.client_class(fake.api_url)(token=fake.bot_token)  # the backend's client
        opg_slack.OPGSlackBackend.api_observers.append(backend_call)
        try:
            assert client.users_info(user="U02LEAD")["user"]["name"] == "lead"
            client.users_info(user="U02LEAD")  # answered from the backend's memory: no call
            with pytest.raises(SlackApiError):
                client.users_info(user="U0NOBODY")
            SlackGateway(client).call("chat.postMessage", channel="U02LEAD", text="hello")  # the plugin's own
        finally:
            opg_slack.OPGSlackBackend.api_observers.remove(backend_call)
    m = ops.scrape()
    assert value(m, "opg_incident_slack_api_calls_total", method="users.info") == 2
    assert value(m, "opg_incident_slack_api_errors_total", method="users.info", error="user_not_found") == 1
    assert value(m, "opg_incident_slack_api_calls_total", method="chat.postMessage") == 1


def test_a_closed_metrics_object_stops_counting(ops):
    ops.metrics.close()
    ops.service.record_input("Ev9", "events_api")
    telemetry.emit("slack_call", method="chat.update", error=None)
    m = ops.scrape()
    assert value(m, "opg_incident_inputs_received_total", kind="events_api") == 0
    assert value(m, "opg_incident_slack_api_calls_total", method="chat.update") == 0


class Forwarder:
    """A TCP relay on loopback to the PostgreSQL server: cut it, and the database is gone for the bot."""

    def __init__(self, target: tuple[str, int]):
        self.target, self.sockets, self.port = target, [], None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.listener.close()

    def start(self):
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.sockets = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass

    def cut(self):
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


@pytest.mark.postgres
def test_readyz_on_postgresql_while_the_server_is_unreachable_and_back(postgres_url, tmp_path):
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(postgres_url)
    relay = Forwarder((parts.hostname, parts.port or 5432)).start()
    url = urlunsplit((parts.scheme, f"{parts.username}@127.0.0.1:{relay.port}", parts.path, "", ""))
    db = open_database(url)
    now = dt.datetime(2025, 6, 3, 13, 0)
    app = Flask("test_ops_pg")
    register_ops_routes(app, readiness_checks=[("database", database_check(lambda: now))],
                        metrics_guard=lambda: None)
    client = app.test_client()
    try:
        assert client.get("/readyz").status_code == 200
        relay.cut()
        gone = client.get("/readyz")
        assert gone.status_code == 503 and gone.get_json()["checks"]["database"].startswith("failing: ")
        assert client.get("/readyz").status_code == 503  # still gone: reconnecting fails too
        relay.start()
        assert client.get("/readyz").status_code == 200
    finally:
        relay.cut()
        db.close()


def test_the_core_imports_no_adapter_library():
    import subprocess

    code = ("import sys, pkgutil, importlib, opg_incident_core as core\n"
            "for m in pkgutil.iter_modules(core.__path__): importlib.import_module('opg_incident_core.' + m.name)\n"
            "print(sorted({n.split('.')[0] for n in sys.modules} & "
            "{'errbot', 'slack_sdk', 'flask', 'requests', 'prometheus_client', 'werkzeug'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={"PYTHONPATH": str(ROOT / "plugins" / "opg_incident"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
