"""SQLite's writers of this process, one at a time: the writer lock (urgent input records first) and a
database whose autocommit writes queue on it too."""
from __future__ import annotations

import contextlib
import threading
import time

from peewee import OperationalError, SqliteDatabase


class WriterLock:
    """The SQLite writers of this process, one at a time, first come first served, except that an urgent
    writer (recording an input before Slack's 3 s ack) goes before every waiting ordinary one. Reentrant.

    A release wakes one waiting writer (an urgent one if any), not all of them: waking every waiting
    thread on every commit, most of them only to wait again, cost about a millisecond of CPU per Slack
    event on a busy bot (P2a, bench/README.md)."""

    def __init__(self):
        mutex = threading.Lock()
        self._mutex = mutex
        self._turn = {True: threading.Condition(mutex), False: threading.Condition(mutex)}  # urgent, ordinary
        self._waiting = {True: 0, False: 0}
        self._owner: int | None = None
        self._depth = 0

    @contextlib.contextmanager
    def held(self, urgent: bool = False, timeout: float | None = None):
        """`timeout`: seconds to wait at most, then OperationalError (as SQLite's own busy timeout)."""
        urgent = bool(urgent)
        deadline = None if timeout is None else time.monotonic() + timeout
        me = threading.get_ident()
        with self._mutex:
            if self._owner != me:
                self._waiting[urgent] += 1
                got = False
                try:
                    while self._owner is not None or (not urgent and self._waiting[True]):
                        left = None if deadline is None else deadline - time.monotonic()
                        if left is not None and left <= 0:
                            raise OperationalError("database is locked (by another writer of this process)")
                        self._turn[urgent].wait(left)
                    got = True
                finally:
                    self._waiting[urgent] -= 1
                    if not got:
                        self._wake_next()  # a waiter that gives up hands its turn on
                self._owner = me
            self._depth += 1
        try:
            yield
        finally:
            with self._mutex:
                self._depth -= 1
                if not self._depth:
                    self._owner = None
                    self._wake_next()

    def _wake_next(self) -> None:
        """With the mutex held: wake one waiting writer, an urgent one first, when the lock is free."""
        if self._owner is None:
            if self._waiting[True]:
                self._turn[True].notify()
            elif self._waiting[False]:
                self._turn[False].notify()


WRITER = WriterLock()
_READS = ("SELECT", "PRAGMA", "WITH", "BEGIN", "COMMIT", "ROLLBACK", "RELEASE", "SAVEPOINT")


class LockedSqliteDatabase(SqliteDatabase):
    """SQLite whose writes made outside a transaction (autocommit updates) also queue on the writer lock,
    so that no thread of this process ever meets another in SQLite's busy handler."""

    def execute_sql(self, sql, params=None, *args, **kwargs):
        if self.transaction_depth() == 0 and not sql.lstrip()[:9].upper().startswith(_READS):
            with WRITER.held():
                return super().execute_sql(sql, params, *args, **kwargs)
        return super().execute_sql(sql, params, *args, **kwargs)


