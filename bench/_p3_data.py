"""P3's data: databases of a given size filled through the core's own models (bench/p3_scale.py), on
SQLite or on a fresh PostgreSQL database."""
from __future__ import annotations

import datetime as dt
import os
import random
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import _common  # noqa: F401  (sets sys.path for the core)

from opg_incident_core import load_settings, open_database  # noqa: E402
from opg_incident_core import storage  # noqa: E402

OPEN = 20  # open incidents, whatever the size of the history
SPACING = dt.timedelta(minutes=15)  # between two incidents' declarations
LEAD, SCRIBE, REPORTER = "U02LEAD", "U03SCRIBE", "U01REPORT"
TITLES = ["Payments are failing", "Sirius is slow", "Login page returns 500", "LPA search times out",
          "Emails not sent", "Database CPU at 100%", "Document uploads stuck", "Case worker screens blank"]
POSTGRES_URL = os.environ.get("INCIDENT_TEST_POSTGRES_URL") or "postgresql://postgres@127.0.0.1:5432/test"


@contextmanager
def postgres_database(base: str = POSTGRES_URL, prefix: str = "bench_p3"):
    """A new database on `base`'s server (its user must be allowed to create databases), dropped afterwards."""
    import psycopg2
    from psycopg2 import sql

    parts = urlsplit(base)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    def admin(statement):
        conn = psycopg2.connect(base, connect_timeout=5)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    finally:
        admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def generate(url: str, incidents: int, entries: int, seed: int = 7, batch: int = 2000) -> dict:
    """Fill the fresh database at `url` through the core's models; return what was made and how fast."""
    t0 = time.perf_counter()
    db = open_database(url)
    rnd = random.Random(seed)
    per = max(1, entries // incidents)
    settings = load_settings(_common.SETTINGS)
    sev_keys = [s.key for s in settings.severities]
    end = storage.utcnow() - dt.timedelta(minutes=5)
    start = end - SPACING * incidents
    inc_fields = [storage.Incident.id, storage.Incident.number, storage.Incident.title, storage.Incident.report,
                  storage.Incident.drill, storage.Incident.summary, storage.Incident.impact,
                  storage.Incident.severity, storage.Incident.status, storage.Incident.reporter,
                  storage.Incident.declared_at, storage.Incident.closed_at, storage.Incident.closed_by,
                  storage.Incident.lead_updated_at, storage.Incident.channel_id, storage.Incident.channel_name,
                  storage.Incident.channel_archived_at, storage.Incident.headline_channel_id,
                  storage.Incident.headline_ts]
    T = storage.TimelineEntry
    tl_fields = [T.incident, T.kind, T.at, T.author, T.text, T.recorded_at, T.source_channel, T.source_ts,
                 T.permalink, T.files]
    R = storage.RoleAssignment
    ra_fields = [R.incident, R.role, R.holder, R.assigned_by, R.assigned_at, R.released_at, R.released_by]
    A = storage.Action
    ac_fields = [A.incident, A.number, A.text, A.owner, A.created_at, A.done, A.done_at, A.done_by]
    counts = {"incidents": 0, "timeline_entries": 0, "role_assignments": 0, "actions": 0}
    inc_rows, tl_rows, ra_rows, ac_rows = [], [], [], []

    def flush(force=False):
        with db.atomic():
            for model, fields, rows, key in ((storage.Incident, inc_fields, inc_rows, "incidents"),
                                             (T, tl_fields, tl_rows, "timeline_entries"),
                                             (R, ra_fields, ra_rows, "role_assignments"),
                                             (A, ac_fields, ac_rows, "actions")):
                if rows and (force or len(rows) >= batch):
                    for i in range(0, len(rows), batch):
                        model.insert_many(rows[i:i + batch], fields=fields).execute()
                    counts[key] += len(rows)
                    rows.clear()

    for n in range(1, incidents + 1):
        declared = start + SPACING * n + dt.timedelta(seconds=rnd.randint(0, 600))
        is_open = n > incidents - OPEN
        closed = None if is_open else declared + dt.timedelta(minutes=rnd.randint(10, 600))
        title = f"{rnd.choice(TITLES)} ({n})"
        channel = f"C{n:09d}"
        drill, report = n % 20 == 0, n % 10 == 3
        inc_rows.append((n, n, title, report, drill, f"Summary of incident {n}: " + "details " * 10,
                         "Some users cannot do something for a while.", rnd.choice(sev_keys),
                         "open" if is_open else "closed", REPORTER, declared, closed,
                         None if is_open else LEAD, declared, channel, f"inc-{n}-{title[:20].lower()}",
                         None if is_open else closed + dt.timedelta(hours=1), "C0HEADLINE",
                         f"{declared.timestamp():.6f}"))
        # Roles: lead and scribe held; every tenth incident had another lead first.
        first_lead = declared + dt.timedelta(minutes=1)
        if n % 10 == 0:
            ra_rows.append((n, "lead", "U09OLDLEAD", REPORTER, first_lead, first_lead + dt.timedelta(minutes=5),
                            "U09OLDLEAD"))
            first_lead += dt.timedelta(minutes=5)
        ra_rows.append((n, "lead", LEAD, REPORTER, first_lead, None, None))
        ra_rows.append((n, "scribe", SCRIBE, LEAD, first_lead + dt.timedelta(minutes=1), None, None))
        ac_rows.append((n, 1, "Write the runbook for this", LEAD, declared + dt.timedelta(minutes=20),
                        not is_open, closed, LEAD if closed else None))
        # Timeline: the bot's own entries, then pins and notes up to `per` entries.
        bot = [("declared", REPORTER, f"<@{REPORTER}> declared an incident: {title}"),
               ("role", REPORTER, f"<@{LEAD}> is now Incident Lead"),
               ("role", LEAD, f"<@{SCRIBE}> is now Incident Scribe"),
               ("severity", LEAD, "Severity set to Major"),
               ("summary", LEAD, "Summary updated: something is wrong"),
               ("action", LEAD, "Action 1: Write the runbook for this")]
        if closed:
            bot.append(("closed", LEAD, f"<@{LEAD}> closed the incident"))
        kinds = bot[:per]
        while len(kinds) < per:
            kinds.append(("pin", SCRIBE, "Restarted the workers, error rate falling <https://grafana.example|graph>")
                         if len(kinds) % 2 else ("note", SCRIBE, "Checked the logs: nothing unusual"))
        for k, (kind, author, text) in enumerate(kinds):
            at = declared + dt.timedelta(minutes=k)
            ts = f"{at.timestamp():.6f}" if kind == "pin" else None
            tl_rows.append((n, kind, at, author, text, at, channel if ts else None, ts,
                            f"https://opg.slack.com/archives/{channel}/p{ts.replace('.', '')}" if ts else None,
                            "[]"))
        if len(tl_rows) >= 50 * batch:
            flush(force=True)
    flush(force=True)
    if storage.is_sqlite(db):
        db.execute_sql("PRAGMA optimize")
        size = Path(url.removeprefix("sqlite:///")).stat().st_size
    else:  # the ids were given: move the sequence past them; then the planner's statistics
        db.execute_sql("SELECT setval(pg_get_serial_sequence('incident', 'id'), (SELECT MAX(id) FROM incident))")
        db.execute_sql("ANALYZE")
        size = db.execute_sql("SELECT pg_database_size(current_database())").fetchone()[0]
    db.close()
    took = time.perf_counter() - t0
    return {**counts, "seconds": round(took, 1), "db_mb": round(size / 2**20, 1)}


