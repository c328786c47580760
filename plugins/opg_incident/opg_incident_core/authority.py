"""The permission policy of the operations, in one place. The command registry's Permissions (commands.py)
decides who may run a command at all; this object decides the finer rules inside an operation ("only the
Incident Lead or a bot admin may close it"), and words every refusal the same way:
"Only <who> or a bot admin may <what>." (then, when there is one, what to do about it)."""
from __future__ import annotations

from typing import Callable, Iterable

from .errors import NotAllowed
from .text import mention

SYSTEM = "system"  # the bot itself, acting on a schedule or on the settings (never a chat user id)
LEAD = "the Incident Lead"
NO_LEAD = "It has no lead yet: take the role with `lead me` first."

LEAD_OR_ADMIN = "the Incident Lead or a bot admin"
COMMS_OR_LEAD = "the Communications Lead, the Incident Lead or a bot admin"

# The rules below, in words, for `help <command>` ("Who may: ..."): what the operations require beyond the
# registry's who-may-run-it (`{who}`: that, in words). Each names the check the operation makes.
RULES = {
    "close": LEAD_OR_ADMIN,                    # Closing._lead_may
    "reopen": LEAD_OR_ADMIN,                   # Closing._lead_may
    "archive": LEAD_OR_ADMIN,                  # Closing._lead_may
    "checkin": f"{LEAD_OR_ADMIN} sets them; {{who}} may see them",  # Checkins.set_checkin
    "rca": f"`rca ready`: {LEAD_OR_ADMIN}; `rca publish`: the Incident Lead, the Incident Scribe or a bot admin; "
           f"the draft and `rca share`: {{who}}",  # Comms.mark_rca_ready; the Confluence adapter's publish
    "update": COMMS_OR_LEAD,                   # Comms.post_update
    "updates": "anyone may list them; how often they are due: the Communications Lead (the Incident Lead while "
               "there is none) or a bot admin",  # Comms.set_update_cadence
    "notify": COMMS_OR_LEAD,                   # Comms.notify
    "handover": "the role's holder, the Incident Lead or a bot admin; {who} may ask for a held role for "
                "themselves (`handover <role> me`)",  # Roles._offer
    **{key: "{who}: an empty role at once, or a held one for themselves by asking its holder "
            f"(`{key} me`); a held role is offered by its holder or the Incident Lead and moves when accepted; a bot "
            f"admin takes it over at once; `{key} none`: its holder, the Incident Lead or a bot admin"
       for key in ("lead", "scribe", "comms")},  # Roles.assign_role, _offer, release_role
    "role": "as for `lead`, `scribe` and `comms` (`help lead`)",  # the same operations
}

Who = Iterable[tuple[str, "str | None"]]  # (how the refusal names them, who it is now or None)


class Authority:
    def __init__(self, is_admin: Callable[[str], bool]):
        self.is_admin = is_admin

    def allows(self, by: str, holders: Iterable[str | None] = ()) -> bool:
        """`by` is one of `holders`, the bot itself, or a bot admin."""
        return by == SYSTEM or by in {h for h in holders if h} or self.is_admin(by)

    def require(self, by: str, who: Who, what: str, then: str = "") -> None:
        """Raise NotAllowed unless `by` is one of `who` ((title, person or None) pairs: "the Incident Lead",
        "@bob"), the bot itself or a bot admin. The refusal: "Only <who> or a bot admin may <what>. <then>"."""
        who = list(who)
        if not self.allows(by, (person for _, person in who)):
            raise NotAllowed(refusal(who, what, then))

    def require_lead(self, by: str, lead: str | None, what: str) -> None:
        """The Incident Lead or a bot admin (close, reopen, archive, the analysis, check-ins)."""
        self.require(by, [(LEAD, lead)], what, "" if lead else NO_LEAD)

    def require_admin(self, by: str, what: str) -> None:
        if not self.is_admin(by):
            raise NotAllowed(f"Only bot admins may {what}.")


def refusal(who: Who, what: str, then: str = "") -> str:
    """The one wording of a refusal: "Only the Incident Lead (@bob) or a bot admin may close incident 1."."""
    named = [f"{title} ({mention(person)})" if title and person else title or mention(person)
             for title, person in who if title or person]
    return f"Only {', '.join(dict.fromkeys(named))} or a bot admin may {what}." + (f" {then}" if then else "")
