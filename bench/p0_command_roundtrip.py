"""P0: a chat command's round trip against errbot's own `!echo`, on errbot's test backend.

errbot 6.2.1's test backend (errbot.backends.test.TestBot: the bot, its plugin manager, command
dispatch, ACLs and thread pool in this process; messages in and out through queues) runs the opg-incident
plugin with config.py's production settings for command handling (CORE_PLUGINS, ACCESS_CONTROLS,
prefixes, BOT_LOG_LEVEL=INFO) and SQLite as open_database sets it up (WAL, synchronous=FULL). One
incident is declared; then, one at a time and interleaved in turn:
  echo      `!echo <text>`: errbot's own command (Utils; admins only by config.py's ACCESS_CONTROLS, so
            the benchmark speaks as the bot admin): dispatch and reply, no work. The reference.
  summary   `!summary 1 <text>`: a new summary each time: checked, recorded with its timeline entry (one
            write transaction, fsync'd) and answered
  sev       `!sev 1 <severity>`: alternating between two severities, so that each one is a change
Milliseconds from pushing the message into the backend's queue to popping the reply. Target: p99 of each
record-writing command within 1.5x of `!echo`'s p99 measured in the same run.
A bound, measured in turn with them: `commit`, one row written with Python's sqlite3 and committed with the
bot's durability (WAL, synchronous=FULL) in a database of its own on the same disk: what the one sync to disk
a recorded change needs costs here. `!echo` plus that is the least a durable command can take.

--profile: cProfile of each kind (commands run synchronously then, BOT_ASYNC=False) and the top functions.

    .venv/bin/python bench/p0_command_roundtrip.py [--quick] [--samples N] [--profile]
      full:  1,000 of each (about 20 s); quick: 200 of each
"""
from __future__ import annotations

import argparse
import logging
import os
import runpy
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

NAME = "p0_command_roundtrip"
TARGET_RATIO = 1.5
ADMIN = "@admin"
KINDS = ("echo", "summary", "sev")
SEVERITIES = ("major", "critical")
# config.py's settings that shape how a chat message becomes a command and a reply
FROM_CONFIG = ("CORE_PLUGINS", "ACCESS_CONTROLS", "BOT_PREFIX", "BOT_PREFIX_OPTIONAL_ON_CHAT", "BOT_ALT_PREFIXES",
               "BOT_ALT_PREFIX_CASEINSENSITIVE", "SUPPRESS_CMD_NOT_FOUND", "HIDE_RESTRICTED_COMMANDS",
               "BOT_ADMINS", "BOT_ADMINS_NOTIFICATIONS", "INCIDENT_POLL_SECONDS", "INCIDENT_MINUTE_SECONDS",
               "INCIDENT_OUTBOX_LEASE_SECONDS")


def production_config(tmp: Path) -> dict:
    """config.py as the process would read it (admin @admin, data in tmp), reduced to what command handling
    uses, plus the database and settings of this run."""
    saved = dict(os.environ)
    os.environ.update(BOT_ADMINS=ADMIN, BOT_DATA_DIR=str(tmp / "data"), INCIDENT_WEB_PORT="0",
                      BOT_LOG_LEVEL="INFO")
    for key in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "INCIDENT_LOG_FORMAT", "INCIDENT_DATABASE_URL"):
        os.environ.pop(key, None)
    try:
        config = runpy.run_path(str(_common.ROOT / "config.py"))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    extra = {key: config[key] for key in FROM_CONFIG if key in config}
    extra.update(AUTOINSTALL_DEPS=False, INCIDENT_DATABASE_URL=f"sqlite:///{tmp / 'incidents.sqlite'}",
                 INCIDENT_SETTINGS=str(_common.SETTINGS), INCIDENT_WEB_PORT=0)
    return extra


def command(kind: str, i: int) -> tuple[str, str]:
    """(message, what the reply must say)."""
    if kind == "echo":
        return f"!echo Card payments fail {i}", f"Card payments fail {i}"
    if kind == "summary":
        return f"!summary 1 Card payments fail for everyone since 10:{i % 60:02d} ({i})", "the summary is now"
    severity = SEVERITIES[i % 2]
    return f"!sev 1 {severity}", "the severity is now"


class Profiles:
    """One cProfile per kind, enabled around errbot's handling of each message (synchronous: BOT_ASYNC off)."""

    def __init__(self, bot, sort: str = "cumulative"):
        import cProfile
        self.sort = sort
        self.by_kind = {k: cProfile.Profile() for k in KINDS}
        self.current = None
        original = bot.callback_message

        def profiled(msg):
            prof = self.by_kind.get(self.current)
            if prof is None:
                return original(msg)
            prof.enable()
            try:
                return original(msg)
            finally:
                prof.disable()
        bot.callback_message = profiled

    def report(self, top: int = 60) -> None:
        import pstats
        for kind, prof in self.by_kind.items():
            print(f"\n--- cProfile: {kind} ({self.sort}) ---")
            pstats.Stats(prof).sort_stats(self.sort).print_stats(top)


def measure(samples: int, warmup: int, profile: str | None = None) -> dict:
    from errbot.backends.test import TestBot

    with tempfile.TemporaryDirectory(prefix="bench-p0-") as tmp:
        extra = production_config(Path(tmp))
        if profile:
            extra["BOT_ASYNC"] = False
        bot = TestBot(extra_plugin_dir=str(_common.PLUGIN_DIR), loglevel=logging.INFO, extra_config=extra)
        bot.start(timeout=10)
        root = logging.getLogger()
        root.handlers[:] = [h for h in root.handlers if isinstance(h, logging.FileHandler)]  # the file, no console
        try:
            reply = bot.exec_command("!incident declare Payments are failing", timeout=10)
            assert reply.startswith("Incident 1 declared"), reply
            profiles = Profiles(bot.bot, profile) if profile else None
            times: dict[str, list[float]] = {k: [] for k in KINDS}
            wrong: dict[str, list[str]] = {k: [] for k in KINDS}
            floor, floor_times = _durable_commit(Path(tmp)), []
            for i in range(-warmup, samples):
                for step in range(len(KINDS)):
                    kind = KINDS[(i + step) % len(KINDS)]  # each kind in each position in turn
                    text, expected = command(kind, i + warmup)
                    if profiles is not None:
                        profiles.current = kind if i >= 0 else None
                    t0 = time.perf_counter()
                    bot.push_message(text)
                    answer = bot.pop_message(timeout=10)
                    elapsed = time.perf_counter() - t0
                    if i < 0:
                        continue
                    times[kind].append(elapsed)
                    if expected not in answer:
                        wrong[kind].append(answer[:200])
                if i >= 0:
                    floor_times.append(floor(i))
            if profiles is not None:
                profiles.current = None
            service = bot.bot.plugin_manager.get_plugin_obj_by_name("OpgIncident").service
            timeline = service.timeline(1)
            counts = {k: sum(1 for e in timeline if e.kind == k) for k in ("summary", "severity")}
        finally:
            if profile:  # TestBot.stop closes the pool that BOT_ASYNC=False never made
                from multiprocessing.pool import ThreadPool
                bot.bot.thread_pool = ThreadPool(1)
            bot.stop()
    if profiles is not None:
        profiles.report()
    result = {kind: {**_common.summary_ms(times[kind]), "wrong_replies": len(wrong[kind]),
                     "first_wrong": wrong[kind][:3]} for kind in KINDS}
    return {"kinds": result, "timeline_entries": counts, "commit": _common.summary_ms(floor_times)}


def _durable_commit(tmp: Path):
    """A function writing and committing one row as durably as the bot does; returns its seconds."""
    import sqlite3
    conn = sqlite3.connect(tmp / "floor.sqlite", isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=full")
    conn.execute("CREATE TABLE entry (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")

    def commit(i: int) -> float:
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO entry (text) VALUES (?)", (f"Card payments fail for everyone ({i})",))
        conn.execute("COMMIT")
        return time.perf_counter() - t0
    return commit


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 of each instead of 1,000")
    parser.add_argument("--samples", type=int, help="round trips of each kind (default 1000, quick 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed round trips of each kind first")
    parser.add_argument("--profile", nargs="?", const="cumulative", metavar="SORT",
                        help="cProfile each kind (commands run synchronously), sorted by SORT (cumulative, tottime)")
    parser.add_argument("--out", help="results JSON (default bench/results/p0_command_roundtrip.json)")
    args = parser.parse_args(argv)
    samples = args.samples or (200 if args.quick else 1000)

    measured = measure(samples, args.warmup, args.profile)
    kinds = measured["kinds"]
    echo = kinds["echo"]
    ratios = {k: round(kinds[k]["p99_ms"] / echo["p99_ms"], 3) for k in ("summary", "sev")}
    ratios_p50 = {k: round(kinds[k]["p50_ms"] / echo["p50_ms"], 3) for k in ("summary", "sev")}
    worst = max(ratios.values())
    commit = measured["commit"]
    floor_ratio = round((echo["p99_ms"] + commit["p99_ms"]) / echo["p99_ms"], 3)
    doc = {"loadavg_at_end": _slack_free_loadavg(), "quick": args.quick,
           "config": {"samples_per_kind": samples, "warmup": args.warmup, "backend": "errbot Test (TestBot)",
                      "speaker": ADMIN, "profile": bool(args.profile), "bot_log_level": "INFO"},
           "kinds": kinds, "ratios_p99_to_echo": ratios, "ratios_p50_to_echo": ratios_p50,
           "worst_p99_ratio": worst, "target_ratio": TARGET_RATIO,
           "durable_commit": commit, "floor_p99_ratio": floor_ratio,
           "verdict": _common.verdict(worst, TARGET_RATIO, higher_is_better=False),
           "sanity": {"timeline_entries": measured["timeline_entries"],
                      "all_replies_right": not any(k["wrong_replies"] for k in kinds.values())}}
    print(f"P0 command round trip on errbot's test backend, {samples} of each, interleaved (ms)"
          + ("  [profiled: synchronous, figures not comparable]" if args.profile else ""))
    print(f"  {'kind':8} {'p50':>7} {'p99':>7} {'max':>7}  p99 / echo")
    for kind in KINDS:
        k = kinds[kind]
        ratio = ratios.get(kind)
        print(f"  {kind:8} {k['p50_ms']:7.2f} {k['p99_ms']:7.2f} {k['max_ms']:7.2f}  "
              + (f"{ratio:.2f} (target <= {TARGET_RATIO:g})" if ratio else "reference"))
    print(f"  bound: one durable sqlite3 commit p50 {commit['p50_ms']:.2f} p99 {commit['p99_ms']:.2f} max "
          f"{commit['max_ms']:.2f};  echo p99 + commit p99 = {floor_ratio:.2f} x echo p99")
    print(f"  worst ratio {worst:.2f}  {doc['verdict']};  sanity: replies right {doc['sanity']['all_replies_right']}, "
          f"timeline {measured['timeline_entries']}")
    path = _common.write_results(NAME, doc, args.out)
    print(f"  -> {path}")
    return 0


def _slack_free_loadavg() -> list[float]:
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


if __name__ == "__main__":
    sys.exit(main())
