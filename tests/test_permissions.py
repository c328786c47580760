"""Who may do what (issue 12, part 2): every registered command, and every Slack button and form, × the
incident's role holder, its reporter, someone in its channel, an outsider, and a bot admin. Before, any member
could from a DM and by number set impact and severity, set the call link, ask the help channels, page a team,
invite people, and take the lead of a lead-less incident and then close it; anyone in the channel could
take an empty lead; and the buttons and forms asked nobody's permission at all.
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from conftest import ADMIN
from opg_incident_core.chat import REGISTRY, Caller, ChatCommands
from opg_incident_slack import blocks
from opg_incident_slack.buttons import BUTTONS
from opg_incident_slack.modals import MODALS
from opg_incident_core.commands import ADMINS, ANYONE, IN_CHANNEL, RESPONDERS
from opg_incident_core.errors import IncidentError, NotAllowed

REPORTER, LEAD, MEMBER, OUTSIDER = "@rita", "@lena", "@mo", "@otto"
CHANNEL = "C0INC1"
# An argument each command would take (what follows the incident number); a refusal comes before it is read.
ARGS = {"summary": "the database is back", "impact": "nobody can pay", "sev": "critical", "note": "a note",
        "decision": "roll back", "action": "restart it", "action done": "1", "call": "https://meet.example/x",
        "invite": "<@U0NEW0001>", "ask": "anyone seen this?", "escalate": "webops", "update": "all well",
        "notify": "#opg-somewhere", "lead": "me", "scribe": "me", "comms": "me", "role": "scribe me",
        "handover": "scribe @sam", "checkin": "every 30m", "rca": "", "incident show": "",
        "incident declare": "Something else", "incident list": "", "accept": "", "decline": "",
        "incident reload": "", "incident backup": "", "help": ""}
CALLERS = {"role_holders": Caller(LEAD), "reporter": Caller(REPORTER), "channel_members": Caller(MEMBER, CHANNEL),
           "outsider": Caller(OUTSIDER), "admins": Caller(ADMIN)}


@pytest.fixture
def db_url(tmp_path):
    """SQLite only: the policy reads nothing of its own from the database (the inbox and the rest are
    tested on both)."""
    return f"sqlite:///{tmp_path / 'permissions.sqlite'}"


@pytest.fixture
def chat(service, tmp_path):
    from conftest import SHIPPED_SETTINGS
    from opg_incident_core import SettingsStore

    return ChatCommands(service, data_dir=str(tmp_path), settings_store=SettingsStore(SHIPPED_SETTINGS))


def incident(service) -> int:
    number = service.declare("Payments failing", REPORTER, lead=LEAD).incident.number
    service.attach_channel(number, CHANNEL, f"inc-{number}-payments", LEAD)
    return number


def expected(who: tuple, caller: str) -> bool:
    return "anyone" in who or caller in who


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("name", sorted(c.name for c in REGISTRY))
def test_permission_matrix(chat, service, name, caller):
    cmd = REGISTRY.get(name)
    number = incident(service)
    who = CALLERS[caller]
    args = ARGS.get(name, "") if not cmd.incident or who.channel == CHANNEL else f"{number} {ARGS.get(name, '')}".strip()
    try:
        chat.run(cmd, args, who)
        refused = None
    except NotAllowed as exc:
        refused = str(exc)
    except IncidentError:
        refused = None  # allowed, and then refused for another reason (bad input, a rule of the service)
    if expected(cmd.may, caller):
        assert refused is None or "is for" not in refused, (name, caller, refused)
    else:
        assert refused is not None and "is for" in refused, (name, caller)


def test_the_defaults_follow_the_issue():
    """State, role changes and everything that reaches outside the incident: role holders, reporter and
    admins; notes and actions: also people in the channel."""
    for name in ("sev", "summary", "impact", "call", "ask", "escalate", "invite", "notify", "update", "close",
                 "reopen", "rca", "archive", "checkin", "lead", "scribe", "comms", "role", "handover"):
        assert REGISTRY.get(name).may == RESPONDERS, name
    for name in ("note", "decision", "action", "action done"):
        assert REGISTRY.get(name).may == IN_CHANNEL, name
    for name in ("incident reload", "incident backup"):
        assert REGISTRY.get(name).may == ADMINS
    for name in ("help", "timeline", "actions", "roles", "incident list", "incident show"):
        assert REGISTRY.get(name).may == ANYONE


def test_an_outsider_cannot_lead_a_leadless_incident_from_a_dm_and_then_close_it(chat, service):
    number = service.declare("Nobody leads this", REPORTER).incident.number
    service.attach_channel(number, CHANNEL, "inc-1-nobody", REPORTER)
    for command, args in (("lead", f"{number} me"), ("close", str(number)), ("call", f"{number} https://evil.example"),
                          ("escalate", f"{number} webops"), ("sev", f"{number} trivial")):
        with pytest.raises(NotAllowed, match="is for"):
            chat.run(REGISTRY.get(command), args, Caller(OUTSIDER))
    inc = service.get(number)
    assert inc.roles.get("lead") is None and inc.status == "open" and inc.call_url in (None, "")


def test_the_settings_override_the_defaults(chat, service, settings_box):
    number = incident(service)
    settings_box[0] = settings_box[0].model_copy(update={"permissions": {"note": ("admins",), "timeline": ("role_holders",)}})
    with pytest.raises(NotAllowed, match="`note` of incident 1 is for bot admins"):
        chat.run(REGISTRY.get("note"), "x", Caller(MEMBER, CHANNEL))
    with pytest.raises(NotAllowed, match="is for the incident's role holders"):
        chat.run(REGISTRY.get("timeline"), str(number), Caller(OUTSIDER))
    assert "note logged" in chat.run(REGISTRY.get("note"), f"{number} from an admin", Caller(ADMIN)).text.lower()


def test_an_admin_takes_over_a_role_whose_holder_is_away(chat, service):
    number = incident(service)
    reply = chat.run(REGISTRY.get("lead"), f"{number} @sam", Caller(ADMIN))
    assert "@sam is now Incident Lead" in reply.text  # at once: no offer waiting for the absent lead
    assert service.get(number).roles["lead"] == "@sam"
    chat.run(REGISTRY.get("lead"), f"{number} none", Caller(ADMIN))
    assert service.get(number).roles.get("lead") is None
    # Anyone else who may change roles asks, and the holder must accept
    chat.run(REGISTRY.get("scribe"), f"{number} @sam", Caller(ADMIN))
    reply = chat.run(REGISTRY.get("scribe"), "me", Caller(REPORTER, CHANNEL))
    assert "it moves when they accept" in reply.text and service.get(number).roles["scribe"] == "@sam"


def test_someone_in_the_channel_cannot_take_an_empty_lead_and_then_close(chat, service, db_snapshot):
    """Before, `lead`, `scribe`, `comms`, `role` and `handover` were open to anyone in the incident's channel:
    they took the empty lead, and as its lead closed the incident."""
    number = service.declare("Nobody leads this", REPORTER).incident.number
    service.attach_channel(number, CHANNEL, "inc-1-nobody", REPORTER)
    before = db_snapshot()
    for command, args in (("lead", "me"), ("role", "lead me"), ("scribe", "me"), ("comms", "<@U0MO00001>"),
                          ("handover", "lead me"), ("close", "")):
        with pytest.raises(NotAllowed, match="is for the incident's role holders, its reporter and bot admins"):
            chat.run(REGISTRY.get(command), args, Caller(MEMBER, CHANNEL))
    assert db_snapshot() == before
    # its reporter (or a role holder, or a bot admin) names the lead
    assert "@mo is now Incident Lead" in chat.run(REGISTRY.get("lead"), "@mo", Caller(REPORTER, CHANNEL)).text


def test_permissions_in_the_yaml_must_name_commands_and_people(tmp_path):
    from conftest import SHIPPED_SETTINGS
    from opg_incident_core import load_settings
    from opg_incident_core.errors import SettingsError

    path = tmp_path / "settings.yml"
    for wrong, message in (("sumary: [admins]", "unknown command 'sumary'"), ("note: [everybody]", "note")):
        path.write_text(SHIPPED_SETTINGS.read_text().replace("permissions: {}", "permissions:\n  " + wrong))
        with pytest.raises(SettingsError, match=message):
            load_settings(path)


# -- the same policy for Slack's buttons and forms --------------------------------------------------
HEADLINES = "C0HEADLNS"  # #opg-incidents: the headline and its buttons
# Who may use each button and form: who may run the chat command it stands for (the issue's defaults).
# (who may, the button's value, or None for a form)
INTERACTIONS = {blocks.CREATE_CHANNEL: (RESPONDERS, "{n}"), blocks.PAGE_ONCALL: (RESPONDERS, "{n}"),
                blocks.EDIT: (RESPONDERS, "{n}"), blocks.CLOSE: (RESPONDERS, "{n}"),
                blocks.TAKE_ROLE: (RESPONDERS, "{n}:scribe"), blocks.PAGE_TEAM: (RESPONDERS, "{n}:webops"),
                blocks.HANDOVER_ACCEPT: (ANYONE, "{h}"), blocks.HANDOVER_DECLINE: (ANYONE, "{h}"),
                blocks.DECLARE_VIEW: (ANYONE, None), blocks.EDIT_VIEW: (RESPONDERS, None),
                blocks.CLOSE_VIEW: (RESPONDERS, None)}
FORM_VALUES = {blocks.DECLARE_VIEW: {"title": {"value": {"value": "Something else"}}},
               blocks.EDIT_VIEW: {"title": {"value": {"value": "Renamed"}},
                                  "severity": {"value": {"selected_option": {"value": "critical"}}},
                                  "lead": {"value": {"selected_user": OUTSIDER}}},
               blocks.CLOSE_VIEW: {"reason": {"value": {"selected_option": {"value": "resolved"}}}}}


class Gateway:
    def __init__(self):
        self.views = []

    def open_view(self, trigger_id, view):
        self.views.append(view)
        return "V1"


@pytest.fixture
def slack(service, settings_box):
    from opg_incident_slack import Effects, SlackInteractions

    config = SimpleNamespace(INCIDENT_PUBLIC_URL="https://incidents.example.org")
    interactions = SlackInteractions(service, Effects(Gateway(), service, lambda: settings_box[0], config),
                                     Gateway(), lambda: settings_box[0], ChatCommands(service))
    interactions.told = []
    interactions.tell = lambda user, channel, text: interactions.told.append((user, channel, text))
    return interactions


def interact(slack, which: str, user: str, channel: str | None, number: int, offer: int):
    """Click the button `which` (or submit the form `which`) as `user` in `channel`; the form's ack."""
    _, value = INTERACTIONS[which]
    if value is not None:
        return slack.on_interaction("interactive", {
            "type": "block_actions", "user": {"id": user}, "trigger_id": "t", "channel": {"id": channel},
            "actions": [{"action_id": which, "value": value.format(n=number, h=offer)}]})
    return slack.on_interaction("interactive", {"type": "view_submission", "user": {"id": user}, "view": {
        "callback_id": which, "private_metadata": json.dumps({"number": number, "channel": channel}),
        "state": {"values": FORM_VALUES[which]}}})


def test_the_interaction_table_covers_every_button_and_form():
    assert sorted(INTERACTIONS) == sorted([*BUTTONS, *MODALS])


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("which", sorted(INTERACTIONS))
def test_permission_matrix_of_buttons_and_forms(slack, service, db_snapshot, which, caller):
    number = incident(service)
    offer = service.handover(number, "comms", MEMBER, LEAD).happened[0].entry_id
    who = CALLERS[caller]
    channel = CHANNEL if caller == "channel_members" else HEADLINES  # people in the channel click it there
    before = db_snapshot()
    ack = interact(slack, which, who.user, channel, number, offer)
    refusals = [text for _, _, text in slack.told if "is for" in text] + \
        [text for text in ((ack or {}).get("errors") or {}).values() if "is for" in text]
    may, _ = INTERACTIONS[which]
    if expected(may, caller):
        assert not refusals, (which, caller, refusals)
    else:
        assert refusals, (which, caller)
        assert all(user == who.user and where == channel for user, where, _ in slack.told)  # to them, where they are
        assert "the incident's role holders, its reporter and bot admins" in refusals[0]
        assert db_snapshot() == before and slack.slack.views == []  # nothing changed, no form opened


def test_the_settings_permissions_apply_to_buttons_too(slack, service, settings_box, db_snapshot):
    number = incident(service)
    settings_box[0] = settings_box[0].model_copy(update={"permissions": {"escalate": ("admins",)}})
    before = db_snapshot()
    interact(slack, blocks.PAGE_ONCALL, LEAD, HEADLINES, number, 0)
    assert slack.told == [(LEAD, HEADLINES, f"Sorry: `escalate` of incident {number} is for bot admins. Its lead: "
                                            f"{LEAD}.")]
    assert db_snapshot() == before
    interact(slack, blocks.PAGE_ONCALL, ADMIN, HEADLINES, number, 0)
    assert len(slack.told) == 1 and db_snapshot() != before  # the admin's page is queued
