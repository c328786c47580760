"""The benchmarks in bench/ still run: each script in its smallest mode (a few hundred rows, one start, a
handful of Slack probes), writing its JSON to a temporary file with the keys the README's figures come
from. Not a timing test: no figure is checked against its target here. And bench/report.py: the figures
in README.md and bench/README.md are what bench/results says, and --check catches a doctored one."""
from __future__ import annotations

import json
import re
import shutil
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


def test_p0_command_roundtrip(tmp_path):
    doc = run("p0_command_roundtrip.py", tmp_path / "p0.json", "--samples", "5", "--warmup", "1")
    assert set(doc["kinds"]) == {"echo", "summary", "sev"}
    for kind in doc["kinds"].values():
        assert kind["n"] == 5 and kind["wrong_replies"] == 0 and kind["p99_ms"] > 0
    assert set(doc["ratios_p99_to_echo"]) == {"summary", "sev"}
    assert doc["sanity"]["timeline_entries"]["summary"] == 6  # 5 timed and 1 warm-up, each a change
    assert {"worst_p99_ratio", "target_ratio", "verdict"} <= set(doc)
    assert doc["durable_commit"]["n"] == 5 and doc["durable_commit"]["p99_ms"] > 0
    assert doc["floor_p99_ratio"] > 1


def test_p2b_write_path(tmp_path):
    doc = run("p2b_write_path.py", tmp_path / "p2b.json", "--rows", "100", "--rounds", "2", "--runs", "3")
    assert doc["results"]["runs"] == 3
    for kind in ("pin", "note"):
        r = doc["results"][kind]
        assert {"core_rows_per_s", "raw_rows_per_s", "ratio", "ratios", "target_ratio", "verdict",
                "core_sql_replayed_rows_per_s"} <= set(r)
        assert len(r["ratios"]) == 3 and r["ratio"] == sorted(r["ratios"])[1]  # the median
        assert r["core_rows_per_s"] > 0 and r["raw_rows_per_s"] > 0


def test_p3_scale(tmp_path):
    doc = run("p3_scale.py", tmp_path / "p3.json", "--small", "100", "--large", "300", "--reps", "4",
              "--rounds", "2")
    db = doc["databases"]["sqlite"]
    ops = {"cmd_summary", "cmd_sev", "cmd_action", "cmd_timeline", "cmd_incident_list", "web_incident",
           "web_incident_json", "web_index", "web_index_filtered"}
    assert ops <= set(db["scales"]["reference"]) and ops <= set(db["scales"]["large"])
    assert ops <= set(db["ratios"])
    assert {"p50_ms", "p99_ms"} <= set(db["scales"]["large"]["web_index"])
    assert {"worst_p99_ratio", "worst_operation", "verdict", "plans", "flagged_plans", "generation"} <= set(db)
    assert db["generation"]["large"]["timeline_entries"] == 3000
    assert all(p["plan"] for p in db["plans"]["large"]["web_index_filtered"])
    assert {"worst_p99_ratio", "verdict"} <= set(doc)


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
    assert set(r["kinds"]) == {"slash", "edit", "close", "echo", "dropped", "floor"}
    for kind in r["kinds"].values():
        assert kind["n"] == 3 and kind["not_ok"] == 0 and {"p50_ms", "p99_ms", "p99_vs_floor"} <= set(kind)
    assert r["background"]["envelopes"] > 0 and {"ack", "redeliveries", "pins_on_timeline"} <= set(r["background"])
    assert {"max_ack_ms", "worst_interactive_p99_ms", "ratio_worst_interactive_p99_to_stock_echo_p99"} <= set(r)
    stock = doc["reference"]
    assert stock["echo"]["n"] == 3 and stock["echo"]["not_ok"] == 0 and stock["background"]["envelopes"] > 0
    assert {"targets", "verdict"} <= set(doc)


@pytest.mark.e2e
def test_p2a_ingest(tmp_path):
    doc = run("p2a_ingest.py", tmp_path / "p2a.json", "--pins", "30", "--rounds", "1")
    assert doc["all_pins_on_timeline"]
    assert doc["pins_per_s"] > 0 and doc["reference"]["pin_equivalents_per_s"] > 0
    run_ = doc["runs"]["pins"][0]
    assert run_["complete"] and run_["envelopes"] == 60 and {"ack", "bot_cpu_ms_per_item"} <= set(run_)
    assert doc["reference"]["runs"][0]["envelopes"] == 60  # the same envelopes, recorded with sqlite3
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
    assert {"verdict", "targets"} <= set(doc) and "calls_per_input" in doc["verdict"]


# -- bench/report.py --------------------------------------------------------------------------------

def report(root: Path, results: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / "report.py"), "--root", str(root), "--results", str(results),
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_report_check_passes_on_the_repository():
    """The committed README.md and bench/README.md say what the committed bench/results say."""
    proc = report(ROOT, BENCH / "results", "--check")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]


def _copy(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "bench").mkdir()
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copy(BENCH / "README.md", tmp_path / "bench" / "README.md")
    shutil.copytree(BENCH / "results", tmp_path / "results")
    return tmp_path, tmp_path / "results"


def test_report_check_fails_on_a_doctored_table(tmp_path):
    root, results = _copy(tmp_path)
    assert report(root, results, "--check").returncode == 0
    readme = root / "README.md"
    text = readme.read_text(encoding="utf-8")
    region = re.search(r"<!-- bench:begin summary -->\n(.*?)<!-- bench:end summary -->", text, re.S)
    row = next(line for line in region.group(1).splitlines() if line.startswith("| P2a"))
    digit = re.search(r"\d", row.split("|")[3])  # the first figure in the "latest" column
    doctored = row.replace(row.split("|")[3], row.split("|")[3][:digit.start()] + str((int(digit.group()) + 1) % 10)
                           + row.split("|")[3][digit.end():])
    readme.write_text(text.replace(row, doctored), encoding="utf-8")
    proc = report(root, results, "--check")
    assert proc.returncode == 1 and "README.md" in proc.stderr and doctored in proc.stdout

    assert report(root, results).returncode == 0  # rewriting puts the figure back
    assert readme.read_text(encoding="utf-8") == text


def test_report_check_fails_when_a_result_changes(tmp_path):
    root, results = _copy(tmp_path)
    doc = json.loads((results / "p2a_ingest.json").read_text(encoding="utf-8"))
    doc["pins_per_s"] = doc["pins_per_s"] + 123.0
    (results / "p2a_ingest.json").write_text(json.dumps(doc), encoding="utf-8")
    proc = report(root, results, "--check")
    assert proc.returncode == 1 and "README.md, bench/README.md: figures differ" in proc.stderr


def test_report_check_fails_without_the_markers(tmp_path):
    root, results = _copy(tmp_path)
    readme = root / "bench" / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("<!-- bench:end p2b -->", ""), encoding="utf-8")
    proc = report(root, results, "--check")
    assert proc.returncode != 0 and "p2b" in proc.stderr
