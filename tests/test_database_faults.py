"""Database faults lose nothing, and a start that fails, fails loudly (issue 12, parts 3 and 4).

The core on SQLite and PostgreSQL: an input waits for the database at most SQLite's busy timeout (well
under Slack's 3 s ack), then goes to the journal; the journal replays in order, exactly once; a connection
PostgreSQL dropped is opened again. The plugin on errbot's testbot: a database error answers "That was not
saved", never errbot's "Computer says nooo"; `plugin reload` after an invalid edit keeps the last good
settings. The real `errbot -c config.py`: bad settings, an unreachable database, a busy web port exit
non-zero with one line.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from peewee import OperationalError, SqliteDatabase

from opg_incident_core import IncidentService, open_database, storage
from opg_incident_core.journal import Journal

from conftest import Clock, logged

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = ROOT / "plugins" / "opg_incident"
ERRBOT = Path(sys.executable).parent / "errbot"
NOT_SAVED = "That was not saved: the database is unavailable. Try again in a minute."
LEAD = "U0LEAD001"


def event(key: str) -> dict:
    return {"event_id": key, "event": {"type": "message", "text": key}}


@pytest.fixture
def sqlite_service(tmp_path, shipped_settings):
    db = open_database(f"sqlite:///{tmp_path / 'incidents.sqlite'}")
    service = IncidentService(lambda: shipped_settings, clock=Clock())
    service.journal = Journal(tmp_path / "data")
    yield service
    db.close()


# -- SQLite: lock waits bounded well under Slack's 3 s ack ----------------------------------------------

def test_an_input_waits_for_another_writer_of_this_process_at_most_the_busy_timeout(sqlite_service):
    assert storage.SQLITE_BUSY_MS <= 1500
    holding, release = threading.Event(), threading.Event()

    def slow_writer():  # a long transaction of this process (a slow command)
        with storage.write():
            holding.set()
            release.wait(10)
        storage.database.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    holding.wait(5)
    try:
        started = time.monotonic()
        assert sqlite_service.record_input("Ev1", "events_api", event("Ev1")) is False  # acked, not handled yet
        waited = time.monotonic() - started
    finally:
        release.set()
        writer.join()
    assert 1.4 <= waited < 2.0, waited
    assert [e["key"] for e in sqlite_service.journal.entries()] == ["Ev1"]
    assert storage.InboxEntry.select().count() == 0


def test_an_input_waits_for_another_process_holding_sqlite_at_most_the_busy_timeout(sqlite_service, tmp_path):
    other = sqlite3.connect(tmp_path / "incidents.sqlite", timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a backup, a migration, another replica on the same file
    try:
        started = time.monotonic()
        assert sqlite_service.record_input("Ev1", "events_api", event("Ev1")) is False
        waited = time.monotonic() - started
        # While inputs wait in the journal, the next ones join them (none overtakes an older one).
        assert sqlite_service.record_input("Ev2", "events_api", event("Ev2")) is False
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert 1.4 <= waited < 2.0, waited
    assert [e["key"] for e in sqlite_service.journal.entries()] == ["Ev1", "Ev2"]
    assert not sqlite_service.record_input("Ev1", "events_api", event("Ev1"))  # Slack's redelivery: once


def test_a_click_is_not_journaled_it_fails_so_the_person_can_be_told(sqlite_service, tmp_path):
    other = sqlite3.connect(tmp_path / "incidents.sqlite", timeout=0, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError):
            sqlite_service.record_input("Tr1", "interactive", {"type": "block_actions"})
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert sqlite_service.journal.entries() == []


# -- the journal: replayed in order, exactly once ---------------------------------------------------------

def test_the_journal_is_replayed_in_order_exactly_once(service, tmp_path):
    journal = service.journal = Journal(tmp_path)
    for key in ("Ev1", "Ev2", "Ev3", "Ev2"):  # Ev2 twice: Slack delivered it again before the ack
        journal.append(key, "events_api", event(key))
    service.record_journaled("Ev3", "events_api", event("Ev3"))  # recorded before a crash cut the replay off
    handled = []
    assert journal.drain(service.record_journaled, lambda key, kind, payload: handled.append((key, payload))) == (4, 2)
    assert handled == [("Ev1", event("Ev1")), ("Ev2", event("Ev2"))]
    assert not journal.pending and journal.drain(service.record_journaled, handled.append) == (0, 0)
    assert sorted(e.key for e in storage.InboxEntry.select()) == ["Ev1", "Ev2", "Ev3"]


def test_a_replay_cut_off_by_the_database_keeps_the_rest_before_what_came_since(service, tmp_path):
    journal = Journal(tmp_path)
    for key in ("Ev1", "Ev2", "Ev3"):
        journal.append(key, "events_api", event(key))

    def record(key, kind, payload):
        if key == "Ev2":
            journal.append("Ev4", "events_api", event("Ev4"))  # arrives during the replay
            raise OperationalError("server closed the connection unexpectedly")
        return service.record_journaled(key, kind, payload)

    with pytest.raises(OperationalError):
        journal.drain(record, lambda *a: None)
    assert [e["key"] for e in journal.entries()] == ["Ev2", "Ev3", "Ev4"]
    handled = []
    journal.drain(service.record_journaled, lambda key, *a: handled.append(key))
    assert handled == ["Ev2", "Ev3", "Ev4"] and not journal.pending


def test_a_torn_last_line_is_skipped_with_a_warning(tmp_path):
    journal = Journal(tmp_path)
    journal.append("Ev1", "events_api", event("Ev1"))
    with open(journal.path, "ab") as f:
        f.write(b'{"key": "Ev2", "kind": "ev')  # the process died in the write, before its fsync and ack
    with logged("opg_incident_core.journal") as lines:
        assert [e["key"] for e in journal.entries()] == ["Ev1"]
    assert any("unreadable journal line" in line for line in lines)


# -- PostgreSQL: a dropped connection is opened again ------------------------------------------------------

@pytest.mark.postgres
def test_connections_postgresql_terminated_are_opened_again(postgres_url, shipped_settings):
    from urllib.parse import urlsplit

    import reliability_kit as kit

    db = open_database(postgres_url)
    try:
        service = IncidentService(lambda: shipped_settings, clock=Clock())
        number = service.declare("DB down", LEAD).incident.number
        one, two = (f"Ev{uuid.uuid4().hex[:10]}" for _ in range(2))  # the session's database may hold others
        assert service.record_input(one, "events_api", event(one))
        name = urlsplit(postgres_url).path.lstrip("/")
        killed = kit.query(postgres_url, "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                         "WHERE datname = ? AND pid <> pg_backend_pid()", (name,))[0][0]
        assert killed >= 1
        # The next unit of work of this thread, in a transaction or not, opens a new connection.
        assert service.record_input(two, "events_api", event(two))
        killed = kit.query(postgres_url, "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                         "WHERE datname = ? AND pid <> pg_backend_pid()", (name,))[0][0]
        assert killed >= 1
        assert service.get(number).title == "DB down"
        service.set_summary(number, "restored", LEAD)
        assert service.get(number).summary == "restored"
    finally:
        db.close()


# -- the plugin: no errbot error text, a reload that keeps the incident plugin ---------------------------

class TestPluginFaults:
    extra_plugin_dir = str(PLUGIN_DIR)

    @pytest.fixture(autouse=True)
    def _config(self, tmp_path):
        self.settings_path = tmp_path / "settings.yml"
        shutil.copy(PLUGIN_DIR / "settings.yml", self.settings_path)
        self.extra_config = {"AUTOINSTALL_DEPS": False, "CORE_PLUGINS": ("ACLs", "Plugins", "Utils"),
                             "BOT_ADMINS": ("@admin",), "INCIDENT_SETTINGS": str(self.settings_path),
                             "INCIDENT_DATABASE_URL": f"sqlite:///{tmp_path / 'incidents.sqlite'}",
                             "INCIDENT_WEB_PORT": 0}

    @staticmethod
    def ask(testbot, text: str) -> str:
        testbot.push_message(text)
        return testbot.pop_message(timeout=10)

    def test_a_database_error_during_a_command_says_not_saved_never_errbots_text(self, testbot, tmp_path):
        assert self.ask(testbot, "!incident declare Payments are failing").startswith("Incident 1 declared")
        working = storage.database.obj
        storage.database.initialize(SqliteDatabase(str(tmp_path / "gone" / "incidents.sqlite")))  # cannot open
        try:
            for command in ("!summary 1 db restored", "!incident list", "!note 1 looked at it"):
                reply = self.ask(testbot, command)
                assert reply == NOT_SAVED, (command, reply)
        finally:
            storage.database.initialize(working)
        assert "Computer says" not in reply
        assert self.ask(testbot, "!summary 1 db restored").endswith("the summary is now:\ndb restored")

    def test_plugin_reload_after_an_invalid_edit_keeps_the_last_good_settings(self, testbot):
        assert self.ask(testbot, "!incident declare Payments are failing").startswith("Incident 1 declared")
        text = self.settings_path.read_text(encoding="utf-8")
        self.settings_path.write_text(text.replace("    name: Major\n", "    name: Major\n    colour: red\n"),
                                      encoding="utf-8")
        testbot.push_message("!plugin reload OpgIncident")
        said = [testbot.pop_message(timeout=10) for _ in range(2)]
        why = next(m for m in said if "not reloaded" in m)
        assert why.startswith("The incident settings were not reloaded; the old ones stay.\n"
                              f"{self.settings_path}:") and "colour: unknown field" in why
        assert "Plugin OpgIncident reloaded" in " ".join(said)
        assert self.ask(testbot, "!incident list").startswith("• 1: Payments are failing")
        assert self.ask(testbot, "!sev 1 major") == "Incident 1 — Payments are failing: the severity is now 🌧️ Major."


# -- a start that fails, fails loudly --------------------------------------------------------------------

def start_errbot(tmp_path: Path, **env) -> subprocess.CompletedProcess:
    """`errbot -c config.py` on the Text console (no Slack token), stdin closed."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "INCIDENT_", "BOT_"))}
    environment.update(BOT_DATA_DIR=str(tmp_path / "data"), BOT_LOG_FILE=str(tmp_path / "errbot.log"),
                       INCIDENT_WEB_PORT=str(free_port()))
    environment.update(env)
    return subprocess.run([str(ERRBOT), "-c", str(ROOT / "config.py")], cwd=ROOT, env=environment,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_invalid_settings_at_start_exit_non_zero_with_one_line_naming_file_line_and_field(tmp_path):
    bad = tmp_path / "settings.yml"
    bad.write_text((PLUGIN_DIR / "settings.yml").read_text(encoding="utf-8")
                   .replace("    name: Major\n", "    name: Major\n    colour: red\n"), encoding="utf-8")
    line = next(i for i, ln in enumerate(bad.read_text().splitlines(), 1) if "colour" in ln)
    result = start_errbot(tmp_path, INCIDENT_SETTINGS=str(bad))
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"opg-incident cannot start: {bad}:{line}: severities[1].colour: unknown field; allowed: key, name, emoji, "
        "description, aliases"]


def test_an_unreachable_database_at_start_exits_non_zero_with_its_url_without_password(tmp_path):
    port = free_port()  # nothing listens there
    result = start_errbot(tmp_path, INCIDENT_DATABASE_URL=f"postgresql://opg:s3cret-pw@127.0.0.1:{port}/incidents")
    assert result.returncode == 2, result.stderr[-2000:]
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"opg-incident cannot start: the database postgresql://opg:***@127.0.0.1:{port}/incidents "
                           "cannot be reached: ") and "s3cret-pw" not in result.stderr + result.stdout


def test_a_plugin_that_cannot_start_stops_the_process_instead_of_ignoring_everyone(tmp_path):
    with socket.socket() as busy:  # its web port is taken
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = start_errbot(tmp_path, INCIDENT_WEB_PORT=str(busy.getsockname()[1]))
    assert result.returncode == 3, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1].startswith("opg-incident cannot start: ")
