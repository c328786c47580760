"""P2a: timeline ingest end to end. How many pins per second go from Slack into the incident's timeline
in the database?

The real `errbot -c config.py` with the OPGSlack backend runs against the fake Slack (Socket Mode by
default). An incident is declared and its comms channel created; N messages are already in the channel.
Then people pin all N as fast as the bot takes them: Slack delivers each pin as two envelopes,
`pin_added` and the "pinned a message" notice; the burst keeps at most --window envelopes unacknowledged
(so that the bot's pace sets the rate, and no ack waits past Slack's 3 s and gets redelivered). A
sampler reads the SQLite file every 10 ms (a read-only connection; WAL) and the run ends when all N pins
are timeline entries. Rate = N / (last entry in the database - first pin sent).

Reference, in the same run, alternating with the pins: the same number of envelopes (2 N) that the bot
receives and drops: people's reactions in the same channel (each is recorded durably in the inbox,
acknowledged, handed to errbot, marked handled). Its rate, in pins' terms (envelopes/s / 2), is the
ceiling of the transport and the inbox on this machine; the ratio pins/ceiling says what recording the
pins costs on top. Target: >= 500 pins/s.

--writer-lock then runs the same against a second bot process whose SQLite writers queue on one Python
lock (bench/_whatif/writer_lock; a what-if for the owners of the storage, not the product as shipped).

    /work/venv/bin/python bench/p2a_ingest.py [--quick] [--pins N] [--rounds R] [--mode socket|http] [--writer-lock]
      full:  3 rounds of 2,000 pins and their reference (about 1 minute)
      quick: 1 round of 500 (about 15 s)
"""
from __future__ import annotations

import argparse
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
    """Pin every message (kind "pins") or react to each twice (kind "reactions": the same 2 N envelopes),
    then wait until the database has them all."""
    n = len(messages)
    people = (ALICE, BOB, CAROL)
    settled, last = time.monotonic(), db.processed_inputs()
    while time.monotonic() - settled < 0.3:  # the previous burst's inputs all handled
        time.sleep(0.05)
        now = db.processed_inputs()
        if now != last:
            settled, last = time.monotonic(), now
    if kind == "pins":
        base = db.pins(number)
        goal, count = base + n, lambda: db.pins(number)
    else:
        base = db.processed_inputs()
        goal, count = base + 2 * n, db.processed_inputs
    envelopes = _slack.Envelopes(fake)
    sampler = _slack.Sampler(count, 0.01, until=goal)
    try:
        sampler.start()
        cpu0, own0 = _slack.cpu_seconds(bot.process.pid), time.process_time()
        t0 = time.perf_counter()
        for i, ts in enumerate(messages):
            person = people[i % 3]
            if kind == "pins":
                fake.pin(channel, ts, person)
            else:
                fake.react(channel, ts, "eyes", person)
                fake.react(channel, ts, "white_check_mark", person)
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
    # processed inputs also count the bot's own messages' echoes: none are expected in a burst; the goal
    # is "at least", and the pins' own inputs are checked separately below.
    latency = [a.latency for a in envelopes.acks()]
    return {"kind": kind, "items": n, "envelopes": len(envelopes.ids), "window": window,
            "sent_s": round(sent_s, 3), "all_acked_s": round(acked_s, 3),
            "in_database_s": round(done_s, 3) if done_s is not None else None,
            "complete": reached, "final_count": count() - base,
            "per_s": round(n / done_s, 1) if done_s else None,
            "envelopes_per_s": round(len(envelopes.ids) / done_s, 1) if done_s else None,
            "redeliveries": envelopes.redeliveries(), "ack": _common.summary_ms(latency),
            "bot_cpu_s": round(cpu, 2), "bot_cpu_ms_per_item": round(1000 * cpu / n, 2),
            "bot_cpu_utilisation": round(cpu / wall, 2),
            "fake_slack_cpu_utilisation": round(own / wall, 2)}  # this process: the fake, the burst, the sampler


WRITER_LOCK = Path(__file__).resolve().parent / "_whatif" / "writer_lock"  # sitecustomize for --writer-lock


def measure(mode: str, n: int, rounds: int, window: int, env: dict | None = None, label: str = "") -> dict:
    """Rounds of pins and reactions against one bot process; medians and every run."""
    timeout = 60 + n / 20
    runs = {"pins": [], "reactions": []}
    with _slack.slack_and_bot(mode, env) as (fake, bot, channels):
        inc = _slack.open_incident(fake, bot, channels, "Payments are failing", 1)
        channel = inc["channel"]
        db = _slack.Database(bot)
        # warm up both paths
        warm = _slack.add_messages(fake, channel, CAROL, 20, "Warm-up")
        burst(fake, bot, db, "pins", 1, channel, warm[:10], window, timeout)
        burst(fake, bot, db, "reactions", 1, channel, warm[10:], window, timeout)
        _slack.wait_quiet(fake, 0.5)
        print(f"{label}{rounds} round(s) of {n} pins ({2 * n} envelopes) and {2 * n} reactions, "
              f"at most {window} unacknowledged, {mode} mode ...", flush=True)
        for r in range(rounds):
            for kind in ("pins", "reactions") if r % 2 == 0 else ("reactions", "pins"):
                messages = _slack.add_messages(fake, channel, (ALICE, BOB, CAROL)[r % 3], n, f"Round {r} {kind}")
                run = burst(fake, bot, db, kind, 1, channel, messages, window, timeout)
                runs[kind].append(run)
                print(f"  round {r + 1} {kind:9}: {run['per_s']} /s in {run['in_database_s']} s "
                      f"(acks p50 {run['ack']['p50_ms']} ms p99 {run['ack']['p99_ms']} ms, "
                      f"redeliveries {run['redeliveries']}; bot CPU {run['bot_cpu_ms_per_item']} ms per item, "
                      f"{run['bot_cpu_utilisation']:.0%} of a core; fake Slack {run['fake_slack_cpu_utilisation']:.0%})",
                      flush=True)
                _slack.wait_quiet(fake, 0.5)
        pins_total = db.pins(1)
        db.close()
        errors = _slack.log_errors(bot)[:10]
    pins_per_s = round(statistics.median(r["per_s"] or 0.0 for r in runs["pins"]), 1)
    # the reference in pins' terms: two envelopes per pin
    ceiling_per_s = round(statistics.median((r["envelopes_per_s"] or 0.0) / 2 for r in runs["reactions"]), 1)
    return {"pins_per_s": pins_per_s,
            "reference": {"what": "the same number of envelopes (reactions) received, recorded and dropped",
                          "pin_equivalents_per_s": ceiling_per_s,
                          "envelopes_per_s": round(statistics.median(r["envelopes_per_s"] or 0
                                                                     for r in runs["reactions"]), 1)},
            "ratio_to_reference": round(pins_per_s / ceiling_per_s, 3) if ceiling_per_s else None,
            "all_pins_on_timeline": pins_total == 10 + n * rounds,
            "runs": runs, "bot_log_errors": errors}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 round of 500 pins")
    parser.add_argument("--pins", type=int, help="pins per round (default 2000, quick 500)")
    parser.add_argument("--rounds", type=int, help="rounds of pins + reference (default 3, quick 1)")
    parser.add_argument("--window", type=int, default=200, help="unacknowledged envelopes at most (200)")
    parser.add_argument("--mode", default="socket", choices=("socket", "http"))
    parser.add_argument("--writer-lock", action="store_true",
                        help="what-if: then the same again with SQLite writers queued on one Python lock "
                             "(bench/_whatif/writer_lock on the bot's PYTHONPATH)")
    parser.add_argument("--out", help="results JSON (default bench/results/p2a_ingest.json)")
    args = parser.parse_args(argv)
    n = args.pins or (500 if args.quick else 2000)
    rounds = args.rounds or (1 if args.quick else 3)

    result = measure(args.mode, n, rounds, args.window)
    what_if = None
    if args.writer_lock:
        what_if = measure(args.mode, n, rounds, args.window, {"PYTHONPATH": str(WRITER_LOCK)},
                          label="what-if writer lock: ")
    pins_per_s = result["pins_per_s"]
    doc = {"loadavg_at_end": _slack.loadavg(),
           "config": {"pins": n, "rounds": rounds, "window": args.window, "mode": args.mode,
                      "envelopes_per_pin": 2, "bot_env": _slack.BENCH_ENV},
           "pins_per_s": pins_per_s, "target_pins_per_s": TARGET_PINS_PER_S,
           "verdict": _common.verdict(pins_per_s, TARGET_PINS_PER_S, higher_is_better=True),
           **{k: v for k, v in result.items() if k != "pins_per_s"}}
    if what_if:
        doc["what_if_writer_lock"] = what_if
    print(f"\nP2a timeline ingest end to end ({args.mode} mode), median of {rounds} round(s) of {n} pins")
    for name, r in (("", result), ("what-if writer lock: ", what_if)):
        if r is None:
            continue
        verdict = _common.verdict(r["pins_per_s"], TARGET_PINS_PER_S, higher_is_better=True)
        print(f"  {name}pins -> timeline entries   {r['pins_per_s']:8.1f} pins/s (target >= {TARGET_PINS_PER_S:g})  "
              f"{verdict}")
        print(f"  {name}reference: dropped events  {r['reference']['pin_equivalents_per_s']:8.1f} pin-equivalents/s "
              f"({r['reference']['envelopes_per_s']} envelopes/s);  ratio {r['ratio_to_reference']}")
        print(f"  {name}sanity: all pins on the timeline {r['all_pins_on_timeline']}"
              + (f";  errors in the bot's log: {len(r['bot_log_errors'])}" if r["bot_log_errors"] else ""))
    path = _common.write_results(NAME, doc, args.out)
    print(f"  -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
