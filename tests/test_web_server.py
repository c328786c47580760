"""The bot's own web server (issue 12, part 1), against the real `errbot -c config.py` process in Slack's
HTTP mode: no errbot `/echo`, a body over 1 MiB refused before it is read, slow connections holding no
thread and closed when idle, no token or query string in the log, odd input answered 4xx (never 500).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import select
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from fake_slack import FakeSlack
from slack_bot import SlackBot, seed

pytestmark = pytest.mark.e2e
TOKEN = "web-token-Zq81xPw"


@pytest.fixture(scope="module")
def http_bot(tmp_path_factory):
    with FakeSlack("http") as fake:
        seed(fake)
        with SlackBot(fake, tmp_path_factory.mktemp("web"), env={"INCIDENT_WEB_TOKEN": TOKEN}) as bot:
            yield fake, bot


def get(bot, path: str, **headers) -> tuple[int, bytes]:
    request = urllib.request.Request(bot.url + path, headers={"Authorization": f"Bearer {TOKEN}", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def post(bot, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(bot.url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def signed(fake, body: bytes) -> dict:
    ts = str(int(time.time()))
    signature = hmac.new(fake.signing_secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + signature,
            "Content-Type": "application/json"}


def threads_of(bot) -> int:
    status = Path(f"/proc/{bot.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def test_errbots_echo_is_not_served(http_bot):
    """errbot's Webserver plugin reflected a POSTed body as HTML on the living document's origin: a page
    elsewhere could auto-submit a form to it and its script read /incidents/N.json with the reader's cookie."""
    _fake, bot = http_bot
    script = b"<script>fetch('/incidents/1.json')</script>"
    for path in ("/echo", "/echo/"):
        status, body = post(bot, path, script, {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 404 and script not in body
    assert get(bot, "/echo")[0] == 404


def test_a_body_over_1_mib_is_refused_before_it_is_read(http_bot):
    _fake, bot = http_bot
    with socket.create_connection(("127.0.0.1", bot.port), timeout=5) as sock:
        sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 2097152\r\n\r\n")  # headers only: the 2 MiB body is never sent
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_slow_connections_hold_no_thread_and_idle_ones_are_closed(http_bot):
    _fake, bot = http_bot
    before = threads_of(bot)
    slow = []
    try:
        for _ in range(200):  # each sends half a request line and then nothing
            sock = socket.create_connection(("127.0.0.1", bot.port), timeout=5)
            sock.sendall(b"GET /incidents HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(sock)
        time.sleep(1.0)
        during = threads_of(bot)
        assert during <= before + 2, f"{during} threads with 200 slow connections (before: {before})"
        # The server closes connections idle for longer than its timeout (10 s): the first ones are gone.
        slow[0].settimeout(30)
        started = time.monotonic()
        closed = slow[0].recv(100)  # b"" once the server has closed it
        assert closed == b"" or closed.startswith(b"HTTP/1.1 408"), closed
        assert time.monotonic() - started < 25
    finally:
        for sock in slow:
            sock.close()
    # and then it serves people again
    deadline = time.monotonic() + 20
    while get(bot, "/incidents")[0] != 200:
        assert time.monotonic() < deadline, "the web server did not recover from slow connections"
        time.sleep(0.5)


def test_a_slow_drip_is_cut_off_and_everyone_else_is_still_served(http_bot):
    """waitress's timeout counts only silence: 110 connections each sending a byte every 3 s stayed open past
    15 s, held all its connections, and a normal GET timed out. Now a request must arrive whole soon after its
    first byte (REQUEST_SECONDS, less while the server is nearly full), or its connection is closed."""
    _fake, bot = http_bot
    drips, closed, stop = [], set(), threading.Event()

    def gone(i: int) -> bool:
        """Closed by the server (read as end of file or a reset)."""
        if i not in closed and select.select([drips[i]], [], [], 0)[0]:
            try:
                drips[i].recv(100)  # b"" or whatever the server said before it closed
            except OSError:
                pass
            closed.add(i)
        return i in closed

    def drip():
        while not stop.wait(3):
            for i, sock in enumerate(drips):
                if i not in closed:
                    try:
                        sock.send(b"E")
                    except OSError:
                        pass
    started = time.monotonic()
    try:
        for _ in range(110):
            sock = socket.create_connection(("127.0.0.1", bot.port), timeout=5)
            sock.sendall(b"G")
            drips.append(sock)
        dripping = threading.Thread(target=drip, daemon=True)
        dripping.start()
        time.sleep(1.0)
        asked = time.monotonic()
        request = urllib.request.Request(bot.url + "/healthz")
        with urllib.request.urlopen(request, timeout=8) as response:  # timed out before: no room for it
            assert response.status == 200
        print(f"a GET during the drip answered in {time.monotonic() - asked:.1f} s")
        deadline = started + 16
        while not all(gone(i) for i in range(len(drips))):
            assert time.monotonic() < deadline, f"{len(drips) - len(closed)} of 110 dripping connections still open"
            time.sleep(0.2)
        print(f"all 110 dripping connections closed by the server after {time.monotonic() - started:.1f} s")
    finally:
        stop.set()
        for sock in drips:
            sock.close()


def test_no_token_or_query_string_reaches_the_log(http_bot):
    _fake, bot = http_bot
    secret_query = "q-secret-77Hh"
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with opener.open(f"{bot.url}/incidents?token={TOKEN}&x={secret_query}", timeout=10) as response:
        assert response.status == 200  # the token was taken (redirect, cookie) and the page served
    assert get(bot, f"/incidents?x={secret_query}")[0] == 200
    time.sleep(0.5)
    log = bot.log_file.read_text(errors="replace")  # the bot logs at DEBUG in these tests
    assert TOKEN not in log and secret_query not in log


@pytest.mark.parametrize("path", ["/incidents/99999999999999999999999", "/incidents/99999999999999999999999.json",
                                  "/incidents/99999999999999999999999/rca.md", "/incidents?page=%C2%B2",
                                  "/incidents?page=99999999999999999999999", "/stats?end=0001-01&months=60",
                                  "/stats?end=9999-12", "/stats?months=%C2%B2", "/stats?end=2026-13"])
def test_odd_input_is_a_4xx_never_a_500(http_bot, path):
    _fake, bot = http_bot
    status, _body = get(bot, path)
    assert 400 <= status < 500, (path, status)


def test_deeply_nested_json_from_slack_is_a_400(http_bot):
    fake, bot = http_bot
    body = b'{"type": "event_callback", "event": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, _ = post(bot, "/slack/events", body, signed(fake, body))
    assert status == 400
    assert get(bot, "/incidents")[0] == 200  # and the bot is still there


def test_errbots_echo_and_status_commands_are_for_admins_only(http_bot):
    """errbot's `echo` posts its text through the Markdown path, where a `<!channel>` stays live and pings a
    whole channel; `status` and `plugin` commands show internals. A member gets no answer from them."""
    from slack_bot import ADMIN, ALICE

    fake, bot = http_bot
    channel = fake.add_channel("ops-chat", members=[ALICE, ADMIN])
    for text in ("echo <!channel> wake up", "status plugins", "status", "plugin info OpgIncident"):
        fake.post_message(channel, ALICE, f"<@{fake.bot_user_id}> {text}")
    fake.post_message(channel, ADMIN, f"<@{fake.bot_user_id}> echo admin-echo-ok")
    def answered():
        texts = [m.get("text", "") for m in fake.bot_messages(channel)]
        return (sum("not allowed" in t for t in texts) == 4 and any("admin-echo-ok" in t for t in texts)) and texts

    texts = fake.wait_for(answered, timeout=20)
    assert not any("wake up" in t or "<!channel>" in t for t in texts), texts
    assert not any("Plugins" in t or "Load" in t or "OpgIncident" in t for t in texts), texts


def test_errbots_webstatus_is_not_loaded(http_bot):
    """errbot's Webserver plugin (its `/echo`, and `webstatus`, which lists every route) is not loaded: a bot
    admin's `status plugins` shows it not activated and `webstatus` answers nothing, to a member or an admin."""
    from slack_bot import ADMIN, ALICE

    fake, _bot = http_bot
    asked = [(fake.dm_channel(user), fake.post_message(fake.dm_channel(user), user, "webstatus"))
             for user in (ALICE, ADMIN)]
    fake.post_message(fake.dm_channel(ADMIN), ADMIN, "status plugins")
    listing = fake.wait_for_message(fake.dm_channel(ADMIN), lambda m: "OpgIncident" in m.get("text", ""),
                                    timeout=20)
    rows = {line.split("│")[2].strip(): line.split("│")[1].strip() for line in listing["text"].splitlines()
            if line.count("│") == 3}
    assert rows["OpgIncident"] == "*A*" and rows.get("Webserver", "*D*") == "*D*", rows  # not activated
    fake.post_message(fake.dm_channel(ADMIN), ADMIN, "echo webstatus-checked")
    fake.wait_for_message(fake.dm_channel(ADMIN), lambda m: "webstatus-checked" in m.get("text", ""), timeout=20)
    time.sleep(1.0)  # an answer to `webstatus` would have come before the echo after it
    for dm, said in asked:
        answers = [m.get("text", "") for m in fake.bot_messages(dm) if float(m["ts"]) > float(said["ts"])]
        assert not [t for t in answers if "URI" in t or "/slack/" in t or "endpoint" in t], answers


def test_health_readiness_and_metrics_are_served_by_the_bot(http_bot):
    """The ops endpoints on the bot's own server: health and readiness open (no incident data), metrics
    guarded like the living document and counting the acks the backend timed."""
    fake, bot = http_bot
    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(bot.url + path, timeout=10) as response:
            assert response.status == 200 and json.loads(response.read())["status"] in ("alive", "ok", "ready")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(bot.url + "/metrics", timeout=10)
    assert refused.value.code == 401
    status, body = get(bot, "/metrics")
    assert status == 200
    acks = [line for line in body.decode().splitlines()
            if line.startswith('opg_incident_ack_seconds_count{kind="events_api"}')]
    assert acks and float(acks[0].split()[-1]) >= 1, acks  # the nested-JSON and other events were acked
    looked_up = [line for line in body.decode().splitlines()
                 if line.startswith('opg_incident_slack_api_calls_total{method="users.info"}')]
    assert looked_up and float(looked_up[0].split()[-1]) >= 1, looked_up  # the backend's own look-ups count
