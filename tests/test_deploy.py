"""Deployment files: the systemd unit passes `systemd-analyze verify`; the Containerfile mirrors the unit;
the locks pin every package with hashes, runtime and test alike, at the versions the .in files ask for."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "opg-incident.service"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
INSTALLED = "/opt/opg-incident"


def unit_settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    # Where it is installed the code lives in /opt/opg-incident; here, this checkout and this Python.
    text = UNIT.read_text().replace(f"{INSTALLED}/.venv/bin/", f"{Path(sys.executable).parent}/")
    text = text.replace(INSTALLED, str(ROOT))
    unit = tmp_path / "opg-incident.service"
    unit.write_text(text)
    result = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if unit.name in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


def test_the_unit_runs_as_its_own_user_restarts_and_is_hardened():
    unit = unit_settings()
    assert unit["User"] == ["opg-incident"] and unit["EnvironmentFile"]
    assert unit["Restart"] == ["on-failure"]
    for key, value in {"NoNewPrivileges": "true", "ProtectSystem": "strict", "ProtectHome": "true",
                       "PrivateTmp": "true", "CapabilityBoundingSet": ""}.items():
        assert unit[key] == [value], key


def test_the_containerfile_mirrors_the_unit():
    text = CONTAINERFILE.read_text()
    unit = unit_settings()
    assert re.search(r"^USER opg-incident", text, re.M)  # not root
    assert re.search(r"^HEALTHCHECK .*/healthz", text, re.M | re.S)
    environment = " ".join(unit["Environment"])
    for setting in ("BOT_DATA_DIR=/var/lib/opg-incident", "INCIDENT_LOG_FORMAT=json",
                    "PYTHONPATH=/opt/opg-incident/plugins/opg_incident"):
        assert setting in environment and setting in text, setting
    assert f"STOPSIGNAL {unit['KillSignal'][0]}" in text
    assert "opg_incident_core.settings check $INCIDENT_SETTINGS" in unit["ExecStartPre"][0] and \
        "opg_incident_core.settings check $INCIDENT_SETTINGS" in text
    assert "--require-hashes" in text and "CI does not build" in text


def locked(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of a pip-compile lock."""
    entries, name = {}, None
    for line in path.read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", line)
        if found:
            name = found[1].lower().replace("_", "-")
            entries[name] = (found[2], 0)
        elif line.strip().startswith("--hash=sha256:") and name:
            entries[name] = (entries[name][0], entries[name][1] + 1)
        elif line and not line.startswith((" ", "#")):
            raise AssertionError(f"{path.name}: not a pinned, hashed requirement: {line}")
    return entries


def wanted(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^]]*\])?==(\S+)", line)
        if found:
            out[found[1].lower().replace("_", "-")] = found[2]
    return out


def test_the_locks_pin_every_package_with_hashes():
    runtime, test = locked(ROOT / "requirements.txt"), locked(ROOT / "requirements-test.txt")
    assert all(count >= 1 for _, count in [*runtime.values(), *test.values()])
    for name, version in wanted(ROOT / "requirements.in").items():
        assert runtime.get(name, (None,))[0] == version, name
    for name, version in wanted(ROOT / "requirements-test.in").items():
        assert test.get(name, (None,))[0] == version, name
    assert {"aiohttp", "pytest", "hypothesis"} <= set(test)
    # The test lock is the runtime lock plus the test tools, at the same versions.
    assert {name: runtime[name][0] for name in runtime} == {name: test[name][0] for name in runtime}
