"""End to end: the real `errbot -c config.py` process on the Text backend (no Slack tokens), fed a whole
incident on standard input; the answers are read from standard output."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ERRBOT = Path(sys.executable).parent / "errbot"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROMPT = re.compile(r"\[@\w+ ➡ @\w+\] >>> ")

pytestmark = pytest.mark.e2e

SCRIPT = [
    ("!incident declare Payments are failing <!channel>",
     "Incident 1 declared: Payments are failing <\u200b!channel>\n"
     "Next: find an Incident Lead and a Scribe (lead 1 me, scribe 1 @someone), then set sev 1 <severity>."),
    ("!lead 1 me", "Incident 1 — Payments are failing <\u200b!channel>: @you is now Incident Lead.\nIdeally from outside your immediate team."),
    ("!scribe 1 @sam", "Incident 1 — Payments are failing <\u200b!channel>: @sam is now Incident Scribe."),
    ("!summary 1 Card payments fail for every user", "Incident 1 — Payments are failing <\u200b!channel>: the summary is now:\n"
                                                     "Card payments fail for every user"),
    ("!impact 1 Nobody can pay", "Incident 1 — Payments are failing <\u200b!channel>: the impact is now:\nNobody can pay"),
    ("!sev 1 major issue since 10:31",
     "'major issue since 10:31' is not a severity. Choose one of: Critical, Major, Trivial."),
    ("!SEV 1 critical", "Incident 1 — Payments are failing <\u200b!channel>: the severity is now ⛈️ Critical."),
    # As people type (changing nothing more): a colon, a full stop, the process document's <Critical>, a typo,
    # the number or the role first.
    ("!sev: 1 Critical.", "Incident 1 — Payments are failing <\u200b!channel>: already Critical."),
    ("!sev 1 <critical>", "Incident 1 — Payments are failing <\u200b!channel>: already Critical."),
    ("!sumary 1 x", "I don't know that command. Did you mean summary? help shows the incident process and its "
                    "commands."),
    ("!role 1 scribe @sam", "@sam is already the Incident Scribe of incident 1."),
    ("!role scribe 1 @sam", "@sam is already the Incident Scribe of incident 1."),
    ("!action 1 Restart the payment workers", "Incident 1 — Payments are failing <\u200b!channel>: action 1 logged. Mark it with action done 1 1."),
    ("!action done 1 1", "Incident 1 — Payments are failing <\u200b!channel>: action 1 is done."),
    ("!decision 1 Roll back the release", "Incident 1 — Payments are failing <\u200b!channel>: decision logged on the timeline."),
    ("!asuser bob", None),
    ("!close 1", "close of incident 1 is for the incident's role holders, its reporter and bot admins. "
                 "Its lead: @you."),
    ("!asadmin", None),
    # Nothing missing (summary, impact, scribe, no open action): closed at once, as resolved.
    ("!close 1", "Incident 1 — Payments are failing <\u200b!channel>: closed after 0 min (resolved). Thank you all. "
                 "Next: the root-cause analysis."),
    ("!timeline 1", None),
    ("!frobnicate", "I don't know that command. help shows the incident process and its commands."),
    ("!incident list all", "• 1: Payments are failing <\u200b!channel> [Resolved] · Critical · lead @you"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_console(data, script) -> str:
    """Run `script` through one errbot process on the Text backend; its cleaned-up standard output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "INCIDENT_", "BOT_"))}
    env.update(BOT_DATA_DIR=str(data), INCIDENT_WEB_PORT=str(free_port()), PYTHONUNBUFFERED="1",
               BOT_LOG_LEVEL="WARNING")
    stdin = "".join(f"{command}\n" for command, _ in script)
    proc = subprocess.run([str(ERRBOT), "-c", str(ROOT / "config.py")], cwd=ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)
    out = ANSI.sub("", proc.stdout)
    assert proc.returncode == 0, f"errbot exited with {proc.returncode}\n{out[-2000:]}\n{proc.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    """Run the whole script through one errbot process; return its cleaned-up standard output."""
    data = tmp_path_factory.mktemp("errbot-data")
    return run_console(data, SCRIPT), data


def replies(out: str) -> list[str]:
    """The bot's answers, in order: whatever follows each prompt."""
    chunks = PROMPT.split(out)[1:]
    return [chunk.strip() for chunk in chunks if chunk.strip()]


def test_a_whole_incident_on_the_console(console):
    out, _ = console
    answers = replies(out)
    assert len(answers) == len(SCRIPT), answers  # one answer per line typed
    for (command, expected), answer in zip(SCRIPT, answers):
        if expected is not None:
            assert answer == expected, f"after {command!r}"
    assert (answers[15], answers[17]) == ("You are now: @bob.", "You are now an admin: @you.")


def test_the_timeline_on_the_console_has_every_step(console):
    out, _ = console
    timeline = next(a for a in replies(out) if a.startswith("Timeline of incident 1:"))
    kinds = re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d (?:GMT|BST) \[(\w+)\]", timeline, re.MULTILINE)
    assert kinds == ["declared", "role", "role", "summary", "impact", "severity", "action", "action_done",
                     "decision", "closed"]
    assert "@you declared an incident: Payments are failing <\u200b!channel>" in timeline
    assert "@you closed the incident" in timeline
    assert "<!channel>" not in out  # never echoed live


def test_the_record_is_in_sqlite_in_the_data_dir(console):
    import sqlite3

    _, data = console
    db = sqlite3.connect(data / "incidents.sqlite")
    try:
        row = db.execute("SELECT number, title, summary, impact, severity, status, closed_by FROM incident").fetchall()
        assert row == [(1, "Payments are failing <!channel>", "Card payments fail for every user", "Nobody can pay",
                        "critical", "closed", "@you")]
        roles = db.execute("SELECT role, holder FROM role_assignment WHERE released_at IS NULL ORDER BY role").fetchall()
        assert roles == [("lead", "@you"), ("scribe", "@sam")]
        assert db.execute("SELECT number, text, done, done_by FROM action").fetchall() == [
            (1, "Restart the payment workers", 1, "@you")]
    finally:
        db.close()


# Issue 14 on the console: the pre-close check and its two reasons, the post-incident order, who sets how often
# updates are due, and paging that says plainly it cannot page from here.
PROCESS = [
    ("!help", None),  # checked below
    ("!help close", "close [anyway] [resolved|blocked until <date>]: Close the incident (the Incident Lead or a bot "
                    "admin): first it lists what is missing (summary, impact, scribe, open actions) and asks to "
                    "confirm with close anyway; the reason, resolved or blocked until a later date, goes on the "
                    "timeline.\nWho may: the Incident Lead or a bot admin. In an incident's channel the incident is "
                    "implied; elsewhere put its number first."),
    ("!help sumary", "I don't know sumary. Did you mean summary? help lists every command."),
    ("!incident declare Login is slow", None),
    ("!lead 1 me", None),
    ("!action 1 Scale up the login pods", None),
    ("!escalate 1", "No specialist team can be paged: a bot admin sets slack_user, slack_group or "
                    "pagerduty_routing_key of a team under specialists: in the settings."),
    ("!updates 1 every 20m", "Incident 1 — Login is slow: stakeholder updates are due every 20 minutes."),
    ("!rca 1 ready", "Incident 1 is still open: the root-cause analysis follows the close. Close it first (close), "
                     "then rca ready."),
    ("!close 1", "Incident 1 — Login is slow: before closing, this is missing: a summary, an impact, an Incident "
                 "Scribe, 1 open action (1).\nClose it anyway, for one of the process's two reasons:\n"
                 "• resolved: close 1 anyway\n• blocked until a later date: close 1 anyway blocked until <date>"),
    ("!close 1 anyway blocked", "Close for one of the process's two reasons: resolved, or blocked until <a later "
                                "date> (e.g. close blocked until 2024-03-12)."),
    ("!close 1 anyway blocked until 2024-03-12", "Incident 1 — Login is slow: closed after 0 min (blocked until "
                                                 "2024-03-12). Thank you all. Next: the root-cause analysis."),
    ("!rca 1 ready", "Incident 1 — Login is slow: the analysis is ready; share it with rca 1 share."),
    ("!rca 1 share", "Incident 1 — Login is slow: sharing the analysis in #opg-delivery, #opg-all-team-digital, "
                     "#opg-leadership."),
    ("!timeline 1", None),
]


def test_the_process_on_the_console(tmp_path):
    answers = replies(run_console(tmp_path, PROCESS))
    assert len(answers) == len(PROCESS), answers
    for (command, expected), answer in zip(PROCESS, answers):
        if expected is not None:
            assert answer == expected, f"after {command!r}"
    help_lines = [line.strip() for line in answers[0].splitlines()]
    for group in ("Anyone:", "The Incident Lead:", "The Incident Scribe:", "The Communications Lead:", "Bot admins:"):
        assert group in help_lines, group  # each group on its own line (not run into the line before)
    for name in ("handover", "roles", "checkin", "update", "notify", "call", "invite", "ask", "escalate", "rca",
                 "archive"):
        assert any(line.startswith(f"• {name}") for line in help_lines), name
    assert not re.search(r"[^.]\.\.(?!\.)|\.;", answers[0]), "double punctuation"  # "all hands.;", "recording.."
    timeline = answers[-1]
    assert "[cadence] Stakeholder updates every 20 minutes" in timeline
    assert "[closed] @you closed the incident: blocked until 2024-03-12" in timeline
    assert "[rca] Root-cause analysis shared in #opg-delivery, #opg-all-team-digital, #opg-leadership" in timeline
