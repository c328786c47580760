"""P2b: the core's write path against raw sqlite3 with the same durability.

Core: IncidentService.record_pin (a pinned message joins the timeline) and IncidentService.log("note"),
on the SQLite database open_database sets up (WAL, synchronous=FULL, foreign keys, one IMMEDIATE
transaction per operation), each returning its Outcome as the adapters need it.
Reference: Python's sqlite3 inserting the same timeline_entry rows into the same schema (copied from the
core's database, indexes included) with the same durability: WAL, synchronous=FULL, BEGIN IMMEDIATE /
INSERT / COMMIT per row.

Also measured, to show where the core's time goes: the core's own statements for one operation (captured
from Peewee's log), replayed with sqlite3 in one transaction per row on a copy of its database.

The three alternate in rounds so that disk noise falls on all. The whole measurement runs --runs times
(5), each on fresh databases; the figure is the median of the runs' ratios. Target: core/raw >= 0.5 for each.

    .venv/bin/python bench/p2b_write_path.py [--quick] [--runs 5] [--rows N] [--rounds R] [--profile]
      full:  5 runs of 2,000 rows per kind (about 40 s); quick: 5 runs of 400
"""
from __future__ import annotations

import argparse
import datetime as dt
import logging
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402  (sets sys.path for the core)

from opg_incident_core import IncidentService, load_settings, open_database  # noqa: E402
from opg_incident_core import storage  # noqa: E402

NAME = "p2b_write_path"
TARGET = 0.5
CHANNEL = "C0BENCH01"
TEXT = "Restarted the payment workers; error rate back to 0.2% <https://grafana.example/d/abc|dashboard>"
PERMALINK = "https://opg.slack.com/archives/C0BENCH01/p{}"
RAW_SQL = ("INSERT INTO timeline_entry (incident_id, kind, at, author, text, recorded_at, source_channel, "
           "source_ts, thread_ts, permalink, files, removed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


class Core:
    def __init__(self, path: Path):
        self.db = open_database(f"sqlite:///{path}")
        settings = load_settings(_common.SETTINGS)
        self.service = IncidentService(lambda: settings, admins={"@admin"})
        out = self.service.declare("Payments are failing", "U01REPORT", severity="major", lead="U02LEAD")
        self.number = out.incident.number
        self.service.assign_role(self.number, "scribe", "U03SCRIBE", "U02LEAD")
        self.service.attach_channel(self.number, CHANNEL, "inc-1-payments-are-failing", "U02LEAD")
        self.schema = [sql for (sql,) in self.db.execute_sql(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY type = 'index', name")]
        self.incident_id = storage.Incident.get(storage.Incident.number == self.number).id

    def pins(self, start: int, n: int) -> float:
        record = self.service.record_pin
        t0 = time.perf_counter()
        for i in range(start, start + n):
            ts = f"{1748955600 + i}.{i % 1000000:06d}"
            record(CHANNEL, ts, "U03SCRIBE", TEXT, "U03SCRIBE", permalink=PERMALINK.format(i))
        return time.perf_counter() - t0

    def notes(self, start: int, n: int) -> float:
        log, number = self.service.log, self.number
        t0 = time.perf_counter()
        for _ in range(n):
            log(number, "note", TEXT, "U03SCRIBE")
        return time.perf_counter() - t0

    def count(self) -> int:
        return storage.TimelineEntry.select().count()


class Captured(logging.Handler):
    """The statements Peewee runs (it logs each one at DEBUG; BEGIN and COMMIT are not logged)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.statements: list[tuple[str, tuple]] = []

    def emit(self, record):
        if isinstance(record.msg, tuple):
            sql, params = record.msg
            self.statements.append((sql, tuple(params or ())))


def capture(fn) -> list[tuple[str, tuple]]:
    log, handler = logging.getLogger("peewee"), Captured()
    old = log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        fn()
    finally:
        log.removeHandler(handler)
        log.setLevel(old)
    return handler.statements


class Replay:
    """The core's own statements for one operation, replayed with sqlite3: what the core's SQL costs
    without the ORM and Python around it (on a copy of the core's database)."""

    def __init__(self, path: Path, statements: dict[str, list]):
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        for pragma in ("journal_mode = wal", "synchronous = full", "foreign_keys = 1", "busy_timeout = 10000"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.statements = statements

    def _run(self, kind: str, n: int) -> float:
        conn, statements = self.conn, self.statements[kind]
        t0 = time.perf_counter()
        for _ in range(n):
            conn.execute("BEGIN IMMEDIATE")
            for sql, params in statements:
                conn.execute(sql, params).fetchall()
            conn.execute("COMMIT")
        return time.perf_counter() - t0

    def pins(self, start: int, n: int) -> float:
        return self._run("pin", n)

    def notes(self, start: int, n: int) -> float:
        return self._run("note", n)


class Raw:
    """The physical limit: the same rows, the same schema and durability, nothing else."""

    def __init__(self, path: Path, schema: list[str]):
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        for pragma in ("journal_mode = wal", "synchronous = full", "foreign_keys = 1", "busy_timeout = 10000"):
            self.conn.execute(f"PRAGMA {pragma}")
        for sql in schema:
            self.conn.execute(sql)
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        cur = self.conn.execute("INSERT INTO incident (number, title, report, drill, summary, impact, status, reporter, "
                          "declared_at) VALUES (1, 'Payments are failing', 0, 0, '', '', 'open', 'U01REPORT', ?)",
                          (now,))
        self.incident_id = cur.lastrowid

    def _insert(self, kind: str, start: int, n: int) -> float:
        conn, iid = self.conn, self.incident_id
        t0 = time.perf_counter()
        for i in range(start, start + n):
            now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            if kind == "pin":
                at = dt.datetime.fromtimestamp(1748955600 + i, dt.timezone.utc).replace(tzinfo=None)
                row = (iid, "pin", at, "U03SCRIBE", TEXT, now, CHANNEL, f"{1748955600 + i}.{i % 1000000:06d}",
                       None, PERMALINK.format(i), "[]", None)
            else:
                row = (iid, "note", now, "U03SCRIBE", TEXT, now, None, None, None, None, "[]", None)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(RAW_SQL, row)
            conn.execute("COMMIT")
        return time.perf_counter() - t0

    def pins(self, start: int, n: int) -> float:
        return self._insert("pin", start, n)

    def notes(self, start: int, n: int) -> float:
        return self._insert("note", start, n)


def run(rows: int, rounds: int, workdir: Path) -> dict:
    sqlite3.register_adapter(dt.datetime, lambda v: v.isoformat(" "))  # as Peewee stores them
    core = Core(workdir / "core.sqlite")
    raw = Raw(workdir / "raw.sqlite", core.schema)
    statements = {"pin": capture(lambda: core.pins(20_000_000, 1)), "note": capture(lambda: core.notes(0, 1))}
    backup = sqlite3.connect(str(workdir / "replay.sqlite"))
    core.db.connection().backup(backup)
    backup.close()
    replay = Replay(workdir / "replay.sqlite", statements)
    per_round = max(1, rows // rounds)
    # Warm them up (page cache, prepared statements, first WAL frames) outside the figures.
    for impl in (core, raw, replay):
        impl.pins(10_000_000, 20), impl.notes(0, 20)
    sides = {"raw": raw, "core": core, "replay": replay}
    times = {(who, kind): [] for who in sides for kind in ("pin", "note")}
    for r in range(rounds):
        start = r * per_round
        order = list(sides.items()) if r % 2 == 0 else list(reversed(sides.items()))
        for kind in ("pin", "note"):
            for who, impl in order:
                times[(who, kind)].append(getattr(impl, kind + "s")(start, per_round))
    total = rounds * per_round
    result = {"rows_per_kind": total, "rounds": rounds, "durability": "WAL, synchronous=FULL, one transaction per row"}
    for kind in ("pin", "note"):
        core_rps = total / sum(times[("core", kind)])
        raw_rps = total / sum(times[("raw", kind)])
        result[kind] = {
            "core_rows_per_s": round(core_rps, 1), "raw_rows_per_s": round(raw_rps, 1),
            "ratio": round(core_rps / raw_rps, 3), "target_ratio": TARGET,
            "core_us_per_row": round(1e6 / core_rps, 1), "raw_us_per_row": round(1e6 / raw_rps, 1),
            "verdict": _common.verdict(core_rps / raw_rps, TARGET, higher_is_better=True),
            # Where the core's time goes: its own SQL replayed with sqlite3 (no ORM, no Python around it).
            "core_statements": [sql.split(" WHERE ")[0][:70] for sql, _ in statements[kind]],
            "core_sql_replayed_rows_per_s": round(total / sum(times[("replay", kind)]), 1),
            "core_sql_replayed_us_per_row": round(1e6 * sum(times[("replay", kind)]) / total, 1),
        }
    assert core.count() >= 2 * total, "the core did not write every row"
    raw.conn.close()
    replay.conn.close()
    core.db.close()
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="400 rows per kind and run instead of 2,000")
    parser.add_argument("--runs", type=int, default=5, help="whole measurements on fresh databases (default 5)")
    parser.add_argument("--rows", type=int, help="rows per kind (pins, notes) for each side, per run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per run (default 5)")
    parser.add_argument("--dir", help="where to put the databases (default: a temporary directory)")
    parser.add_argument("--profile", action="store_true", help="profile the core's pins with cProfile")
    parser.add_argument("--out", help="results JSON (default bench/results/p2b_write_path.json)")
    args = parser.parse_args(argv)
    rows = args.rows or (400 if args.quick else 2000)

    runs = []
    for i in range(max(1, args.runs)):
        with tempfile.TemporaryDirectory(prefix="bench-p2b-", dir=args.dir) as tmp:
            if args.profile:
                return profile(Path(tmp), rows)
            runs.append(run(rows, max(1, min(args.rounds, rows)), Path(tmp)))
        print(f"  run {i + 1}: record_pin ratio {runs[-1]['pin']['ratio']:.3f}, log note {runs[-1]['note']['ratio']:.3f}",
              flush=True)
    result = {"rows_per_kind_per_run": runs[0]["rows_per_kind"], "runs": len(runs),
              "durability": runs[0]["durability"]}
    for kind in ("pin", "note"):
        ordered = sorted(runs, key=lambda r: r[kind]["ratio"])
        median = ordered[len(ordered) // 2][kind]  # the run with the median ratio (odd counts; else the upper one)
        ratio = statistics.median(r[kind]["ratio"] for r in runs)
        result[kind] = {**median, "ratio": round(ratio, 3),
                        "verdict": _common.verdict(ratio, TARGET, higher_is_better=True),
                        "ratios": [r[kind]["ratio"] for r in runs],
                        "ratio_min": min(r[kind]["ratio"] for r in runs),
                        "ratio_max": max(r[kind]["ratio"] for r in runs)}

    print(f"P2b core write path vs raw sqlite3 ({result['durability']}), median of {len(runs)} runs of "
          f"{result['rows_per_kind_per_run']} rows per kind")
    for kind, label in (("pin", "record_pin"), ("note", "log note")):
        r = result[kind]
        print(f"  {label:<11} ratio {r['ratio']:.2f} (runs {', '.join(f'{x:.2f}' for x in r['ratios'])}; target >= "
              f"{TARGET})  {r['verdict']}")
        print(f"  {'':<11} median run: core {r['core_rows_per_s']:>8.0f} rows/s ({r['core_us_per_row']:.0f} us)  "
              f"raw {r['raw_rows_per_s']:>8.0f} rows/s ({r['raw_us_per_row']:.0f} us); the core's "
              f"{len(r['core_statements'])} statements replayed with sqlite3: {r['core_sql_replayed_us_per_row']:.0f} us")
    path = _common.write_results(NAME, {"quick": args.quick, "config": {"rows": rows, "rounds": args.rounds,
                                                                       "runs": args.runs},
                                        "results": result}, args.out)
    print(f"  -> {path}")
    return 0


def profile(workdir: Path, rows: int) -> int:
    import cProfile
    import pstats

    core = Core(workdir / "core.sqlite")
    core.pins(10_000_000, 20)
    prof = cProfile.Profile()
    prof.enable()
    core.pins(0, rows)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(35)
    core.db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
