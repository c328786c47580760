"""IncidentService is a facade over collaborators, not a class built from mixins (issue 11, item 4): each
collaborator reaches nothing private of another (read from the source, like the import rules), and every
"X or a bot admin may" refusal of the operations comes from the one permission policy, in one wording."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from opg_incident_core import NotAllowed
from opg_incident_core.service import IncidentService, _Of
from conftest import ADMIN

CORE = Path(__file__).resolve().parents[1] / "plugins" / "opg_incident" / "opg_incident_core"

# Private names of third-party objects the core may use, each with its reason.
THIRD_PARTY = {"_meta": "peewee's model metadata", "_state": "peewee's connection state",
               "_reconnect": "peewee's ReconnectMixin, extended by connection.py"}
# Classes still built as mixins of a host class, each with its reason (issue 11 leaves them for later).
MIXINS = {"RoleCommands": "ChatCommands' command group (chat.py provides _incident and _said)",
          "CommsCommands": "ChatCommands' command group (chat.py provides _incident and _said)"}


def _is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_reaches(source: str) -> list[str]:
    """`x._name` where x is anything but the object itself (`service._view`, `self.service._role`,
    `self.records._log`): a private attribute of another object."""
    return [ast.unparse(n) for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.Attribute) and _private(n.attr) and not _is_self(n.value)
            and n.attr not in THIRD_PARTY]


def borrowed(source: str) -> dict[str, list[str]]:
    """Per class, the private `self._name`s it uses but neither defines nor inherits from a class of the same
    source: what a mixin takes from the class it is mixed into."""
    classes = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ClassDef)]
    defined: dict[str, set[str]] = {}
    for cls in classes:
        names = {n.name for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        names |= {t.id for n in cls.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
        names |= {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        names |= {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
                  and _is_self(n.value)}
        defined[cls.name] = names
    out = {}
    for cls in classes:
        bases = [ast.unparse(b) for b in cls.bases]
        if any(b not in defined for b in bases if b not in ("object", "Protocol")):
            continue  # a third-party base (peewee's): its private names are its own business
        known = defined[cls.name].union(*(defined[b] for b in bases if b in defined))
        used = sorted({n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute) and _is_self(n.value)
                       and _private(n.attr) and n.attr not in known})
        if used:
            out[cls.name] = used
    return out


def core_sources() -> dict[str, str]:
    return {f.name: f.read_text(encoding="utf-8") for f in sorted(CORE.glob("*.py"))}


def test_no_core_module_reaches_a_private_attribute_of_another_object():
    found = {name: reached for name, source in core_sources().items() if (reached := private_reaches(source))}
    assert found == {}


def test_no_core_class_borrows_private_methods_of_the_class_it_is_mixed_into():
    found = {f"{name}:{cls}": used for name, source in core_sources().items()
             for cls, used in borrowed(source).items() if cls not in MIXINS}
    assert found == {}
    assert len(core_sources()) > 20, "the checker read no source: it checks nothing"


def test_the_checker_sees_a_mixin_and_a_reach_into_another_object():
    """What the service looked like before: mixins using the host's private methods, and collaborators
    calling private methods of the service."""
    mixin = ("class RolesMixin:\n    def assign(self, n):\n        row = self._incident(n, lock=True)\n"
             "        return self._outcome(row, [])\n")
    reach = ("class ReminderSchedule:\n    def due(self):\n        return self.service._view(row)\n"
             "def f(service):\n    return service._log(row)\n")
    own = "class Roles:\n    def __init__(self):\n        self._cache = {}\n    def _pending(self):\n" \
          "        return self._cache, self._more()\n    def _more(self):\n        return 1\n"
    assert borrowed(mixin) == {"RolesMixin": ["_incident", "_outcome"]}
    assert sorted(private_reaches(reach)) == ["self.service._view", "service._log"]
    assert borrowed(own) == {} and private_reaches(own) == []


def test_the_service_is_a_facade_over_its_collaborators(service):
    assert IncidentService.__bases__ == (object,)
    operations = {name: op for name, op in vars(IncidentService).items() if isinstance(op, _Of)}
    assert len(operations) > 50
    for name, op in operations.items():
        collaborator = getattr(service, op.collaborator)
        assert not _private(name) and callable(getattr(collaborator, name)), name
        assert getattr(service, name).__self__ is collaborator, name  # the collaborator's own, bound


# -- one permission policy, one wording --------------------------------------------------------------

ONE_WORDING = re.compile(r"^Only (?P<who>.+?) or a bot admin may (?P<what>.+?)\.(?: (?P<then>.+))?$")
ANN, BOB, CAROL, DAN = "@ann", "@bob", "@carol", "@dan"


def refusal(call) -> str:
    with pytest.raises(NotAllowed) as caught:
        call()
    return str(caught.value)


def test_every_lead_or_admin_refusal_has_one_wording(service, settings_box):
    number = service.declare("Payments are failing", ANN).incident.number
    no_lead = refusal(lambda: service.close(number, ANN))
    assert no_lead == ("Only the Incident Lead or a bot admin may close incident 1. It has no lead yet: take the "
                       "role with `lead me` first.")
    service.assign_role(number, "lead", BOB, ANN)
    service.assign_role(number, "scribe", CAROL, CAROL)
    offer = service.handover(number, "scribe", ANN, CAROL)  # pending: CAROL offers the scribe to ANN
    assert offer.changed
    said = {
        "close_check": refusal(lambda: service.close_check(number, DAN)),
        "close": refusal(lambda: service.close(number, DAN)),
        "set_checkin": refusal(lambda: service.set_checkin(number, 30, DAN)),
        "handover": refusal(lambda: service.handover(number, "comms", DAN, ANN)),
        "withdraw_handover": refusal(lambda: service.withdraw_handover(number, "scribe", DAN)),
        "release_role": refusal(lambda: service.release_role(number, "scribe", DAN)),
        "post_update": refusal(lambda: service.post_update(number, "All good", DAN)),
        "set_update_cadence": refusal(lambda: service.set_update_cadence(number, 30, DAN)),
        "notify": refusal(lambda: service.notify(number, "#general", DAN)),
    }
    service.attach_channel(number, "C0INC0001", "inc-1-payments", BOB)
    service.close(number, BOB)
    said["reopen"] = refusal(lambda: service.reopen(number, DAN))
    said["archive_channel"] = refusal(lambda: service.archive_channel(number, DAN))
    said["mark_rca_ready"] = refusal(lambda: service.mark_rca_ready(number, DAN))
    for operation, text in said.items():
        assert ONE_WORDING.match(text), (operation, text)
    assert said["close"] == "Only the Incident Lead (@bob) or a bot admin may close incident 1."
    assert said["release_role"] == ("Only the Incident Scribe (@carol), the Incident Lead (@bob) or a bot admin may "
                                    "leave the Incident Scribe role empty.")
    assert said["withdraw_handover"] == "Only @carol or a bot admin may withdraw this offer."
    assert said["handover"] == ("Only the Incident Lead (@bob) or a bot admin may hand over the Communications Lead "
                                "role. To take it yourself: `comms me`.")
    assert said["set_update_cadence"] == ("Only the Communications Lead, the Incident Lead (@bob) or a bot admin may "
                                          "choose how often the stakeholder updates of incident 1 are due.")
    # A bot admin passes every one of these rules (and the bot itself, acting on a schedule).
    assert service.reopen(number, ADMIN).changed
    assert service.set_checkin(number, 30, ADMIN).changed
    assert service.authority.allows("system") and service.authority.allows(ADMIN)
    assert refusal(lambda: service.reload_settings(None, DAN)) == "Only bot admins may reload the settings."
