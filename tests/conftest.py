"""Shared fixtures: the shipped settings, a database on SQLite or the real PostgreSQL, a service, a clock.

The `db` fixture runs each test twice: on a temporary SQLite file and on a fresh PostgreSQL database
(created once per session on INCIDENT_TEST_POSTGRES_URL's server, default
postgresql://postgres@127.0.0.1:5432/test, and dropped afterwards). When PostgreSQL cannot be
reached those runs are skipped, saying why and how to get it, or fail when CI=true (see `require`).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from fake_slack.pytest_plugin import (  # noqa: F401 (hooks)
    pytest_runtest_call, pytest_runtest_setup, pytest_runtest_teardown)

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = ROOT / "plugins" / "opg_incident"
SHIPPED_SETTINGS = PLUGIN_DIR / "settings.yml"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"

ADMIN = "@admin"


# -- settings ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def shipped_settings():
    from opg_incident_core import load_settings

    return load_settings(SHIPPED_SETTINGS)


def incident_view(**overrides):
    """An IncidentView as the Slack adapter's builders get it (incident 7, open, major, with a lead)."""
    import datetime as dt

    from opg_incident_core.views import IncidentView

    values = dict(number=7, title="Payments are failing", report=False, drill=False, summary="", impact="",
                  severity="major", status="open", reporter="U0REPORT1",
                  declared_at=dt.datetime(2026, 11, 27, 10, 31, tzinfo=dt.timezone.utc), closed_at=None,
                  closed_by=None, channel_id=None, channel_name=None, channel_archived=False,
                  headline_channel_id=None, headline_ts=None, roles={"reporter": "U0REPORT1", "lead": "U0LEAD002"})
    values.update(overrides)
    return IncidentView(**values)


# -- what some tests need from the machine ----------------------------------------------------------

def require(missing: str, how: str) -> None:
    """Something a test needs is missing: skip it saying what and how to get it, or fail when CI=true
    (CI runs every test)."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{missing}; required when CI=true. {how}", pytrace=False)
    pytest.skip(f"{missing}. {how}")


# -- PostgreSQL -------------------------------------------------------------------------------------

def _postgres_unavailable(reason: str):
    require(f"PostgreSQL is not available ({' '.join(reason.split())})",
            "To run the PostgreSQL tests: start a server (e.g. `apt-get install postgresql`, user postgres "
            f"with trust auth on 127.0.0.1:5432) or set INCIDENT_TEST_POSTGRES_URL (default {DEFAULT_POSTGRES_URL}) "
            "to a server where that user may create databases")


@contextlib.contextmanager
def fresh_postgres(prefix: str = "opg_test"):
    """A new database on INCIDENT_TEST_POSTGRES_URL's server, dropped afterwards; skipped when the server
    cannot be reached, failed when CI=true."""
    try:
        import psycopg2
        from psycopg2 import sql
    except ImportError as exc:
        _postgres_unavailable(f"psycopg2 cannot be imported: {exc}; `pip install -r requirements-test.txt`")

    base = os.environ.get("INCIDENT_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    parts = urlsplit(base)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg2.connect(base, connect_timeout=3)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        admin.close()
    except psycopg2.Error as exc:
        _postgres_unavailable(f"{parts.hostname}:{parts.port or 5432}: {str(exc).strip()}")
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    finally:
        admin = psycopg2.connect(base, connect_timeout=3)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


@contextlib.contextmanager
def logged(name: str, level: int = 10):
    """The messages logged by `name` (and below) meanwhile, as a list (the suite runs with -p no:logging)."""
    import logging

    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger, handler = logging.getLogger(name), Collect(level)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(min(level, logger.getEffectiveLevel()))
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of a fresh PostgreSQL database for this session, dropped at the end."""
    with fresh_postgres() as url:
        yield url


def _empty_postgres(db):
    from opg_incident_core import storage

    tables = ", ".join(m._meta.table_name for m in storage.MODELS if m is not storage.SchemaVersion)
    db.execute_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


# -- the database -----------------------------------------------------------------------------------

@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    """A URL for an empty database: a temp SQLite file, or the session's PostgreSQL database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'incidents.sqlite'}"
    url = request.getfixturevalue("postgres_url")
    from opg_incident_core import open_database

    db = open_database(url)
    _empty_postgres(db)
    db.close()
    return url


@pytest.fixture
def db(db_url):
    """The core's models bound to an empty, migrated database (SQLite file or PostgreSQL)."""
    from opg_incident_core import open_database

    database = open_database(db_url)
    yield database
    database.close()


# -- the service ------------------------------------------------------------------------------------

class Clock:
    """A clock the test moves by hand (naive UTC, like the storage)."""

    def __init__(self, start: dt.datetime = dt.datetime(2024, 3, 5, 10, 0, 0)):
        self.value = start

    def __call__(self) -> dt.datetime:
        return self.value

    def advance(self, **delta) -> dt.datetime:
        self.value += dt.timedelta(**delta)
        return self.value


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def settings_box(shipped_settings):
    """A mutable holder for the settings the service sees (tests swap `box[0]`)."""
    return [shipped_settings]


@pytest.fixture
def service(db, clock, settings_box):
    from opg_incident_core import IncidentService

    return IncidentService(lambda: settings_box[0], admins={ADMIN}, clock=clock)


def _snapshot_db():
    from opg_incident_core import storage

    return {m.__name__: list(m.select().order_by(m._meta.primary_key).dicts()) for m in storage.MODELS}


@pytest.fixture
def db_snapshot(db):
    """A function returning every row of every table, for "nothing changed" assertions."""
    return _snapshot_db


# -- reports for fixtures (end-to-end fixtures print the bot's log when a test failed) --------------

@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def failed(request) -> bool:
    report = getattr(request.node, "report_call", None)
    return report is None or report.failed


# -- the order files start in (pytest.ini: each worker takes whole files, --no-loadscope-reorder) -----------

# Files of a minute or more, mostly spent waiting (a two-minute database outage, fault storms): started first,
# so that no worker is left running one alone at the end while the others have finished.
RUN_FIRST = ("test_database_faults_e2e.py", "test_reliability.py", "test_reliability_r3.py")


def pytest_collection_modifyitems(session, config, items):
    """Files in this order: RUN_FIRST, then those that start errbot processes (marked e2e: seconds each,
    mostly waiting), then the rest, most tests first (xdist's own order); each file's tests keep theirs."""
    files: dict = {}
    for item in items:
        files.setdefault(item.path.name, []).append(item)

    def key(name: str):
        tests = files[name]
        if name in RUN_FIRST:
            return (0, RUN_FIRST.index(name))
        return (1 if any(t.get_closest_marker("e2e") for t in tests) else 2, -len(tests))
    items[:] = [item for name in sorted(files, key=key) for item in files[name]]
