"""The Markdown bench/report.py writes from bench/results/*.json: one function per region, each taking
every result by name (the JSON file's stem) and returning the region's text."""
from __future__ import annotations

PY = ".venv/bin/python"
COMMANDS = {"p0": "bench/p0_command_roundtrip.py", "p1": "bench/p1_ack_latency.py", "p2a": "bench/p2a_ingest.py",
            "p2b": "bench/p2b_write_path.py", "p3": "bench/p3_scale.py --postgres",
            "p4": "bench/p4_slack_economy.py", "p5": "bench/p5_footprint.py --slack",
            "p5-lite": "bench/p5_footprint.py"}
FILES = {"p0": "p0_command_roundtrip", "p1": "p1_ack_latency", "p2a": "p2a_ingest", "p2b": "p2b_write_path",
         "p3": "p3_scale", "p4": "p4_slack_economy", "p5": "p5_footprint_slack", "p5-lite": "p5_footprint"}


def n(value, digits: int = 1) -> str:
    """A number as the tables show it: thousands separated, `digits` decimals; a dash when missing."""
    if value is None:
        return "–"
    if isinstance(value, int) or digits == 0:
        return f"{round(value):,}"
    return f"{value:,.{digits}f}"


def cmd(key: str) -> str:
    return f"`{PY} {COMMANDS[key]}`"


def run_of(doc: dict | None) -> str:
    """When, at which commit, full or quick, and the machine's load at the end."""
    if not doc:
        return "not run"
    m = doc.get("machine", {})
    load = doc.get("loadavg_at_end")
    kind = "**quick** run" if doc.get("quick") else ("full run" if "quick" in doc else "run")
    return (f"{doc.get('when', '?')[:16].replace('T', ' ')} UTC, commit `{m.get('commit') or '?'}`, {kind}"
            + (f", load {load[0]:.1f}" if load else ""))


def verdict(*values) -> str:
    values = [v for v in values if v]
    if not values:
        return "–"
    return "**PASS**" if all(v == "PASS" for v in values) else "**MISS**"


def table(header: list[str], rows: list[list], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _get(results: dict, key: str) -> dict | None:
    return results.get(FILES[key])


def _flat_verdict(doc: dict | None):
    v = (doc or {}).get("verdict")
    return list(v.values()) if isinstance(v, dict) else [v]


# -- regions ----------------------------------------------------------------------------------------

def machine(results: dict) -> str:
    docs = [d for d in results.values() if d.get("machine")]
    if not docs:
        return "No results yet: run the benchmarks, then `.venv/bin/python bench/report.py`."
    m = max(docs, key=lambda d: d.get("when", ""))["machine"]
    commits = sorted({d["machine"].get("commit") or "?" for d in docs})
    whens = sorted(d.get("when", "")[:16].replace("T", " ") for d in docs)
    quick = sorted(name for name, d in results.items() if d.get("quick"))
    return (f"Machine: {m.get('nproc')} CPUs (`nproc`), {m.get('cpu')}, {n((m.get('ram_mb') or 0) / 1024)} GiB RAM, "
            f"Python {m.get('python')}, SQLite {m.get('sqlite')}. Results from {whens[0]} to {whens[-1]} UTC at "
            f"commit{'s' if len(commits) > 1 else ''} {', '.join(f'`{c}`' for c in commits)}."
            + (f" **Quick runs** (not the full sizes): {', '.join(f'`{q}`' for q in quick)}." if quick else
               " All full runs."))


def summary(results: dict) -> str:
    rows = []
    for key, what, target, latest, verdicts in (_p0_row(results), _p1_row(results), _p2a_row(results),
                                                _p2b_row(results), _p3_row(results), _p4_row(results),
                                                _p5_row(results)):
        rows.append([f"{key[0].upper()}{key[1:]} {what}", target, latest, verdict(*verdicts), cmd(key)])
    quick = sorted(name for name, d in results.items() if d.get("quick"))
    return (table(["benchmark", "target", "latest", "verdict", "command"], rows, "lllll")
            + (f"\n\nFrom **quick runs** (smaller sizes, fewer samples) for {', '.join(f'`{q}`' for q in quick)}."
               if quick else ""))


def _p0_row(results):
    d = _get(results, "p0")
    if not d:
        return "p0", "a chat command's round trip", "p99 ≤ 1.5× `!echo`", "not run", []
    k = d["kinds"]
    r = d["ratios_p99_to_echo"]
    return ("p0", "record-writing chat command vs errbot's `!echo` (test backend)", "p99 ≤ 1.5× `!echo`'s",
            f"`summary` {n(k['summary']['p99_ms'], 2)} ms ({n(r['summary'], 2)}×), `sev` {n(k['sev']['p99_ms'], 2)} ms "
            f"({n(r['sev'], 2)}×); `!echo` {n(k['echo']['p99_ms'], 2)} ms", [d.get("verdict")])


def _p1_row(results):
    d = _get(results, "p1")
    if not d:
        return "p1", "ack latency", "", "not run", []
    parts = []
    for mode, r in d["modes"].items():
        ratio = r.get("ratio_worst_interactive_p99_to_stock_echo_p99")
        parts.append(f"{'Socket Mode' if mode == 'socket' else 'HTTP'}: p99 {n(r['worst_interactive_p99_ms'])} ms"
                     + (f" ({n(ratio, 1)}×)" if ratio is not None else "") + f", max {n(r['max_ack_ms'])} ms")
    stock = d.get("reference") or {}
    if stock:
        parts.append(f"stock errbot `!echo` p99 {n(stock['echo']['p99_ms'])} ms")
    return ("p1", "ack latency, 50 events/s in the background",
            "no ack > 100 ms; p99 ≤ 4× stock errbot + SlackV3 acking `!echo`", "; ".join(parts),
            [v for r in d["modes"].values() for v in r.get("verdict", {}).values()])


def _p2a_row(results):
    d = _get(results, "p2a")
    if not d:
        return "p2a", "pins end to end", "≥ 500/s", "not run", []
    ref = d["reference"]
    return ("p2a", "pins end to end (fake Slack → errbot → database)", "≥ 500 pins/s",
            f"{n(d['pins_per_s'], 0)} pins/s; bound: the envelopes recorded with `sqlite3` "
            f"{n(ref['pin_equivalents_per_s'], 0)}/s ({n(d['ratio_to_reference'], 2)} of it)", [d.get("verdict")])


def _p2b_row(results):
    d = _get(results, "p2b")
    if not d:
        return "p2b", "core write path", "≥ 0.5", "not run", []
    r = d["results"]
    return ("p2b", "core write path / raw `sqlite3`, same durability", "≥ 0.5, median of 5 runs",
            f"`record_pin` {n(r['pin']['ratio'], 2)}, note {n(r['note']['ratio'], 2)} (median of {r['runs']})",
            [r["pin"]["verdict"], r["note"]["verdict"]])


def _p3_row(results):
    d = _get(results, "p3")
    if not d:
        return "p3", "cost at scale", "≤ 1.5", "not run", []
    cfg = d["config"]["incidents"]
    parts = [f"{'SQLite' if kind == 'sqlite' else 'PostgreSQL'} worst {n(db['worst_p99_ratio'], 2)} "
             f"(`{db.get('worst_operation')}`)" for kind, db in d["databases"].items()]
    return ("p3", f"p99 at {n(cfg['large'], 0)} incidents vs {n(cfg['reference'], 0)}", "≤ 1.5",
            "; ".join(parts), [d.get("verdict")])


def _p4_row(results):
    d = _get(results, "p4")
    if not d:
        return "p4", "Slack economy", "", "not run", []
    s, storm = d["scenario"], d["storm"]
    return ("p4", "Web API calls per person's input; look-ups; headline edits",
            "≤ 1.0 call per input; 0 repeated `users.info`; headline ≤ 1 edit/s",
            f"{n(s['calls_per_input'], 2)} ({s['calls']} calls for {s['inputs_from_people']} inputs); "
            f"{d['lookups']['whole_run']['users.info']['repeats_within_cache_life']} repeats; "
            f"≤ {storm['updates_per_s_max_in_any_1s_window']}/s ({storm['commands']} changes → "
            f"{storm['headline_updates']} edits)", _flat_verdict(d))


def _p5_row(results):
    d = _get(results, "p5")
    if not d:
        return "p5", "footprint on Slack", "", "not run", []
    o, ratios = d["ours"], d.get("ratios", {})
    return ("p5", "start → first reply on Slack; peak RSS", "≤ 1.3× bare errbot + SlackV3; < 3 s; < 150 MB",
            f"{n(o['reply_s'], 2)} s ({n(ratios.get('reply_s'), 2)}× bare {n((d.get('reference') or {}).get('reply_s'), 2)} s); "
            f"{n(o['peak_rss_mb'])} MB", _flat_verdict(d))


# -- details for bench/README.md ----------------------------------------------------------------------

def p0(results: dict) -> str:
    d = _get(results, "p0")
    if not d:
        return "Not run yet."
    rows = [[f"`{kind}`" if kind != "echo" else "`!echo` (reference)", k["n"], n(k["p50_ms"], 2), n(k["p99_ms"], 2),
             n(k["max_ms"], 2), n(d["ratios_p99_to_echo"].get(kind), 2) if kind != "echo" else "1"]
            for kind, k in d["kinds"].items()]
    return (table(["command", "round trips", "p50 ms", "p99 ms", "max ms", "p99 / `!echo` p99"], rows) + "\n\n"
            + (f"The bound: one row committed with sqlite3 as durably as the bot commits (WAL, synchronous=FULL) took "
               f"p50 {n(d['durable_commit']['p50_ms'], 2)} ms, p99 {n(d['durable_commit']['p99_ms'], 2)} ms, in turn with "
               f"the commands; `!echo`'s p99 plus that p99 is {n(d['floor_p99_ratio'], 2)}× `!echo`'s p99, the least a "
               f"command that records its change durably can take.\n\n" if d.get("durable_commit") else "") +
            f"Worst ratio {n(d['worst_p99_ratio'], 2)} (target ≤ {d['target_ratio']}): {verdict(d['verdict'])}. "
            f"Replies all as expected: {d['sanity']['all_replies_right']}. {run_of(d)}.")


def p1(results: dict) -> str:
    d = _get(results, "p1")
    if not d:
        return "Not run yet."
    modes = d["modes"]
    names = {"socket": "Socket Mode", "http": "HTTP mode"}
    kinds = list(next(iter(modes.values()))["kinds"])
    rows = []
    for kind in kinds:
        rows.append([f"`{kind}`"] + [" / ".join(n(r["kinds"][kind][f], 1) for f in ("p50_ms", "p99_ms", "max_ms"))
                                     for r in modes.values()])
    rows.append(["background envelopes"] + [" / ".join(n(r["background"]["ack"][f], 1) for f in
                                                       ("p50_ms", "p99_ms", "max_ms")) for r in modes.values()])
    stock = d.get("reference")
    lines = [table(["probe"] + [f"{names.get(m, m)} p50 / p99 / max ms" for m in modes], rows)]
    if stock:
        e, bg = stock["echo"], stock["background"]["ack"]
        lines.append(f"\nReference in the same run, stock errbot + SlackV3 (Socket Mode, same background): `!echo` "
                     f"acks {n(e['p50_ms'])} / {n(e['p99_ms'])} / {n(e['max_ms'])} ms (p50 / p99 / max), background "
                     f"{n(bg['p50_ms'])} / {n(bg['p99_ms'])} / {n(bg['max_ms'])} ms.")
    lines.append("")
    lines.append(table(["mode", "worst interactive p99 ms", "× stock `!echo` p99 (≤ 4)", "max ack ms (≤ 100)",
                        "background envelopes/s", "redeliveries", "verdict"],
                       [[names.get(m, m), n(r["worst_interactive_p99_ms"]),
                         n(r.get("ratio_worst_interactive_p99_to_stock_echo_p99"), 1), n(r["max_ack_ms"]),
                         n(r["background"]["envelopes_per_s"]), r["background"]["redeliveries"],
                         verdict(*r.get("verdict", {}).values())] for m, r in modes.items()]))
    lines.append(f"\n{run_of(d)}; {d['config']['samples_per_kind']} probes of each kind per mode.")
    return "\n".join(lines)


def p2a(results: dict) -> str:
    d = _get(results, "p2a")
    if not d:
        return "Not run yet."
    runs, refs = d["runs"]["pins"], d["reference"]["runs"]
    rows = [[i + 1, n(r["per_s"], 0), n(ref["pin_equivalents_per_s"], 0), n(r["per_s"] / ref["pin_equivalents_per_s"], 2),
             f"{n(r['ack']['p50_ms'], 0)} / {n(r['ack']['p99_ms'], 0)}", n(r["bot_cpu_ms_per_item"], 2),
             f"{r['bot_cpu_utilisation']:.0%}", r["redeliveries"]] for i, (r, ref) in enumerate(zip(runs, refs))]
    rows.append(["**median**", f"**{n(d['pins_per_s'], 0)}**", n(d["reference"]["pin_equivalents_per_s"], 0),
                 n(d["ratio_to_reference"], 2), "", "", "", ""])
    return (table(["round", "pins/s", "bound: envelopes recorded with `sqlite3`, pin-equivalents/s", "ratio",
                   "acks p50 / p99 ms", "bot CPU ms per pin", "bot CPU use", "redeliveries"], rows) + "\n\n"
            f"Target ≥ {n(d['target_pins_per_s'], 0)} pins/s: {verdict(d['verdict'])}. "
            f"{d['config']['rounds']} round(s) of {n(d['config']['pins'], 0)} pins, {d['config']['mode']} mode; "
            f"every pin on the timeline: {d['all_pins_on_timeline']}. {run_of(d)}.")


def p2b(results: dict) -> str:
    d = _get(results, "p2b")
    if not d:
        return "Not run yet."
    r = d["results"]
    rows = [[label, f"**{n(k['ratio'], 2)}**", ", ".join(n(x, 2) for x in k["ratios"]), n(k["core_us_per_row"], 0),
             n(k["raw_us_per_row"], 0), n(k["core_sql_replayed_us_per_row"], 0), verdict(k["verdict"])]
            for label, k in (("`IncidentService.record_pin`", r["pin"]), ("`IncidentService.log(note)`", r["note"]))]
    return (table(["operation", "core / raw (median)", "each run", "core µs/row", "raw µs/row",
                   "core's SQL replayed µs/row", "verdict (≥ 0.5)"], rows) + "\n\n"
            f"{r['runs']} runs of {n(r['rows_per_kind_per_run'], 0)} rows per kind ({r['durability']}); µs from "
            f"the run with the median ratio. {run_of(d)}.")


def p3(results: dict) -> str:
    d = _get(results, "p3")
    if not d:
        return "Not run yet."
    cfg = d["config"]
    out = []
    for kind, db in d["databases"].items():
        ref, big = db["scales"]["reference"], db["scales"]["large"]
        rows = [[f"`{name}`", n(ref[name]["p50_ms"], 2), n(ref[name]["p99_ms"], 2), n(big[name]["p50_ms"], 2),
                 n(big[name]["p99_ms"], 2), n(db["ratios"][name]["p99"], 2)] for name in ref]
        gen = db["generation"]["large"]
        out.append(f"**{'SQLite' if kind == 'sqlite' else 'PostgreSQL'}** ({n(gen['incidents'], 0)} incidents, "
                   f"{n(gen['timeline_entries'], 0)} entries, {n(gen['db_mb'])} MB, generated in "
                   f"{n(gen['seconds'])} s): worst p99 ratio {n(db['worst_p99_ratio'], 2)} "
                   f"{verdict(db['verdict'])}; statements with a full scan or a sort: {len(db['flagged_plans'])}\n")
        out.append(table(["operation", f"{n(cfg['incidents']['reference'], 0)} p50", "p99",
                          f"{n(cfg['incidents']['large'], 0)} p50", "p99", "p99 ×"], rows) + "\n")
    out.append(f"Milliseconds; {cfg['reps']} timed runs of each operation per database in {cfg['rounds']} alternating "
               f"rounds. {run_of(d)}.")
    return "\n".join(out)


def p4(results: dict) -> str:
    d = _get(results, "p4")
    if not d:
        return "Not run yet."
    s = d["scenario"]
    rows = [[step["step"], step["calls"], step["inputs"], ", ".join(f"`{m}` {c}" for m, c in step["by_method"].items())]
            for step in s["steps"]]
    rows.append(["**whole incident**", f"**{s['calls']}**", f"**{s['inputs_from_people']}**",
                 ", ".join(f"`{m}` {c}" for m, c in s["by_method"].items())])
    look = d["lookups"]["whole_run"]
    storm = d["storm"]
    unc = d["lookups"]["uncached_in_scenario"]
    return (table(["step", "Web API calls", "people's inputs", "by method"], rows, "lrrl") + "\n\n"
            f"Calls per person's input: **{n(s['calls_per_input'], 2)}** (target ≤ {d['targets'].get('calls_per_input', 1.0)}) "
            f"{verdict(d['verdict'].get('calls_per_input'))}. Look-ups over the whole run (calls / distinct / repeats): "
            + "; ".join(f"`{m}` {r['calls']} / {r['distinct']} / {r['repeats_within_cache_life']}" for m, r in look.items())
            + "; not cached: " + "; ".join(f"`{m}` {r['calls']} / {r['distinct']} / {r['repeats_within_cache_life']}"
                                           for m, r in unc.items())
            + f". Storm: {storm['commands']} `summary` mentions in {n(storm['sent_in_s'])} s → "
            f"{storm['headline_updates']} headline edits, at most {storm['updates_per_s_max_in_any_1s_window']} in any "
            f"second {verdict(d['verdict'].get('headline_updates_per_s'))}; replies into the incident channel "
            f"{storm['posts_to_incident_channel']}, at most {storm['posts_to_incident_channel_max_in_any_1s_window']} in "
            f"a second (Slack allows about 1 per second per channel). {run_of(d)}.")


def p5(results: dict) -> str:
    out = []
    for key, title in (("p5", "On the fake Slack (Socket Mode), against stock errbot + SlackV3 answering `!echo`"),
                       ("p5-lite", "On the Text console, against bare errbot answering `!echo`")):
        d = _get(results, key)
        if not d:
            out.append(f"{title}: not run yet.\n")
            continue
        o, b, ratios = d["ours"], d.get("reference") or {}, d.get("ratios", {})
        fields = [("connected_s", "start → connected (`hello`)", "s"), ("first_ack_s", "start → first envelope acked", "s"),
                  ("reply_s", "start → first reply", "s"), ("web_ready_s", "start → `GET /incidents` 200", "s"),
                  ("peak_rss_mb", "peak RSS (VmHWM)", "MB")]
        rows = [[label, f"{n(o.get(f), 2 if unit == 's' else 1)} {unit}",
                 f"{n(b.get(f), 2 if unit == 's' else 1)} {unit}" if b.get(f) is not None else "–",
                 n(ratios.get(f), 2) if ratios.get(f) is not None else "–"] for f, label, unit in fields if f in o]
        verdicts = ", ".join(f"{k} {v}" for k, v in d["verdict"].items())
        out.append(f"{title}; median of {d['runs']} start(s) each. {run_of(d)}.\n")
        out.append(table(["", "opg-incident", "bare errbot", "ratio"], rows) + f"\n\nVerdicts: {verdicts}.\n")
    return "\n".join(out)
