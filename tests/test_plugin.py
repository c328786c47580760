"""The errbot plugin on errbot's `testbot` (Test backend): every command with success, bad input and
refusals; commands in any case; unknown commands; help; settings reload by admins only.

Each test gets its own SQLite file and its own copy of the settings; no web server binds."""
from __future__ import annotations

import logging
import queue
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_DIR = ROOT / "plugins" / "opg_incident"
ADMIN = "@admin"


def ask(testbot, text: str) -> str:
    testbot.push_message(text)
    return testbot.pop_message(timeout=10)


def as_user(testbot, name: str) -> None:
    testbot.bot.sender = testbot.bot.build_identifier(name)


class TestPlugin:
    extra_plugin_dir = str(PLUGIN_DIR)
    loglevel = logging.WARNING

    @pytest.fixture(autouse=True)
    def _config(self, tmp_path):
        self.settings_path = tmp_path / "settings.yml"
        shutil.copy(PLUGIN_DIR / "settings.yml", self.settings_path)
        self.extra_config = {
            "AUTOINSTALL_DEPS": False,
            "CORE_PLUGINS": ("ACLs", "Plugins", "Utils"),
            "BOT_ADMINS": (ADMIN,),
            "INCIDENT_DATABASE_URL": f"sqlite:///{tmp_path / 'incidents.sqlite'}",
            "INCIDENT_SETTINGS": str(self.settings_path),
            "INCIDENT_WEB_PORT": 0,
        }

    @staticmethod
    def service(testbot):
        return testbot.bot.plugin_manager.get_plugin_obj_by_name("OpgIncident").service

    @staticmethod
    def rows(testbot):
        from opg_incident_core import storage

        return {m.__name__: list(m.select().order_by(m._meta.primary_key).dicts()) for m in storage.MODELS}

    # -- incidents ----------------------------------------------------------------------------------
    def test_incident_declare_list_show(self, testbot):
        reply = ask(testbot, "!incident declare Payments are failing")
        assert reply.startswith("Incident 1 declared: Payments are failing\nNext: find an Incident Lead")
        inc = self.service(testbot).get(1)
        assert (inc.title, inc.reporter, inc.status) == ("Payments are failing", ADMIN, "open")
        assert ask(testbot, "!incident declare Night outage --report").startswith("Report 2 declared")

        assert ask(testbot, "!incident list") == ("• 2: Night outage [Reported] · no severity · lead nobody\n"
                                                  "• 1: Payments are failing [Live] · no severity · lead nobody")
        assert ask(testbot, "!incident list closed") == "No closed incidents."
        assert ask(testbot, "!incident show 1").startswith("Incident 1: Payments are failing\nStatus: Live")

    def test_incident_bad_input_changes_nothing(self, testbot):
        ask(testbot, "!incident declare Payments are failing")
        before = self.rows(testbot)
        assert ask(testbot, "!incident declare") == (
            "Say what has happened. Usage: incident declare <title> [--report] [--drill].")
        assert ask(testbot, "!incident declare Outage --now").startswith("Unknown option --now.")
        assert ask(testbot, "!incident list everything") == "Usage: incident list [open|closed|all]."
        assert ask(testbot, "!incident show").startswith(
            "Which incident? Outside an incident channel, put its number first: incident show <number>.\n"
            "Open incidents: #1 Payments are failing")
        assert ask(testbot, "!incident show 7") == "There is no incident 7; incident list all shows them."
        for text in ("!incident", "!incident frobnicate"):
            assert ask(testbot, text).startswith("Usage: incident declare <title> [--report], incident list")
        assert self.rows(testbot) == before

    # -- the lead's updates -------------------------------------------------------------------------
    def test_summary_impact_sev(self, testbot):
        ask(testbot, "!incident declare Payments are failing")
        assert ask(testbot, "!summary 1 Card payments fail") == "Incident 1 — Payments are failing: the summary is now:\nCard payments fail"
        assert ask(testbot, "!impact 1 Nobody can pay") == "Incident 1 — Payments are failing: the impact is now:\nNobody can pay"
        assert ask(testbot, "!sev 1 major") == "Incident 1 — Payments are failing: the severity is now 🌧️ Major."
        assert ask(testbot, "!severity 1 sev1") == "Incident 1 — Payments are failing: the severity is now ⛈️ Critical."
        assert ask(testbot, "!sev 1 CRITICAL") == "Incident 1 — Payments are failing: already Critical."
        inc = self.service(testbot).get(1)
        assert (inc.summary, inc.impact, inc.severity) == ("Card payments fail", "Nobody can pay", "critical")
        kinds = [e.kind for e in self.service(testbot).timeline(1)]
        assert kinds == ["declared", "summary", "impact", "severity", "severity"]

    def test_lead_updates_bad_input_changes_nothing(self, testbot):
        ask(testbot, "!incident declare Payments are failing")
        ask(testbot, "!sev 1 trivial")
        before = self.rows(testbot)
        assert ask(testbot, "!sev 1 major issue since 10:31") == (
            "'major issue since 10:31' is not a severity. Choose one of: Critical, Major, Trivial.")
        assert ask(testbot, "!sev 1") == "Usage: sev <severity>. Severities: Critical, Major, Trivial."
        assert ask(testbot, "!sev").startswith("Which incident? Outside an incident channel, put its number "
                                               "first: sev 12 <severity>.")
        assert ask(testbot, "!summary 1") == ("The summary of incident 1 is: not set yet\n"
                                              "To change it: summary <text>.")
        assert ask(testbot, "!impact").startswith("Which incident?")
        assert ask(testbot, "!summary 9 text") == "There is no incident 9; incident list all shows them."
        assert self.rows(testbot) == before
        assert self.service(testbot).get(1).severity == "trivial"

    def test_commands_in_any_case(self, testbot):
        assert ask(testbot, "!INCIDENT DECLARE Payments are failing").startswith("Incident 1 declared")
        assert ask(testbot, "!SEV 1 critical") == "Incident 1 — Payments are failing: the severity is now ⛈️ Critical."
        assert ask(testbot, "!Summary 1 x") == "Incident 1 — Payments are failing: the summary is now:\nx"
        assert ask(testbot, "!Lead 1 me").startswith("Incident 1 — Payments are failing: @admin is now Incident Lead.")
        assert ask(testbot, "!ACTION 1 Restart").startswith("Incident 1 — Payments are failing: action 1 logged.")
        assert ask(testbot, "!Action Done 1 1") == "Incident 1 — Payments are failing: action 1 is done."
        assert ask(testbot, "!Incident List") == "• 1: Payments are failing [Live] · Critical · lead @admin"
        assert ask(testbot, "!HELP").startswith("How an incident runs")
        inc = self.service(testbot).get(1)
        assert (inc.severity, inc.summary, inc.roles.get("lead")) == ("critical", "x", ADMIN)
        assert self.service(testbot).actions(1)[0].done

    # -- roles --------------------------------------------------------------------------------------
    def test_roles(self, testbot):
        ask(testbot, "!incident declare Payments are failing")
        assert ask(testbot, "!lead 1 me") == ("Incident 1 — Payments are failing: @admin is now Incident Lead.\n"
                                              "Ideally from outside your immediate team.")
        assert ask(testbot, "!scribe 1 @admin") == (
            "Incident 1 — Payments are failing: @admin is now Incident Scribe.\nNote: @admin is also the Incident Lead; "
            "the Incident Scribe and the Incident Lead should not be the same person.")
        assert ask(testbot, "!comms 1 @cat") == "Incident 1 — Payments are failing: @cat is now Communications Lead."
        assert ask(testbot, "!role comms 1 none") == "Incident 1 — Payments are failing: no Communications Lead now."
        assert ask(testbot, "!role Comms 1 @dan") == "Incident 1 — Payments are failing: @dan is now Communications Lead."
        assert self.service(testbot).get(1).roles == {"reporter": ADMIN, "lead": ADMIN, "scribe": ADMIN,
                                                      "comms": "@dan"}

        # a bot admin gives a held role at once (for a holder who is away)
        assert "@sam is now Incident Scribe" in ask(testbot, "!scribe 1 @sam")
        # a handover is offered, and moves only when accepted
        assert "@kim" in ask(testbot, "!handover 1 scribe @kim")
        assert self.service(testbot).get(1).roles["scribe"] == "@sam"
        [offer] = self.service(testbot).handovers(1)
        assert (offer.role, offer.to_user, offer.awaiting) == ("scribe", "@kim", "@kim")
        as_user(testbot, "@kim")
        assert "@kim is now Incident Scribe" in ask(testbot, "!accept")
        assert self.service(testbot).get(1).roles["scribe"] == "@kim"

        history = [(h.role, h.holder, h.released_at is None) for h in self.service(testbot).role_history(1)]
        assert history == [("lead", ADMIN, True), ("scribe", ADMIN, False), ("comms", "@cat", False),
                           ("comms", "@dan", True), ("scribe", "@sam", False), ("scribe", "@kim", True)]

    def test_roles_bad_input_changes_nothing(self, testbot):
        ask(testbot, "!incident declare Payments are failing")
        ask(testbot, "!lead 1 @bob")
        before = self.rows(testbot)
        assert ask(testbot, "!lead 1") == "Incident Lead of incident 1: @bob.\nTo change it: lead <@user|me|none>."
        assert ask(testbot, "!lead 1 @bob") == "@bob is already the Incident Lead of incident 1."
        assert ask(testbot, "!scribe 1 bob") == "'bob' is not a person. Usage: scribe <@user|me|none>."
        assert ask(testbot, "!comms 1 @here").endswith("is not a person. Usage: comms <@user|me|none>.")
        assert ask(testbot, "!comms 1 none") == "Nobody holds the Communications Lead role on incident 1."
        assert ask(testbot, "!role") == "Usage: role <role> <@user|me|none>. Roles: lead, scribe, comms"
        assert ask(testbot, "!role boss 1 me") == "'boss' is not a role; roles: lead, scribe, comms."
        assert ask(testbot, "!role reporter 1 me") == "'reporter' is not a role; roles: lead, scribe, comms."
        assert ask(testbot, "!scribe me").startswith("Which incident?")
        assert self.rows(testbot) == before

    # -- the scribe's log ---------------------------------------------------------------------------
    def test_action_note_decision_actions_timeline(self, testbot):
        ask(testbot, "!incident declare Payments are failing")
        assert ask(testbot, "!action 1 Restart the workers") == (
            "Incident 1 — Payments are failing: action 1 logged. Mark it with action done 1 1.")
        assert ask(testbot, "!action 1 Page the DBA").startswith("Incident 1 — Payments are failing: action 2 logged")
        assert ask(testbot, "!action done 1 2") == "Incident 1 — Payments are failing: action 2 is done."
        assert ask(testbot, "!action 1 done 1") == "Incident 1 — Payments are failing: action 1 is done."
        assert ask(testbot, "!note 1 Errors from 09:58\nonly for Visa\n\n  cards") == (
            "Incident 1 — Payments are failing: note logged on the timeline.")
        assert ask(testbot, "!decision 1 Roll back") == "Incident 1 — Payments are failing: decision logged on the timeline."
        assert ask(testbot, "!actions 1") == "✅ 1. Restart the workers (@admin)\n✅ 2. Page the DBA (@admin)"

        timeline = ask(testbot, "!timeline 1")
        assert timeline.startswith("Timeline of incident 1:\n")
        entries = [line.split("] ", 1)[1] for line in timeline.splitlines()[1:] if "] " in line]
        assert entries[:3] == [
            "@admin declared an incident: Payments are failing", "Action 1: Restart the workers",
            "Action 2: Page the DBA"]
        assert "[decision] Roll back" in timeline
        notes = [e.text for e in self.service(testbot).timeline(1) if e.kind == "note"]
        assert notes == ["Errors from 09:58\nonly for Visa\n\n  cards"]  # multi-line text kept whole

    def test_log_bad_input_changes_nothing(self, testbot):
        ask(testbot, "!incident declare Payments are failing")
        ask(testbot, "!action 1 Restart")
        ask(testbot, "!action done 1 1")
        before = self.rows(testbot)
        assert ask(testbot, "!action done 1 1") == "Action 1 was already done."
        assert ask(testbot, "!action done 1 9") == "Incident 1 has no action 9; actions lists them."
        assert ask(testbot, "!action done 1 first").startswith("Which action? Usage: action done <action number>")
        assert ask(testbot, "!action 1") == "Say what the action is. Usage: action <text>."
        assert ask(testbot, "!action 1 done").startswith("Which action?")
        assert ask(testbot, "!note 1") == "Say what the note is. Usage: note <text>."
        assert ask(testbot, "!decision 1") == "Say what the decision is. Usage: decision <text>."
        assert ask(testbot, "!actions").startswith("Which incident?")
        assert ask(testbot, "!timeline 5") == "There is no incident 5; incident list all shows them."
        assert self.rows(testbot) == before

    # -- close and reopen ---------------------------------------------------------------------------
    def test_close_only_by_lead_or_admin_and_reopen(self, testbot):
        as_user(testbot, "@ann")
        ask(testbot, "!incident declare Payments are failing")
        assert ask(testbot, "!close 1") == ("Only the Incident Lead or a bot admin may close incident 1. "
                                            "It has no lead yet: take the role with lead me first.")
        ask(testbot, "!lead 1 @bob")
        before = self.rows(testbot)
        assert ask(testbot, "!close 1") == "Only the Incident Lead (@bob) or a bot admin may close incident 1."
        assert self.rows(testbot) == before
        assert self.service(testbot).get(1).status == "open"

        as_user(testbot, "@bob")
        assert ask(testbot, "!close 1").startswith("Incident 1 — Payments are failing: before closing, this is missing: a summary")
        assert self.service(testbot).get(1).status == "open"
        assert ask(testbot, "!close 1 anyway").startswith("Incident 1 — Payments are failing: closed after 0 min (resolved). Thank you all.")
        inc = self.service(testbot).get(1)
        assert (inc.status, inc.closed_by) == ("closed", "@bob")
        assert ask(testbot, "!close 1").startswith("Incident 1 was already closed at ")
        assert ask(testbot, "!incident list") == "No open incidents."

        as_user(testbot, "@ann")
        assert ask(testbot, "!reopen 1") == "Only the Incident Lead (@bob) or a bot admin may reopen incident 1."
        assert self.service(testbot).get(1).status == "closed"
        as_user(testbot, ADMIN)
        assert ask(testbot, "!reopen 1") == "Incident 1 — Payments are failing: open again."
        assert ask(testbot, "!reopen 1") == "Incident 1 is still open."
        assert ask(testbot, "!close 1 anyway").startswith("Incident 1 — Payments are failing: closed")  # an admin may close
        assert self.service(testbot).get(1).closed_by == ADMIN
        assert [e.kind for e in self.service(testbot).timeline(1)][-3:] == ["closed", "reopened", "closed"]

    # -- help and unknown commands ------------------------------------------------------------------
    def test_help_explains_the_process(self, testbot):
        reply = ask(testbot, "!help")
        assert reply.startswith("How an incident runs (the process: https://github.com/ministryofjustice/")
        assert "sev <Critical|Major|Trivial>" in reply
        assert "lead <@user|me> (Incident Lead)" in reply and "close (the lead or a bot admin)" in reply

    def test_what_start_up_built_is_out_of_the_garbage_collectors_reach(self, testbot):
        # A full collection over errbot's, Slack's and the settings' objects stops every thread for ~50 ms
        # (an ack, a command): after activation they are frozen (gc.freeze), so it has little to walk.
        import gc
        assert gc.get_freeze_count() > 10_000

    def test_unknown_command_gets_one_helpful_reply(self, testbot):
        assert ask(testbot, "!frobnicate the database") == (
            "I don't know that command. help shows the incident process and its commands.")
        with pytest.raises(queue.Empty):
            testbot.pop_message(timeout=0.5)

    # -- reloading the settings ---------------------------------------------------------------------
    def test_admin_reloads_valid_settings(self, testbot):
        ask(testbot, "!incident declare Payments are failing")
        text = self.settings_path.read_text(encoding="utf-8")
        self.settings_path.write_text(text.replace("  - key: trivial\n    name: Trivial",
                                                   "  - key: trivial\n    name: Low"), encoding="utf-8")
        assert ask(testbot, "!incident reload") == "Settings reloaded. Changed: changed severity Low (trivial)"
        assert ask(testbot, "!sev 1 low") == "Incident 1 — Payments are failing: the severity is now 🌤️ Low."
        assert ask(testbot, "!incident reload") == "Settings reloaded. Nothing changed."

    def test_invalid_yaml_is_refused_and_the_old_settings_stay(self, testbot):
        ask(testbot, "!incident declare Payments are failing")
        text = self.settings_path.read_text(encoding="utf-8")
        self.settings_path.write_text(text.replace("    name: Major\n", "    name: Major\n    colour: red\n")
                                      .replace("  - key: trivial\n    name: Trivial",
                                               "  - key: trivial\n    name: Low"), encoding="utf-8")
        line = next(i for i, ln in enumerate(self.settings_path.read_text().splitlines(), 1) if "colour" in ln)
        reply = ask(testbot, "!incident reload")
        assert reply.startswith("The settings were not reloaded; the old ones stay.\n"
                                f"{self.settings_path}:{line}: severities[1].colour: unknown field; allowed: ")
        assert ask(testbot, "!sev 1 trivial") == "Incident 1 — Payments are failing: the severity is now 🌤️ Trivial."  # the old settings
        assert ask(testbot, "!sev 1 low").startswith("'low' is not a severity. Choose one of: Critical, Major, "
                                                     "Trivial.")

        self.settings_path.write_text("roles: [\n", encoding="utf-8")
        assert "not valid YAML" in ask(testbot, "!incident reload")
        assert ask(testbot, "!sev 1 major") == "Incident 1 — Payments are failing: the severity is now 🌧️ Major."

    def test_non_admins_cannot_reload(self, testbot):
        plugin = testbot.bot.plugin_manager.get_plugin_obj_by_name("OpgIncident")
        before = plugin.settings.current
        self.settings_path.write_text(self.settings_path.read_text().replace("time_zone: Europe/London",
                                                                             "time_zone: UTC"))
        as_user(testbot, "@bob")
        assert ask(testbot, "!incident reload") == "This command requires bot-admin privileges"
        assert ask(testbot, "!INCIDENT RELOAD") == "incident reload is for bot admins."
        assert ask(testbot, "!incident   reload") == "This command requires bot-admin privileges"
        assert plugin.settings.current is before
        as_user(testbot, ADMIN)
        assert ask(testbot, "!incident reload") == "Settings reloaded. Changed: changed time_zone"
        assert plugin.settings.current.time_zone == "UTC"
