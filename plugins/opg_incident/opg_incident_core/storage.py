"""Peewee storage: SQLite (WAL, foreign keys) by default, any Peewee database URL (PostgreSQL included).
Slack ids are stored, names are rendered. Times are stored in UTC."""
from __future__ import annotations

import contextlib
import datetime as dt
import weakref
from pathlib import Path

from peewee import (AutoField, BooleanField, DatabaseProxy, DateTimeField, ForeignKeyField, IntegerField, Model,
                    SqliteDatabase)
from peewee import CharField as _CharField
from peewee import TextField as _TextField

from . import connection
from .sqlite_writer import WRITER as _SQLITE_WRITER
from .sqlite_writer import LockedSqliteDatabase, WriterLock  # noqa: F401 (re-exported)

database = DatabaseProxy()
_CONTROL = dict.fromkeys(c for c in range(32) if chr(c) not in "\n\r\t")


class CharField(_CharField):
    """Text without control characters (PostgreSQL refuses NUL), cut to the column's length."""

    def db_value(self, value):
        if isinstance(value, str):
            value = value.translate(_CONTROL)[: self.max_length]
        return super().db_value(value)


class TextField(_TextField):
    def db_value(self, value):
        return super().db_value(value.translate(_CONTROL) if isinstance(value, str) else value)


def naive_utc(value: dt.datetime) -> dt.datetime:
    """The one rule for stored times: UTC without a zone (an aware time is converted, a naive one is taken
    as UTC already)."""
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value


def utcnow() -> dt.datetime:
    return naive_utc(dt.datetime.now(dt.timezone.utc))


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class SchemaVersion(BaseModel):
    version = IntegerField()
    applied_at = DateTimeField(default=utcnow)


class Incident(BaseModel):
    id = AutoField()
    number = IntegerField(unique=True)
    title = CharField(max_length=300)
    report = BooleanField(default=False)  # a report of something already over, not a live incident
    drill = BooleanField(default=False)
    summary = TextField(default="")
    impact = TextField(default="")
    severity = CharField(max_length=40, null=True)  # a severity key from the settings
    status = CharField(max_length=20, default="open")  # open | closed (indexed below)
    reporter = CharField(max_length=64)
    declared_at = DateTimeField(default=utcnow, index=True)
    closed_at = DateTimeField(null=True)
    closed_by = CharField(max_length=64, null=True)
    # When the lead last changed the summary or the impact (the "update the summary" reminder counts from it).
    lead_updated_at = DateTimeField(null=True, column_name="summary_updated_at")
    channel_id = CharField(max_length=64, null=True, unique=True)
    channel_name = CharField(max_length=80, null=True)
    channel_archived_at = DateTimeField(null=True)
    # The latest channel_rename and channel_(un)archive events applied (Slack's event_ts; they may come out of order).
    channel_name_ts = CharField(max_length=32, null=True)
    channel_archive_ts = CharField(max_length=32, null=True)
    headline_channel_id = CharField(max_length=64, null=True)
    headline_ts = CharField(max_length=32, null=True)
    checkin_minutes = IntegerField(null=True)  # the lead's check-in schedule; NULL when off
    checkin_since = DateTimeField(null=True)
    call_url = TextField(null=True)
    rca_ready_at = DateTimeField(null=True)
    rca_shared_at = DateTimeField(null=True)
    rca_url = TextField(null=True)  # where the analysis is published (a Confluence page); NULL until then

    class Meta:
        # (status, number, drill): pages by status in number order without sorting, counts by status and drill from the
        # index alone. The other finds the closed incidents whose channel is still to be archived (every poll).
        indexes = ((("status", "number", "drill"), False),
                   (("status", "channel_archived_at", "channel_id"), False))


class RoleAssignment(BaseModel):
    """Who held which role when; the row with released_at NULL is the current holder."""

    incident = ForeignKeyField(Incident, backref="role_assignments", on_delete="CASCADE")
    role = CharField(max_length=40)
    holder = CharField(max_length=64)
    assigned_by = CharField(max_length=64)
    assigned_at = DateTimeField(default=utcnow)
    released_at = DateTimeField(null=True)
    released_by = CharField(max_length=64, null=True)

    class Meta:
        indexes = ((("incident", "role", "released_at"), False),)


class TimelineEntry(BaseModel):
    incident = ForeignKeyField(Incident, backref="timeline", on_delete="CASCADE", index=False)  # see Meta
    kind = CharField(max_length=30)  # declared, summary, impact, severity, role, action, note, decision, pin, ...
    at = DateTimeField()  # when it happened (a pin: the message's own time)
    author = CharField(max_length=64)
    text = TextField(default="")
    recorded_at = DateTimeField(default=utcnow)
    source_channel = CharField(max_length=64, null=True)
    source_ts = CharField(max_length=32, null=True)
    thread_ts = CharField(max_length=32, null=True)
    permalink = TextField(null=True)
    files = TextField(default="[]")  # JSON list of {name, url}
    removed_at = DateTimeField(null=True)  # unpinned: kept, never lost, but no longer shown
    pin_event_ts = CharField(max_length=32, null=True)  # the latest pin/unpin/delete event applied (any order)
    edited_ts = CharField(max_length=32, null=True)  # the edit (message.edited.ts) whose text is kept (any order)

    class Meta:
        # Both lead with the incident (the foreign key's own index would only repeat that): one reads an
        # incident's timeline in order, the other finds a pinned message (without it SQLite walked every
        # entry of the incident on each pin).
        indexes = ((("incident", "at"), False), (("incident", "source_channel", "source_ts"), False))


class Action(BaseModel):
    incident = ForeignKeyField(Incident, backref="actions", on_delete="CASCADE")
    number = IntegerField()  # per incident: "action done 2"
    text = TextField()
    owner = CharField(max_length=64)
    created_at = DateTimeField(default=utcnow)
    done = BooleanField(default=False)
    done_at = DateTimeField(null=True)
    done_by = CharField(max_length=64, null=True)

    class Meta:
        indexes = ((("incident", "number"), True),)


class Handover(BaseModel):
    """A role offered to someone (or asked for by someone); it moves only when `awaiting` accepts."""

    incident = ForeignKeyField(Incident, backref="handovers", on_delete="CASCADE")
    role = CharField(max_length=40)
    from_holder = CharField(max_length=64, null=True)
    to_user = CharField(max_length=64)
    requested_by = CharField(max_length=64)
    awaiting = CharField(max_length=64)  # who must answer: the new holder, or the holder when asked for it
    note = TextField(default="")
    status = CharField(max_length=20, default="pending", index=True)  # pending|accepted|declined|expired|withdrawn
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField(index=True)
    decided_at = DateTimeField(null=True)
    decided_by = CharField(max_length=64, null=True)
    message_channel = CharField(max_length=64, null=True)
    message_ts = CharField(max_length=32, null=True)

    class Meta:
        indexes = ((("incident", "role", "status"), False),)


class ReminderState(BaseModel):
    """How often a reminder was actually sent for an incident, and when last."""

    incident = ForeignKeyField(Incident, backref="reminders", on_delete="CASCADE")
    key = CharField(max_length=60)
    count = IntegerField(default=0)
    last_sent_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("incident", "key"), True),)


class StakeholderUpdate(BaseModel):
    """A structured update for those affected, as posted."""

    incident = ForeignKeyField(Incident, backref="updates", on_delete="CASCADE")
    text = TextField()
    author = CharField(max_length=64)
    at = DateTimeField(default=utcnow)
    status = CharField(max_length=20)
    severity = CharField(max_length=40, null=True)
    summary = TextField(default="")


class StakeholderChannel(BaseModel):
    """A channel told of this incident's updates (from the settings or `notify #channel`)."""

    incident = ForeignKeyField(Incident, backref="stakeholder_channels", on_delete="CASCADE")
    channel = CharField(max_length=80)  # a name (from the settings) or a Slack id (from `notify <#C..>`)
    added_by = CharField(max_length=64)
    added_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("incident", "channel"), True),)


class OutboxItem(BaseModel):
    """Something to tell the chat platform, written in the same transaction as the change it follows.

    A worker sends it step by step (`step` = steps done); per incident, items go out in order.
    """

    incident = ForeignKeyField(Incident, null=True, backref="outbox", on_delete="CASCADE")
    kind = CharField(max_length=60)
    payload = TextField(default="{}")
    coalesce_key = CharField(max_length=120, null=True)  # at most one pending item per key
    status = CharField(max_length=12, default="pending")  # pending | done | failed
    step = IntegerField(default=0)
    inflight_step = IntegerField(null=True)  # a step that started: it may have reached the platform
    attempts = IntegerField(default=0)
    next_at = DateTimeField(default=utcnow)
    created_at = DateTimeField(default=utcnow)
    done_at = DateTimeField(null=True)
    lease_owner = CharField(max_length=120, null=True)
    lease_until = DateTimeField(null=True)
    last_error = TextField(null=True)

    class Meta:
        indexes = ((("status", "next_at"), False), (("incident", "status"), False),
                   (("coalesce_key", "status"), False))


class InboxEntry(BaseModel):
    """Every chat-platform input once: Slack redelivers until acked, replicas see the same input."""

    key = CharField(max_length=200, unique=True)
    kind = CharField(max_length=40)
    received_at = DateTimeField(default=utcnow, index=True)
    payload = TextField(null=True)  # kept until processed, so a restart can replay what a crash cut off
    processed_at = DateTimeField(null=True, index=True)


MODELS = [SchemaVersion, Incident, RoleAssignment, TimelineEntry, Action, Handover, ReminderState,
          StakeholderUpdate, StakeholderChannel, OutboxItem, InboxEntry]


# How long SQLite waits for another process's write lock, and an input being recorded for the other
# writers of this process: well under Slack's 3 s ack (then the input goes to the journal).
SQLITE_BUSY_MS = 1500


def open_database(url: str | None, data_dir: str | Path = "data"):
    """Connect the models to the database at `url` (default: SQLite in `data_dir`) and migrate it."""
    from .migrations import migrate_to_latest

    if not url:  # the default SQLite file, without playhouse.db_url and the extensions it imports (~6 ms, P5)
        Path(data_dir).mkdir(parents=True, exist_ok=True)
        db = _sqlite({"database": str(Path(data_dir).resolve() / "incidents.sqlite")})
    else:
        from playhouse.db_url import connect, parse

        scheme = url.split(":", 1)[0]
        db = (_sqlite(parse(url)) if scheme == "sqlite" else connection.postgresql(url, parse(url))
              if scheme in ("postgres", "postgresql") else connect(url))  # postgresql: dropped connections reopen
    database.initialize(db)
    migrate_to_latest(db)
    return db


def _sqlite(params: dict) -> LockedSqliteDatabase:
    return LockedSqliteDatabase(**params, pragmas={"journal_mode": "wal", "foreign_keys": 1, "synchronous": "full",
                                                   "busy_timeout": SQLITE_BUSY_MS})


@contextlib.contextmanager
def write(urgent: bool = False):
    """A write transaction. On SQLite the threads of this process queue for it on a lock (first come,
    first served, instead of SQLite's busy handler sleeping 1, 2, 5, 10 ms... while the database sits
    idle; `urgent` ones first), and it takes the write lock at once, so that two threads never both read
    and then fail to upgrade. Elsewhere row locks (SELECT ... FOR UPDATE) do that job."""
    db = database.obj
    if is_sqlite(db):  # an urgent writer (before Slack's ack) waits as long as SQLite's busy timeout, no longer
        with _SQLITE_WRITER.held(urgent, SQLITE_BUSY_MS / 1000 if urgent else None), db.atomic("IMMEDIATE"):
            yield
    else:
        with db.atomic():
            yield


_COMPILED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # database -> {name: SQL}


def run(name: str, build, params: tuple, *, lock: bool = False, model=None) -> list:
    """A hot query whose SQL depends only on its shape, compiled once per database and then run with
    new values as parameters (Peewee builds SQL text anew on every call, which costs more than SQLite
    takes to run it). `build(*params)` makes the query; every value in it must come from `params`, in the
    order of the SQL (Peewee writes an UPDATE's columns in the model's order): checked when it is compiled.
    Returns model instances when `model` is given, else tuples."""
    cursor = _execute(name, build, params, lock)
    return _instances(model, cursor) if model is not None else cursor.fetchall()


def change(name: str, build, params: tuple) -> int:
    """A hot UPDATE or DELETE, compiled once per database as `run` does; the number of rows it changed."""
    return _execute(name, build, params).rowcount


def _execute(name: str, build, params: tuple, lock: bool = False):
    db = database.obj
    params = tuple(v.translate(_CONTROL) if isinstance(v, str) else v for v in params)
    compiled = _COMPILED.setdefault(db, {})
    key = (name, lock)
    sql = compiled.get(key)
    if sql is None:
        query = build(*params)
        if lock and not is_sqlite(db):
            query = query.for_update()
        sql, built = db.get_sql_context().sql(query).query()  # in this database's dialect
        if len(built) != len(params) or not all(map(_same, built, params)):
            raise ValueError(f"{name}: the query's parameters are not those given, in that order")
        compiled[key] = sql
    return db.execute_sql(sql, params)


def _same(built, given) -> bool:
    """A parameter as Peewee wrote it (through its field's db_value: text cut to length, numbers as text)."""
    return built == given or str(built) == str(given) or (
        isinstance(built, str) and isinstance(given, str) and given.startswith(built))


_READERS: dict = {}  # (model, the cursor's column names) -> (field names, ((name, converter), ...))
_AS_READ = (IntegerField, _CharField, _TextField)  # python_value gives back what the driver returns for these


def _instances(model, cursor) -> list:
    """The rows as instances of `model`, as `model.raw` makes them (each column through its field's
    python_value, nothing dirty) without Peewee resolving the columns anew on every query."""
    names = tuple(d[0] for d in cursor.description)
    reader = _READERS.get((model, names))
    if reader is None:
        fields = [model._meta.combined[n] for n in names]
        convert = tuple((f.name, f.python_value) for f in fields
                        if not isinstance(f.rel_field if isinstance(f, ForeignKeyField) else f, _AS_READ))
        reader = _READERS[(model, names)] = (tuple(f.name for f in fields), convert)
    fields, convert = reader
    out = []
    for values in cursor.fetchall():
        obj = model(__no_default__=1)
        data = obj.__data__ = dict(zip(fields, values))
        for name, python_value in convert:
            data[name] = python_value(data[name])
        out.append(obj)
    return out


def insert(model, values: dict) -> int:
    """Insert a row of `model` (every field but the id given), compiled once per database; its id."""
    db = database.obj
    fields = [f for f in model._meta.sorted_fields if not isinstance(f, AutoField)]
    compiled = _COMPILED.setdefault(db, {})
    key = ("insert", model.__name__)
    sql = compiled.get(key)
    if sql is None:
        query = model.insert({f: values[f.name] for f in fields})
        if not is_sqlite(db):
            query = query.returning(model._meta.primary_key)
        sql, built = db.get_sql_context().sql(query).query()
        if len(built) != len(fields):
            raise ValueError(f"insert {model.__name__}: {len(built)} parameters for {len(fields)} fields")
        compiled[key] = sql
    cursor = db.execute_sql(sql, [f.db_value(values[f.name]) for f in fields])
    return cursor.lastrowid if is_sqlite(db) else cursor.fetchone()[0]


def save_fields(row, *fields) -> None:
    """Write these fields of `row` (UPDATE ... SET them WHERE id = row's), compiled once per database and
    set of fields: `row.save()` builds the SQL of every column anew on each call."""
    db, model = database.obj, type(row)
    pk = model._meta.primary_key
    compiled = _COMPILED.setdefault(db, {})
    key = ("update", model.__name__, tuple(f.name for f in fields))
    sql = compiled.get(key)
    if sql is None:
        query = model.update({f: getattr(row, f.name) for f in fields}).where(pk == row.id)
        sql, built = db.get_sql_context().sql(query).query()
        if len(built) != len(fields) + 1:
            raise ValueError(f"update {model.__name__}: {len(built)} parameters for {len(fields)} fields and the id")
        compiled[key] = sql
    db.execute_sql(sql, [f.db_value(getattr(row, f.name)) for f in fields] + [pk.db_value(row.id)])


def first(query, lock: bool = False):
    """The first row of `query`, locked for this transaction when asked (SQLite's write lock already
    serialises writers; elsewhere SELECT ... FOR UPDATE)."""
    if lock and not is_sqlite(database.obj):
        query = query.for_update()
    return query.first()


def is_sqlite(db) -> bool:
    return isinstance(db, SqliteDatabase)
