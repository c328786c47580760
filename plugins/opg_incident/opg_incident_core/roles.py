"""Roles: who holds what, the rules from the settings, and handovers that the new holder must accept.

An empty role is simply taken (`lead me`) or named, by whoever the permission policy lets change roles
(commands.py: the incident's role holders, its reporter, bot admins). A role someone holds is never silently
overwritten: it is offered (by the holder, the lead or an admin) and moves when the new holder accepts,
or asked for (by the person who wants it) and moves when the holder agrees. Offers are persisted:
pending, then accepted, declined, expired or withdrawn; one pending offer per role.
"""
from __future__ import annotations

import datetime as dt

from . import storage
from .authority import LEAD
from .errors import InvalidInput, NotAllowed, NotFound
from .records import Records
from .storage import Handover, Incident, RoleAssignment
from .text import defuse, mention
from .views import Happened, HandoverView, Outcome, RoleHolding


class Roles:
    """Who holds what, and handovers: a collaborator of IncidentService over the unit of work (records.py)."""

    def __init__(self, records: Records):
        self.records = records

    # -- taking and naming --------------------------------------------------------------------------
    def assign_role(self, number: int, role_key: str, holder: str, by: str, note: str = "") -> Outcome:
        """Fill an empty role at once; for a held role, start a handover instead."""
        role = self.role(role_key)
        with storage.write():
            row = self.records.incident(number, lock=True)
            current = self.records.holders(row).get(role.key)
            if current is not None and current != holder and not self.records.authority.allows(by):
                return self._offer(row, role, holder, by, note)  # a bot admin takes over from an absent holder
            happened: list[Happened] = []
            warnings = self.assign(row, role.key, holder, by, happened, note)
            stale = self._pending(row, role.key)  # an offer of the role it had while empty
            if stale is not None:
                self._finish(row, stale, "withdrawn", "system", self.records.now())
                happened.append(self._happened(stale))
            return self.records.outcome(row, happened, warnings)

    def handover(self, number: int, role_key: str, to_user: str, by: str, note: str = "") -> Outcome:
        """Offer a role (held or empty) to someone; it moves when they accept."""
        role = self.role(role_key)
        with storage.write():
            row = self.records.incident(number, lock=True)
            return self._offer(row, role, to_user, by, note)

    def _offer(self, row: Incident, role, to_user: str, by: str, note: str) -> Outcome:
        current = self.records.holders(row)
        holder = current.get(role.key)
        if holder == to_user:
            raise InvalidInput(f"{mention(to_user)} is already the {role.name} of incident {row.number}.")
        lead = current.get("lead")
        asking = by == to_user and holder is not None  # someone asks the holder for the role
        if not asking:
            self.records.authority.require(by, [*([(f"the {role.name}", holder)] if holder else []), (LEAD, lead)],
                                           f"hand over the {role.name} role", f"To take it yourself: `{role.key} me`.")
        pending = self._pending(row, role.key)
        if pending is not None:
            raise InvalidInput(f"{mention(pending.to_user)} has not answered the offer of {role.name} yet. "
                               f"Withdraw it first: `handover {role.key} withdraw`.")
        warnings = self._rule_warnings(row, role, to_user, current)
        now = self.records.now()
        minutes = self.records.settings.reminders.handover_timeout_minutes
        offer = Handover.create(incident=row, role=role.key, from_holder=holder, to_user=to_user, requested_by=by,
                                awaiting=holder if asking else to_user, note=(note or "").strip()[:2000],
                                created_at=now, expires_at=now + dt.timedelta(minutes=minutes))
        if asking:
            text = f"{mention(by)} asked {mention(holder)} to take over as {role.name}"
        else:
            text = f"{mention(by)} offered {role.name} to {mention(to_user)}"
        self.records.log(row, "handover", by, text + (f": {offer.note}" if offer.note else ""))
        happened = Happened("offered", by, old=holder, new=to_user, role=role.key, entry_id=offer.id)
        return self.records.outcome(row, [happened], warnings)

    def answer_handover(self, offer_id: int, by: str, accept: bool) -> Outcome:
        """Accept or decline; only the person awaited may answer, and only once."""
        number = self._handover(offer_id).incident.number
        with storage.write():
            row = self.records.incident(number, lock=True)  # the incident first, then the offer: one lock order
            offer = self._handover(offer_id, lock=True)
            if offer.status != "pending":
                return self.records.outcome(row, [], [f"This offer was already {offer.status}."])
            if by != offer.awaiting:
                raise NotAllowed(f"This offer waits for {mention(offer.awaiting)} to answer.")
            now = self.records.now()
            if offer.expires_at <= now:
                self._finish(row, offer, "expired", "system", now)
                return self.records.outcome(row, [self._happened(offer)], ["This offer has expired."])
            if not accept:
                self._finish(row, offer, "declined", by, now)
                return self.records.outcome(row, [self._happened(offer)])
            if self.records.holders(row).get(offer.role) != offer.from_holder:
                self._finish(row, offer, "withdrawn", "system", now)  # the role changed hands meanwhile
                return self.records.outcome(row, [self._happened(offer)],
                                     ["This offer no longer stands: the role changed hands meanwhile."])
            role = self.role(offer.role)
            happened: list[Happened] = []
            warnings = self.assign(row, role.key, offer.to_user, by, happened, offer.note)
            self._finish(row, offer, "accepted", by, now, log=False)
            return self.records.outcome(row, [self._happened(offer), *happened], warnings)

    def withdraw_handover(self, number: int, role_key: str, by: str) -> Outcome:
        role = self.role(role_key)
        with storage.write():
            row = self.records.incident(number, lock=True)
            offer = self._pending(row, role.key)
            if offer is None:
                raise InvalidInput(f"There is no pending offer of {role.name} on incident {row.number}.")
            self.records.authority.require(by, [("", offer.requested_by), ("", offer.from_holder)],
                                           "withdraw this offer")
            self._finish(row, offer, "withdrawn", by, self.records.now())
            return self.records.outcome(row, [self._happened(offer)])

    def expire_handovers(self) -> list[Outcome]:
        """Offers nobody answered in time: the old holder keeps the role."""
        outcomes = []
        due = [h.id for h in Handover.select(Handover.id).where(Handover.status == "pending",
                                                                Handover.expires_at <= self.records.now())]
        for offer_id in due:
            number = self._handover(offer_id).incident.number
            with storage.write():
                row = self.records.incident(number, lock=True)
                offer = self._handover(offer_id, lock=True)
                if offer.status != "pending":
                    continue
                self._finish(row, offer, "expired", "system", self.records.now())
                outcomes.append(self.records.outcome(row, [self._happened(offer)]))
        return outcomes

    def set_handover_message(self, offer_id: int, channel: str, ts: str) -> None:
        Handover.update(message_channel=channel, message_ts=ts).where(Handover.id == offer_id).execute()

    # -- releasing ----------------------------------------------------------------------------------
    def release_role(self, number: int, role_key: str, by: str) -> Outcome:
        role = self.role(role_key)
        with storage.write():
            row = self.records.incident(number, lock=True)
            current = self.records.holders(row)
            holder = current.get(role.key)
            if holder is None:
                raise InvalidInput(f"Nobody holds the {role.name} role on incident {row.number}.")
            self.records.authority.require(by, [(f"the {role.name}", holder), (LEAD, current.get("lead"))],
                                           f"leave the {role.name} role empty")
            self._release(row, role.key, by, self.records.now())
            self.records.log(row, "role", by, f"{mention(holder)} is no longer {role.name}")
            return self.records.outcome(row, [Happened("role", by, old=holder, new=None, role=role.key)])

    # -- reading ------------------------------------------------------------------------------------
    def handovers(self, number: int | None = None, *, pending_only: bool = True,
                  awaiting: str | None = None) -> list[HandoverView]:
        query = Handover.select(Handover, Incident).join(Incident)
        if number is not None:
            query = query.where(Incident.number == number)
        if pending_only:
            query = query.where(Handover.status == "pending")
        if awaiting is not None:
            query = query.where(Handover.awaiting == awaiting)
        return [HandoverView.of(h) for h in query.order_by(Handover.id)]

    def get_handover(self, offer_id: int) -> HandoverView:
        return HandoverView.of(self._handover(offer_id))

    def role_history(self, number: int) -> list[RoleHolding]:
        row = self.records.incident(number)
        return [RoleHolding(a.role, a.holder, a.assigned_by, a.assigned_at, a.released_at)
                for a in RoleAssignment.select().where(RoleAssignment.incident == row)
                .order_by(RoleAssignment.assigned_at, RoleAssignment.id)]

    def current_roles(self, number: int) -> list[RoleHolding]:
        return [h for h in self.role_history(number) if h.released_at is None]

    # -- for the other collaborators: a declaration's lead, the chat's role names ------------------
    def assign(self, row: Incident, role_key: str, holder: str, by: str, happened: list, note: str = "") -> list:
        """Give the role to `holder` now, inside the caller's transaction (a declaration naming its lead does);
        what happened is appended to `happened`; the rules' warnings are returned."""
        role = self.role(role_key)
        current = self.records.holders(row)
        if current.get(role.key) == holder:
            raise InvalidInput(f"{mention(holder)} is already the {role.name} of incident {row.number}.")
        warnings = self._rule_warnings(row, role, holder, current)
        now = self.records.now()
        previous = self._release(row, role.key, by, now)
        RoleAssignment.create(incident=row, role=role.key, holder=holder, assigned_by=by, assigned_at=now)
        was = f", taking over from {mention(previous)}" if previous else ""
        self.records.log(row, "role", by, f"{mention(holder)} is now {role.name}{was}" + (f" ({note})" if note else ""))
        happened.append(Happened("role", by, old=previous, new=holder, role=role.key))
        return warnings

    def role(self, key: str):
        """The assignable role named `key` (any case); InvalidInput naming the roles otherwise."""
        settings = self.records.settings
        role = settings.role((key or "").lower())
        if role is None or not role.assignable:
            allowed = ", ".join(r.key for r in settings.assignable_roles)
            raise InvalidInput(f"'{defuse(key or '')}' is not a role you can assign. Roles: {allowed}.")
        return role

    # -- internals ----------------------------------------------------------------------------------
    def _rule_warnings(self, row: Incident, role, holder: str, current: dict) -> list[str]:
        warnings = []
        for other_key, other_holder in current.items():
            other = self.records.settings.role(other_key)
            if other_key == role.key or other_holder != holder or other is None:
                continue
            if other_key in role.not_with or role.key in other.not_with:
                rule = f"the {role.name} and the {other.name} should not be the same person"
                if self.records.settings.role_conflicts == "refuse":
                    raise NotAllowed(f"{mention(holder)} is already the {other.name}, and {rule}.")
                warnings.append(f"Note: {mention(holder)} is also the {other.name}; {rule}.")
        if role.key == "lead":
            team = self.records.settings.team_of(row.reporter)
            if team is not None and holder in team.members:
                warnings.append(f"Note: {mention(holder)} is in the reporter's team ({team.name}); "
                                f"{role.guidance or 'the lead should ideally come from outside it.'}")
        return warnings

    def _release(self, row: Incident, role_key: str, by: str, now: dt.datetime) -> str | None:
        current = (RoleAssignment.select()
                   .where(RoleAssignment.incident == row, RoleAssignment.role == role_key,
                          RoleAssignment.released_at.is_null()).first())
        if current is None:
            return None
        current.released_at, current.released_by = now, by
        current.save()
        return current.holder

    def _pending(self, row: Incident, role_key: str) -> Handover | None:
        return Handover.get_or_none(Handover.incident == row, Handover.role == role_key, Handover.status == "pending")

    def _handover(self, offer_id: int, lock: bool = False) -> Handover:
        offer = storage.first(Handover.select().where(Handover.id == offer_id), lock)
        if offer is None:
            raise NotFound(f"There is no role offer {offer_id}.")
        return offer

    def _finish(self, row: Incident, offer: Handover, status: str, by: str, now: dt.datetime, log: bool = True):
        offer.status, offer.decided_at, offer.decided_by = status, now, by
        offer.save()
        if log:
            role = self.records.settings.role(offer.role)
            name = role.name if role else offer.role
            keeps = f"; {mention(offer.from_holder)} stays {name}" if offer.from_holder else ""
            self.records.log(row, "handover", by,
                             f"The offer of {name} to {mention(offer.to_user)} was {status}{keeps}")

    @staticmethod
    def _happened(offer: Handover) -> Happened:
        return Happened(f"handover_{offer.status}", offer.decided_by or "", old=offer.from_holder,
                        new=offer.to_user, role=offer.role, entry_id=offer.id)
