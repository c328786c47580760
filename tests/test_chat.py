"""Chat commands (text in, text out): the incident implied by the channel or given by number, usage and
allowed values on empty or unknown input with nothing changed, and user text echoed without pinging."""
from __future__ import annotations

import datetime as dt

import pytest

from opg_incident_core import IncidentError, InvalidInput, NotAllowed, NotFound
from opg_incident_core.chat import Caller, ChatCommands, process_help, refuse
from opg_incident_core.text import ZWSP, defuse, parse_user

ANN = Caller("@ann")  # direct message: no channel
BOB = Caller("@bob")
CHANNEL = "C0INC2"
LIVE_PINGS = ("<!channel>", "<!here>", "@here", "@channel", "@everyone", "<@U0EVIL>")


@pytest.fixture
def chat(service):
    return ChatCommands(service)


@pytest.fixture
def two(chat, service):
    """Incidents 1 and 2; incident 2 has the comms channel C0INC2."""
    chat.declare("Payments failing", ANN)
    chat.declare("Login slow", ANN)
    service.attach_channel(2, CHANNEL, "inc-2-login-slow", "@ann")
    return chat


def assert_no_live_ping(text: str):
    for ping in LIVE_PINGS:
        assert ping not in text, f"{ping!r} would ping people: {text!r}"


# -- declare, list, show ----------------------------------------------------------------------------

def test_declare_replies_with_number_and_next_steps(chat, service):
    reply = chat.declare("Payments are failing", ANN)
    assert reply.text.startswith("Incident 1 declared: Payments are failing\nNext: find an Incident Lead")
    assert "`lead 1 me`" in reply.text and "`sev 1 <severity>`" in reply.text
    assert reply.outcome.incident.number == 1
    assert chat.declare("Was down at night --report", ANN).text.startswith("Report 2 declared: Was down at night")
    assert chat.declare("--DRILL fire drill", ANN).text.startswith("Drill 3 declared: fire drill")
    assert [(i.number, i.report, i.drill) for i in service.list()] == [(3, False, True), (2, True, False),
                                                                      (1, False, False)]


@pytest.mark.parametrize("args, message", [
    ("", "Say what has happened. Usage: `incident declare <title> [--report] [--drill]`"),
    ("--report", "Say what has happened"),
    ("Outage --urgent", "Unknown option --urgent. Usage: `incident declare <title> [--report] [--drill]`"),
])
def test_declare_bad_input_changes_nothing(chat, db_snapshot, args, message):
    before = db_snapshot()
    with pytest.raises(InvalidInput) as caught:
        chat.declare(args, ANN)
    assert message in str(caught.value)
    assert db_snapshot() == before


def test_list_and_show(two, service):
    assert two.list("", ANN).text == ("• 2: Login slow [Live] · no severity · lead nobody\n"
                                      "• 1: Payments failing [Live] · no severity · lead nobody")
    service.assign_role(1, "lead", "@bob", "@ann")
    service.set_severity(1, "major", "@bob")
    service.close(1, "@bob")
    assert two.list("closed", ANN).text == "• 1: Payments failing [Resolved] · Major · lead @bob"
    assert two.list(" ALL ", ANN).text.count("\n") == 1
    shown = two.show("1", ANN).text.splitlines()
    assert shown[0] == "Incident 1: Payments failing"
    assert shown[1] == "Status: Resolved · Severity: Major"
    assert shown[2].startswith("Declared 2024-03-05 10:00 GMT · closed 2024-03-05 10:00 GMT")
    assert shown[3:] == ["Reporter: @ann", "Incident Lead: @bob", "Incident Scribe: nobody",
                         "Communications Lead: nobody", "Summary: not set", "Impact: not set"]
    with pytest.raises(InvalidInput, match=r"Usage: `incident list \[open\|closed\|all\]`"):
        two.list("everything", ANN)


def test_list_when_empty(chat):
    assert chat.list("", ANN).text == "No open incidents."
    assert chat.list("all", ANN).text == "No incidents."


# -- which incident -----------------------------------------------------------------------------------

def test_number_first_outside_an_incident_channel(two, service):
    reply = two.summary("1 Card payments fail\nfor Visa only", ANN)
    # Named by its number: the reply names the incident, number and title, so a wrong number shows at once.
    assert reply.text == "Incident 1 — Payments failing: the summary is now:\nCard payments fail\nfor Visa only"
    assert service.get(1).summary == "Card payments fail\nfor Visa only"
    two.impact("#2 Nobody can log in", ANN)
    assert service.get(2).impact == "Nobody can log in"
    assert service.get(1).impact == ""


def test_the_incident_is_implied_in_its_channel(two, service):
    here = Caller("@bob", channel=CHANNEL)
    reply = two.summary("500 node of 3 is down", here)  # a number that names no incident is text here
    assert reply.text == "The summary of incident 2 is now:\n500 node of 3 is down"
    assert service.get(2).summary == "500 node of 3 is down"
    assert service.get(1).summary == ""
    assert two.sev("Critical", here).text == "Incident 2 is now ⛈️ Critical."
    assert service.get(2).severity == "critical" and service.get(1).severity is None
    assert two.role("lead", "me", here).text.startswith("@bob is now Incident Lead of incident 2.")


def test_a_number_naming_another_incident_is_refused_in_a_channel(two, service, db_snapshot):
    """In #inc-2, `close 1` used to close incident 2 and `summary 1 db restored` set incident 2's summary to
    "1 db restored": a leading number that names another incident is refused, naming both."""
    before = db_snapshot()
    here = Caller("@bob", channel=CHANNEL)
    for run in (lambda: two.summary("1 db restored", here), lambda: two.close("1", here),
                lambda: two.sev("1 critical", here)):
        with pytest.raises(InvalidInput) as caught:
            run()
        assert str(caught.value).startswith("This is the channel of incident 2 (Login slow), but 1 names "
                                            "incident 1 (Payments failing). Nothing changed")
    assert db_snapshot() == before
    assert two.sev("2 critical", here).text == "Incident 2 is now ⛈️ Critical."  # its own number is fine


def test_in_another_channel_the_number_is_needed(two, service, db_snapshot):
    before = db_snapshot()
    elsewhere = Caller("@bob", channel="C0RANDOM")
    with pytest.raises(InvalidInput) as caught:
        two.summary("things are bad", elsewhere)
    assert str(caught.value) == ("Which incident? Outside an incident channel, put its number first: "
                                 "`summary 12 <text>`.\nOpen incidents: #2 Login slow, #1 Payments failing")
    assert db_snapshot() == before


def test_which_incident_when_none_is_open(chat):
    with pytest.raises(InvalidInput, match="`sev 12 <severity>`.\nThere are no open incidents."):
        chat.sev("", ANN)


# -- empty and unknown input: usage, allowed values, nothing changes -----------------------------------

@pytest.mark.parametrize("command, args, message", [
    ("summary", "", "Which incident? Outside an incident channel, put its number first: `summary 12 <text>`"),
    ("summary", "1", "The summary of incident 1 is: not set yet\nTo change it: `summary <text>`."),
    ("impact", "1   ", "The impact of incident 1 is: not set yet\nTo change it: `impact <text>`."),
    ("sev", "1", "Usage: `sev <severity>`. Severities: Critical, Major, Trivial."),
    ("sev", "1 major issue since 10:31",
     "'major issue since 10:31' is not a severity. Choose one of: Critical, Major, Trivial."),
    ("sev", "1 sev 4", "Choose one of: Critical, Major, Trivial"),
    ("action", "1", "Say what the action is. Usage: `action <text>`."),
    ("action", "1 done", "Which action? Usage: `action done <action number>`"),
    ("action_done", "1", "Which action? Usage: `action done <action number>`; `actions` lists them."),
    ("action_done", "1 first", "Which action?"),
    ("note", "1  ", "Say what the note is. Usage: `note <text>`."),
    ("decision", "1", "Say what the decision is. Usage: `decision <text>`."),
    ("show", "", "Which incident? Outside an incident channel, put its number first: `incident show <number>`"),
    ("timeline", "", "`timeline 12`"),
    ("actions", "", "`actions 12`"),
    ("close", "", "`close 12 [anyway] [resolved|blocked until <date>]`"),
    ("close", "1 anyway done", "Close for one of the process's two reasons: `resolved`, or `blocked until <a later date>`"),
    ("reopen", "", "`reopen 12`"),
])
def test_empty_or_bad_input_gives_usage_and_changes_nothing(two, db_snapshot, command, args, message):
    before = db_snapshot()
    with pytest.raises(InvalidInput) as caught:
        getattr(two, command)(args, ANN)
    assert message in str(caught.value)
    assert db_snapshot() == before


@pytest.mark.parametrize("role, args, message", [
    ("lead", "1", "Incident Lead of incident 1: nobody.\nTo change it: `lead <@user|me|none>`."),
    ("scribe", "1 bob", "'bob' is not a person. Usage: `scribe <@user|me|none>`."),
    ("comms", "1 @here", "is not a person"),
    ("lead", "1 <!channel>", "is not a person"),
    ("boss", "1 me", "'boss' is not a role; roles: lead, scribe, comms."),
    ("reporter", "1 me", "'reporter' is not a role; roles: lead, scribe, comms."),
    ("lead", "1 none", "Nobody holds the Incident Lead role on incident 1."),
])
def test_role_bad_input_changes_nothing(two, db_snapshot, role, args, message):
    before = db_snapshot()
    with pytest.raises(InvalidInput) as caught:
        two.role(role, args, ANN)
    assert message in str(caught.value)
    assert_no_live_ping(str(caught.value))
    assert db_snapshot() == before


def test_unknown_incident_changes_nothing(two, db_snapshot):
    before = db_snapshot()
    with pytest.raises(NotFound, match="There is no incident 9; `incident list all` shows them."):
        two.summary("9 text", ANN)
    with pytest.raises(NotFound):
        two.show("9", ANN)
    assert db_snapshot() == before


# -- roles, the log, actions, timeline, close ------------------------------------------------------------

def test_roles_replies(two, service):
    assert two.role("lead", "1 me", ANN).text == ("Incident 1 — Payments failing: @ann is now Incident Lead.\n"
                                                  "Ideally from outside your immediate team.")
    reply = two.role("scribe", "1 @ann", BOB)
    assert reply.text == ("Incident 1 — Payments failing: @ann is now Incident Scribe.\nNote: @ann is also the Incident Lead; "
                          "the Incident Scribe and the Incident Lead should not be the same person.")
    assert two.role("comms", "1 <@U0CAT|cat>", ANN).text == "Incident 1 — Payments failing: <@U0CAT> is now Communications Lead."
    assert two.role("scribe", "1 NOBODY", ANN).text == "Incident 1 — Payments failing: no Incident Scribe now."
    assert service.get(1).roles == {"reporter": "@ann", "lead": "@ann", "comms": "U0CAT"}
    with pytest.raises(InvalidInput, match="@ann is already the Incident Lead of incident 1"):
        two.role("lead", "1 me", ANN)


def test_log_and_actions_replies(two, service):
    # Outside the incident's channel the hint carries the incident's number: it works where it is given.
    assert two.action("1 Restart the workers", ANN).text == (
        "Incident 1 — Payments failing: action 1 logged. Mark it with `action done 1 1`.")
    assert two.action("1 Page the DBA", ANN).text.startswith("Incident 1 — Payments failing: action 2 logged")
    assert two.note("1 Errors\nfrom 09:58", ANN).text == "Incident 1 — Payments failing: note logged on the timeline."
    assert two.decision("1 Roll back", ANN).text == "Incident 1 — Payments failing: decision logged on the timeline."
    assert two.action("1 done 2", BOB).text == "Incident 1 — Payments failing: action 2 is done."
    assert two.action_done("1 #1", BOB).text == "Incident 1 — Payments failing: action 1 is done."
    assert two.actions("1", ANN).text == "✅ 1. Restart the workers (@ann)\n✅ 2. Page the DBA (@ann)"
    assert two.actions("2", ANN).text == "Incident 2 has no actions yet. Log one with `action <text>`."
    with pytest.raises(InvalidInput, match="Action 1 was already done"):
        two.action("1 DONE 1", ANN)
    with pytest.raises(NotFound, match="Incident 1 has no action 5"):
        two.action_done("1 5", ANN)
    assert [e.text for e in service.timeline(1) if e.kind == "note"] == ["Errors\nfrom 09:58"]


def test_timeline_reply_shows_time_kind_and_text(two, service, clock):
    clock.advance(minutes=12)
    two.sev("1 major", BOB)
    service.record_pin(CHANNEL, "1709632680.0", "U0PAT", "pinned <!here>", "U0SAM")  # incident 2
    assert two.timeline("1", ANN).text == (
        "Timeline of incident 1:\n"
        "2024-03-05 10:00 GMT [declared] @ann declared an incident: Payments failing\n"
        "2024-03-05 10:12 GMT [severity] Severity set to Major")
    text = two.timeline("", Caller("@bob", channel=CHANNEL)).text
    assert f"2024-03-05 09:58 GMT [pin] pinned <{ZWSP}!here> (<@U0PAT>)" in text
    assert_no_live_ping(text.replace("<@U0PAT>", ""))


def test_close_and_reopen_replies_and_refusals(two, service, clock, db_snapshot):
    two.role("lead", "1 @bob", ANN)
    before = db_snapshot()
    with pytest.raises(NotAllowed) as caught:
        two.close("1", ANN)
    assert refuse(caught.value) == "Not allowed: Only the Incident Lead (@bob) or a bot admin may close incident 1."
    assert db_snapshot() == before

    clock.advance(hours=1, minutes=30)
    # What is missing first, and the process's two reasons to close anyway; nothing changes yet.
    before = db_snapshot()
    assert two.close("1", BOB).text == (
        "Incident 1 — Payments failing: before closing, this is missing: a summary, an impact, an Incident Scribe.\n"
        "Close it anyway, for one of the process's two reasons:\n• resolved: `close 1 anyway`\n"
        "• blocked until a later date: `close 1 anyway blocked until <date>`")
    assert db_snapshot() == before
    assert two.close("1 anyway", BOB).text == ("Incident 1 — Payments failing: closed after 1 h 30 min (resolved). "
                                               "Thank you all. Next: the root-cause analysis.")
    assert service.get(1).close_reason == "resolved"
    with pytest.raises(InvalidInput, match="already closed at 2024-03-05 11:30 GMT"):
        two.close("1", BOB)
    assert two.reopen("1", Caller("@admin")).text == "Incident 1 — Payments failing: open again."
    assert service.get(1).is_open


def test_same_text_again_says_so(two):
    two.summary("1 x", ANN)
    assert two.summary("1 x", ANN).text == "Incident 1 — Payments failing: the summary is already that."
    two.sev("1 2", ANN)
    assert two.sev("1 MAJOR", ANN).text == "Incident 1 — Payments failing: already Major."


# -- nobody gets pinged by an echo ----------------------------------------------------------------------

EVIL = "Deploy <!channel> broke @here for <!here> and @everyone <@U0EVIL>"


def test_echoed_user_text_is_defused_everywhere(chat, service):
    replies = [chat.declare(EVIL, ANN).text]
    replies.append(chat.summary(f"1 {EVIL}", ANN).text)
    replies.append(chat.impact(f"1 {EVIL}", ANN).text)
    chat.action(f"1 {EVIL}", ANN)
    replies.append(chat.actions("1", ANN).text)
    replies.append(chat.show("1", ANN).text)
    replies.append(chat.list("", ANN).text)
    replies.append(chat.timeline("1", ANN).text)
    for name in ("summary", "impact"):
        with pytest.raises(InvalidInput) as caught:
            getattr(chat, name)("1", ANN)
        replies.append(str(caught.value))
    with pytest.raises(InvalidInput) as caught:
        chat.summary("", Caller("@bob", channel="C0X"))  # the open-incidents hint echoes titles
    replies.append(str(caught.value))
    for bad in (lambda: chat.sev("1 <!channel>", ANN), lambda: chat.role("<!channel>", "1 me", ANN),
                lambda: chat.declare("x --<!channel>", ANN), lambda: chat.role("lead", "1 @channel", ANN)):
        with pytest.raises(InvalidInput) as caught:
            bad()
        replies.append(str(caught.value))

    for reply in replies:
        assert_no_live_ping(reply)
        assert "\\u200b" not in reply  # no repr() of the defused text
    assert f"<{ZWSP}!channel>" in replies[0] and f"@{ZWSP}here" in replies[0]
    # the record keeps the text exactly as typed
    assert service.get(1).title == EVIL and service.get(1).summary == EVIL


def test_defuse_and_parse_user():
    assert defuse("<!channel> <!here|here> <@U1> <#C1> @here @Channel a@here.com") == (
        f"<{ZWSP}!channel> <{ZWSP}!here|here> <{ZWSP}@U1> <{ZWSP}#C1> @{ZWSP}here @{ZWSP}Channel a@here.com")
    assert parse_user("me", "@ann") == "@ann"
    assert parse_user("ME", "U0ANN") == "U0ANN"
    assert parse_user("<@U0BOB|bob>", "@ann") == "U0BOB"
    assert parse_user("@bob.smith", "@ann") == "@bob.smith"
    for not_a_person in ("bob", "@here", "@channel", "@Everyone", "<!channel>", "<#C0123>", ""):
        assert parse_user(not_a_person, "@ann") is None


# -- help --------------------------------------------------------------------------------------------

def test_process_help_names_roles_and_severities_from_the_settings(shipped_settings):
    text = process_help(shipped_settings, "!")
    assert "`!sev <Critical|Major|Trivial>`" in text
    assert "`!lead <@user|me>` (Incident Lead)" in text and "`!scribe <@user|me>` (Incident Scribe)" in text
    assert "#opg-incidents" in text
    assert "`!summary 12 <text>`" in text
    assert "reporter" not in text  # not assignable


def test_refuse_prefixes_only_refusals():
    assert refuse(NotAllowed("no")) == "Not allowed: no"
    assert refuse(InvalidInput("bad")) == "bad"
    assert issubclass(NotFound, IncidentError)


def test_the_action_done_hint_works_where_it_is_given(two, service):
    """`Mark it with action done 1` in incident 2's channel: one number is the action, even though incident
    1 exists (it used to be refused as naming incident 1); in a DM the hint carries the incident's number."""
    here = Caller("@ann", channel=CHANNEL)
    reply = two.run(two_cmd("action"), "Restart the workers", here)
    assert reply.text == "Action 1 logged on incident 2. Mark it with `action done 1`."
    assert two.run(two_cmd("action done"), "1", here).text == "Action 1 of incident 2 is done."
    assert [a.done for a in service.actions(2)] == [True] and service.actions(1) == []
    dm = two.run(two_cmd("action"), "1 Page the DBA", ANN).text
    assert dm.endswith("Mark it with `action done 1 1`.")
    assert two.run(two_cmd("action done"), "1 1", ANN).text == "Incident 1 — Payments failing: action 1 is done."
    two.run(two_cmd("action"), "Scale up", here)
    assert two.run(two_cmd("action done"), "2 #2", here).text == "Action 2 of incident 2 is done."  # its own number


def two_cmd(name):
    from opg_incident_core.commands import REGISTRY
    return REGISTRY.get(name)


def test_close_lists_what_is_missing_and_takes_a_reason(two, service):
    here = Caller("@bob", channel=CHANNEL)  # incident 2's channel
    two.role("lead", "me", here)
    two.action("Restart the workers", here)
    two.action("Page the DBA", here)
    two.run(two_cmd("action done"), "2", here)  # action 2 (this channel's incident is 2 as well)
    reply = two.close("", here).text
    assert reply.startswith("Before closing incident 2, this is missing: a summary, an impact, an Incident Scribe, "
                            "1 open action (1).")
    assert "`close anyway`" in reply and "`close anyway blocked until <date>`" in reply
    two.summary("Logins took 30 s", here)
    two.impact("Everyone", here)
    two.role("scribe", "@sam", here)
    assert two.close("", here).text.startswith("Before closing incident 2, this is missing: 1 open action (1).")
    two.run(two_cmd("action done"), "1", here)
    # Nothing missing: closed at once, for the reason given (on the timeline and the record).
    reply = two.close("blocked until 2024-03-12 <!channel>", here).text
    assert reply.startswith("Incident 2 is closed after 0 min (blocked until 2024-03-12 <\u200b!channel>).")
    assert service.get(2).close_reason == "blocked until 2024-03-12 <!channel>"
    assert service.timeline(2)[-1].text == "@bob closed the incident: blocked until 2024-03-12 <!channel>"
    two.reopen("", here)
    assert service.get(2).close_reason is None


@pytest.mark.parametrize("typed, name, rest", [
    ("sev: critical", "sev", "critical"), ("Sev 4 Critical.", "sev", "4 Critical."), ("sev:critical", "sev", "critical"),
    ("action done: 2", "action done", "2"), ("note Root cause: DNS", "note", "Root cause: DNS"),
])
def test_a_colon_after_a_command_name_is_read_as_people_type_it(typed, name, rest):
    import re
    from opg_incident_core.commands import REGISTRY
    match = re.match(REGISTRY.pattern(), typed, re.IGNORECASE | re.DOTALL)  # errbot's routing
    assert (REGISTRY.get(match.group(1)).name, match.group(2)) == (name, rest)
    if typed != "sev:critical":  # the /opg-incident subcommands split on spaces
        cmd, found = REGISTRY.find(typed)
        assert (cmd.name, found) == (name, rest)
