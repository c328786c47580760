"""What-if for P2a (`p2a_ingest.py --writer-lock`), never loaded by the product: on the bot's PYTHONPATH it
makes the threads of the process take turns for SQLite writes on one Python lock (first come, first
served) instead of meeting in SQLite's busy handler, which retries a locked database after sleeping
1, 2, 5, 10, 15, 20, 25 ... ms and so leaves the lock idle while writers sleep. Covers Peewee
transactions (storage.write()'s BEGIN IMMEDIATE) and writes made outside one (autocommit)."""
import threading

import peewee

_lock = threading.RLock()
_enter, _exit = peewee._transaction.__enter__, peewee._transaction.__exit__
_execute_sql = peewee.Database.execute_sql


def __enter__(self):
    outermost = self.db.transaction_depth() == 0
    if outermost:
        _lock.acquire()
    try:
        return _enter(self)
    except BaseException:
        if outermost:
            _lock.release()
        raise


def __exit__(self, *exc):
    depth = self.db.transaction_depth()
    try:
        return _exit(self, *exc)
    finally:
        if depth == 1:
            _lock.release()


def execute_sql(self, sql, params=None, *args, **kwargs):
    if self.transaction_depth() == 0 and sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
        with _lock:
            return _execute_sql(self, sql, params, *args, **kwargs)
    return _execute_sql(self, sql, params, *args, **kwargs)


peewee._transaction.__enter__, peewee._transaction.__exit__ = __enter__, __exit__
peewee.Database.execute_sql = execute_sql
