"""End to end, issue 15 on the Text console: the real `errbot -c config.py` process (no Slack) publishes
the analysis to the Confluence stand-in on loopback, through its own outbox worker. Driven line by line
(the job's answers come after the command's), then the page, the record and the log are checked."""
from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import urllib.request

import pytest
import yaml

from fake_confluence import FakeConfluence
from fake_confluence.server import TOKEN
from slack_bot import ERRBOT, ROOT, free_port

pytestmark = pytest.mark.e2e
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
TITLE = "Incident 1: Payments are failing — root cause analysis"


class Console:
    """errbot on the Text backend with a pipe for a keyboard."""

    def __init__(self, tmp_path, env: dict):
        self.port = free_port()
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "INCIDENT_", "BOT_", "CONFLUENCE_"))}
        base.update(BOT_DATA_DIR=str(tmp_path / "data"), INCIDENT_WEB_PORT=str(self.port), PYTHONUNBUFFERED="1",
                    BOT_LOG_LEVEL="DEBUG", BOT_LOG_FILE=str(tmp_path / "errbot.log"), INCIDENT_POLL_SECONDS="1",
                    **env)
        self.log_file = tmp_path / "errbot.log"
        self.out = ""
        self.proc = subprocess.Popen([str(ERRBOT), "-c", str(ROOT / "config.py")], cwd=ROOT, env=base, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(">>> ", since=0, timeout=30)

    def _read(self):
        for chunk in iter(lambda: self.proc.stdout.read(1), ""):
            self.out += chunk

    def say(self, line: str, expect: str, timeout: float = 15.0) -> str:
        """Type a line; the output after it once `expect` shows."""
        since = len(self.out)
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.wait_for(expect, since, timeout)

    def wait_for(self, needle: str, since: int, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = ANSI.sub("", self.out[since:])
            if needle in text:
                return text
            time.sleep(0.05)
        raise AssertionError(f"no {needle!r} on the console; it said:\n{ANSI.sub('', self.out[since:])[-3000:]}")

    def json(self, number: int) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/incidents/{number}.json", timeout=5) as response:
            return json.loads(response.read())

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def wiki():
    with FakeConfluence() as fake:
        yield fake


def settings_with_parent(tmp_path, parent: str):
    data = yaml.safe_load((ROOT / "plugins" / "opg_incident" / "settings.yml").read_text(encoding="utf-8"))
    data["confluence"]["parent"] = parent
    path = tmp_path / "settings.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return str(path)


def test_publish_again_refuse_force_and_each_failure_on_the_console(tmp_path, wiki):
    parent = wiki.add_page("OPG", "Incident reviews")
    console = Console(tmp_path, {**wiki.bot_env(), "INCIDENT_SETTINGS": settings_with_parent(tmp_path, parent.id)})
    try:
        console.say("!incident declare Payments are failing", "Incident 1 declared")
        console.say("!lead 1 me", "is now Incident Lead")
        console.say("!scribe 1 @sam", "is now Incident Scribe")
        console.say("!summary 1 Card payments fail <script>alert(1)</script>", "the summary is now")
        console.say("!rca 1 publish", "Incident 1 is still open: publish its analysis once it is closed.")
        console.say("!close 1", "before closing, this is missing: an impact")
        console.say("!close 1 anyway", "closed after")

        # publish: a page under the parent, version 1, and the bot says where
        out = console.say("!rca 1 publish", "is in Confluence (version 1)")
        assert "Publishing the root-cause analysis of incident 1 to Confluence (space OPG)" in out
        [page] = wiki.titled(TITLE)
        assert (page.parent, page.version, page.labels) == (parent.id, 1, ["incident", "rca"])
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.body and "<script>" not in page.body
        url = f"{wiki.url}/spaces/OPG/pages/{page.id}/"
        assert url in out
        assert console.json(1)["rca_url"].startswith(url)
        assert console.say("!rca 1", "Published:").count(url) == 1

        # publish again after a change: the same page, version 2, the new content
        console.say("!summary 1 An expired certificate stopped card payments", "the summary is now")
        console.say("!rca 1 publish", "is in Confluence (version 2)")
        assert wiki.titled(TITLE) == [page] and len(wiki.pages) == 2 and page.version == 2
        assert "An expired certificate" in page.body

        # changed in Confluence meanwhile: refused, then --force
        wiki.edit(page.id, "<p>Our analysis</p>", by="Alice Editor")
        out = console.say("!rca 1 publish", "was not published")
        assert "changed in Confluence since it was published" in out and "by Alice Editor" in out
        assert page.body == "<p>Our analysis</p>" and page.version == 3
        console.say("!rca 1 publish --force", "is in Confluence (version 4)")
        assert "An expired certificate" in page.body

        # not the lead, the scribe or an admin
        console.say("!asuser bob", "You are now")
        console.say("!rca 1 publish", "rca of incident 1 is for the incident's role holders, its reporter and bot admins")
        console.say("!asadmin", "You are now an admin")

        # Confluence rate-limits: told, and the update goes through after Retry-After
        console.say("!note 1 Timeline note for version 5", "note logged")
        wiki.fail("PUT", "/content/", 429, retry_after="1")
        out = console.say("!rca 1 publish", "is in Confluence (version 5)")
        assert "Confluence asks us to slow down (429); trying again in 1 s." in out
        puts = wiki.calls("PUT")[-2:]
        assert [p["status"] for p in puts] == [429, 200] and puts[1]["at"] - puts[0]["at"] >= 1.0

        # unreachable: told, and a retry finishes the job once Confluence is back
        console.say("!note 1 Another note", "note logged")
        wiki.stop()
        console.say("!rca 1 publish", "cannot be reached (connection refused)")
        wiki.start()
        console.wait_for("is in Confluence (version 6)", since=0, timeout=30)

        # a wrong token, a title taken by someone else's page, a space that is gone: each in plain words
        console.say("!incident declare Second incident --report", "Report 2 declared")
        console.say("!lead 2 me", "is now Incident Lead")
        console.say("!close 2 anyway", "closed after")
        wiki.add_page("OPG", "Incident 2: Second incident — root cause analysis")
        out = console.say("!rca 2 publish", "was not published")
        assert "already exists in space OPG" in out and "opg-incident did not make it" in out
        wiki.token = "rotated"
        assert "Confluence refused the credentials (401)" in console.say("!rca 2 publish", "was not published")
        wiki.token = TOKEN
        wiki.spaces.clear()
        assert "Confluence has no space with the key OPG" in console.say("!rca 2 publish", "was not published")
        assert len(wiki.titled(TITLE)) == 1 and page.version == 6
    finally:
        console.close()
    log = console.log_file.read_text(errors="replace")
    assert "s3cret-token" not in log and "rotated" not in log  # tokens never in the log


def test_without_confluence_settings_it_says_what_to_set(tmp_path):
    console = Console(tmp_path, {})
    try:
        console.say("!incident declare Payments are failing", "Incident 1 declared")
        out = console.say("!rca 1 publish", "Confluence is not set up")
        for name in ("CONFLUENCE_URL", "CONFLUENCE_TOKEN", "CONFLUENCE_SPACE"):
            assert name in out
        assert "rca.md" in console.say("!rca 1", "root-cause analysis draft")  # the draft stays as it is
    finally:
        console.close()
