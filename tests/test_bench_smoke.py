"""The benchmarks in bench/ still run: each script in its smallest mode (a few hundred rows, one start, a
handful of Slack probes), writing its JSON to a temporary file with the keys the README's figures come
from. Not a timing test: no figure is checked against its target here."""
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


@pytest.mark.e2e
def test_p5_footprint_slack(tmp_path):
    doc = run("p5_footprint.py", tmp_path / "p5s.json", "--slack", "--runs", "1", "--no-reference")
    ours = doc["ours"]
    assert doc["mode"] == "slack"
    assert {"connected_s", "first_ack_s", "reply_s", "web_ready_s", "peak_rss_mb"} <= set(ours)
    assert 0 < ours["connected_s"] <= ours["reply_s"] and ours["peak_rss_mb"] > 0
    assert ours["all_commands_answered"] and ours["all_pages_ok"]


@pytest.mark.e2e
def test_p1_ack_latency(tmp_path):
    doc = run("p1_ack_latency.py", tmp_path / "p1.json", "--samples", "3", "--modes", "socket", "--warmup", "1",
              "--background", "20")
    r = doc["modes"]["socket"]
    assert set(r["kinds"]) == {"slash", "edit", "close", "dropped", "floor"}
    for kind in r["kinds"].values():
        assert kind["n"] == 3 and kind["not_ok"] == 0 and {"p50_ms", "p99_ms", "p99_vs_floor"} <= set(kind)
    assert r["background"]["envelopes"] > 0 and {"ack", "redeliveries", "pins_on_timeline"} <= set(r["background"])
    assert {"targets", "verdict"} <= set(doc)


@pytest.mark.e2e
def test_p2a_ingest(tmp_path):
    doc = run("p2a_ingest.py", tmp_path / "p2a.json", "--pins", "30", "--rounds", "1")
    assert doc["all_pins_on_timeline"]
    assert doc["pins_per_s"] > 0 and doc["reference"]["pin_equivalents_per_s"] > 0
    run_ = doc["runs"]["pins"][0]
    assert run_["complete"] and run_["envelopes"] == 60 and {"ack", "bot_cpu_ms_per_item"} <= set(run_)
    assert {"ratio_to_reference", "verdict", "target_pins_per_s"} <= set(doc)


@pytest.mark.e2e
def test_p4_slack_economy(tmp_path):
    doc = run("p4_slack_economy.py", tmp_path / "p4.json", "--storm", "10", "--storm-seconds", "0.5",
              "--quiet", "0.3")
    scenario = doc["scenario"]
    assert scenario["calls"] > 0 and "chat.postMessage" in scenario["by_method"] and len(scenario["steps"]) == 8
    assert {"calls", "distinct", "repeats_within_cache_life"} <= set(doc["lookups"]["whole_run"]["users.info"])
    storm = doc["storm"]
    assert storm["commands"] == 10 and storm["headline_updates"] >= 1
    assert {"updates_per_s_max_in_any_1s_window", "ratio_updates_to_changes"} <= set(storm)
    assert {"verdict", "targets"} <= set(doc)
