"""`python -m opg_incident_core.settings check FILE`: exit 0 on a valid file, 1 with the same file:line
message as `incident reload` on an invalid one (a real subprocess, as an operator runs it)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opg_incident_core import IncidentError, IncidentService, SettingsStore

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "plugins" / "opg_incident" / "settings.yml"
BAD = {
    "bad_key.yml": ("roles:", "roles:\n  - key: Incident Lead\n    name: Lead\n    description: d\n"),
    "bad_yaml.yml": ("severities:", "severities: [unclosed\n"),
    "unknown_field.yml": ("channels:", "channels:\n  incidents: opg-incidents\n  colour: blue\n"),
}


def check(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "plugins" / "opg_incident"))
    return subprocess.run([sys.executable, "-m", "opg_incident_core.settings", "check", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def broken(tmp_path: Path, name: str) -> Path:
    """The shipped settings with one section replaced by a broken one."""
    marker, replacement = BAD[name]
    text = SHIPPED.read_text(encoding="utf-8")
    start = text.index(f"\n{marker}") + 1
    end = text.find("\n", start)
    following = [i for i in range(end, len(text)) if text[i - 1] == "\n" and text[i].isalpha()]
    path = tmp_path / name
    path.write_text(text[:start] + replacement + (text[following[0]:] if following else ""), encoding="utf-8")
    return path


def reload_message(path: Path, tmp_path: Path, shipped_settings) -> str:
    """What `incident reload` says of that file (its message after the first line)."""
    live = tmp_path / "live.yml"
    shutil.copy(SHIPPED, live)
    store = SettingsStore(live)
    shutil.copy(path, live)
    service = IncidentService(lambda: shipped_settings, admins={"@admin"})
    with pytest.raises(IncidentError) as refused:
        service.reload_settings(store, "@admin")
    return str(refused.value).split("\n", 1)[1].replace(str(live), str(path))


def test_a_valid_file_passes(tmp_path):
    result = check(str(SHIPPED))
    assert (result.returncode, result.stderr) == (0, "")  # no warning either
    assert result.stdout.startswith(f"{SHIPPED}: valid (")


@pytest.mark.parametrize("name", sorted(BAD))
def test_an_invalid_file_fails_with_the_reload_message(tmp_path, shipped_settings, name):
    path = broken(tmp_path, name)
    result = check(str(path))
    assert result.returncode == 1 and result.stdout == ""
    message = result.stderr.strip()
    assert message.startswith(f"{path}:") and message.split(":")[1].isdigit()
    assert message == reload_message(path, tmp_path, shipped_settings)


def test_several_files_one_bad_and_a_missing_one(tmp_path):
    bad = broken(tmp_path, "bad_key.yml")
    result = check(str(SHIPPED), str(bad), str(tmp_path / "missing.yml"))
    assert result.returncode == 1
    assert "valid" in result.stdout and str(bad) in result.stderr
    assert f"{tmp_path / 'missing.yml'}: cannot read the settings file" in result.stderr


def test_without_a_file_it_checks_incident_settings(tmp_path):
    bad = broken(tmp_path, "bad_yaml.yml")
    env = dict(os.environ, PYTHONPATH=str(ROOT / "plugins" / "opg_incident"), INCIDENT_SETTINGS=str(bad))
    result = subprocess.run([sys.executable, "-m", "opg_incident_core.settings", "check"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.startswith(f"{bad}:")
    env.pop("INCIDENT_SETTINGS")
    result = subprocess.run([sys.executable, "-m", "opg_incident_core.settings", "check"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith(f"{SHIPPED}: valid")


def test_usage():
    env = dict(os.environ, PYTHONPATH=str(ROOT / "plugins" / "opg_incident"))
    result = subprocess.run([sys.executable, "-m", "opg_incident_core.settings"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "usage:" in result.stderr
