"""Security of the HTTP transport (issue 6, R5), against the real `errbot -c config.py` process in HTTP
mode: 1,200 requests that are forged (a made-up signature, or a real one over another body), unsigned,
signed with the wrong secret, stale or from the future (more than 5 minutes off), or with a malformed
timestamp or signature, spread over /slack/events, /slack/commands and /slack/interactive. Every one is
refused with 403 and an empty body and changes nothing (database and fake Slack); correctly signed
requests around them are accepted. Tokens and the signing secret never reach the bot's log.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import json
import random
import time
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from fake_slack import FakeSlack
from conftest import failed
from opg_incident_slack import blocks
from slack_bot import ALICE, SlackBot, seed
import reliability_kit as kit
from reliability_kit import report

pytestmark = pytest.mark.e2e
TABLES = ("incident", "timeline_entry", "inbox_entry", "outbox_item", "role_assignment")
KINDS = ("forged", "signed_other_body", "unsigned", "no_timestamp", "wrong_secret", "stale", "future",
         "bad_timestamp", "wrong_version")


@pytest.fixture
def http_bot(request, tmp_path):
    with FakeSlack("http") as fake:
        channels = seed(fake)
        with SlackBot(fake, tmp_path) as bot:
            yield fake, bot, channels
            if failed(request):
                print(bot.log_tail(120))


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()


def bodies(fake, channels, n: int) -> dict:
    """What each endpoint would be sent: a command by DM, /opg-incident, a declare modal submitted."""
    dm = fake.dm_channel(ALICE)
    event = {"type": "event_callback", "event_id": f"EvFORGED{n:05d}", "event_time": int(time.time()),
             "team_id": "T0FAKE0001", "api_app_id": "A0FAKEAPP1",
             "event": {"type": "message", "channel": dm, "channel_type": "im", "user": ALICE,
                       "text": f"incident declare Forged {n}", "ts": f"{time.time():.6f}"}}
    command = {"command": "/opg-incident", "text": f"Forged {n}", "user_id": ALICE, "user_name": "alice",
               "channel_id": channels["general"], "team_id": "T0FAKE0001", "trigger_id": f"forged.{n}"}
    view = {"type": "view_submission", "user": {"id": ALICE}, "trigger_id": f"forged-view.{n}",
            "view": {"callback_id": blocks.DECLARE_VIEW, "private_metadata": "{}",
                     "state": {"values": {"title": {"value": {"type": "plain_text_input", "value": f"Forged {n}"}}}}}}
    return {"/slack/events": ("application/json", json.dumps(event).encode()),
            "/slack/commands": ("application/x-www-form-urlencoded", urlencode(command).encode()),
            "/slack/interactive": ("application/x-www-form-urlencoded",
                                   urlencode({"payload": json.dumps(view)}).encode())}


def headers_for(kind: str, secret: str, body: bytes, rng: random.Random) -> dict:
    now = int(time.time())
    ts = str(now)
    if kind == "forged":
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + "%064x" % rng.getrandbits(256)}
    if kind == "signed_other_body":  # a real signature, replayed over a changed body
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(secret, ts, body + b" ")}
    if kind == "unsigned":
        return {"X-Slack-Request-Timestamp": ts}
    if kind == "no_timestamp":
        return {"X-Slack-Signature": sign(secret, ts, body)}
    if kind == "wrong_secret":
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign("not-" + secret, ts, body)}
    if kind in ("stale", "future"):
        # Over Slack's 5 minutes when sent: the requests are made first and sent over a few seconds, so a
        # stale one only gets staler, but one from 301 s ahead would be 299 s ahead two seconds later (valid).
        off = -rng.randint(301, 86_400) if kind == "stale" else rng.randint(360, 86_400)
        ts = str(now + off)
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(secret, ts, body)}
    if kind == "bad_timestamp":
        ts = rng.choice(["soon", "", "1e9", str(now) + ".5", "-1"])
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(secret, ts, body)}
    if kind == "wrong_version":
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v1=" + sign(secret, ts, body)[3:]}
    raise ValueError(kind)


def post(url: str, content_type: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": content_type, **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def state(fake, bot) -> dict:
    counts = {t: kit.query(bot.database_url, f"SELECT COUNT(*) FROM {t}")[0][0] for t in TABLES}
    counts["web_api_calls"] = len([c for c in fake.calls if c.method not in ("auth.test",)])
    counts["views"] = len(fake.workspace.views)
    return counts


def test_r5_forged_unsigned_and_stale_requests_are_refused(http_bot):
    fake, bot, channels = http_bot
    # The hand-signed control requests below carry a made-up trigger_id and a message Slack never stored
    fake.expect_error("invalid_trigger_id", "views.open")
    fake.expect_error("message_not_found", "reactions.add")
    rng = kit.rng("R5")
    secret = fake.signing_secret

    # Control, before: signed by the fake Slack, accepted and acted on.
    assert fake.slash_command("/opg-incident", "Control", ALICE, channels["general"]).status == 200
    view_id = fake.wait_for(lambda: next(iter(fake.views), None))
    assert fake.submit_view(view_id, {"title": "Control incident", "severity": "major"}, user=ALICE).ok
    fake.wait_for(lambda: kit.query(bot.database_url, "SELECT COUNT(*) FROM incident")[0][0] == 1)
    kit.settle(fake, bot.database_url, timeout=30, quiet=1.0)
    before = state(fake, bot)

    attempts = []
    for n in range(1200):
        path = rng.choice(("/slack/events", "/slack/commands", "/slack/interactive"))
        content_type, body = bodies(fake, channels, n)[path]
        kind = KINDS[n % len(KINDS)]
        attempts.append((path, kind, content_type, body, headers_for(kind, secret, body, rng)))
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda a: post(bot.url + a[0], a[2], a[3], a[4]), attempts))
    elapsed = time.monotonic() - started
    time.sleep(1.0)  # anything queued by mistake would show up now
    after = state(fake, bot)

    refused = [a for a, (status, body) in zip(attempts, answers) if status == 403 and body == b""]
    by_kind = {k: sum(1 for a in refused if a[1] == k) for k in KINDS}
    by_path = {p: sum(1 for a in refused if a[0] == p) for p in ("/slack/events", "/slack/commands",
                                                                 "/slack/interactive")}

    # Control, after: the same requests signed right go through (ours, then the fake Slack's own).
    ts = str(int(time.time()))
    ours = {path: post(bot.url + path, ct, body, {"X-Slack-Request-Timestamp": ts,
                                                  "X-Slack-Signature": sign(secret, ts, body)})[0]
            for path, (ct, body) in bodies(fake, channels, 99_999).items()}
    control = fake.slash_command("/opg-incident", "Control again", ALICE, channels["general"])
    fake.post_message(fake.dm_channel(ALICE), ALICE, "incident declare Control by DM")
    fake.wait_for(lambda: kit.query(bot.database_url, "SELECT COUNT(*) FROM incident")[0][0] == 4)
    wrong = {(status, body[:40]) for status, body in answers if (status, body) != (403, b"")}
    report("R5", requests=len(attempts), refused_403_empty=len(refused),
           percent=f"{100 * len(refused) / len(attempts):.1f}", by_kind=by_kind, by_endpoint=by_path,
           other_answers=sorted(wrong), db_and_slack_unchanged=before == after,
           control_accepted=sum(v == 200 for v in ours.values()) + 3,
           requests_per_s=f"{len(attempts) / elapsed:.0f}")
    assert len(refused) == len(attempts), sorted(wrong)
    assert before == after, (before, after)
    assert control.status == 200 and ours == dict.fromkeys(ours, 200), ours
    assert sorted(t for t, in kit.query(bot.database_url, "SELECT title FROM incident")) == [
        "Control by DM", "Control incident", "Forged 99999", "Forged 99999"]  # by DM, and by the modal


@pytest.mark.parametrize("mode", ["http", "socket"])
def test_tokens_and_signing_secret_never_reach_the_log(tmp_path, mode):
    """The bot's log (at DEBUG) after a start, a declared incident, a Slack error and a refused request."""
    with FakeSlack(mode) as fake:
        seed(fake)
        with SlackBot(fake, tmp_path) as bot:
            fake.fail_next("chat.postMessage", error="invalid_auth")
            fake.post_message(fake.dm_channel(ALICE), ALICE, "incident declare Secret keeping")
            fake.wait_for(lambda: kit.query(bot.database_url, "SELECT COUNT(*) FROM incident")[0][0] == 1)
            if mode == "http":
                assert post(bot.url + "/slack/events", "application/json", b"{}", {})[0] == 403
            kit.settle(fake, bot.database_url, timeout=30, quiet=1.0)
        log = bot.log_file.read_text(errors="replace")
    secrets = {"bot token": fake.bot_token, "app token": fake.app_token, "signing secret": fake.signing_secret}
    report(f"R5-log-{mode}", log_bytes=len(log), secrets_found=[k for k, v in secrets.items() if v in log])
    assert len(log) > 10_000  # DEBUG: a log worth searching
    for what, value in secrets.items():
        assert value not in log, f"the {what} is in the log"
