"""P5 on Slack: errbot started against a fresh fake Slack (Socket Mode), timed from start to connected, first
ack, first reply and the living document, then exercised before its peak RSS is read; ours or, as the
reference, stock errbot + SlackV3 (`bench/p5_footprint.py --slack`)."""
from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import _common


def run_slack_once(tmp: Path, bare: bool = False, timeout: float = 60.0) -> dict:
    """Start errbot against a fresh fake Slack (Socket Mode) and time:
      connected_s   start -> the websocket is open and greeted (`hello` sent)
      first_ack_s   start -> the first envelope the bot acknowledges (a mention sent every 50 ms from then on)
      reply_s       start -> the bot answers that mention (chat.postMessage): connected and working
      web_ready_s   start -> GET /incidents answers 200 (opg-incident only)
    then exercise it (ours: /opg-incident and the modal, three mention commands, four pages; bare: three
    `!echo`) and read the peak RSS (VmHWM). bare=True: errbot's own SlackV3 backend, the same core plugins
    and no opg-incident, as the reference."""
    import _slack  # the fake Slack and the bot harness, only for --slack

    tmp.mkdir(parents=True, exist_ok=True)
    with _slack.FakeSlack("socket") as fake:
        channels = _slack.seed(fake)
        channel = channels["opg-incidents"]
        env = fake.bot_env(_common.clean_env())
        port = _common.free_port()
        base = f"http://127.0.0.1:{port}"
        if bare:
            config = _slack.write_bare_errbot(fake, tmp, "WARNING")
            argv, probe_text, web_url = [str(_common.ERRBOT), "-c", str(config)], "!echo ready-marker-42", None
        else:
            env.update(BOT_DATA_DIR=str(tmp / "data"), INCIDENT_WEB_PORT=str(port), BOT_LOG_LEVEL="WARNING",
                       BOT_ADMINS=_slack.ADMIN, INCIDENT_ONCALL=_slack.ONCALL, INCIDENT_PUBLIC_URL=base)
            argv = [str(_common.ERRBOT), "-c", str(_common.ROOT / "config.py")]
            probe_text, web_url = f"<@{fake.bot_user_id}> incident list", f"{base}/incidents"
        t0_wall, t0 = time.time(), time.perf_counter()
        proc = subprocess.Popen(argv, cwd=_common.ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stderr: list[str] = []
        threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()
        connected = web_ready = reply = first_ack = None
        probes: list[str] = []
        next_probe = 0.0
        try:
            while time.perf_counter() - t0 < timeout and proc.poll() is None:
                if connected is None:
                    hello = [c.hello_at for c in fake.connections if c.hello_at]
                    if hello:
                        connected = min(hello) - t0_wall
                if connected is not None and reply is None and time.perf_counter() >= next_probe:
                    before = len(fake.log.all())
                    fake.post_message(channel, _slack.ALICE, probe_text)
                    probes += [d.envelope_id for d in fake.log.all()[before:]]
                    next_probe = time.perf_counter() + 0.05
                if first_ack is None:
                    acked = [fake.delivery(e).acks[0].time for e in probes if fake.delivery(e).acks]
                    if acked:
                        first_ack = min(acked) - t0_wall
                if reply is None:
                    posts = [c.time for c in fake.calls_of("chat.postMessage", channel=channel)]
                    if posts:
                        reply = min(posts) - t0_wall
                if web_url and web_ready is None and _common.http_status(web_url, timeout=1.0) == 200:
                    web_ready = time.perf_counter() - t0
                if reply is not None and (web_ready is not None or not web_url):
                    break
                time.sleep(0.01)
            if reply is None:
                raise RuntimeError(f"{'bare errbot' if bare else 'opg-incident'} on Slack: no answer within "
                                   f"{timeout} s\n{''.join(stderr)[-2000:]}")
            at_ready = _common.proc_status(proc.pid)
            answered, pages = _exercise_slack(fake, channels, base, bare)
            time.sleep(0.2)
            status = _common.proc_status(proc.pid)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    return {"connected_s": round(connected, 3) if connected is not None else None,
            "first_ack_s": round(first_ack, 3) if first_ack is not None else None,
            "reply_s": round(reply, 3),
            "web_ready_s": round(web_ready, 3) if web_ready is not None else None,
            "probes_sent": len(probes),
            "rss_at_ready_mb": round(at_ready.get("VmRSS", 0) / 1024, 1),
            "peak_rss_mb": round(status.get("VmHWM", 0) / 1024, 1),
            "commands_answered": answered, "pages_status": pages, "exit_code": proc.returncode}


def _exercise_slack(fake, channels: dict, base: str, bare: bool) -> tuple[bool, list[int]]:
    import _slack

    channel = channels["opg-incidents"]
    posted = len(fake.calls_of("chat.postMessage"))
    if bare:
        for i in range(3):
            fake.post_message(channel, _slack.ALICE, f"!echo exercise {i}")
        expected = posted + 3
        pages: list[int] = []
    else:
        _slack.declare(fake, channels, "Payments are failing", summary="Card payments fail")
        for text in ("summary 1 Card payments fail for everyone", "sev 1 critical", "timeline 1"):
            _slack.mention(fake, channel, _slack.ALICE, text)
        expected = posted + 5  # the headline, the declare thanks is ephemeral, then at least the 3 replies
        pages = [_common.http_status(base + url) for url in ("/incidents", "/incidents/1", "/incidents?status=open", "/stats")]
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline and len(fake.calls_of("chat.postMessage")) < expected:
        time.sleep(0.05)
    return len(fake.calls_of("chat.postMessage")) >= expected, pages
