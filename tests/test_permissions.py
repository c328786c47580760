"""Who may do what (issue 12, part 2): every registered command × the incident's role holder, its reporter,
someone in its channel, an outsider writing in a direct message, and a bot admin. Before, any member could
from a DM and by number set impact and severity, set the call link, ask the help channels, page a team,
invite people, and take the lead of a lead-less incident and then close it.
"""
from __future__ import annotations

import pytest

from conftest import ADMIN
from opg_incident_core.chat import REGISTRY, Caller, ChatCommands
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
    """State and everything that reaches outside the incident: role holders, reporter and admins; notes,
    actions and roles taken or offered (moved only on acceptance): also people in the channel."""
    for name in ("sev", "summary", "impact", "call", "ask", "escalate", "invite", "notify", "update", "close",
                 "reopen", "rca", "archive", "checkin"):
        assert REGISTRY.get(name).may == RESPONDERS, name
    for name in ("note", "decision", "action", "action done", "lead", "scribe", "comms", "role", "handover"):
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
    # Anyone else still offers, and the holder must accept
    chat.run(REGISTRY.get("scribe"), f"{number} @sam", Caller(ADMIN))
    reply = chat.run(REGISTRY.get("scribe"), "me", Caller(MEMBER, CHANNEL))
    assert "it moves when they accept" in reply.text and service.get(number).roles["scribe"] == "@sam"


def test_permissions_in_the_yaml_must_name_commands_and_people(tmp_path):
    from conftest import SHIPPED_SETTINGS
    from opg_incident_core import load_settings
    from opg_incident_core.errors import SettingsError

    path = tmp_path / "settings.yml"
    for wrong, message in (("sumary: [admins]", "unknown command 'sumary'"), ("note: [everybody]", "note")):
        path.write_text(SHIPPED_SETTINGS.read_text().replace("permissions: {}", "permissions:\n  " + wrong))
        with pytest.raises(SettingsError, match=message):
            load_settings(path)
