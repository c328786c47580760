"""The benchmarks in bench/ still run: each script in its smallest mode (a few hundred rows, one start),
writing its JSON to a temporary file with the keys the README's figures come from. Not a timing test:
no figure is checked against its target here."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


def run(script: str, out: Path, *args: str) -> dict:
    proc = subprocess.run([sys.executable, str(BENCH / script), "--out", str(out), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{script} failed\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert {"benchmark", "when", "machine"} <= set(doc)
    assert {"nproc", "cpu", "ram_mb"} <= set(doc["machine"])
    return doc


def test_p2b_write_path(tmp_path):
    doc = run("p2b_write_path.py", tmp_path / "p2b.json", "--rows", "200", "--rounds", "2")
    for kind in ("pin", "note"):
        r = doc["results"][kind]
        assert {"core_rows_per_s", "raw_rows_per_s", "ratio", "target_ratio", "verdict",
                "core_sql_replayed_rows_per_s"} <= set(r)
        assert r["core_rows_per_s"] > 0 and r["raw_rows_per_s"] > 0


def test_p3_scale(tmp_path):
    doc = run("p3_scale.py", tmp_path / "p3.json", "--small", "100", "--large", "300", "--reps", "4",
              "--rounds", "2")
    ops = {"cmd_summary", "cmd_sev", "cmd_action", "cmd_timeline", "cmd_incident_list", "web_incident",
           "web_incident_json", "web_index", "web_index_filtered"}
    assert ops <= set(doc["scales"]["reference"]) and ops <= set(doc["scales"]["large"])
    assert ops <= set(doc["ratios"])
    assert {"p50_ms", "p99_ms"} <= set(doc["scales"]["large"]["web_index"])
    assert {"worst_p99_ratio", "verdict", "plans", "flagged_plans", "generation"} <= set(doc)
    assert doc["generation"]["large"]["timeline_entries"] == 3000
    assert all(p["plan"] for p in doc["plans"]["large"]["web_index_filtered"])


@pytest.mark.e2e
def test_p5_footprint(tmp_path):
    doc = run("p5_footprint.py", tmp_path / "p5.json", "--runs", "1", "--no-reference")
    ours = doc["ours"]
    assert {"web_ready_s", "reply_s", "peak_rss_mb", "rss_at_ready_mb"} <= set(ours)
    assert ours["web_ready_s"] > 0 and ours["peak_rss_mb"] > 0
    assert ours["all_commands_answered"] and ours["all_pages_ok"]
    assert {"targets", "verdict"} <= set(doc)
