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

--postgres runs the same on PostgreSQL too (fresh databases on the server, dropped afterwards; the
reference and the large scale alike), reported beside SQLite; the verdict takes the worst of both.

    .venv/bin/python bench/p3_scale.py [--quick] [--postgres [URL]] [--explain]
      full:  1 k / 10 k against 100 k / 1 M  (SQLite several minutes and ~1 GB of temporary disk;
             PostgreSQL as long again or longer)
      quick: 1 k / 10 k against 10 k / 100 k (under a minute each)
"""
from __future__ import annotations

import argparse
import gc
import logging
import sys
import tempfile
import time
import types
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (sets sys.path for the core)
import _p3_data  # noqa: E402
from _p3_data import LEAD, OPEN, generate  # noqa: E402

from flask import Flask  # noqa: E402

from opg_incident_core import IncidentService, load_settings, open_database  # noqa: E402
from opg_incident_core import storage  # noqa: E402
from opg_incident_core.chat import Caller, ChatCommands  # noqa: E402
from opg_incident_core.reminders import ReminderSchedule  # noqa: E402
from opg_incident_web import register_routes  # noqa: E402

NAME = "p3_scale"
TARGET = 1.5
FILTERED = "/incidents?status=closed&drills=without&page=3"


# -- the operations ---------------------------------------------------------------------------------

class Bench:
    """The core, the chat commands and the living document on one database."""

    def __init__(self, url: str):
        self.db = open_database(url)
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
            if storage.is_sqlite(bench.db):
                rows = bench.db.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()
                detail = [r[-1] for r in rows]
                subqueries = {d.split()[-1] for d in detail if d.startswith(("CO-ROUTINE", "MATERIALIZE"))}
                flags = sorted({f for d in detail if (f := _flag(d, subqueries))})
            else:  # PostgreSQL: a sequential scan of a table, or a sort node
                detail = [r[0] for r in bench.db.execute_sql("EXPLAIN " + sql, params).fetchall()]
                flags = sorted({"full scan" if "Seq Scan" in d else "temp sort" for d in detail
                                if "Seq Scan" in d or d.strip(" ->").startswith("Sort ")})
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


def run_database(kind: str, scales: dict, per: int, reps: int, warmup: int, rounds: int, tmp: str,
                 postgres_url: str) -> dict:
    """Generate both scales on one kind of database, time the operations, compare."""
    out = {"generation": {}, "scales": {}, "ratios": {}, "plans": {}}
    t0 = time.perf_counter()
    with ExitStack() as stack:
        urls = {}
        for label, n in scales.items():
            urls[label] = (f"sqlite:///{Path(tmp) / f'{label}.sqlite'}" if kind == "sqlite"
                           else stack.enter_context(_p3_data.postgres_database(postgres_url)))
            print(f"[{kind}] generating {label}: {n:,} incidents, {n * per:,} timeline entries ...", flush=True)
            out["generation"][label] = gen = generate(urls[label], n, n * per)
            print(f"  {gen['seconds']} s, {gen['db_mb']} MB", flush=True)
        benches = {}
        try:
            for label in scales:
                benches[label] = Bench(urls[label])
                out["plans"][label] = explain(benches[label])
            print(f"[{kind}] measuring ({reps} runs of each operation on each database, in {rounds} alternating "
                  f"rounds) ...", flush=True)
            out["scales"] = measure(benches, reps, warmup, rounds)
        finally:
            for bench in benches.values():
                bench.close()
    out["seconds"] = round(time.perf_counter() - t0, 1)
    ref, big = out["scales"]["reference"], out["scales"]["large"]
    worst, worst_op = 0.0, None
    print(f"\nP3 cost at scale on {kind}: {scales['large']:,} incidents / {scales['large'] * per:,} entries vs "
          f"{scales['reference']:,} / {scales['reference'] * per:,}")
    print(f"  {'operation':<20} {'ref p50':>8} {'ref p99':>8} {'big p50':>8} {'big p99':>8}  {'p50 x':>6} {'p99 x':>6}")
    for name in ref:
        r50 = big[name]["p50_ms"] / ref[name]["p50_ms"]
        r99 = big[name]["p99_ms"] / ref[name]["p99_ms"]
        if r99 > worst:
            worst, worst_op = r99, name
        out["ratios"][name] = {"p50": round(r50, 3), "p99": round(r99, 3),
                               "verdict": _common.verdict(r99, TARGET, higher_is_better=False)}
        print(f"  {name:<20} {ref[name]['p50_ms']:>8.2f} {ref[name]['p99_ms']:>8.2f} {big[name]['p50_ms']:>8.2f} "
              f"{big[name]['p99_ms']:>8.2f}  {r50:>6.2f} {r99:>6.2f}  {out['ratios'][name]['verdict']}")
    out.update(worst_p99_ratio=round(worst, 3), worst_operation=worst_op,
               verdict=_common.verdict(worst, TARGET, higher_is_better=False))
    flagged = {f"{name}: {p['sql'][:90]}...": p["plan"] for name, plans in out["plans"]["large"].items()
               for p in plans if "full scan" in p["flags"] or "temp sort" in p["flags"]}
    out["flagged_plans"] = sorted(flagged)
    print(f"  worst p99 ratio {worst:.2f} ({worst_op}; target <= {TARGET})  {out['verdict']};  "
          f"statements with a full scan or a sort: {len(flagged)}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10 k incidents / 100 k entries for the large scale")
    parser.add_argument("--small", type=int, default=1000, help="incidents in the reference (default 1000)")
    parser.add_argument("--large", type=int, help="incidents at scale (default 100000, --quick 10000)")
    parser.add_argument("--entries-per-incident", type=int, default=10)
    parser.add_argument("--reps", type=int, help="timed runs of each operation per scale (default 1000, quick 300)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds (default 4)")
    parser.add_argument("--postgres", nargs="?", const=_p3_data.POSTGRES_URL, metavar="URL",
                        help="also on PostgreSQL: fresh databases on URL's server (default "
                             "INCIDENT_TEST_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/test)")
    parser.add_argument("--explain", action="store_true", help="print the query plans of every operation")
    parser.add_argument("--dir", help="where to put the SQLite databases (default: a temporary directory)")
    parser.add_argument("--out", help="results JSON (default bench/results/p3_scale.json)")
    args = parser.parse_args(argv)
    large = args.large or (10_000 if args.quick else 100_000)
    reps = args.reps or (300 if args.quick else 1000)
    rounds = max(1, min(args.rounds, reps))
    warmup = max(3, min(50, reps // 10))
    per = args.entries_per_incident
    scales = {"reference": args.small, "large": large}
    kinds = ["sqlite"] + (["postgresql"] if args.postgres else [])

    result = {"quick": args.quick,
              "config": {"incidents": scales, "timeline_entries": {k: v * per for k, v in scales.items()},
                         "open_incidents": OPEN, "reps": reps, "rounds": rounds, "warmup": warmup,
                         "filtered_page": FILTERED, "databases": kinds,
                         "durability": "SQLite: WAL, synchronous=FULL (open_database); PostgreSQL: its defaults"},
              "databases": {}}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-p3-", dir=args.dir) as tmp:
        for kind in kinds:
            result["databases"][kind] = run_database(kind, scales, per, reps, warmup, rounds, tmp, args.postgres)
    result["seconds"] = round(time.perf_counter() - t_all, 1)
    worst = max(d["worst_p99_ratio"] for d in result["databases"].values())
    result.update(worst_p99_ratio=worst, target_ratio=TARGET,
                  verdict=_common.verdict(worst, TARGET, higher_is_better=False))
    print(f"\nP3 worst p99 ratio over {', '.join(kinds)}: {worst:.2f} (target <= {TARGET})  {result['verdict']}")
    if args.explain:
        for kind in kinds:
            print_plans(result["databases"][kind]["plans"]["large"], kind)
    path = _common.write_results(NAME, result, args.out)
    print(f"  -> {path}  ({result['seconds']} s)")
    return 0


def print_plans(plans: dict, kind: str = "sqlite") -> None:
    print(f"\nQuery plans on {kind} (large database), per operation:")
    for name, statements in plans.items():
        print(f"\n[{name}]")
        for p in statements:
            mark = f"  <-- {', '.join(p['flags'])}" if p["flags"] else ""
            print(f"  {p['sql'][:160]}{'...' if len(p['sql']) > 160 else ''}{mark}")
            for line in p["plan"]:
                print(f"      {line}")


if __name__ == "__main__":
    sys.exit(main())
