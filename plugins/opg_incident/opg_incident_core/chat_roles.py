"""Chat commands for roles: name, hand over, accept or decline, list them; the lead's check-ins.

Who may change a role (lead, scribe, comms, role, handover; also by the Slack buttons and forms that stand
for them): the incident's role holders, its reporter and bot admins — not anyone in its channel, who could
otherwise take an empty lead and then close the incident. `accept` and `decline` are for the person asked.
"""
from __future__ import annotations

import re

from .commands import RESPONDERS, command
from .chat_base import NUMBER, USAGE, Caller, Reply
from .errors import InvalidInput
from .text import SLACK_USER, defuse, mention, parse_user, unknown_person
from .views import Outcome


class RoleCommands:
    """Part of ChatCommands (which provides service, _incident, Reply, USAGE and NUMBER)."""

    # In Slack a person is named by their id (`<@U123|bob>`, as Slack sends a mention): a plain `@bob` there
    # is a name Slack did not recognise, and is refused rather than stored. The Slack adapter sets it.
    people_by_id = False

    def _person(self, who: str, caller: Caller, usage: str) -> str:
        user = parse_user(who, caller.user)
        if user is None:
            raise InvalidInput(f"'{defuse(who)}' is not a person. Usage: `{usage}`.")
        if self.people_by_id and not SLACK_USER.match(user):
            raise InvalidInput(unknown_person(who))
        return user

    # -- roles --------------------------------------------------------------------------------------
    @command("role", usage="role <role> <@user|me|none>", help="Fill any role from the settings "
             "(`role scribe 4 @gina` or `role 4 scribe @gina` outside the incident's channel).",
             group="lead", may=RESPONDERS)
    def role_command(self, args: str, caller: Caller) -> Reply:
        words = (args or "").split()
        if len(words) >= 2 and NUMBER.match(words[0]) and not NUMBER.match(words[1]):
            words[0], words[1] = words[1], words[0]  # the number first, then the role
        if not words:
            raise InvalidInput("Usage: `role <role> <@user|me|none>`. Roles: "
                               + ", ".join(r.key for r in self.service.settings.assignable_roles))
        return self.role(words[0].lower(), " ".join(words[1:]), caller)

    def role(self, role_key: str, args: str, caller: Caller) -> Reply:
        role = self.service.settings.role(role_key)
        if role is None or not role.assignable:
            raise InvalidInput(f"'{defuse(role_key)}' is not a role; roles: "
                               f"{', '.join(r.key for r in self.service.settings.assignable_roles)}.")
        usage = USAGE["role"].format(role=role.key)
        number, who = self._incident(args, caller, usage=usage)
        who = who.strip()
        if not who:
            holder = self.service.get(number).roles.get(role.key)
            raise InvalidInput(f"{role.name} of incident {number}: {mention(holder)}.\n"
                               f"To change it: `{usage}`.")
        if who.lower() in ("none", "nobody"):
            out = self.service.release_role(number, role.key, caller.user)
            return self._said(number, f"Incident {number} has no {role.name} now.", out, f"no {role.name} now.")
        user = self._person(who, caller, usage)
        return self._role_reply(role, number, user, self.service.assign_role(number, role.key, user, caller.user))

    def _role_reply(self, role, number: int, user: str, out: Outcome) -> Reply:
        offered = next((h for h in out.happened if h.kind == "offered"), None)
        if offered is not None:
            if offered.by == user:
                lines = [f"Asked {mention(offered.old)} to hand over {role.name} of incident {number} to you; "
                         f"it moves when they accept."]
            else:
                lines = [f"Offered {role.name} of incident {number} to {mention(user)}; it moves when they "
                         f"accept (`accept`)."]
        else:
            lines = [f"{mention(user)} is now {role.name} of incident {number}."]
        more = ([role.guidance] if role.guidance else []) + list(out.warnings)
        short = (f"{mention(user)} is now {role.name}." if offered is None else lines[0])
        return self._said(number, "\n".join(lines + more), out, "\n".join([short] + more))

    @command("handover", usage="handover <role> <@user> [note]", help="Hand a role over; it moves when they accept. `handover <role> withdraw` takes the offer back.", group="lead", may=RESPONDERS)
    def handover(self, args: str, caller: Caller) -> Reply:
        number, rest = self._incident(args, caller, usage=USAGE["handover"])
        key, _, rest = rest.strip().partition(" ")
        who, _, note = rest.strip().partition(" ")
        if not key or not who:
            raise InvalidInput(f"Usage: `{USAGE['handover']}`, or `handover <role> withdraw`. Roles: "
                               f"{', '.join(r.key for r in self.service.settings.assignable_roles)}.")
        role = self.service.role(key)
        if who.lower() == "withdraw":
            out = self.service.withdraw_handover(number, role.key, caller.user)
            return self._said(number, f"The offer of {role.name} on incident {number} is withdrawn.", out)
        user = self._person(who, caller, USAGE["handover"])
        out = self.service.handover(number, role.key, user, caller.user, note)
        return self._role_reply(role, number, user, out)

    @command("accept", usage="accept [offer number]", help="Accept the role you were offered.", incident=False)
    def accept(self, args: str, caller: Caller) -> Reply:
        return self._answer(args, caller, True)

    @command("decline", usage="decline [offer number]", help="Decline the role you were offered.", incident=False)
    def decline(self, args: str, caller: Caller) -> Reply:
        return self._answer(args, caller, False)

    def _answer(self, args: str, caller: Caller, accept: bool) -> Reply:
        verb = "accept" if accept else "decline"
        pending = self.service.handovers(awaiting=caller.user)
        wanted = (args or "").strip()
        if wanted:
            match = NUMBER.match(wanted)
            if not match:
                raise InvalidInput(f"Usage: `{USAGE[verb]}`.")
            handover_id = int(match.group(1))
        elif len(pending) == 1:
            handover_id = pending[0].id
        elif not pending:
            raise InvalidInput("Nothing is waiting for your answer.")
        else:
            raise InvalidInput("Several offers wait for you; say which: " + "; ".join(
                f"`{verb} {h.id}` ({self._role_name(h.role)} of incident {h.number})" for h in pending))
        out = self.service.answer_handover(handover_id, caller.user, accept)
        handover = self.service.get_handover(handover_id)
        if not out.changed:
            return Reply(" ".join(out.warnings) or "Nothing changed.", out)
        name = self._role_name(handover.role)
        if handover.status == "accepted":
            role = self.service.settings.role(handover.role)
            lines = [f"{mention(handover.to_user)} is now {name} of incident {handover.number}"
                     + (f", taking over from {mention(handover.from_holder)}." if handover.from_holder else "."),
                     *( [role.description] if role else []), *out.warnings]
            return Reply("\n".join(lines), out)
        keeps = f" {mention(handover.from_holder)} stays {name}." if handover.from_holder else ""
        return Reply(f"The offer of {name} of incident {handover.number} was {handover.status}.{keeps}", out)

    @command("roles", usage="roles", help="Every role, who holds it since when, and pending offers.")
    def roles(self, args: str, caller: Caller) -> Reply:
        number, _ = self._incident(args, caller, usage=USAGE["roles"])
        inc = self.service.get(number)
        since = {"reporter": inc.declared_at, **{h.role: h.assigned_at for h in self.service.current_roles(number)}}
        fmt = self.service.format_time
        lines = [f"Roles of incident {number}:"]
        for role in self.service.settings.roles:
            holder = inc.roles.get(role.key)
            when = f" since {fmt(since[role.key])}" if role.key in since else ""
            need = " (required)" if role.required and not holder else ""
            lines.append(f"{role.name}: {mention(holder)}{when}{need}")
        for offer in self.service.handovers(number):
            lines.append(f"Pending: {self._role_name(offer.role)} offered to {mention(offer.to_user)}, waiting for "
                         f"{mention(offer.awaiting)} until {fmt(offer.expires_at)} (offer {offer.id})")
        return Reply("\n".join(lines))

    @command("checkin", usage="checkin [every <minutes>m|off]", help="The lead's check-ins: the bot prompts the channel on schedule.", group="lead", may=RESPONDERS)
    def checkin(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["checkin"])
        text = text.strip().lower()
        if not text:
            minutes = self.service.get_checkin(number)
            return Reply(f"Check-ins for incident {number}: " + (f"every {minutes} minutes." if minutes else
                         f"off. Set them with `{USAGE['checkin']}`."))
        if text == "off":
            out = self.service.set_checkin(number, None, caller.user)
            return self._said(number, f"Check-ins for incident {number} are off.", out, "check-ins are off.")
        match = re.fullmatch(r"(?:every\s+)?(\d{1,4})\s*(m|min|mins|minutes|h|hour|hours)?", text)
        if not match:
            raise InvalidInput(f"Usage: `{USAGE['checkin']}`, e.g. `checkin every 30m` or `checkin every 1h`.")
        minutes = int(match.group(1)) * (60 if (match.group(2) or "m").startswith("h") else 1)
        out = self.service.set_checkin(number, minutes, caller.user)
        return self._said(number, f"Check-ins for incident {number} every {minutes} minutes.", out,
                          f"check-ins every {minutes} minutes.")

    def _role_name(self, key: str) -> str:
        role = self.service.settings.role(key)
        return role.name if role else key



for _key, _name in (("lead", "Incident Lead"), ("scribe", "Incident Scribe"), ("comms", "Communications Lead")):
    command(_key, usage=f"{_key} <@user|me|none>", help=f"Name the {_name} (a role someone holds moves when they "
            "accept).", group="lead", may=RESPONDERS,
            run=lambda chat, args, caller, key=_key: chat.role(key, args, caller))(None)
