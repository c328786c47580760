"""Database connections that survive the database: a PostgreSQL connection the server dropped is opened
again, a unit of work cut off by that is run again, and a database that is not there is said in one
line (its URL without the password).

Why not playhouse.pool: a pooled connection goes back to the pool only when its thread closes it, and
ours (errbot's workers, the Socket Mode handlers, the outbox worker) keep theirs open; the pool would
hand out the same dead connections. Peewee's ReconnectMixin reconnects, but only outside a transaction:
that covers the BEGIN that starts every unit of work and the statements run on their own (reads), which
is where a dropped connection is first seen. A unit of work that was inside its transaction when the
server went away fails whole (rolled back by the server); `retrying` runs it again (up to three times) on a new
connection. That is safe because every unit that can be retried is idempotent: an input is recorded
under its unique key, and a change marks its input handled in its own transaction (AlreadyHandled).
"""
from __future__ import annotations

import contextlib
import logging
import os
import time
from urllib.parse import urlsplit, urlunsplit

from peewee import InterfaceError, OperationalError, PostgresqlDatabase
from playhouse.shortcuts import ReconnectMixin

log = logging.getLogger(__name__)

# The database could not be reached or written: the input goes to the journal, the person is told.
UNAVAILABLE = (OperationalError, InterfaceError)
NOT_SAVED = "That was not saved: the database is unavailable. Try again in a minute."
CONNECT_TIMEOUT = 2  # seconds to reach PostgreSQL (Slack waits 3 s for an ack); ?connect_timeout= overrides


class ReconnectingPostgresqlDatabase(ReconnectMixin, PostgresqlDatabase):
    """PostgreSQL whose connection, dropped by the server (pg_terminate_backend, a restart, a fail-over),
    is opened again at the next BEGIN or statement outside a transaction."""

    reconnect_errors = (
        (OperationalError, "server closed the connection"),  # psycopg2
        (OperationalError, "terminating connection"),
        (OperationalError, "connection not open"),
        (OperationalError, "could not receive data"),
        (OperationalError, "could not send data"),
        (OperationalError, "ssl connection has been closed"),
        (OperationalError, "the connection is closed"),  # psycopg 3
        (OperationalError, "consuming input failed"),
        (InterfaceError, "connection already closed"),
        (InterfaceError, "the connection is closed"),
    )

    def _reconnect(self, func, *args, **kwargs):
        try:
            return super()._reconnect(func, *args, **kwargs)
        except UNAVAILABLE:
            if not self.in_transaction():
                forget(self)  # the next unit of work starts on a new connection
            raise


def postgresql(url: str, params: dict) -> ReconnectingPostgresqlDatabase:
    params.setdefault("connect_timeout", CONNECT_TIMEOUT)
    return ReconnectingPostgresqlDatabase(**params)


def forget(db) -> None:
    """Drop this thread's connection (dead, or suspect) without a word: the next use opens a new one."""
    if db is None or db.in_transaction():
        return
    try:
        db.close()
    except Exception:  # closing a dead connection may itself fail
        db._state.reset()


def retrying(db, unit, *, what: str = "a unit of work", attempts: int = 3):
    """Run `unit()` (one or more whole transactions, idempotent); when PostgreSQL dropped the connection
    under it, run it again on a new connection, up to `attempts` times in all (a fail-over may drop the
    new one too). SQLite is not retried: its errors (locked, read-only, disk full) would only come back,
    and its lock wait already used the ack's time."""
    from .storage import is_sqlite

    for attempt in range(1, attempts + 1):
        try:
            return unit()
        except UNAVAILABLE as exc:
            if attempt == attempts or db is None or is_sqlite(db) or db.in_transaction():
                raise
            log.info("The database connection failed during %s (%s); trying again on a new connection",
                     what, first_line(exc))
            forget(db)
            time.sleep(0.05 * (attempt - 1))


def redact(url: str) -> str:
    """The URL without its password."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username or ''}:***@{parts.netloc.rsplit('@', 1)[1]}"
    except (ValueError, IndexError):
        return "(an invalid database URL)"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split("\n")[:1]).strip()
    return text or type(exc).__name__


def check_database(url: str | None, data_dir) -> None:
    """Reach the database once, as the bot will; raise UNAVAILABLE with a one-line reason naming the
    database (its URL without the password, or the SQLite file)."""
    import sqlite3
    from pathlib import Path

    if url:
        from playhouse.db_url import connect, parse  # not for the default SQLite file (start-up time)
    if not url or url.startswith("sqlite:"):
        path = Path(parse(url)["database"]) if url else Path(data_dir) / "incidents.sqlite"
        where = path if path.exists() else path.parent
        if not where.exists() or not os.access(where, os.W_OK):
            raise OperationalError(f"the SQLite database {path} cannot be written ({where} is not writable"
                                   f"{'' if where.exists() else ' or missing'})")
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=1)) as conn:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise OperationalError(f"the SQLite database {path} cannot be opened: {first_line(exc)}") from None
        return
    try:
        params = parse(url)
        db = postgresql(url, params) if url.split(":", 1)[0] in ("postgres", "postgresql") else connect(url)
        db.connect()
        try:
            db.execute_sql("SELECT 1").fetchone()
        finally:
            db.close()
    except Exception as exc:
        raise OperationalError(f"the database {redact(url)} cannot be reached: {first_line(exc)}") from None
