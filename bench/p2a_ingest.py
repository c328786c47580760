"""P2a: timeline ingest end to end. How many pins per second go from Slack into the incident's timeline
in the database?

The real `errbot -c config.py` with the OPGSlack backend runs against the fake Slack (Socket Mode by
default). An incident is declared and its comms channel created; N messages are already in the channel.
Then people pin all N as fast as the bot takes them: Slack delivers each pin as two envelopes,
`pin_added` and the "pinned a message" notice; the burst keeps at most --window envelopes unacknowledged
(so that the bot's pace sets the rate, and no ack waits past Slack's 3 s and gets redelivered). A
sampler reads the SQLite file every 10 ms (a read-only connection; WAL) and the run ends when all N pins
are timeline entries. Rate = N / (last entry in the database - first pin sent).

Reference, in the same run, after each round: a bound. The very envelopes of that round (2 N: every
`pin_added` and notice, as the fake delivered them) recorded with Python's sqlite3 into a copy of the
bot's inbox table, one transaction each, with the bot's durability (WAL, synchronous=FULL): what merely
writing down what Slack sends costs on this disk, with no transport, no errbot, no timeline. The bot
records only the `pin_added` envelopes (the notices are dropped unrecorded) but then adds each pin to the
timeline and marks it handled, so the reference is faster than the bot can be; the ratio pins/reference
says how close the whole path comes to it. Target: >= 500 pins/s.

--writer-lock is gone: the lock it tried is what the product does (storage.WriterLock).

    .venv/bin/python bench/p2a_ingest.py [--quick] [--pins N] [--rounds R] [--mode socket|http]
      full:  3 rounds of 2,000 pins and their reference (about 40 s)
      quick: 1 round of 500 (about 10 s)
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import _slack  # noqa: E402
from _slack import ALICE, BOB, CAROL  # noqa: E402

NAME = "p2a_ingest"
TARGET_PINS_PER_S = 500.0


def burst(fake, bot, db, kind: str, number: int, channel: str, messages: list[str], window: int,
          timeout: float) -> dict:
    """Pin every message (kind "pins"), then wait until the database has them all on the timeline."""
    assert kind == "pins"
    n = len(messages)
    people = (ALICE, BOB, CAROL)
    settled, last = time.monotonic(), db.processed_inputs()
    while time.monotonic() - settled < 0.3:  # the previous burst's inputs all handled
        time.sleep(0.05)
        now = db.processed_inputs()
        if now != last:
            settled, last = time.monotonic(), now
    base = db.pins(number)
    goal, count = base + n, lambda: db.pins(number)
    envelopes = _slack.Envelopes(fake)
    sampler = _slack.Sampler(count, 0.01, until=goal)
    try:
        sampler.start()
        cpu0, own0 = _slack.cpu_seconds(bot.process.pid), time.process_time()
        t0 = time.perf_counter()
        for i, ts in enumerate(messages):
            person = people[i % 3]
            fake.pin(channel, ts, person)
            envelopes.throttle(window)
        sent_s = time.perf_counter() - t0
        envelopes.drain()
        acked_s = time.perf_counter() - t0
        reached = sampler.reached.wait(timeout)
        cpu = _slack.cpu_seconds(bot.process.pid) - cpu0
        own = time.process_time() - own0
        wall = time.perf_counter() - t0
    finally:
        envelopes.restore()
        sampler.stop()
    done_at = sampler.first_at(goal) if reached else None
    offset = t0 - sampler.t0
    done_s = (done_at - offset) if done_at is not None else None
    latency = [a.latency for a in envelopes.acks()]
    return {"kind": kind, "items": n, "envelopes": len(envelopes.ids), "window": window,
            "envelope_ids": list(envelopes.ids),
            "sent_s": round(sent_s, 3), "all_acked_s": round(acked_s, 3),
            "in_database_s": round(done_s, 3) if done_s is not None else None,
            "complete": reached, "final_count": count() - base,
            "per_s": round(n / done_s, 1) if done_s else None,
            "envelopes_per_s": round(len(envelopes.ids) / done_s, 1) if done_s else None,
            "redeliveries": envelopes.redeliveries(), "ack": _common.summary_ms(latency),
            "bot_cpu_s": round(cpu, 2), "bot_cpu_ms_per_item": round(1000 * cpu / n, 2),
            "bot_cpu_utilisation": round(cpu / wall, 2),
            "fake_slack_cpu_utilisation": round(own / wall, 2)}  # this process: the fake, the burst, the sampler


def raw_recording(payloads: list[dict], path: Path, table_sql: str, rounds_done: int) -> dict:
    """The reference: the round's envelopes written down with sqlite3, one transaction each, WAL and
    synchronous=FULL, into a copy of the bot's inbox table."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        for pragma in ("journal_mode = wal", "synchronous = full", "foreign_keys = 1"):
            conn.execute(f"PRAGMA {pragma}")
        if rounds_done == 0:
            conn.execute(table_sql)
        now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(" ")
        t0 = time.perf_counter()
        for i, payload in enumerate(payloads):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO inbox_entry (key, kind, received_at, payload) VALUES (?, ?, ?, ?)",
                         (f"{rounds_done}:{payload.get('event_id') or i}", "events_api", now, json.dumps(payload)))
            conn.execute("COMMIT")
        seconds = time.perf_counter() - t0
    finally:
        conn.close()
    return {"envelopes": len(payloads), "seconds": round(seconds, 3),
            "envelopes_per_s": round(len(payloads) / seconds, 1),
            "pin_equivalents_per_s": round(len(payloads) / seconds / 2, 1)}


def measure(mode: str, n: int, rounds: int, window: int) -> dict:
    """Rounds of pins against one bot process, each followed by its reference; medians and every run."""
    timeout = 60 + n / 20
    runs, references = [], []
    with _slack.slack_and_bot(mode) as (fake, bot, channels):
        inc = _slack.open_incident(fake, bot, channels, "Payments are failing", 1)
        channel = inc["channel"]
        db = _slack.Database(bot)
        table_sql = db.scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'inbox_entry'")
        raw_path = Path(bot.database_url.removeprefix("sqlite:///")).parent / "raw-reference.sqlite"
        warm = _slack.add_messages(fake, channel, CAROL, 10, "Warm-up")
        burst(fake, bot, db, "pins", 1, channel, warm, window, timeout)
        _slack.wait_quiet(fake, 0.5)
        print(f"{rounds} round(s) of {n} pins ({2 * n} envelopes), at most {window} unacknowledged, {mode} mode, "
              f"each followed by its reference ...", flush=True)
        for r in range(rounds):
            messages = _slack.add_messages(fake, channel, (ALICE, BOB, CAROL)[r % 3], n, f"Round {r} pins")
            run = burst(fake, bot, db, "pins", 1, channel, messages, window, timeout)
            payloads = [fake.delivery(e).payload for e in run.pop("envelope_ids")]
            _slack.wait_quiet(fake, 0.5)
            reference = raw_recording(payloads, raw_path, table_sql, r)
            runs.append(run)
            references.append(reference)
            print(f"  round {r + 1}: {run['per_s']} pins/s in {run['in_database_s']} s "
                  f"(acks p50 {run['ack']['p50_ms']} ms p99 {run['ack']['p99_ms']} ms, "
                  f"redeliveries {run['redeliveries']}; bot CPU {run['bot_cpu_ms_per_item']} ms per pin, "
                  f"{run['bot_cpu_utilisation']:.0%} of a core; fake Slack {run['fake_slack_cpu_utilisation']:.0%});"
                  f"  reference {reference['pin_equivalents_per_s']} pin-equivalents/s", flush=True)
        pins_total = db.pins(1)
        db.close()
        errors = _slack.log_errors(bot)[:10]
    pins_per_s = round(statistics.median(r["per_s"] or 0.0 for r in runs), 1)
    ceiling = round(statistics.median(r["pin_equivalents_per_s"] for r in references), 1)
    return {"pins_per_s": pins_per_s,
            "reference": {"what": "the same envelopes (pin_added and notices) recorded with sqlite3 into the "
                                  "inbox table, one transaction each, WAL, synchronous=FULL",
                          "pin_equivalents_per_s": ceiling,
                          "envelopes_per_s": round(statistics.median(r["envelopes_per_s"] for r in references), 1),
                          "runs": references},
            "ratio_to_reference": round(pins_per_s / ceiling, 3) if ceiling else None,
            "all_pins_on_timeline": pins_total == 10 + n * rounds,
            "runs": {"pins": runs}, "bot_log_errors": errors}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 round of 500 pins")
    parser.add_argument("--pins", type=int, help="pins per round (default 2000, quick 500)")
    parser.add_argument("--rounds", type=int, help="rounds of pins + reference (default 3, quick 1)")
    parser.add_argument("--window", type=int, default=200, help="unacknowledged envelopes at most (200)")
    parser.add_argument("--mode", default="socket", choices=("socket", "http"))
    parser.add_argument("--out", help="results JSON (default bench/results/p2a_ingest.json)")
    args = parser.parse_args(argv)
    n = args.pins or (500 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 3)

    result = measure(args.mode, n, rounds, args.window)
    pins_per_s = result["pins_per_s"]
    doc = {"loadavg_at_end": _slack.loadavg(), "quick": args.quick,
           "config": {"pins": n, "rounds": rounds, "window": args.window, "mode": args.mode,
                      "envelopes_per_pin": 2, "bot_env": _slack.BENCH_ENV},
           "pins_per_s": pins_per_s, "target_pins_per_s": TARGET_PINS_PER_S,
           "verdict": _common.verdict(pins_per_s, TARGET_PINS_PER_S, higher_is_better=True),
           **{k: v for k, v in result.items() if k != "pins_per_s"}}
    r = result
    print(f"\nP2a timeline ingest end to end ({args.mode} mode), median of {rounds} round(s) of {n} pins")
    print(f"  pins -> timeline entries   {r['pins_per_s']:8.1f} pins/s (target >= {TARGET_PINS_PER_S:g})  "
          f"{doc['verdict']}")
    print(f"  reference: the envelopes recorded with sqlite3  {r['reference']['pin_equivalents_per_s']:8.1f} "
          f"pin-equivalents/s ({r['reference']['envelopes_per_s']} envelopes/s);  ratio {r['ratio_to_reference']}")
    print(f"  sanity: all pins on the timeline {r['all_pins_on_timeline']}"
          + (f";  errors in the bot's log: {len(r['bot_log_errors'])}" if r["bot_log_errors"] else ""))
    path = _common.write_results(NAME, doc, args.out)
    print(f"  -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
