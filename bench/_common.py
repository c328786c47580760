"""What every benchmark shares: the import path, the machine, percentiles and the results file.

Benchmarks are scripts, not tests: each prints its figures, the ratio to the reference measured in the
same run, and writes them to bench/results/<name>.json (or --out).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import gc
import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = ROOT / "plugins" / "opg_incident"
SETTINGS = PLUGIN_DIR / "settings.yml"
RESULTS = Path(__file__).resolve().parent / "results"
ERRBOT = Path(sys.executable).parent / "errbot"

for _path in (str(PLUGIN_DIR), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)


def machine() -> dict:
    """nproc, CPU model, RAM and the software the figures depend on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_mb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_mb = int(line.split()[1]) // 1024
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu,
        "ram_mb": mem_mb,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        "commit": commit,
    }


def percentile(values, q: float) -> float:
    """The q-th percentile (0..100), linear between the closest ranks."""
    data = sorted(values)
    if not data:
        return float("nan")
    k = (len(data) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def summary_ms(samples_s) -> dict:
    """p50/p99/mean/max in milliseconds of durations given in seconds."""
    ms = [s * 1000 for s in samples_s]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 3), "p99_ms": round(percentile(ms, 99), 3),
            "mean_ms": round(sum(ms) / len(ms), 3) if ms else None, "max_ms": round(max(ms), 3) if ms else None}


def write_results(name: str, data: dict, out: str | None = None) -> Path:
    path = Path(out) if out else RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"benchmark": name, "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine(), **data}
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def verdict(value: float, target: float, higher_is_better: bool) -> str:
    ok = value >= target if higher_is_better else value <= target
    return "PASS" if ok else "MISS"


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.perf_counter() - self.start
        return False


@contextlib.contextmanager
def harness_collector_paused():
    """The benchmark's own garbage collector off while it measures. Where the fake Slack runs in the
    benchmark's process and times the bot's answers, a full collection of the fake's growing records
    (50-90 ms once its deliveries number in the thousands) stops the clock's thread as well: it would be
    counted as the bot's latency. Slack's stand-in pausing is not the bot being slow; the bot's own
    process is untouched. Everything from before is frozen; after, the collector runs again."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()
        gc.collect()


# -- starting a bot and reading it ---------------------------------------------------------------------

def free_port() -> int:
    """A loopback port free now (for a bot's web server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM in kB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def clean_env() -> dict[str, str]:
    """This process's environment without Slack, incident or bot settings: a bot started with it uses its defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "INCIDENT_", "BOT_"))}
    env.update(PYTHONUNBUFFERED="1")
    return env


def http_status(url: str, timeout: float = 2.0) -> int:
    """The status of a GET of `url`; 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0
