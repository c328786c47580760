"""P5-lite: the footprint of the real `errbot -c config.py` process on the Text console.

Each run starts errbot with a fresh BOT_DATA_DIR and a free INCIDENT_WEB_PORT (no Slack tokens, so the
Text backend), with `!incident list all` already waiting on its standard input, and measures:
  web_ready_s   start -> the living document answers GET /incidents with 200   (target < 3 s)
  reply_s       start -> the console prints the answer to that command
  peak_rss_mb   VmHWM of the process (from /proc/<pid>/status) after it is ready and has served
                a few pages and commands                                         (target < 150 MB)
Reference, measured in the same run: bare errbot 6.2.1 on the Text backend with the same core plugins
and no opg-incident (a generated minimal config), time to answer `!echo` and its VmHWM. The ratios
ours/bare show what opg-incident adds on top of errbot itself.

    .venv/bin/python bench/p5_footprint.py [--quick] [--runs N] [--no-reference]

--slack: the OPGSlack backend against the fake Slack (tests/fake_slack) in Socket Mode instead of the Text
console: start -> connected (`hello`), -> first envelope acknowledged, -> first mention answered (target
< 3 s), and the peak RSS after a declaration by the modal, three mention commands and four pages. Its
reference is errbot's own SlackV3 backend (pointed at the fake; same core plugins, no opg-incident)
answering `!echo`. See run_slack_once.

    .venv/bin/python bench/p5_footprint.py --slack [--quick] [--runs N] [--no-reference]

The bot's bytecode is compiled first, as at install (docs/operations.md; pip compiles errbot's); --from-source
skips it (where Python may not write it, PYTHONDONTWRITEBYTECODE, every start then compiles the plugin).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402
import _p5_slack  # noqa: E402  (the fake Slack itself is imported only for --slack)

NAME = "p5_footprint"
ERRBOT = _common.ERRBOT
TARGET_READY_S = 3.0
TARGET_REPLY_RATIO = 1.3  # --slack: first reply within 1.3x of bare errbot + SlackV3
TARGET_RSS_MB = 150.0
TIMEOUT_S = 60.0
COMMAND = "!incident list all"
BARE_CONFIG = """\
import logging
BACKEND = "Text"
BOT_DATA_DIR = {data!r}
BOT_EXTRA_PLUGIN_DIR = None
BOT_LOG_FILE = {log!r}
BOT_LOG_LEVEL = logging.WARNING
BOT_ADMINS = ("@you",)
BOT_PREFIX = "!"
AUTOINSTALL_DEPS = False
STORAGE = "Shelf"
CORE_PLUGINS = ("ACLs", "Health", "Plugins", "Utils", "TextCmds")
"""


@dataclass
class Target:
    """What to start and how to know it is ready."""

    name: str
    argv: list[str]
    env: dict[str, str]
    stdin_lines: list[str]
    expect_in_stdout: str                      # the console's answer to the first command
    web_url: str | None = None                 # polled until it answers 200
    after_ready: Callable[["Target"], list[int]] | None = None  # exercise it before reading the peak RSS
    expect_after: tuple[str, ...] = ()        # in the answers to the rest of stdin_lines
    cleanup: list[Callable[[], None]] = field(default_factory=list)


def text_target(tmp: Path) -> Target:
    data, port = tmp / "data", _common.free_port()
    env = _common.clean_env()
    env.update(BOT_DATA_DIR=str(data), INCIDENT_WEB_PORT=str(port), BOT_LOG_LEVEL="WARNING")
    base = f"http://127.0.0.1:{port}"

    def exercise(target: Target) -> list[int]:
        return [_common.http_status(base + url) for url in ("/incidents", "/incidents/1", "/incidents?status=open", "/stats")]

    return Target("opg-incident (Text)", [str(ERRBOT), "-c", str(_common.ROOT / "config.py")], env,
                  [COMMAND, "!incident declare Payments are failing", "!summary 1 Card payments fail",
                   "!timeline 1"],
                  expect_in_stdout="No incidents.", web_url=f"{base}/incidents", after_ready=exercise,
                  expect_after=("Incident 1 declared", "the summary is now", "Timeline of incident 1"))


def bare_target(tmp: Path) -> Target:
    data = tmp / "bare-data"
    data.mkdir(parents=True, exist_ok=True)
    config = tmp / "bare_config.py"
    config.write_text(BARE_CONFIG.format(data=str(data), log=str(data / "errbot.log")), encoding="utf-8")
    return Target("bare errbot (Text)", [str(ERRBOT), "-c", str(config)], _common.clean_env(),
                  ["!echo ready-marker-42"], expect_in_stdout="ready-marker-42")


# -- --slack: the OPGSlack backend against the fake Slack (tests/fake_slack), Socket Mode ------------------

def run_once(target: Target) -> dict:
    """Start the process, time readiness, read its peak RSS, stop it."""
    seen = threading.Event()
    output: list[str] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(target.argv, cwd=_common.ROOT, env=target.env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    reply_at: list[float] = []

    def read_stdout():
        for line in proc.stdout:
            output.append(line)
            if not reply_at and target.expect_in_stdout in line:
                reply_at.append(time.perf_counter() - t0)
                seen.set()

    stderr: list[str] = []
    readers = [threading.Thread(target=read_stdout, daemon=True),
               threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True)]
    for r in readers:
        r.start()
    try:
        proc.stdin.write(target.stdin_lines[0] + "\n")
        proc.stdin.flush()
        web_ready = None
        deadline = t0 + TIMEOUT_S
        if target.web_url:
            while time.perf_counter() < deadline and proc.poll() is None:
                if _common.http_status(target.web_url, timeout=1.0) == 200:
                    web_ready = time.perf_counter() - t0
                    break
                time.sleep(0.01)
        if not seen.wait(max(0.0, deadline - time.perf_counter())):
            raise RuntimeError(f"{target.name}: no answer within {TIMEOUT_S} s\n{''.join(output)[-2000:]}\n"
                               f"{''.join(stderr)[-2000:]}")
        if target.web_url and web_ready is None:
            raise RuntimeError(f"{target.name}: {target.web_url} never answered 200\n{''.join(stderr)[-2000:]}")
        at_ready = _common.proc_status(proc.pid)
        for line in target.stdin_lines[1:]:
            proc.stdin.write(line + "\n")
        proc.stdin.flush()
        answered_by = time.perf_counter() + 10
        while time.perf_counter() < answered_by and not all(e in "".join(output) for e in target.expect_after):
            time.sleep(0.02)
        pages = target.after_ready(target) if target.after_ready else []
        time.sleep(0.2)
        status = _common.proc_status(proc.pid)
        answered = all(e in "".join(output) for e in target.expect_after)
    finally:
        try:
            proc.stdin.close()  # the Text backend stops at the end of its input
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for fn in target.cleanup:
            fn()
    return {"web_ready_s": round(web_ready, 3) if web_ready is not None else None,
            "reply_s": round(reply_at[0], 3),
            "rss_at_ready_mb": round(at_ready.get("VmRSS", 0) / 1024, 1),
            "peak_rss_mb": round(status.get("VmHWM", 0) / 1024, 1),
            "commands_answered": answered, "pages_status": pages, "exit_code": proc.returncode}


def compile_bytecode() -> None:
    """As `python -m compileall -q config.py backends plugins` at install."""
    import compileall
    compileall.compile_file(str(_common.ROOT / "config.py"), quiet=1)
    for folder in ("backends", "plugins"):
        compileall.compile_dir(str(_common.ROOT / folder), quiet=1)


def _medians(runs: list[dict]) -> dict:
    out = {}
    for key in ("connected_s", "first_ack_s", "web_ready_s", "reply_s", "rss_at_ready_mb", "peak_rss_mb"):
        if not any(key in r for r in runs):
            continue
        values = [r[key] for r in runs if r.get(key) is not None]
        out[key] = round(statistics.median(values), 3) if values else None
    out["all_commands_answered"] = all(r["commands_answered"] for r in runs)
    out["all_pages_ok"] = all(all(code == 200 for code in r["pages_status"]) for r in runs)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one run of each instead of seven")
    parser.add_argument("--runs", type=int, help="starts of each process (default 7, quick 1); medians reported")
    parser.add_argument("--no-reference", action="store_true", help="skip bare errbot")
    parser.add_argument("--slack", action="store_true", help="the OPGSlack backend against the fake Slack")
    parser.add_argument("--out", help="results JSON (default bench/results/p5_footprint.json)")
    parser.add_argument("--from-source", action="store_true", help="do not compile the bot's bytecode first")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 7)
    mode = "slack" if args.slack else "text"
    if not args.from_source:
        compile_bytecode()

    ours, bare = [], []
    with tempfile.TemporaryDirectory(prefix="bench-p5-") as tmp:
        for i in range(runs):  # alternate, so that a busy moment falls on both
            if args.slack:
                ours.append(_p5_slack.run_slack_once(Path(tmp) / f"ours-{i}", timeout=TIMEOUT_S))
                if not args.no_reference:
                    bare.append(_p5_slack.run_slack_once(Path(tmp) / f"bare-{i}", bare=True, timeout=TIMEOUT_S))
                continue
            ours.append(run_once(text_target(Path(tmp) / f"ours-{i}")))  # (--slack: run_slack_once, above)
            if not args.no_reference:
                bare.append(run_once(bare_target(Path(tmp) / f"bare-{i}")))

    result = {"quick": args.quick, "mode": mode, "runs": runs, "bytecode": "source" if args.from_source else "compiled",
              "ours": _medians(ours), "ours_runs": ours}
    o = result["ours"]
    ready_key = "reply_s" if args.slack else "web_ready_s"  # Slack: connected and answering a mention
    result["targets"] = {ready_key: TARGET_READY_S, "peak_rss_mb": TARGET_RSS_MB}
    result["verdict"] = {
        ready_key: _common.verdict(max(o[ready_key], o.get("web_ready_s") or 0), TARGET_READY_S,
                                   higher_is_better=False),
        "peak_rss_mb": _common.verdict(o["peak_rss_mb"], TARGET_RSS_MB, higher_is_better=False)}
    print(f"P5{'' if args.slack else '-lite'} footprint, errbot -c config.py on the {mode} backend, median of "
          f"{runs} start(s)")
    if args.slack:
        print(f"  connected (hello)    {o['connected_s']:.2f} s;  first envelope acked {o['first_ack_s']:.2f} s")
        print(f"  first mention answered {o['reply_s']:.2f} s (target < {TARGET_READY_S:g} s)  "
              f"{result['verdict'][ready_key]};  web /incidents ready {o['web_ready_s']:.2f} s")
    else:
        print(f"  web /incidents ready {o['web_ready_s']:.2f} s (target < {TARGET_READY_S:g} s)  "
              f"{result['verdict']['web_ready_s']}")
        print(f"  first reply          {o['reply_s']:.2f} s")
    print(f"  peak RSS (VmHWM)     {o['peak_rss_mb']:.1f} MB (target < {TARGET_RSS_MB:g} MB)  "
          f"{result['verdict']['peak_rss_mb']};  RSS when ready {o['rss_at_ready_mb']:.1f} MB")
    print(f"  sanity: commands answered {o['all_commands_answered']}, pages 200 {o['all_pages_ok']}")
    if bare:
        b = _medians(bare)
        what = ("bare errbot, its own SlackV3 backend pointed at the fake Slack, same core plugins, no opg-incident"
                if args.slack else "bare errbot, Text backend, same core plugins, no opg-incident")
        result["reference"] = {"what": what, **b, "runs": bare}
        result["ratios"] = {"reply_s": round(o["reply_s"] / b["reply_s"], 3),
                            "peak_rss_mb": round(o["peak_rss_mb"] / b["peak_rss_mb"], 3)}
        if args.slack:
            result["ratios"]["connected_s"] = round(o["connected_s"] / b["connected_s"], 3)
            result["targets"]["reply_ratio_to_bare"] = TARGET_REPLY_RATIO
            result["verdict"]["reply_ratio_to_bare"] = _common.verdict(result["ratios"]["reply_s"],
                                                                       TARGET_REPLY_RATIO, higher_is_better=False)
        print(f"  reference: bare errbot first reply {b['reply_s']:.2f} s"
              + (f" (connected {b['connected_s']:.2f} s)" if args.slack else "")
              + f", peak RSS {b['peak_rss_mb']:.1f} MB;"
              f"  ratios ours/bare: reply {result['ratios']['reply_s']:.2f}, "
              f"peak RSS {result['ratios']['peak_rss_mb']:.2f}")
    path = _common.write_results(NAME if mode == "text" else f"{NAME}_{mode}", result, args.out)
    print(f"  -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
