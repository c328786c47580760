"""The living document in a real browser: the real `errbot -c config.py` (Text backend) serves incidents
pre-filled through the core, and headless Debian chromium shows what a person sees.

Screenshots of the incident page (desktop and phone), the index and /stats go to artifacts/.
Without chromium (CHROMIUM, default /usr/bin/chromium) the tests are skipped saying how to get it, or fail
when CI=true.
"""
from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import require
from opg_incident_core import IncidentService, load_settings, open_database

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ATTACK = ("<script>document.title='pwned';"
          "document.body.insertAdjacentHTML('beforeend','<p id=\"pwned\">pwned</p>')</script>")

pytestmark = pytest.mark.e2e


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists():
        require(f"chromium is not installed at {CHROMIUM}", "To run the browser tests: `apt-get install "
                "chromium` (Debian; `.ci/run` does it), or set CHROMIUM to a Chromium binary")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prefill(url: str) -> int:
    """Incidents as the process leaves them: one live with everything, resolved ones, a drill."""
    db = open_database(url)
    settings = load_settings(ROOT / "plugins" / "opg_incident" / "settings.yml")
    clock = [dt.datetime(2025, 6, 3, 13, 0)]  # naive UTC: 14:00 BST
    svc = IncidentService(lambda: settings, admins={"@admin"}, clock=lambda: clock[0])

    # Resolved incidents over the last months, for /stats (relative to today).
    today = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, hour=9, minute=0, second=0, microsecond=0)
    for months_ago, sev, hours in ((5, "critical", 3), (4, "major", 7), (4, "trivial", 1), (2, "critical", 2),
                                   (1, "major", 5), (0, "trivial", 0.5)):
        clock[0] = today - dt.timedelta(days=30 * months_ago)
        n = svc.declare(f"Past {sev} incident", "U0PAST", severity=sev, lead="U0LEAD").incident.number
        clock[0] += dt.timedelta(hours=hours)
        svc.close(n, "U0LEAD")
    clock[0] = today - dt.timedelta(days=20)
    svc.declare("Quarterly drill", "U0PAST", drill=True, severity="critical")

    # The live incident, on fixed dates.
    clock[0] = dt.datetime(2025, 6, 3, 13, 0)
    n = svc.declare("Sirius login is down", "U01REPORT", summary=ATTACK + " Users cannot sign in.",
                    impact="Case workers cannot reach cases", severity="critical", lead="U02LEAD").incident.number
    clock[0] += dt.timedelta(minutes=4)
    svc.assign_role(n, "scribe", "U03SCRIBE", "U02LEAD")
    svc.attach_channel(n, "C0INC", "inc-sirius-login-is-down", "U02LEAD")
    svc.set_headline(n, "C0HEAD", "1748955600.000100")
    svc.record_pin("C0INC", "1748956050.000100", "U03SCRIBE", "DB failover started <@U02LEAD>", "U03SCRIBE",
                   permalink="https://opg.slack.com/archives/C0INC/p1748956050000100")
    clock[0] = dt.datetime(2025, 6, 4, 8, 30)  # the next day
    svc.log(n, "action", "Add an alert on login failures", "U02LEAD")
    db.close()
    return n


@pytest.fixture(scope="module")
def bot(tmp_path_factory):
    """The real bot, on the Text backend, serving the living document on a free port."""
    _need_chromium()  # before starting the bot
    errbot = Path(sys.executable).with_name("errbot")
    if not (errbot.exists() or shutil.which("errbot")):
        require(f"the errbot command is not installed (not beside {sys.executable} nor on PATH)",
                "To run the browser tests: `pip install -r requirements-test.txt` in this environment")
    tmp = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{tmp / 'incidents.sqlite'}"
    number = _prefill(url)
    port = _free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SLACK_") and k not in ("INCIDENT_WEB_TOKEN", "INCIDENT_WEB_TRUSTED_HEADER")}
    env.update(BOT_DATA_DIR=str(tmp / "data"), INCIDENT_DATABASE_URL=url, INCIDENT_WEB_PORT=str(port),
               INCIDENT_WEB_HOST="127.0.0.1", INCIDENT_PUBLIC_URL=f"http://127.0.0.1:{port}",
               BOT_LOG_FILE=str(tmp / "errbot.log"))
    out = open(tmp / "stdout.txt", "wb")
    process = subprocess.Popen([str(errbot) if errbot.exists() else shutil.which("errbot"), "-c", "config.py"],
                               cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"errbot exited ({process.returncode}):\n{(tmp / 'stdout.txt').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(base + "/incidents", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the living document did not come up:\n{(tmp / 'errbot.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield base, number
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        out.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    _need_chromium()
    from chromium_cdp import Chromium

    tmp = tmp_path_factory.mktemp("chromium")
    chromium = Chromium(CHROMIUM, tmp / "profile", log_path=tmp / "chromium.log")
    yield chromium
    chromium.close()


def test_a_person_reads_the_index_and_the_living_document(bot, browser):
    base, number = bot
    browser.goto(base + "/incidents")
    index_text = browser.js("document.body.innerText")
    assert "Sirius login is down" in index_text and "Quarterly drill" in index_text
    assert "3 Jun 2025, 14:00 BST" in index_text
    browser.screenshot(ARTIFACTS / "index.png")

    browser.click(f'a[href="/incidents/{number}"]')  # from the index, as a person would
    assert browser.js("location.pathname") == f"/incidents/{number}"
    text = browser.js("document.body.innerText")
    # The header and its tags
    assert browser.js("document.querySelector('h1').innerText") == "Sirius login is down"
    assert "Live" in browser.js("document.querySelector('.tags').innerText")
    # The timeline: every entry with date, time and zone; a pin on one day, the action on the next
    times = browser.js("[...document.querySelectorAll('#timeline time')].map(t => t.innerText)")
    assert times and all(t.endswith(" BST") and " 2025, " in t for t in times), times
    assert "3 Jun 2025, 14:07 BST" in times and "4 Jun 2025, 09:30 BST" in times
    assert "DB failover started @U02LEAD" in text and "View message in Slack" in text
    # The roles, with holders
    roles = browser.js("[...document.querySelectorAll('#roles tbody tr')].map(r => r.innerText.split('\\t'))")
    held = {cells[0].strip(): cells[1].strip() for cells in roles}
    assert held["Incident Lead"] == "U02LEAD" and held["Incident Scribe"] == "U03SCRIBE"
    assert held["Reporter"] == "U01REPORT" and held["Communications Lead"] == "Nobody"
    # The summary holding <script>: shown as text, never run
    summary = browser.js("document.getElementById('summary').innerText")
    assert summary.startswith("<script>document.title='pwned';") and "Users cannot sign in." in summary
    assert browser.js("document.querySelectorAll('#summary *').length") == 0
    assert browser.js("document.getElementById('pwned')") is None
    assert browser.js("document.title") == "Incident 1: Sirius login is down – OPG incidents".replace(
        "Incident 1", f"Incident {number}")
    assert browser.js("document.scripts.length") == 0
    # Styled by the local stylesheet (no external assets)
    assert browser.js("getComputedStyle(document.querySelector('.header')).backgroundColor") == "rgb(11, 12, 12)"
    assert browser.js("[...document.querySelectorAll('link,img,script')].every("
                      "e => !(e.href || e.src) || (e.href || e.src).startsWith(location.origin))")
    browser.screenshot(ARTIFACTS / "incident.png")

    # Readable on a phone: nothing wider than the screen
    browser.viewport(390, 844, mobile=True)
    browser.goto(base + f"/incidents/{number}")
    assert browser.js("document.documentElement.scrollWidth <= window.innerWidth + 1")
    browser.screenshot(ARTIFACTS / "incident-phone.png")
    browser.goto(base + "/incidents")
    assert browser.js("document.documentElement.scrollWidth <= window.innerWidth + 1")
    browser.viewport(1280, 900)


def test_stats_draw_charts_without_drills(bot, browser):
    base, _ = bot
    browser.goto(base + "/stats")
    assert browser.js("document.querySelectorAll('svg.chart__svg').length") == 2
    bars = browser.js("[...document.querySelectorAll('svg rect title')].map(t => t.textContent)")
    assert any("Critical" in b for b in bars) and any("median" in b for b in bars), bars
    summary = browser.js("document.getElementById('stats-summary').innerText")
    from opg_incident_web.charts import month_starts

    first = month_starts(dt.datetime.now(dt.timezone.utc), load_settings().zone, 12)[0]
    declared = 6 + (dt.datetime(2025, 6, 3, 13, 0, tzinfo=dt.timezone.utc) >= first)  # + the live one if recent
    assert f"{declared} incidents declared, 6 resolved" in summary, summary  # the drill left out
    width = browser.js("document.querySelector('svg.chart__svg').getBoundingClientRect().width")
    assert width > 300
    browser.screenshot(ARTIFACTS / "stats.png")
