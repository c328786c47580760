"""Tests that need something from the machine (PostgreSQL, chromium) say why they skip and how to get it,
and fail instead when CI=true: a pytest of their own, with both pointed at something that is not there."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nobody listens on it once closed


def run_without_postgres_and_chromium(ci: bool) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(INCIDENT_TEST_POSTGRES_URL=f"postgresql://postgres@127.0.0.1:{closed_port()}/test",
               CHROMIUM=str(ROOT / "no-such-chromium"), **({"CI": "true"} if ci else {}))
    # `-n 0`: one process (pytest.ini's two workers would only add their start-up to these few tests)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsE", "-p", "no:logging", "-n", "0",
                             "tests/test_storage.py", "tests/test_browser.py", "-k", "postgres or test_browser"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    return result.returncode, result.stdout + result.stderr


def outcomes(output: str) -> dict:
    summary = output.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (passed|skipped|failed|errors?)", summary)}


@pytest.mark.parametrize("ci", [False, True], ids=["outside CI", "CI=true"])
def test_missing_postgres_and_chromium_skip_with_a_reason_or_fail_in_ci(ci):
    code, output = run_without_postgres_and_chromium(ci)
    counts = outcomes(output)
    reasons = [line for line in output.splitlines() if line.startswith(("SKIPPED", "ERROR"))]
    postgres = [r for r in reasons if "PostgreSQL is not available" in r]
    chromium = [r for r in reasons if "chromium is not installed" in r]
    assert postgres and chromium, output[-3000:]
    assert all("INCIDENT_TEST_POSTGRES_URL" in r and "apt-get install postgresql" in r for r in postgres), postgres
    assert all("apt-get install chromium" in r and "CHROMIUM" in r for r in chromium), chromium
    if ci:
        assert code != 0 and "skipped" not in counts and counts.get("errors", counts.get("error", 0)) >= 2, output[-3000:]
        assert all("required when CI=true" in r for r in postgres + chromium), reasons
    else:
        assert code == 0 and counts.get("skipped", 0) >= 2 and set(counts) == {"skipped"}, output[-3000:]
