"""P4: Slack economy. How many Slack Web API calls does a whole incident cost, does the bot look up
people it already knows, and how often does it edit the headline when changes pour in?

The real `errbot -c config.py` with the OPGSlack backend runs against the fake Slack (Socket Mode),
which logs every Web API call with its time and parameters. Three measurements:

1. A whole incident, as tests/test_slack_e2e.py walks it: declared by /opg-incident and the modal, comms
   channel by the headline's button, the on-call lead paged by button, mention commands in the channel
   (summary, sev, impact, the lead naming the scribe, note, action, decision), the lead handed over and accepted by
   button, five pins (one edited, one unpinned) and some chat, closed by the lead's button. Calls are
   counted per method and per step; after each step the run waits until the bot has made no call for
   1 s (the pins are waited for in the bot's SQLite file, not on the living document, whose pages look up
   the names they show). Reference: the people's own inputs in the scenario (envelopes Slack delivered), i.e. calls per
   input.
2. Look-ups of people and places already known: `users.info` calls for a user looked up before within
   10 minutes (target 0; the backend caches users.info, team.info and bots.info 10 min,
   conversations.info 1 min), and the same for the other cached look-ups. Reference: the inputs from
   known people (each would cost a look-up without the cache).
3. A storm: --storm `summary` mentions by the lead in --storm-seconds on a second incident. Counts
   `chat.update` of that incident's headline per second (every 1 s window from the first command to the
   last update; target <= 1) and in all; reference: the number of changes (one edit each without the
   outbox's coalescing). Also checks that the headline ends on the last summary.

    .venv/bin/python bench/p4_slack_economy.py [--quick] [--storm N] [--storm-seconds S]
      full and quick are the same scenario (about 40 s); quick only shortens the storm to 50 in 2.5 s
"""
from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import _slack  # noqa: E402
from _slack import ALICE, BOB, CAROL, ONCALL, blocks, mention  # noqa: E402

NAME = "p4_slack_economy"
LOOKUP_WINDOW = {"users.info": 600.0, "team.info": 600.0, "bots.info": 600.0, "conversations.info": 60.0}
LOOKUP_KEY = {"users.info": "user", "bots.info": "bot", "conversations.info": "channel", "team.info": "team",
              "conversations.open": "users"}
# Not cached by the backend, counted the same way (over 10 minutes): the DM channel of a person is the same
# every time, so each repeat is a call a cache would save.
UNCACHED = {"conversations.open": 600.0}
TARGET_UPDATES_PER_S = 1.0
TARGET_CALLS_PER_INPUT = 1.0  # Web API calls per person's input over the scripted incident


class Steps:
    """Counts the Web API calls (and the deliveries to the bot) made during each named step."""

    def __init__(self, fake, quiet: float = 1.0):
        self.fake, self.quiet = fake, quiet
        self.steps: list[dict] = []
        self._calls = len(fake.calls_log.all())
        self._deliveries = len(fake.log.all())

    def done(self, name: str, quiet: float | None = None) -> dict:
        _slack.wait_quiet(self.fake, quiet or self.quiet)
        calls = self.fake.calls_log.all()
        deliveries = self.fake.log.all()
        new_calls, new_deliveries = calls[self._calls:], deliveries[self._deliveries:]
        self._calls, self._deliveries = len(calls), len(deliveries)
        step = {"step": name, "calls": len(new_calls),
                "by_method": dict(collections.Counter(c.method for c in new_calls).most_common()),
                "inputs": len([d for d in new_deliveries if _from_person(self.fake, d)]),
                "deliveries": len(new_deliveries), "_calls": new_calls, "_deliveries": new_deliveries}
        self.steps.append(step)
        return step


def _from_person(fake, delivery) -> bool:
    """A delivery caused by a person (not the bot's own posts echoed back, not an envelope without event)."""
    if delivery.type != "events_api":
        return True
    event = delivery.payload.get("event") or {}
    user = event.get("user") or (event.get("item") or {}).get("user")
    return bool(event) and user not in (None, fake.bot_user_id) and not event.get("bot_id")


def _answered(fake, channel: str, ts: str) -> bool:
    """A ✅ on the message, or a bot message that answers it (its metadata names the messages it answers)."""
    if "white_check_mark" in {r["name"] for r in fake.message(channel, ts).get("reactions", [])}:
        return True
    return any(ts in ((m.get("metadata") or {}).get("event_payload") or {}).get("acks", [])
               for m in fake.bot_messages(channel))


def repeats(calls: list, method: str) -> dict:
    """Calls of a cached look-up for something looked up before within its cache's lifetime."""
    key, window = LOOKUP_KEY[method], {**LOOKUP_WINDOW, **UNCACHED}[method]
    last_seen: dict = {}
    total = repeated = 0
    repeated_for: collections.Counter = collections.Counter()
    for call in calls:
        if call.method != method:
            continue
        total += 1
        what = call.params.get(key, "")
        if what in last_seen and call.time - last_seen[what] < window:
            repeated += 1
            repeated_for[what] += 1
        last_seen[what] = call.time
    return {"calls": total, "distinct": len(last_seen), "repeats_within_cache_life": repeated,
            "repeated_for": dict(repeated_for)}


def scenario(fake, bot, channels, quiet: float = 1.0) -> Steps:
    steps = Steps(fake, quiet)

    _slack.declare(fake, channels, "Payments are failing", summary="Card payments fail")
    head = _slack.headline(fake, channels, 1)
    steps.done("declare (slash command, modal, headline, thanks)")

    fake.click_button(head, blocks.CREATE_CHANNEL, ALICE)
    channel = fake.wait_for(lambda: next((c.id for c in fake.channels if c.name.startswith("inc-1-")), None))
    fake.wait_for(lambda: f"<#{channel}>" in _slack.all_text(_slack.headline(fake, channels, 1)))
    steps.done("comms channel (button)")

    fake.click_button(_slack.headline(fake, channels, 1), blocks.PAGE_ONCALL, ALICE)
    fake.wait_for(lambda: fake.bot_messages(fake.dm_channel(ONCALL)))
    steps.done("page the on-call lead (button)")

    fake.join(channel, BOB)
    fake.join(channel, CAROL)
    steps.done("two people join the channel")

    commands = [(ALICE, "summary Card payments fail for everyone since 10:31"), (ALICE, "sev critical"),
                (ALICE, "impact Nobody can pay for an LPA"), (ALICE, f"scribe <@{CAROL}>"),
                (CAROL, "note Rolled back release 42"), (CAROL, "action Find out why the canary missed it"),
                (ALICE, "decision Keep the old release until Monday")]
    for user, text in commands:
        said = mention(fake, channel, user, text)
        fake.wait_for(lambda: _answered(fake, channel, said["ts"]), timeout=15)
    steps.done(f"{len(commands)} mention commands")

    mention(fake, channel, ALICE, f"handover lead <@{BOB}> going off shift")
    offer = fake.wait_for_message(fake.dm_channel(BOB), lambda m: "Accept" in _slack.all_text(m))
    fake.click_button(offer, blocks.HANDOVER_ACCEPT, BOB)
    fake.wait_for(lambda: f"Incident Lead: <@{BOB}>" in _slack.all_text(_slack.headline(fake, channels, 1)),
                  timeout=15)
    steps.done("handover of the lead (mention, accept button)")

    said = []
    for i, (user, text) in enumerate([(CAROL, "Rolled back release 42"), (BOB, "Error rate back to normal"),
                                      (ALICE, "Canary config fixed"), (CAROL, "Card provider confirms"),
                                      (BOB, "Monitoring for 30 minutes")]):
        said.append(fake.post_message(channel, user, text))
        fake.post_message(channel, (BOB, CAROL)[i % 2], "👍")
    for message, user in zip(said, (CAROL, BOB, ALICE, CAROL, BOB)):
        fake.pin(channel, message["ts"], user)
    fake.edit_message(channel, said[0]["ts"], "Rolled back release 42 and 43")
    fake.unpin(channel, said[4]["ts"], BOB)
    # Waited for in the database, not on the living document: a page shown looks up the names on it
    # (users.info), calls no person's Slack input made.
    database = _slack.Database(bot)
    try:
        fake.wait_for(lambda: database.pins(1) == 4, timeout=15)
    finally:
        database.close()
    steps.done("5 pins, 1 edit, 1 unpin, 10 chat messages")

    fake.click_button(_slack.headline(fake, channels, 1), blocks.CLOSE, BOB)  # the pre-close check: a form
    close_id = fake.wait_for(lambda: next((v for v, d in fake.views.items() if d.get("callback_id") ==
                                           blocks.CLOSE_VIEW), None))
    fake.submit_view(close_id, {"reason": "resolved"}, user=BOB)
    fake.wait_for_message(channel, lambda m: "is closed" in m.get("text", ""), timeout=15)
    # and the headline edited to say so (paced: it can come after a quiet second, and would go uncounted)
    fake.wait_for(lambda: "Status: *Resolved*" in _slack.all_text(_slack.headline(fake, channels, 1)), timeout=15)
    steps.done("close (lead's button)", quiet=steps.quiet * 1.5)
    return steps


def storm(fake, bot, channels, count: int, seconds: float, quiet: float = 1.0) -> dict:
    inc = _slack.open_incident(fake, bot, channels, "Sirius is slow", 2)
    _slack.wait_quiet(fake, quiet)
    channel, (head_channel, head_ts) = inc["channel"], inc["headline"]
    mark_calls = len(fake.calls_log.all())
    t0 = time.time()
    interval = seconds / count
    next_at = time.perf_counter()
    for i in range(count):
        mention(fake, channel, ALICE, f"summary Storm update {i + 1} of {count}")
        next_at += interval
        time.sleep(max(0.0, next_at - time.perf_counter()))
    sent_s = time.time() - t0
    last = f"Storm update {count} of {count}"
    try:
        fake.wait_for(lambda: bot.incident(2)["summary"].endswith(last), timeout=30)
    except TimeoutError:
        pass
    _slack.wait_quiet(fake, max(1.2, 2 * quiet), timeout=120)  # > 1 s: a coalesced edit may still be due
    calls = fake.calls_log.all()[mark_calls:]
    updates = [c for c in calls if c.method == "chat.update" and c.params.get("channel") == head_channel
               and c.params.get("ts") == head_ts]
    times = [c.time - t0 for c in updates]
    windows = [sum(1 for u in times if t <= u < t + 1.0) for t in times]  # every window starting at an update
    gaps = [b - a for a, b in zip(times, times[1:])]
    posts = [c.time - t0 for c in calls if c.method == "chat.postMessage" and c.params.get("channel") == channel]
    post_windows = [sum(1 for u in posts if t <= u < t + 1.0) for t in posts]
    final_summary = bot.incident(2)["summary"]
    head = fake.message(head_channel, head_ts)
    end = (times[-1] if times else 0.0)
    return {"commands": count, "sent_in_s": round(sent_s, 2),
            "headline_updates": len(updates),
            "updates_per_s_max_in_any_1s_window": max(windows) if windows else 0,
            "updates_per_s_mean": round(len(updates) / end, 2) if end > 0 else None,
            "min_gap_between_updates_s": round(min(gaps), 3) if gaps else None,
            "update_times_s": [round(t, 3) for t in times],
            "last_update_after_last_command_s": round(end - sent_s, 2) if times else None,
            "reference_changes": count, "ratio_updates_to_changes": round(len(updates) / count, 3),
            "record_ends_on_last_summary": final_summary.endswith(last), "record_summary": final_summary,
            "headline_ends_on_last_summary": last in _slack.all_text(head),
            "calls_by_method": dict(collections.Counter(c.method for c in calls).most_common()),
            "calls": len(calls),
            # Slack allows chat.postMessage about 1 message per second per channel (short bursts above)
            "posts_to_incident_channel": len(posts),
            "posts_to_incident_channel_max_in_any_1s_window": max(post_windows) if post_windows else 0}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a storm of 50 summaries in 2.5 s")
    parser.add_argument("--storm", type=int, help="summary mentions in the storm (default 100, quick 50)")
    parser.add_argument("--storm-seconds", type=float, help="over how long (default 5, quick 2.5)")
    parser.add_argument("--quiet", type=float, default=1.0,
                        help="seconds without a call that end a step (default 1; the smoke test uses less)")
    parser.add_argument("--out", help="results JSON (default bench/results/p4_slack_economy.json)")
    args = parser.parse_args(argv)
    count = args.storm or (50 if args.quick else 100)
    seconds = args.storm_seconds or (2.5 if args.quick else 5.0)

    with _slack.slack_and_bot("socket") as (fake, bot, channels):
        startup = fake.calls_log.all()
        startup_methods = dict(collections.Counter(c.method for c in startup).most_common())
        t_start = time.time()
        steps = scenario(fake, bot, channels, args.quiet)
        scenario_s = time.time() - t_start
        scenario_calls = [c for s in steps.steps for c in s["_calls"]]
        scenario_inputs = sum(s["inputs"] for s in steps.steps)
        storm_result = storm(fake, bot, channels, count, seconds, args.quiet)
        every_call = fake.calls_log.all()
        errors = _slack.log_errors(bot)[:10]

    per_method = dict(collections.Counter(c.method for c in scenario_calls).most_common())
    lookups = {m: repeats(every_call, m) for m in LOOKUP_WINDOW}
    lookups_scenario = {m: repeats(startup + scenario_calls, m) for m in LOOKUP_WINDOW}
    uncached = {m: repeats(startup + scenario_calls, m) for m in UNCACHED}
    person_inputs = scenario_inputs
    users_info = lookups["users.info"]
    doc = {"loadavg_at_end": _slack.loadavg(), "quick": args.quick, "config": {"storm_commands": count, "storm_seconds": seconds, "mode": "socket", "quiet_s": args.quiet,
                      "bot_env": _slack.BENCH_ENV},
           "startup": {"calls": len(startup), "by_method": startup_methods},
           "scenario": {"seconds": round(scenario_s, 1), "calls": len(scenario_calls), "by_method": per_method,
                        "inputs_from_people": person_inputs,
                        "calls_per_input": round(len(scenario_calls) / person_inputs, 2) if person_inputs else None,
                        "steps": [{k: v for k, v in s.items() if not k.startswith("_")} for s in steps.steps]},
           "lookups": {"whole_run": lookups, "startup_and_scenario": lookups_scenario,
                       "target_repeats": 0, "uncached_in_scenario": uncached,
                       "reference_inputs_from_known_people": person_inputs,
                       "users_info_per_input": round(lookups_scenario["users.info"]["calls"] / person_inputs, 3)
                       if person_inputs else None},
           "storm": storm_result,
           "targets": {"users_info_repeats_within_10_min": 0, "headline_updates_per_s": TARGET_UPDATES_PER_S,
                       "calls_per_input": TARGET_CALLS_PER_INPUT},
           "bot_log_errors": errors}
    doc["verdict"] = {
        "calls_per_input": _common.verdict(doc["scenario"]["calls_per_input"] or 0.0, TARGET_CALLS_PER_INPUT,
                                           higher_is_better=False),
        "users_info_repeats": "PASS" if users_info["repeats_within_cache_life"] == 0 else "MISS",
        "headline_updates_per_s": _common.verdict(storm_result["updates_per_s_max_in_any_1s_window"],
                                                  TARGET_UPDATES_PER_S, higher_is_better=False)}

    print("P4 Slack economy (Socket Mode)")
    print(f"  start-up: {len(startup)} calls " + ", ".join(f"{m} {n}" for m, n in startup_methods.items()))
    print(f"  whole incident: {len(scenario_calls)} Web API calls for {person_inputs} inputs from people "
          f"({doc['scenario']['calls_per_input']} per input; target <= {TARGET_CALLS_PER_INPUT:g}  "
          f"{doc['verdict']['calls_per_input']}), {scenario_s:.0f} s")
    for step in doc["scenario"]["steps"]:
        print(f"    {step['step']:48} {step['calls']:>3} calls  " +
              ", ".join(f"{m} {n}" for m, n in step["by_method"].items()))
    print("    per method: " + ", ".join(f"{m} {n}" for m, n in per_method.items()))
    print("  cached look-ups over the whole run (calls / distinct / repeats within the cache's life):")
    for method, r in lookups.items():
        print(f"    {method:20} {r['calls']:>3} / {r['distinct']:>3} / {r['repeats_within_cache_life']:>3}")
    for method, r in uncached.items():
        print(f"    {method:20} {r['calls']:>3} / {r['distinct']:>3} / {r['repeats_within_cache_life']:>3}  "
              f"(not cached; in the scenario)")
    print(f"  users.info repeats for known users: {users_info['repeats_within_cache_life']} (target 0)  "
          f"{doc['verdict']['users_info_repeats']};  users.info per input in the scenario "
          f"{doc['lookups']['users_info_per_input']} (reference: 1 per input without a cache)")
    s = storm_result
    print(f"  storm: {s['commands']} summary mentions in {s['sent_in_s']} s -> {s['headline_updates']} headline edits "
          f"(ratio to changes {s['ratio_updates_to_changes']}), at most {s['updates_per_s_max_in_any_1s_window']} in "
          f"any second (target <= {TARGET_UPDATES_PER_S:g})  {doc['verdict']['headline_updates_per_s']}; "
          f"min gap {s['min_gap_between_updates_s']} s; record ends on the last summary "
          f"{s['record_ends_on_last_summary']}, headline too {s['headline_ends_on_last_summary']}")
    print("    storm calls: " + ", ".join(f"{m} {n}" for m, n in s["calls_by_method"].items())
          + f"; posts into the incident channel {s['posts_to_incident_channel']}, at most "
          f"{s['posts_to_incident_channel_max_in_any_1s_window']} in a second (Slack: ~1/s per channel)")
    if errors:
        print(f"  errors in the bot's log: {len(errors)}")
    path = _common.write_results(NAME, doc, args.out)
    print(f"  -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
