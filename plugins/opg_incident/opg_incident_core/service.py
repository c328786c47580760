"""The incident process as operations on the record. No chat platform in here.

Every change lands on the timeline with its time and author, in the same transaction as the change,
and every operation returns an Outcome saying what happened; the subscribers adapters registered hear it
in that transaction (subscribers.py) and decide what their platform is told.

IncidentService is the one object callers use. It holds the process's collaborators, each a small class
over one public unit of work (records.py: the incident's row, its view, its timeline entry, the Outcome,
the clock, the settings and the permission policy of authority.py), and names their operations:

    incidents  incidents.py  declare, the lead's updates, reading, the channel and headline bookkeeping
    roles      roles.py      roles and handovers
    checkins   reminders.py  the lead's check-ins, reminders counted, keyword nudges
    comms      comms.py      stakeholder updates, the call, help, paging, the root-cause analysis
    closing    closing.py    close, reopen, what is missing before the close, archiving the channel
    timelines  timeline.py   the scribe's log, actions, pinned messages
    inbox      inbox.py      every input exactly once
"""
from __future__ import annotations

import datetime as dt
from typing import Callable, Iterable

from . import storage
from .authority import SYSTEM, Authority  # noqa: F401  (SYSTEM re-exported)
from .closing import Closing
from .comms import Comms
from .inbox import Inbox
from .incidents import MAX_TITLE, Incidents  # noqa: F401  (MAX_TITLE re-exported)
from .records import Records
from .reminders import Checkins
from .roles import Roles
from .settings import Settings
from .subscribers import Subscriber
from .timeline import Timeline
from .views import IncidentView


class _Of:
    """`name = _Of("roles")` in IncidentService: its operation `name` is the collaborator's own method (bound,
    with its signature and docstring), so that a caller needs no collaborator's name."""

    def __init__(self, collaborator: str):
        self.collaborator = collaborator
        self.name = ""

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, service, owner=None):
        if service is None:
            return self
        return getattr(getattr(service, self.collaborator), self.name)


class IncidentService:
    def __init__(self, settings: Callable[[], Settings], admins: Iterable[str] = (),
                 clock: Callable[[], dt.datetime] = storage.utcnow):
        self.admins = frozenset(admins)
        self._now = clock
        self.authority = Authority(self.is_admin)  # every "X or a bot admin may" rule of the operations
        self.inbox = Inbox(self.now)
        self.records = Records(settings, self.now, self.authority, self.inbox.mark_processed)
        self.roles = Roles(self.records)
        self.incidents = Incidents(self.records, self.roles)
        self.checkins = Checkins(self.records)
        self.comms = Comms(self.records)
        self.closing = Closing(self.records)
        self.timelines = Timeline(self.records)

    @property
    def settings(self) -> Settings:
        return self.records.settings

    def now(self) -> dt.datetime:
        return storage.naive_utc(self._now())

    def is_admin(self, user: str) -> bool:
        return user in self.admins

    @property
    def journal(self):
        """Where inputs go while the database cannot be written (journal.py); None: nowhere."""
        return self.inbox.journal

    @journal.setter
    def journal(self, journal) -> None:
        self.inbox.journal = journal

    def subscribe(self, subscriber: Subscriber, kinds: Iterable[str] | None = None) -> None:
        """`subscriber(recorded)` hears every change in which something of `kinds` (None: anything) happened,
        inside the change's transaction: what it queues in the outbox commits with the change."""
        self.records.subscribers.subscribe(subscriber, kinds)

    def hears(self, kind: str) -> bool:
        """Some adapter acts on what happened of `kind`."""
        return self.records.subscribers.hears(kind)

    def view(self, row: storage.Incident) -> IncidentView:
        """What an incident's row says now, with its roles (for collaborators such as the reminders)."""
        return self.records.view(row)

    def format_time(self, value: dt.datetime | None) -> str:
        return self.records.format_time(value)

    # -- incidents ----------------------------------------------------------------------------------
    declare = _Of("incidents")
    set_title = _Of("incidents")
    set_summary = _Of("incidents")
    set_impact = _Of("incidents")
    set_severity = _Of("incidents")
    get = _Of("incidents")
    for_channel = _Of("incidents")
    has_channel = _Of("incidents")
    list = _Of("incidents")
    attach_channel = _Of("incidents")
    rename_channel = _Of("incidents")
    set_headline = _Of("incidents")
    enqueue_job = _Of("incidents")
    reload_settings = _Of("incidents")

    # -- roles and handovers ------------------------------------------------------------------------
    role = _Of("roles")
    assign_role = _Of("roles")
    handover = _Of("roles")
    answer_handover = _Of("roles")
    withdraw_handover = _Of("roles")
    expire_handovers = _Of("roles")
    set_handover_message = _Of("roles")
    release_role = _Of("roles")
    handovers = _Of("roles")
    get_handover = _Of("roles")
    role_history = _Of("roles")
    current_roles = _Of("roles")

    # -- check-ins, reminders, nudges ---------------------------------------------------------------
    reminder_sent = _Of("checkins")
    get_checkin = _Of("checkins")
    set_checkin = _Of("checkins")
    nudges = _Of("checkins")

    # -- stakeholder comms, help, paging, the analysis ----------------------------------------------
    post_update = _Of("comms")
    update_cadence = _Of("comms")
    set_update_cadence = _Of("comms")
    updates = _Of("comms")
    get_update = _Of("comms")
    last_update_at = _Of("comms")
    notify = _Of("comms")
    stakeholder_channels = _Of("comms")
    set_call = _Of("comms")
    ask_for_help = _Of("comms")
    record_invites = _Of("comms")
    page_specialist = _Of("comms")
    record_page = _Of("comms")
    mark_rca_ready = _Of("comms")
    share_rca = _Of("comms")
    rca_shared_at = _Of("comms")
    record_rca_published = _Of("comms")

    # -- close and reopen ---------------------------------------------------------------------------
    close_check = _Of("closing")
    close = _Of("closing")
    reopen = _Of("closing")
    archive_channel = _Of("closing")
    mark_channel_archived = _Of("closing")
    due_for_archive = _Of("closing")

    # -- the timeline -------------------------------------------------------------------------------
    log = _Of("timelines")
    complete_action = _Of("timelines")
    timeline = _Of("timelines")
    actions = _Of("timelines")
    record_pin = _Of("timelines")
    remove_pin = _Of("timelines")
    edit_pinned_message = _Of("timelines")

    # -- inputs, exactly once -----------------------------------------------------------------------
    record_input = _Of("inbox")
    record_journaled = _Of("inbox")
    mark_processed = _Of("inbox")
    hold_inputs = _Of("inbox")
    take_over_inputs = _Of("inbox")
    unprocessed_inputs = _Of("inbox")
    prune = _Of("inbox")
