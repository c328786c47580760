"""What the Slack benchmarks share: the fake Slack (tests/fake_slack) and the real `errbot -c config.py`
with the OPGSlack backend (tests/slack_bot.py), an incident to work in, counts read from the SQLite file,
and the envelopes a burst of people's actions delivers.

The bot runs with production settings except where a test needs otherwise: BOT_LOG_LEVEL=INFO and
INCIDENT_POLL_SECONDS=60 (config.py's defaults; the end-to-end tests use DEBUG and 1 s).
"""
from __future__ import annotations

import collections
import json
import re
import sqlite3
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import _common

TESTS = _common.ROOT / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fake_slack import FakeSlack  # noqa: E402
from slack_bot import ADMIN, ALICE, BOB, CAROL, ERRBOT, ONCALL, PEOPLE, SlackBot, seed  # noqa: E402,F401

from opg_incident_slack import blocks  # noqa: E402,F401

BENCH_ENV = {"BOT_LOG_LEVEL": "INFO", "INCIDENT_POLL_SECONDS": "60"}


@contextmanager
def slack_and_bot(mode: str = "socket", env: dict | None = None):
    """(fake, bot, channels): the fake Slack seeded with people and channels, errbot connected to it."""
    with tempfile.TemporaryDirectory(prefix="bench-slack-") as tmp, FakeSlack(mode) as fake:
        channels = seed(fake)
        bot = SlackBot(fake, Path(tmp), env={**BENCH_ENV, **(env or {})})
        bot.start(timeout=60)
        try:
            yield fake, bot, channels
        finally:
            bot.stop()


def all_text(message: dict) -> str:
    return json.dumps(message.get("blocks", [])) + message.get("text", "")


def mention(fake, channel: str, user: str, text: str) -> dict:
    return fake.post_message(channel, user, f"<@{fake.bot_user_id}> {text}")


def headline(fake, channels: dict, number: int) -> dict:
    """The headline message of incident `number` in the incidents channel (as it is now)."""
    marker = re.compile(rf"/incidents/{number}(?!\d)")

    def find():
        return next((m for m in fake.bot_messages(channels["opg-incidents"])
                     if m.get("thread_ts") in (None, m["ts"]) and m.get("blocks") and marker.search(all_text(m))),
                    None)
    return fake.wait_for(find, timeout=15, message=f"no headline for incident {number}")


def declare(fake, channels: dict, title: str, user: str = ALICE, **values) -> list:
    """/opg-incident and the modal, as a person does it; returns the acks (slash command, submission)."""
    before = set(fake.views)
    slash = fake.slash_command("/opg-incident", title, user, channels["general"])
    view_id = fake.wait_for(lambda: next((v for v, d in fake.views.items()
                                          if v not in before and d.get("callback_id") == blocks.DECLARE_VIEW), None))
    submitted = fake.submit_view(view_id, {"severity": "major", "lead": user, **values}, user=user)
    return [slash, submitted]


def open_incident(fake, bot, channels: dict, title: str, number: int) -> dict:
    """Declared by the modal, its comms channel created by the button, people in it.
    Returns {"number", "channel", "headline": (channel, ts)}."""
    declare(fake, channels, title)
    fake.wait_for(lambda: _status(bot, number) == "open", timeout=15)
    head = headline(fake, channels, number)
    fake.click_button(head, blocks.CREATE_CHANNEL, ALICE)
    prefix = f"inc-{number}-"
    name = fake.wait_for(lambda: next((n for n in fake.channels.names() if n.startswith(prefix)), None), timeout=15)
    channel = fake.channel(name).id
    fake.wait_for(lambda: ALICE in fake.members(channel))
    for person in (BOB, CAROL):
        if person not in fake.members(channel):
            fake.join(channel, person)
    fake.wait_for(lambda: f"<#{channel}>" in all_text(headline(fake, channels, number)), timeout=15)
    return {"number": number, "channel": channel, "headline": (head["channel"], head["ts"])}


def _status(bot, number: int):
    try:
        return bot.incident(number)["status"]
    except OSError:
        return None


def wait_quiet(fake, quiet: float = 1.0, timeout: float = 60.0) -> float:
    """Until the bot has made no Web API call for `quiet` seconds; returns the time of its last call."""
    deadline = time.monotonic() + timeout
    last_count, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = len(fake.calls_log.all())
        now = time.monotonic()
        if count != last_count:
            last_count, last_change = count, now
        elif now - last_change >= quiet:
            break
        time.sleep(0.05)
    calls = fake.calls
    return calls[-1].time if calls else time.time()


class Database:
    """Read-only counts from the bot's SQLite file while it writes (WAL: readers do not block it)."""

    def __init__(self, bot):
        path = bot.database_url.removeprefix("sqlite:///")
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5, check_same_thread=False)

    def scalar(self, sql: str, *params):
        return self.conn.execute(sql, params).fetchone()[0]

    def pins(self, number: int) -> int:
        return self.scalar("SELECT COUNT(*) FROM timeline_entry t JOIN incident i ON t.incident_id = i.id "
                           "WHERE i.number = ? AND t.kind = 'pin' AND t.removed_at IS NULL", number)

    def processed_inputs(self) -> int:
        return self.scalar("SELECT COUNT(*) FROM inbox_entry WHERE processed_at IS NOT NULL")

    def close(self):
        self.conn.close()


class Sampler(threading.Thread):
    """Polls `count()` every `interval` s and keeps (seconds since start, value) until stopped, or until
    the value reaches `until`."""

    def __init__(self, count, interval: float = 0.01, until: int | None = None):
        super().__init__(daemon=True)
        self.count, self.interval, self.until = count, interval, until
        self.series: list[tuple[float, int]] = []
        self.t0 = time.perf_counter()
        self.reached = threading.Event()
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            value = self.count()
            self.series.append((time.perf_counter() - self.t0, value))
            if self.until is not None and value >= self.until:
                self.reached.set()
                return
            time.sleep(self.interval)

    def stop(self):
        self._halt.set()
        self.join(5)

    def first_at(self, value: int) -> float | None:
        return next((t for t, v in self.series if v >= value), None)


class Envelopes:
    """Captures the envelope id of every event the fake delivers while people act, so that a burst can
    keep at most `window` of them unacknowledged (the bot's pace, not Slack's 3 s redelivery, sets the
    rate) and their acks can be read afterwards."""

    def __init__(self, fake):
        self.fake = fake
        self.ids: list[str] = []
        self.outstanding: collections.deque = collections.deque()
        self._emit = fake.emit
        fake.emit = self._capture  # PersonActions call self.emit

    def _capture(self, event, channel=None):
        envelope_id = self._emit(event, channel)
        if envelope_id:
            self.ids.append(envelope_id)
            self.outstanding.append(envelope_id)
        return envelope_id

    def throttle(self, window: int, timeout: float = 30.0) -> None:
        while len(self.outstanding) > window:
            self.fake.wait_ack(self.outstanding.popleft(), timeout)

    def drain(self, timeout: float = 60.0) -> None:
        self.throttle(0, timeout)

    def restore(self) -> None:
        self.fake.emit = self._emit

    def acks(self, ids=None) -> list:
        out = []
        for envelope_id in self.ids if ids is None else ids:
            delivery = self.fake.delivery(envelope_id)
            if delivery.acks:
                out.append(delivery.acks[0])
        return out

    def redeliveries(self, ids=None) -> int:
        return sum(max(0, len(self.fake.delivery(e).attempts) - 1) for e in (self.ids if ids is None else ids))


def add_messages(fake, channel: str, user: str, count: int, text: str = "Rolled back release") -> list[str]:
    """Messages already in the channel (stored without delivering events, as if sent before the run)."""
    from fake_slack import events
    ws = fake.workspace
    with ws.lock:
        conv = ws.channel(channel)
        return [ws.add_message(conv, events.person_message(ws, user, f"{text} {i}"))["ts"] for i in range(count)]


def floor_envelope(fake) -> str:
    """An envelope the bot acknowledges without any work: an Events API body without an event (both the
    Socket Mode handler and the HTTP view answer it at once). Its ack latency is the transport's floor."""
    ws = fake.workspace
    return fake.send_envelope("events_api", {"token": fake.verification_token, "team_id": ws.team["id"],
                                             "api_app_id": ws.app_id, "type": "event_callback"}, False)


def log_errors(bot) -> list[str]:
    try:
        lines = bot.log_file.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if " ERROR " in line or "Traceback" in line]


def loadavg() -> list[float]:
    """The machine's 1/5/15-minute load averages: other work on it moves the tails of these figures."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (from /proc/<pid>/stat)."""
    import os
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the reference: stock errbot with its own SlackV3 backend, pointed at the fake ---------------------

BARE_SLACK_BACKEND = """\
import slackv3.slackv3 as _slackv3
from slack_sdk.web import WebClient as _WebClient


class BareSlackBackend(_slackv3.SlackBackend):
    \"\"\"errbot's own SlackV3 backend, only pointed at BOT_IDENTITY["base_url"] (the fake Slack).\"\"\"

    def __init__(self, config):
        super().__init__(config)
        base_url = config.BOT_IDENTITY["base_url"]

        class WebClient(_WebClient):
            def __init__(self, *args, **kwargs):
                kwargs.setdefault("base_url", base_url)
                super().__init__(*args, **kwargs)

        _slackv3.WebClient = WebClient
"""
BARE_SLACK_PLUG = "[Core]\nName = BareSlack\nModule = bare_slack\n\n[Documentation]\nDescription = SlackV3 at a base URL.\n"
BARE_SLACK_CONFIG = """\
import logging
BACKEND = "BareSlack"
BOT_EXTRA_BACKEND_DIR = {backends!r}
BOT_IDENTITY = {{"token": {token!r}, "app_token": {app_token!r}, "base_url": {base_url!r}}}
BOT_DATA_DIR = {data!r}
BOT_EXTRA_PLUGIN_DIR = None
BOT_LOG_FILE = {log!r}
BOT_LOG_LEVEL = logging.{level}
BOT_ADMINS = ("U0ADMIN01",)
BOT_PREFIX = "!"
AUTOINSTALL_DEPS = False
STORAGE = "Shelf"
CORE_PLUGINS = ("ACLs", "Health", "Plugins", "Utils", "TextCmds")
"""


def write_bare_errbot(fake, tmp: Path, level: str = "INFO") -> Path:
    """Stock errbot 6.2.1 with its own SlackV3 backend (a generated backend module that only points
    slack_sdk's client at the fake), the core plugins and no opg-incident: its config file in tmp."""
    backends = tmp / "backends" / "bare_slack"
    backends.mkdir(parents=True, exist_ok=True)
    (backends / "bare_slack.py").write_text(BARE_SLACK_BACKEND, encoding="utf-8")
    (backends / "bare_slack.plug").write_text(BARE_SLACK_PLUG, encoding="utf-8")
    data = tmp / "bare-data"
    data.mkdir(parents=True, exist_ok=True)
    config = tmp / "bare_slack_config.py"
    config.write_text(BARE_SLACK_CONFIG.format(
        backends=str(backends.parent), token=fake.bot_token, app_token=fake.app_token, base_url=fake.api_url,
        data=str(data), log=str(data / "errbot.log"), level=level), encoding="utf-8")
    return config


@contextmanager
def bare_errbot(fake, level: str = "INFO", timeout: float = 60.0):
    """Stock errbot + SlackV3 connected to `fake` (Socket Mode); yields the process."""
    import subprocess
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as tmp:
        config = write_bare_errbot(fake, Path(tmp), level)
        proc = subprocess.Popen([str(ERRBOT), "-c", str(config)], cwd=_common.ROOT, env=fake.bot_env(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            fake.wait_until_connected(timeout=timeout)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(2)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
