"""`incident backup`: a consistent copy of the SQLite database, taken with SQLite's online backup API while
the bot keeps working (WAL: writers are not blocked). PostgreSQL is backed up with its own tools.

Restore (docs/operations.md): stop the bot, copy the backup over the database file, delete the
database's `-wal` and `-shm` files, start the bot (migrations bring an older copy up to date).
"""
from __future__ import annotations

import datetime as dt
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from . import storage
from .errors import IncidentError

FOLDER = "backups"


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int  # bytes
    incidents: int

    def describe(self) -> str:
        return (f"Backup written: {self.path} ({_size(self.size)}, {self.incidents} incident(s)). "
                "To restore it, see docs/operations.md.")


def take(data_dir: str | Path, now: dt.datetime) -> Backup:
    """Copy the database to `data_dir`/backups/<UTC time>.sqlite; IncidentError on PostgreSQL."""
    db = storage.database.obj
    if not storage.is_sqlite(db):
        raise IncidentError("The database is not SQLite: back it up with the server's own tools "
                            "(PostgreSQL: `pg_dump --format=custom`, see docs/operations.md).")
    if db.database == ":memory:":
        raise IncidentError("The database lives in memory only: there is nothing to back up.")
    folder = Path(data_dir) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    target = folder / f"{stamp}.sqlite"
    for attempt in range(1, 100):
        if not target.exists():
            break
        target = folder / f"{stamp}-{attempt}.sqlite"
    partial = target.with_name(target.name + ".partial")
    source = sqlite3.connect(db.database, timeout=30)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)  # all pages in one step: one consistent snapshot
            problems = copy.execute("PRAGMA quick_check").fetchall()
            if problems != [("ok",)]:
                raise IncidentError(f"The copy failed its check ({problems[0][0]}); no backup was kept.")
            incidents = copy.execute("SELECT COUNT(*) FROM incident").fetchone()[0]
        finally:
            copy.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    os.replace(partial, target)  # a backup file is complete or absent
    return Backup(target, target.stat().st_size, incidents)


def _size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
