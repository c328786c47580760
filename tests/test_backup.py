"""`incident backup`: SQLite's online backup taken during a storm of writes is sound and complete; the
documented restore brings it back; PostgreSQL is pointed at pg_dump; only bot admins may take one."""
from __future__ import annotations

import datetime as dt
import logging
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from opg_incident_core import IncidentError, IncidentService, backup, open_database

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = ROOT / "plugins" / "opg_incident"
NOW = dt.datetime(2025, 6, 3, 13, 0, 5)


def test_a_backup_during_a_storm_of_writes_is_sound_and_holds_every_earlier_incident(tmp_path, shipped_settings):
    data = tmp_path / "data"
    db = open_database(None, data)
    service = IncidentService(lambda: shipped_settings, admins={"@admin"})
    committed: list[int] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def storm(writer: int):
        try:
            while not stop.is_set():
                n = service.declare(f"Storm {writer}", f"U0W{writer}", summary="x" * 500).incident.number
                service.log(n, "note", "a note " * 20, f"U0W{writer}")
                committed.append(n)  # after both commits
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            db.close()

    writers = [threading.Thread(target=storm, args=(i,)) for i in range(3)]
    for w in writers:
        w.start()
    try:
        deadline = time.monotonic() + 30
        while len(committed) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        before = set(committed)
        taken = backup.take(data, NOW)
        # The storm ran across the backup: it went on after it (one snapshot step can be quicker than any
        # write on a loaded machine, so a write inside the backup's window is not guaranteed).
        after_deadline = time.monotonic() + 20
        while len(committed) <= len(before) and time.monotonic() < after_deadline:
            time.sleep(0.01)
        after_count = len(committed)
    finally:
        stop.set()
        for w in writers:
            w.join(30)
    assert not errors, errors
    assert len(before) >= 200 and after_count > len(before)  # writes went on around it

    assert taken.path == data / "backups" / "20250603T130005Z.sqlite"
    assert taken.size == taken.path.stat().st_size > 0
    assert not list(taken.path.parent.glob("*.partial"))
    copy = sqlite3.connect(taken.path)
    try:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        numbers = {n for (n,) in copy.execute("SELECT number FROM incident")}
        assert before <= numbers
        assert taken.incidents == len(numbers)
        # One snapshot: every incident in it has its declared entry (no half of a transaction).
        orphans = copy.execute("SELECT COUNT(*) FROM incident i WHERE NOT EXISTS (SELECT 1 FROM timeline_entry t "
                               "WHERE t.incident_id = i.id AND t.kind = 'declared')").fetchone()[0]
        assert orphans == 0
    finally:
        copy.close()
    assert backup.take(data, NOW).path.name == "20250603T130005Z-1.sqlite"  # never overwritten
    db.close()


def test_the_documented_restore(tmp_path, shipped_settings):
    data = tmp_path / "data"
    db = open_database(None, data)
    service = IncidentService(lambda: shipped_settings, admins={"@admin"})
    for title in ("Kept one", "Kept two"):
        service.declare(title, "U01")
    taken = backup.take(data, NOW)
    service.declare("After the backup", "U01")
    db.close()

    # docs/operations.md: stop the bot, copy the backup over the database, remove -wal and -shm, start.
    database = data / "incidents.sqlite"
    shutil.copy(taken.path, database)
    for suffix in ("-wal", "-shm"):
        Path(str(database) + suffix).unlink(missing_ok=True)
    db = open_database(None, data)
    try:
        assert [i.title for i in service.list("all")] == ["Kept two", "Kept one"]
        assert service.declare("Next", "U01").incident.number == 3
    finally:
        db.close()


@pytest.mark.postgres
def test_postgresql_is_pointed_at_pg_dump(postgres_url, tmp_path):
    db = open_database(postgres_url)
    try:
        with pytest.raises(IncidentError, match="pg_dump"):
            backup.take(tmp_path, NOW)
        assert not (tmp_path / "backups").exists()
    finally:
        db.close()


class TestCommand:
    extra_plugin_dir = str(PLUGIN_DIR)
    loglevel = logging.WARNING

    @pytest.fixture(autouse=True)
    def _config(self, tmp_path):
        self.extra_config = {
            "AUTOINSTALL_DEPS": False, "CORE_PLUGINS": ("ACLs", "Plugins", "Utils"), "BOT_ADMINS": ("@admin",),
            "INCIDENT_DATABASE_URL": f"sqlite:///{tmp_path / 'incidents.sqlite'}", "INCIDENT_WEB_PORT": 0,
        }

    def test_admins_take_a_backup_others_cannot(self, testbot):
        testbot.bot.sender = testbot.bot.build_identifier("@admin")
        testbot.push_message("!incident declare Payments are failing")
        testbot.pop_message(timeout=10)
        testbot.push_message("!incident backup")
        reply = testbot.pop_message(timeout=10)
        assert reply.startswith("Backup written: ") and "1 incident(s)" in reply, reply
        path = Path(reply.split("Backup written: ")[1].split(" (")[0])
        assert path.parent == Path(testbot.bot.bot_config.BOT_DATA_DIR) / "backups" and path.is_file()
        assert f"({backup._size(path.stat().st_size)}," in reply
        testbot.bot.sender = testbot.bot.build_identifier("@mallory")
        for command in ("!incident backup", "!INCIDENT BACKUP", "!incident BACKUP"):
            testbot.push_message(command)
            answer = testbot.pop_message(timeout=10)
            assert "admin" in answer and "Backup written" not in answer, (command, answer)
        assert list(path.parent.iterdir()) == [path]
