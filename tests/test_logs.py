"""Logs: INCIDENT_LOG_FORMAT=json gives one JSON object per line in the log file and on standard output
(the real errbot process against the fake Slack), naming the incident and the input where known; what
people type never reaches a line at INFO."""
from __future__ import annotations

import json
import logging
import sys
import time

import pytest

import opg_incident_logs
from opg_incident_core import outbox

from tests.slack_bot import ALICE, SlackBot, seed

SECRET = "zebra-quartz-secret"


def record(message: str, *args, name: str = "opg_incident.test", level: int = logging.INFO, **extra):
    rec = logging.LogRecord(name, level, __file__, 1, message, args, None)
    rec.__dict__.update(extra)
    return rec


def test_a_json_line_has_time_level_logger_message_incident_and_input():
    formatter = opg_incident_logs.JsonFormatter()
    with opg_incident_logs.about(12), outbox.origin("C1", "Ev0123"):
        line = formatter.format(record("Outbox item %s sent", 7))
    entry = json.loads(line)
    assert entry["message"] == "Outbox item 7 sent"
    assert (entry["level"], entry["logger"], entry["incident"], entry["input"]) == ("INFO", "opg_incident.test",
                                                                                   12, "Ev0123")
    assert entry["time"].endswith("+00:00") and "T" in entry["time"]
    plain = json.loads(formatter.format(record("nothing known")))
    assert "incident" not in plain and "input" not in plain
    assert json.loads(formatter.format(record("one line", incident=3)))["incident"] == 3
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        failing = record("it failed", level=logging.ERROR)
        failing.exc_info = sys.exc_info()
    line = formatter.format(failing)
    assert "\n" not in line and "ValueError: boom" in json.loads(line)["exception"]


def test_errbots_command_line_keeps_the_command_not_the_text():
    quiet = opg_incident_logs.QuietCommands()
    rec = record(f'Processing command "summary" with parameters "1 {SECRET} "quoted"" from <@U0ALICE01>',
                 name="errbot.core")
    assert quiet.filter(rec)
    assert rec.getMessage() == 'Processing command "summary" from <@U0ALICE01>'
    other = record("Plugin activation done.", name="errbot.core")
    quiet.filter(other)
    assert other.getMessage() == "Plugin activation done."


class Lines(logging.Handler):
    """The JSON lines logged while it is installed, parsed."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(opg_incident_logs.JsonFormatter())
        self.entries: list[dict] = []

    def emit(self, rec):
        self.entries.append(json.loads(self.format(rec)))

    def __enter__(self):
        logging.getLogger().addHandler(self)
        logging.getLogger("opg_incident_schedule").setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeHandler(self)
        logging.getLogger("opg_incident_schedule").setLevel(logging.NOTSET)


def test_the_schedule_and_slack_inputs_name_the_incident_and_the_input():
    from types import SimpleNamespace as NS

    from opg_incident_core.connection import UNAVAILABLE
    from opg_incident_core.reminders import DueReminder
    from opg_incident_schedule import Schedule
    from opg_incident_slack.inputs import NOT_READY, SlackInputs

    said = logging.getLogger("opg_incident_slack.effects")
    effects = NS(after=lambda outcome: said.warning("told the channel"),
                 job=lambda kind, number, *a, **k: said.warning("queued %s", kind))
    service = NS(expire_handovers=lambda: [NS(incident=NS(number=4))], prune=lambda: 0,
                 due_for_archive=lambda minutes: [9])
    reminders = NS(due=lambda: [DueReminder(7, "severity_missing", "Set a severity")])
    settings = NS(archive=NS(when="after_delay", delay_minutes=60))
    with Lines() as lines:
        Schedule(service, lambda: settings, reminders, effects, pruned_at=time.monotonic()).tick()
    told = [(e["message"], e.get("incident")) for e in lines.entries if e["logger"] == said.name]
    assert told == [("told the channel", 4), ("queued remind", 7), ("queued archive", 9)]
    assert ("A handover offer expired unanswered", 4) in [(e["message"], e.get("incident")) for e in lines.entries]

    def down(*args):
        raise UNAVAILABLE[0]("database is locked")

    with Lines() as lines:
        assert SlackInputs(NS(record_input=down), None).record("Ev0TEST01", "events_api", {}) == NOT_READY
    [warning] = lines.entries
    assert warning["input"] == "Ev0TEST01" and "could not be recorded" in warning["message"]


@pytest.mark.e2e
def test_json_logs_from_the_real_process(tmp_path):
    from tests.fake_slack import FakeSlack

    stdout = tmp_path / "stdout.txt"
    with FakeSlack() as fake:
        channels = seed(fake)
        env = {"INCIDENT_LOG_FORMAT": "json", "BOT_LOG_LEVEL": "INFO"}
        with SlackBot(fake, tmp_path, env=env, stdout=stdout) as bot:
            # errbot's reply and the outbox's announcement both post: at least one outbox post fails and is
            # retried, which the worker logs, naming the incident.
            fake.fail_next("chat.postMessage", error="internal_error", times=2)
            fake.post_message(channels["opg-incidents"], ALICE,
                              f"<@{fake.bot_user_id}> incident declare Payments {SECRET}")
            fake.wait_for(lambda: bot.log_has("again in"), timeout=20, message="no retry logged")
    for path in (bot.log_file, stdout):
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) > 5, path
        entries = [json.loads(line) for line in lines]  # every line is one JSON object
        assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
        assert not [e for e in entries if e["level"] in ("DEBUG", "INFO") and SECRET in json.dumps(e)]
        assert any(e["message"].startswith('Processing command "incident_declare" from ') for e in entries)
        retry = next(e for e in entries if "again in" in e["message"])
        assert retry["incident"] == 1 and retry["logger"].endswith("outbox_worker")
        # the command's own line names the incident it made and the Slack input (the message event) it came in
        command = next(e for e in entries if e["message"].startswith("Command incident declare from "))
        assert command["incident"] == 1 and command["input"].startswith("Ev"), command
        assert command["logger"] == "opg_incident_commands" and SECRET not in json.dumps(command)
