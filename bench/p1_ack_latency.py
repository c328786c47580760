"""P1: ack latency. How fast does the bot acknowledge a slash command and a button click while a storm of
other events streams in?

The real `errbot -c config.py` with the OPGSlack backend runs against the fake Slack (tests/fake_slack),
in Socket Mode and in HTTP mode. An incident is declared and its comms channel created; then for the
whole measurement a background thread makes people chat and pin in that channel at 50 envelopes/s
(Poisson arrivals; in turn two messages and one pin of an earlier message, which Slack delivers as
`pin_added` plus the "pinned a message" notice), and in the foreground probes are sent one at a time,
1/--rate s apart on average (jittered, never in step with the background), in turn:
  slash     `/opg-incident <title>`: acked first; the modal is opened after, with the trigger id
  edit      the headline's Edit button: reads the incident, opens the edit modal
  close     the headline's Close button pressed by someone who is not the lead: refused, the refusal
            queued durably for the outbox worker (a database write on the ack path)
  dropped   a reaction in the incidents channel: recorded durably (the inbox), then dropped
  echo      `!echo <text>` said by the bot admin in the incidents channel (an errbot command: recorded in
            the inbox before the ack, like every message)
  floor     an Events API envelope without an event: acknowledged at once, no work; the transport's
            floor (fake -> websocket or HTTP -> slack_sdk / the web server -> ack)
The fake records each ack's latency (from sending the envelope to receiving its ack). Reported per kind:
p50/p99/max, and the p99 against Slack's 3,000 ms limit, the 100 ms target and the floor's p99 measured
in the same run under the same load.

Reference, in the same run: stock errbot 6.2.1 with its own SlackV3 backend (no opg-incident; a generated
backend module that only points slack_sdk at the fake) on a fresh fake Slack in Socket Mode under the same
background, acking `!echo` probes said by the admin (SlackV3 acks an envelope before any work). Targets:
no ack of ours over 100 ms (probes and background), and our worst interactive p99 within 4x of stock
errbot's `!echo` p99. (SlackV3's own HTTP mode needs errbot's Webserver plugin: the reference is Socket
Mode for both of our modes.)

    .venv/bin/python bench/p1_ack_latency.py [--quick] [--modes socket,http] [--samples N] [--no-reference]
      full:  200 probes of each kind per mode (about 4 minutes)
      quick: 40 probes of each kind per mode (about 1 minute)
"""
from __future__ import annotations

import argparse
import collections
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import _slack  # noqa: E402
from _slack import ALICE, BOB, CAROL, blocks  # noqa: E402
from fake_slack import events  # noqa: E402

NAME = "p1_ack_latency"
TARGET_MAX_MS = 100.0  # no ack over this
TARGET_RATIO = 4.0  # our worst interactive p99 / stock errbot's !echo p99
SLACK_LIMIT_MS = 3000.0
KINDS = ("slash", "edit", "close", "echo", "dropped", "floor")
INTERACTIVE = ("slash", "edit", "close")


class Background(threading.Thread):
    """People chatting and pinning in the incident channel: `rate` envelopes/s, paced by the clock."""

    PATTERN = ("message", "message", "pin", None)  # 4 ticks: 1 + 1 + 2 envelopes

    def __init__(self, fake, channel: str, rate: float, seed: int = 7):
        super().__init__(daemon=True, name="background")
        self.fake, self.channel, self.tick = fake, channel, 1.0 / rate
        self.random = random.Random(seed)
        self.people = (ALICE, BOB, CAROL)
        self.unpinned: collections.deque = collections.deque()
        self.counts = collections.Counter()
        self.errors: list[str] = []
        self.late_ticks = 0
        self._halt = threading.Event()

    def run(self):
        start = next_at = time.perf_counter()
        i = 0
        while not self._halt.is_set():
            action = self.PATTERN[i % len(self.PATTERN)]
            person = self.people[i % len(self.people)]
            try:
                if action == "message":
                    said = self.fake.post_message(self.channel, person, f"Looking at the queue, step {i}")
                    self.unpinned.append(said["ts"])
                    self.counts["messages"] += 1
                elif action == "pin" and self.unpinned:
                    self.fake.pin(self.channel, self.unpinned.popleft(), person)
                    self.counts["pins"] += 1
            except Exception as exc:  # keep the load going; report it
                self.errors.append(repr(exc))
            i += 1
            next_at += self.random.expovariate(1.0 / self.tick)  # Poisson arrivals, as people act
            delay = next_at - time.perf_counter()
            if delay > 0:
                self._halt.wait(delay)
            elif delay < -self.tick:
                self.late_ticks += 1
        self.seconds = time.perf_counter() - start

    def stop(self):
        self._halt.set()
        self.join(10)


def probe(fake, kind: str, inc: dict, channels: dict, react_on: list, i: int):
    """Send one probe and wait for its ack; returns the Ack."""
    if kind == "slash":
        return fake.slash_command("/opg-incident", f"Probe {i}: the queue is stuck", ALICE, channels["general"])
    if kind == "edit":
        return fake.click_button(inc["headline"], blocks.EDIT, BOB)
    if kind == "close":
        return fake.click_button(inc["headline"], blocks.CLOSE, CAROL)
    if kind == "echo":
        return echo_probe(fake, channels["opg-incidents"], i)
    if kind == "dropped":
        ws, person = fake.workspace, (ALICE, BOB, CAROL)[i % 3]
        with ws.lock:  # what fake.react does, keeping the envelope id (the background delivers meanwhile)
            conv = ws.channel(channels["opg-incidents"])
            message = ws.react(conv, react_on[i % len(react_on)], f"eyes{i}", person, True)
            envelope_id = fake.send_event(events.reaction_event(ws, "reaction_added", conv, message, person,
                                                                f"eyes{i}"))
        return fake.wait_ack(envelope_id)
    return fake.wait_ack(_slack.floor_envelope(fake))


def echo_probe(fake, channel: str, i: int):
    """`!echo` said by the admin; waits for the ack of its message event (the background delivers meanwhile)."""
    ws = fake.workspace
    with ws.lock:
        conv = ws.channel(channel)
        message = ws.add_message(conv, events.person_message(ws, _slack.ADMIN, f"!echo probe {i}"))
        envelope_id = fake.send_event(events.message_event(conv, message))
    return fake.wait_ack(envelope_id)


def run_stock(samples: int, rate: float, background_rate: float, warmup: int) -> dict:
    """The reference: stock errbot + SlackV3 on a fresh fake, the same background, `!echo` probes."""
    with _slack.FakeSlack("socket") as fake:
        channels = _slack.seed(fake)
        channel = channels["opg-incidents"]
        with _slack.bare_errbot(fake):
            for i in range(warmup):
                echo_probe(fake, channel, 10_000 + i)
            _slack.wait_quiet(fake, 0.5)
            background = Background(fake, channel, background_rate)
            first_delivery = len(fake.log.all())
            with _common.harness_collector_paused():
                background.start()
                time.sleep(1.0)
                acks, gaps, interval = [], random.Random(11), 1.0 / rate
                next_at = time.perf_counter()
                for i in range(samples):
                    acks.append(echo_probe(fake, channel, i))
                    next_at += gaps.uniform(0.5, 1.5) * interval
                    time.sleep(max(0.0, next_at - time.perf_counter()))
                background.stop()
            probe_ids = {a.envelope_id for a in acks}
            bg = [d for d in fake.log.all()[first_delivery:] if d.type == "events_api" and d.envelope_id not in probe_ids]
            bg_latency = [d.acks[0].latency for d in bg if d.acks]
    return {"what": "stock errbot 6.2.1 + SlackV3 (no opg-incident), Socket Mode, `!echo` by the admin",
            "echo": {**_common.summary_ms([a.latency for a in acks]), "not_ok": sum(1 for a in acks if not a.ok)},
            "background": {"envelopes": len(bg), "messages": background.counts["messages"],
                           "pins": background.counts["pins"], "ack": _common.summary_ms(bg_latency)}}


def run_mode(mode: str, samples: int, rate: float, background_rate: float, warmup: int) -> dict:
    with _slack.slack_and_bot(mode) as (fake, bot, channels):
        inc = _slack.open_incident(fake, bot, channels, "Payments are failing", 1)
        react_on = _slack.add_messages(fake, channels["opg-incidents"], ALICE, 50, "Status note")
        # Warm up every path once the way a person would (imports, first queries, connections).
        for i in range(warmup):
            for kind in KINDS:
                probe(fake, kind, inc, channels, react_on, 10_000 + i)
        _slack.wait_quiet(fake, 0.5)
        background = Background(fake, inc["channel"], background_rate)
        first_delivery = len(fake.log.all())
        with _common.harness_collector_paused():
            background.start()
            time.sleep(1.0)  # the storm is on before the first probe
            acks: dict[str, list] = {k: [] for k in KINDS}
            interval = 1.0 / rate
            gaps = random.Random(11)
            next_at = time.perf_counter()
            started = time.perf_counter()
            for i in range(samples * len(KINDS)):
                kind = KINDS[i % len(KINDS)]
                acks[kind].append(probe(fake, kind, inc, channels, react_on, i))
                next_at += gaps.uniform(0.5, 1.5) * interval  # never in step with the background
                time.sleep(max(0.0, next_at - time.perf_counter()))
            measured_s = time.perf_counter() - started
            background.stop()
        # Background envelopes delivered while it ran: their acks, redeliveries, and whether the pins landed.
        probe_ids = {a.envelope_id for v in acks.values() for a in v}
        bg = [d for d in fake.log.all()[first_delivery:] if d.type == "events_api" and d.envelope_id not in probe_ids
              and inc["channel"] in (d.payload.get("event", {}).get("channel"), d.payload.get("event", {}).get("channel_id"))]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(d.acks for d in bg):
            time.sleep(0.05)
        db = _slack.Database(bot)
        try:
            landed = fake.wait_for(lambda: db.pins(1) >= background.counts["pins"] and db.pins(1), timeout=30)
        except TimeoutError:
            landed = db.pins(1)
        db.close()
        bg_latency = [d.acks[0].latency for d in bg if d.acks]
        result = {"mode": mode, "samples_per_kind": samples, "probe_rate_per_s": rate,
                  "measured_s": round(measured_s, 1),
                  "background": {"target_envelopes_per_s": background_rate,
                                 "envelopes": len(bg),
                                 "envelopes_per_s": round(len(bg) / background.seconds, 1),
                                 "messages": background.counts["messages"], "pins": background.counts["pins"],
                                 "pins_on_timeline": landed, "late_ticks": background.late_ticks,
                                 "unacked": sum(1 for d in bg if not d.acks),
                                 "redeliveries": sum(max(0, len(d.attempts) - 1) for d in bg),
                                 "errors": background.errors[:5],
                                 "ack": _common.summary_ms(bg_latency)},
                  "kinds": {}}
        for kind in KINDS:
            values = [a.latency for a in acks[kind]]
            result["kinds"][kind] = {**_common.summary_ms(values), "not_ok": sum(1 for a in acks[kind] if not a.ok),
                                     "retried": sum(1 for a in acks[kind] if a.retry_attempt)}
        floor = result["kinds"]["floor"]
        for kind in KINDS:
            k = result["kinds"][kind]
            k["p99_vs_floor"] = round(k["p99_ms"] / floor["p99_ms"], 2) if floor["p99_ms"] else None
            k["p99_vs_slack_limit"] = round(k["p99_ms"] / SLACK_LIMIT_MS, 4)
        result["worst_interactive_p99_ms"] = max(result["kinds"][k]["p99_ms"] for k in INTERACTIVE)
        result["max_ack_ms"] = max([result["kinds"][k]["max_ms"] for k in KINDS]
                                   + [result["background"]["ack"]["max_ms"] or 0.0])
        result["bot_log_errors"] = _slack.log_errors(bot)[:10]
        return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="40 probes of each kind per mode")
    parser.add_argument("--samples", type=int, help="probes of each kind per mode (default 200, quick 40)")
    parser.add_argument("--modes", default="socket,http", help="socket, http or both (default both)")
    parser.add_argument("--rate", type=float, default=12.5, help="foreground probes per second (default 12.5)")
    parser.add_argument("--background", type=float, default=50.0, help="background envelopes per second (50)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up probes of each kind")
    parser.add_argument("--no-reference", action="store_true", help="skip stock errbot + SlackV3")
    parser.add_argument("--out", help="results JSON (default bench/results/p1_ack_latency.json)")
    args = parser.parse_args(argv)
    samples = args.samples or (40 if args.quick else 200)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]

    results, stock = {}, None
    for mode in modes:
        print(f"{mode}: {samples} probes of each kind at {args.rate:g}/s, background {args.background:g} "
              f"envelopes/s ...", flush=True)
        results[mode] = run_mode(mode, samples, args.rate, args.background, args.warmup)
    if not args.no_reference:
        print(f"reference: stock errbot + SlackV3, {samples} `!echo` probes, same background ...", flush=True)
        stock = run_stock(samples, args.rate, args.background, args.warmup)

    print(f"\nP1 ack latency (ms) with {args.background:g} background envelopes/s; targets: no ack over "
          f"{TARGET_MAX_MS:g} ms, worst interactive p99 within {TARGET_RATIO:g}x of stock errbot's `!echo` p99")
    for mode, r in results.items():
        bg = r["background"]
        if stock:
            r["ratio_worst_interactive_p99_to_stock_echo_p99"] = round(
                r["worst_interactive_p99_ms"] / stock["echo"]["p99_ms"], 2)
            r["ratio_echo_p99_to_stock_echo_p99"] = round(r["kinds"]["echo"]["p99_ms"] / stock["echo"]["p99_ms"], 2)
        r["verdict"] = {"max_ack_ms": _common.verdict(r["max_ack_ms"], TARGET_MAX_MS, higher_is_better=False)}
        if stock:
            r["verdict"]["ratio_to_stock"] = _common.verdict(r["ratio_worst_interactive_p99_to_stock_echo_p99"],
                                                             TARGET_RATIO, higher_is_better=False)
        print(f"  [{mode}] background: {bg['envelopes']} envelopes at {bg['envelopes_per_s']}/s "
              f"({bg['messages']} messages, {bg['pins']} pins, {bg['pins_on_timeline']} on the timeline), acks p50 "
              f"{bg['ack']['p50_ms']} p99 {bg['ack']['p99_ms']} max {bg['ack']['max_ms']}, redeliveries {bg['redeliveries']}")
        print(f"  {'kind':9} {'n':>4} {'p50':>8} {'p99':>8} {'max':>8}  {'p99/floor':>9}")
        for kind, k in r["kinds"].items():
            print(f"  {kind:9} {k['n']:>4} {k['p50_ms']:>8.2f} {k['p99_ms']:>8.2f} {k['max_ms']:>8.2f}  "
                  f"{k['p99_vs_floor']:>9.2f}")
        print(f"  worst interactive p99 {r['worst_interactive_p99_ms']:.1f} ms; max ack {r['max_ack_ms']:.1f} ms "
              f"(target <= {TARGET_MAX_MS:g}) {r['verdict']['max_ack_ms']}"
              + (f"; ratio to stock `!echo` p99 {r['ratio_worst_interactive_p99_to_stock_echo_p99']} "
                 f"(target <= {TARGET_RATIO:g}) {r['verdict']['ratio_to_stock']}" if stock else "")
              + (f";  errors in the bot's log: {len(r['bot_log_errors'])}" if r["bot_log_errors"] else ""))
    if stock:
        e = stock["echo"]
        print(f"  [stock errbot + SlackV3] `!echo` acks p50 {e['p50_ms']} p99 {e['p99_ms']} max {e['max_ms']} ms; "
              f"background acks p99 {stock['background']['ack']['p99_ms']} ms")
    verdicts = [v for r in results.values() for v in r["verdict"].values()]
    doc = {"loadavg_at_end": _slack.loadavg(), "quick": args.quick,
           "config": {"samples_per_kind": samples, "modes": modes, "probe_rate_per_s": args.rate,
                      "background_envelopes_per_s": args.background, "warmup": args.warmup,
                      "bot_env": _slack.BENCH_ENV, "harness_collector": "paused while measuring"},
           "targets": {"max_ack_ms": TARGET_MAX_MS, "ratio_to_stock_echo_p99": TARGET_RATIO,
                       "slack_limit_ms": SLACK_LIMIT_MS},
           "modes": results, "reference": stock,
           "verdict": "PASS" if all(v == "PASS" for v in verdicts) else "MISS"}
    path = _common.write_results(NAME, doc, args.out)
    print(f"  -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
