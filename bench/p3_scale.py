"""P3: cost at scale. Does handling a command or serving a page cost the same with 100 k incidents on
record as with 1 k?

Two SQLite databases are generated through the core's own storage (open_database: the same Peewee
models, schema and indexes; rows bulk-inserted with Model.insert_many in batches inside transactions):
a reference with 1 k incidents (10 k timeline entries) and a large one with 100 k incidents (1 M
entries). History is mostly closed; a fixed 20 newest incidents are open, as in real life (the number
of open incidents does not grow with the history). Each incident has a lead and a scribe (every tenth
a handed-over lead too), an action, pins from its channel and the bot's own entries.

Then the same operations are timed one by one, interleaved, on the newest incidents (so both databases
see the same writes), in rounds alternating between the two databases:
  commands (ChatCommands, in the incident's channel): summary, sev, action, timeline; `incident list`
  the living document (Flask test client): /incidents/<n>, /incidents/<n>.json, /incidents (first
  page) and a filtered page (/incidents?status=closed&drills=without&page=3)
  what the plugin runs on every poll: due_for_archive (archive on schedule), reminders due
and p50/p99 are reported per scale, with the ratio large/reference. Target: p99 ratio <= 1.5.
--explain prints SQLite's EXPLAIN QUERY PLAN of every statement each operation runs (captured from
Peewee), flagging full scans and temporary sorts; the plans always go into the JSON.

    /work/venv/bin/python bench/p3_scale.py [--quick] [--explain]
      full:  1 k / 10 k against 100 k / 1 M  (several minutes, ~1 GB of disk in a temporary directory)
      quick: 1 k / 10 k against 10 k / 100 k (under a minute)
"""
from __future__ import annotations

import argparse
import datetime as dt
import gc
import logging
import random
import sys
import tempfile
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (sets sys.path for the core)

from flask import Flask  # noqa: E402

from opg_incident_core import IncidentService, load_settings, open_database  # noqa: E402
from opg_incident_core import storage  # noqa: E402
from opg_incident_core.chat import Caller, ChatCommands  # noqa: E402
from opg_incident_core.reminders import ReminderSchedule  # noqa: E402
from opg_incident_web import register_routes  # noqa: E402

NAME = "p3_scale"
TARGET = 1.5
OPEN = 20  # open incidents, whatever the size of the history
SPACING = dt.timedelta(minutes=15)  # between two incidents' declarations
LEAD, SCRIBE, REPORTER = "U02LEAD", "U03SCRIBE", "U01REPORT"
TITLES = ["Payments are failing", "Sirius is slow", "Login page returns 500", "LPA search times out",
          "Emails not sent", "Database CPU at 100%", "Document uploads stuck", "Case worker screens blank"]
FILTERED = "/incidents?status=closed&drills=without&page=3"


# -- generation -------------------------------------------------------------------------------------

def generate(path: Path, incidents: int, entries: int, seed: int = 7, batch: int = 2000) -> dict:
    """Fill a fresh database at `path` through the core's models; return what was made and how fast."""
    t0 = time.perf_counter()
    db = open_database(f"sqlite:///{path}")
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
                  storage.Incident.summary_updated_at, storage.Incident.channel_id, storage.Incident.channel_name,
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
    db.execute_sql("PRAGMA optimize")
    db.close()
    took = time.perf_counter() - t0
    return {**counts, "seconds": round(took, 1), "db_mb": round(path.stat().st_size / 2**20, 1)}


# -- the operations ---------------------------------------------------------------------------------

class Bench:
    """The core, the chat commands and the living document on one database."""

    def __init__(self, path: Path):
        self.db = open_database(f"sqlite:///{path}")
        self.settings = load_settings(_common.SETTINGS)
        self.service = IncidentService(lambda: self.settings, admins={"@admin"})
        self.chat = ChatCommands(self.service)
        self.reminders = ReminderSchedule(self.service)
        app = Flask("bench_p3")
        register_routes(app, lambda: self.service, lambda: self.settings,
                        types.SimpleNamespace(INCIDENT_PUBLIC_URL="http://bench.example"))
        self.client = app.test_client()
        newest = storage.Incident.select(storage.Incident.number, storage.Incident.channel_id).order_by(
            storage.Incident.number.desc()).limit(OPEN)
        self.targets = [(r.number, r.channel_id) for r in newest]
        self.i = 0

    def _target(self):
        self.i += 1
        return self.targets[self.i % len(self.targets)]

    def _get(self, url: str):
        response = self.client.get(url)
        assert response.status_code == 200, (url, response.status_code, response.get_data(as_text=True)[:300])
        return response

    def ops(self) -> dict:
        chat, sevs = self.chat, ("critical", "major")

        def caller():
            number, channel = self._target()
            return number, Caller(LEAD, channel=channel)

        def summary():
            _, c = caller()
            chat.summary(f"Payments fail for some users, update {self.i}", c)

        def sev():
            _, c = caller()
            chat.sev(sevs[self.i % 2], c)

        def action():
            _, c = caller()
            chat.action(f"Look at the queue, step {self.i}", c)

        def timeline():
            _, c = caller()
            assert chat.timeline("", c).text.startswith("Timeline")

        def incident_list():
            chat.list("open", Caller(LEAD))

        def page():
            n, _ = self._target()
            self._get(f"/incidents/{n}")

        def page_json():
            n, _ = self._target()
            self._get(f"/incidents/{n}.json")

        def index():
            self._get("/incidents")

        def index_filtered():
            self._get(FILTERED)

        def due_for_archive():  # every poll of the plugin (_tick)
            self.service.due_for_archive(24 * 60)

        def reminders_due():  # every poll of the plugin on Slack
            self.reminders.due()

        return {"cmd_summary": summary, "cmd_sev": sev, "cmd_action": action, "cmd_timeline": timeline,
                "cmd_incident_list": incident_list, "web_incident": page, "web_incident_json": page_json,
                "web_index": index, "web_index_filtered": index_filtered,
                "tick_due_for_archive": due_for_archive, "tick_reminders_due": reminders_due}

    def use(self):
        """Point the core's models at this database (both stay open; the models follow one at a time)."""
        storage.database.initialize(self.db)

    def close(self):
        self.db.close()


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.statements = []

    def emit(self, record):
        if isinstance(record.msg, tuple):
            self.statements.append(record.msg)


def explain(bench: Bench) -> dict:
    """EXPLAIN QUERY PLAN of every statement each operation runs, once."""
    plans = {}
    log = logging.getLogger("peewee")
    for name, op in bench.ops().items():
        handler = Captured()
        old = log.level
        log.addHandler(handler)
        log.setLevel(logging.DEBUG)
        try:
            op()
        finally:
            log.removeHandler(handler)
            log.setLevel(old)
        seen, out = set(), []
        for sql, params in handler.statements:
            head = sql.split(None, 1)[0].upper()
            if head not in ("SELECT", "UPDATE", "DELETE", "INSERT") or sql in seen:
                continue
            seen.add(sql)
            rows = bench.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
            detail = [r[-1] for r in rows]
            subqueries = {d.split()[-1] for d in detail if d.startswith(("CO-ROUTINE", "MATERIALIZE"))}
            flags = sorted({f for d in detail if (f := _flag(d, subqueries))})
            out.append({"sql": sql, "plan": detail, "flags": flags})
        plans[name] = out
    return plans


def _flag(detail: str, subqueries: frozenset | set = frozenset()) -> str | None:
    """A full table scan, an index walked from one end (fine under ORDER BY ... LIMIT, not for a count
    or a filter), or a sort in a temporary b-tree (fine over one incident's rows, not over many). Reading
    the rows of the statement's own subquery (a capped count's `SELECT ... LIMIT n`) is no table scan."""
    if detail.startswith("SCAN") and detail.split()[1] in subqueries:
        return "subquery scan"
    if detail.startswith("SCAN"):
        return "index scan" if " INDEX " in detail else "full scan"
    if "TEMP B-TREE" in detail:
        return "temp sort"
    return None


def measure(benches: dict[str, Bench], reps: int, warmup: int, rounds: int) -> dict:
    """Time every operation `reps` times on each database, in alternating rounds (reference, large,
    reference, ...) so that a slow moment of the machine falls on both; p50/p99 over all rounds."""
    ops = {label: bench.ops() for label, bench in benches.items()}
    samples = {label: {name: [] for name in ops[label]} for label in benches}
    for label, bench in benches.items():
        bench.use()
        for _ in range(warmup):
            for op in ops[label].values():
                op()
    per_round = max(1, reps // rounds)
    for _ in range(rounds):
        for label, bench in benches.items():
            bench.use()
            gc.collect()
            for _ in range(per_round):
                for name, op in ops[label].items():
                    t0 = time.perf_counter()
                    op()
                    samples[label][name].append(time.perf_counter() - t0)
    return {label: {name: _common.summary_ms(s) for name, s in by_op.items()} for label, by_op in samples.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 k incidents / 100 k entries for the large scale")
    parser.add_argument("--small", type=int, default=1000, help="incidents in the reference (default 1000)")
    parser.add_argument("--large", type=int, help="incidents at scale (default 100000, --quick 10000)")
    parser.add_argument("--entries-per-incident", type=int, default=10)
    parser.add_argument("--reps", type=int, help="timed runs of each operation per scale (default 1000, quick 300)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default 4)")
    parser.add_argument("--explain", action="store_true", help="print the query plans of every operation")
    parser.add_argument("--dir", help="where to put the databases (default: a temporary directory)")
    parser.add_argument("--out", help="results JSON (default bench/results/p3_scale.json)")
    args = parser.parse_args(argv)
    large = args.large or (10_000 if args.quick else 100_000)
    reps = args.reps or (300 if args.quick else 1000)
    rounds = max(1, min(args.rounds, reps))
    warmup = max(3, min(50, reps // 10))
    per = args.entries_per_incident
    scales = {"reference": args.small, "large": large}

    result = {"config": {"incidents": scales, "timeline_entries": {k: v * per for k, v in scales.items()},
                         "open_incidents": OPEN, "reps": reps, "rounds": rounds, "warmup": warmup, "filtered_page": FILTERED,
                         "durability": "WAL, synchronous=FULL (open_database)"},
              "generation": {}, "scales": {}, "ratios": {}, "plans": {}}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-p3-", dir=args.dir) as tmp:
        for label, n in scales.items():
            path = Path(tmp) / f"{label}.sqlite"
            print(f"generating {label}: {n:,} incidents, {n * per:,} timeline entries ...", flush=True)
            result["generation"][label] = gen = generate(path, n, n * per)
            print(f"  {gen['seconds']} s, {gen['db_mb']} MB", flush=True)
        benches = {}
        try:
            for label in scales:
                benches[label] = Bench(Path(tmp) / f"{label}.sqlite")
                result["plans"][label] = explain(benches[label])
            print(f"measuring ({reps} runs of each operation on each database, in {rounds} alternating rounds) ...",
                  flush=True)
            result["scales"] = measure(benches, reps, warmup, rounds)
        finally:
            for bench in benches.values():
                bench.close()
    result["seconds"] = round(time.perf_counter() - t_all, 1)

    ref, big = result["scales"]["reference"], result["scales"]["large"]
    worst = 0.0
    print(f"\nP3 cost at scale: {large:,} incidents / {large * per:,} entries vs {args.small:,} / {args.small * per:,}")
    print(f"  {'operation':<20} {'ref p50':>8} {'ref p99':>8} {'big p50':>8} {'big p99':>8}  {'p50 x':>6} {'p99 x':>6}")
    for name in ref:
        r50 = big[name]["p50_ms"] / ref[name]["p50_ms"]
        r99 = big[name]["p99_ms"] / ref[name]["p99_ms"]
        worst = max(worst, r99)
        result["ratios"][name] = {"p50": round(r50, 3), "p99": round(r99, 3),
                                  "verdict": _common.verdict(r99, TARGET, higher_is_better=False)}
        print(f"  {name:<20} {ref[name]['p50_ms']:>8.2f} {ref[name]['p99_ms']:>8.2f} {big[name]['p50_ms']:>8.2f} "
              f"{big[name]['p99_ms']:>8.2f}  {r50:>6.2f} {r99:>6.2f}  {result['ratios'][name]['verdict']}")
    result["worst_p99_ratio"] = round(worst, 3)
    result["target_ratio"] = TARGET
    result["verdict"] = _common.verdict(worst, TARGET, higher_is_better=False)
    flagged = {f"{name}: {p['sql'][:90]}...": p["plan"] for name, plans in result["plans"]["large"].items()
               for p in plans if "full scan" in p["flags"] or "temp sort" in p["flags"]}
    result["flagged_plans"] = sorted(flagged)
    print(f"  worst p99 ratio {worst:.2f} (target <= {TARGET})  {result['verdict']};  "
          f"statements with a full scan or temporary sort: {len(flagged)}")
    if args.explain:
        print_plans(result["plans"]["large"])
    path = _common.write_results(NAME, result, args.out)
    print(f"  -> {path}  ({result['seconds']} s)")
    return 0


def print_plans(plans: dict) -> None:
    print("\nEXPLAIN QUERY PLAN (large database), per operation:")
    for name, statements in plans.items():
        print(f"\n[{name}]")
        for p in statements:
            mark = f"  <-- {', '.join(p['flags'])}" if p["flags"] else ""
            print(f"  {p['sql'][:160]}{'...' if len(p['sql']) > 160 else ''}{mark}")
            for line in p["plan"]:
                print(f"      {line}")


if __name__ == "__main__":
    sys.exit(main())
