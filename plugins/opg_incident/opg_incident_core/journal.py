"""The journal: chat inputs acknowledged while the database could not be written.

Each one is appended to a local file (BOT_DATA_DIR/inputs.journal, one JSON line each) and fsync'd
before the ack. When the database is back, a replayer moves them into the inbox in the order they came,
and hands each one the inbox took as new to be handled. Exactly once: the inbox's unique key refuses an
input recorded before (a crash between recording and clearing the journal), and an input recorded but
not handled is the inbox's to replay (take_over_inputs). While the journal holds inputs, new ones join
it, so that none overtakes an older one.

No adapter here: `record(key, kind, payload) -> bool` and `handle(key, kind, payload)` are given.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path

from .connection import UNAVAILABLE, first_line

log = logging.getLogger(__name__)

JOURNALED_KINDS = ("events_api",)  # Slack events; a click or a slash command is answered at once instead


class Journal:
    def __init__(self, directory: str | Path):
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "inputs.journal"
        self.draining = directory / "inputs.journal.draining"  # taken by a replay (new inputs go to `path`)
        self._lockfile = directory / "inputs.journal.lock"  # processes sharing the directory
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- writing -------------------------------------------------------------------------------------
    @property
    def pending(self) -> bool:
        """Inputs wait in the journal (new ones must join them)."""
        return self.path.exists() or self.draining.exists()

    def append(self, key: str, kind: str, payload) -> None:
        """Add an input, on disk (fsync'd) before this returns."""
        line = json.dumps({"key": key, "kind": kind, "payload": payload, "at": time.time()},
                          ensure_ascii=False, default=str) + "\n"
        with self._locked():
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.path.parent)
        self._wake.set()

    def entries(self) -> list[dict]:
        """What waits, oldest first (what is being replayed, then what came since)."""
        return self._read(self.draining) + self._read(self.path)

    # -- replaying -----------------------------------------------------------------------------------
    def drain(self, record, handle) -> tuple[int, int]:
        """Move the journal into the database, oldest first: (recorded, of which new). Stops at the first
        database error, keeping the rest (and raises it)."""
        with self._drain_lock:
            with self._locked():
                if not self.draining.exists():
                    if not self.path.exists():
                        return 0, 0
                    os.replace(self.path, self.draining)
                    _fsync_dir(self.path.parent)
            entries = self._read(self.draining)
            moved = new = 0
            try:
                for entry in entries:
                    is_new = record(entry["key"], entry["kind"], entry["payload"])
                    moved += 1
                    if is_new:
                        new += 1
                        try:
                            handle(entry["key"], entry["kind"], entry["payload"])
                        except Exception:  # recorded: the inbox replays what was not handled
                            log.exception("Handling journaled input %s failed", entry["key"])
            finally:
                self._put_back(entries[moved:])
            if moved:
                log.info("Moved %d journaled input(s) into the database (%d new, %d recorded before)",
                         moved, new, moved - new)
            return moved, new

    def _put_back(self, rest: list[dict]) -> None:
        """The draining file is done with: what was not moved goes back before what came since."""
        with self._locked():
            if rest:
                tmp = self.path.with_name(self.path.name + ".tmp")
                newer = self.path.read_bytes() if self.path.exists() else b""
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.write(fd, b"".join(json.dumps(e, ensure_ascii=False).encode("utf-8") + b"\n"
                                          for e in rest) + newer)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, self.path)
            self.draining.unlink(missing_ok=True)
            _fsync_dir(self.path.parent)

    def start(self, record, handle, interval: float = 1.0) -> None:
        """Replay in the background: at once when an input is journaled, then every `interval` seconds
        while the database is still unavailable."""
        def run():
            failing_since = None
            while not self._stop.is_set():
                self._wake.wait(interval)
                self._wake.clear()
                if self._stop.is_set() or not self.pending:
                    continue
                try:
                    self.drain(record, handle)
                    if failing_since is not None:
                        log.warning("The database is back after %.0f s; the journal is replayed",
                                    time.monotonic() - failing_since)
                    failing_since = None
                except UNAVAILABLE as exc:
                    if failing_since is None:
                        failing_since = time.monotonic()
                        log.warning("The database is still unavailable (%s); %d input(s) wait in the journal",
                                    first_line(exc), len(self.entries()))
                    self._stop.wait(interval)  # not at every new input
                except Exception:
                    log.exception("Replaying the journal failed")
                    self._stop.wait(interval)

        self._stop.clear()
        self._thread = threading.Thread(target=run, name="opg-journal", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- files ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self):
        with self._lock:
            fd = os.open(self._lockfile, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    @staticmethod
    def _read(path: Path) -> list[dict]:
        try:
            lines = path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return []
        entries = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                entries.append({"key": str(entry["key"]), "kind": str(entry["kind"]),
                                "payload": entry.get("payload"), "at": entry.get("at")})
            except (ValueError, KeyError, TypeError):
                # Only a write cut off by a crash, before its fsync and so before its ack: Slack sends it again.
                log.warning("%s:%d: an unreadable journal line (a write cut off by a crash) is skipped", path, number)
        return entries


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
