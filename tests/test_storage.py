"""Storage and migrations, on SQLite and PostgreSQL: the schema version is recorded, opening a database
twice changes nothing, data survives a reopen, SQLite runs in WAL with foreign keys."""
from __future__ import annotations

import pytest

from opg_incident_core import open_database, storage
from opg_incident_core.migrations import MIGRATIONS, current_version, migrate_to_latest

TABLES = {"schema_version", "incident", "role_assignment", "timeline_entry", "action"}


def versions():
    return [v.version for v in storage.SchemaVersion.select().order_by(storage.SchemaVersion.id)]


def test_open_database_creates_every_table_and_records_the_schema_version(db):
    assert TABLES <= set(db.get_tables())
    assert current_version(db) == len(MIGRATIONS) >= 1
    assert versions() == list(range(1, len(MIGRATIONS) + 1))
    assert storage.SchemaVersion.get(version=1).applied_at is not None


def test_opening_twice_is_idempotent_and_keeps_the_data(db, db_url):
    storage.Incident.create(number=1, title="Database down", reporter="@ann")
    before = versions()
    db.close()

    again = open_database(db_url)
    try:
        assert versions() == before  # no migration ran twice
        assert migrate_to_latest(again) == len(MIGRATIONS)
        assert versions() == before
        assert [(i.number, i.title) for i in storage.Incident.select()] == [(1, "Database down")]
    finally:
        again.close()


def test_numbers_are_unique_in_the_schema(db):
    from peewee import IntegrityError

    storage.Incident.create(number=7, title="a", reporter="@ann")
    with pytest.raises(IntegrityError):
        with db.atomic():
            storage.Incident.create(number=7, title="b", reporter="@bob")
    assert storage.Incident.select().count() == 1


def test_deleting_an_incident_cascades(db):
    inc = storage.Incident.create(number=1, title="a", reporter="@ann")
    storage.TimelineEntry.create(incident=inc, kind="note", at=storage.utcnow(), author="@ann", text="x")
    storage.Action.create(incident=inc, number=1, text="y", owner="@ann")
    storage.RoleAssignment.create(incident=inc, role="lead", holder="@ann", assigned_by="@ann")
    storage.Incident.delete().execute()
    assert storage.TimelineEntry.select().count() == 0
    assert storage.Action.select().count() == 0
    assert storage.RoleAssignment.select().count() == 0


def test_sqlite_default_lives_in_the_data_dir_with_wal_and_foreign_keys(tmp_path):
    data_dir = tmp_path / "data"
    db = open_database("", data_dir)
    try:
        assert (data_dir / "incidents.sqlite").exists()
        assert db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
        assert current_version(db) == len(MIGRATIONS)
        assert storage.is_sqlite(db)
    finally:
        db.close()


def test_an_empty_database_is_at_version_zero(tmp_path):
    from peewee import SqliteDatabase

    empty = SqliteDatabase(str(tmp_path / "empty.sqlite"))
    storage.database.initialize(empty)
    try:
        assert current_version(empty) == 0
        assert migrate_to_latest(empty) == len(MIGRATIONS)
        assert current_version(empty) == len(MIGRATIONS)
        assert TABLES <= set(empty.get_tables())
    finally:
        empty.close()


def test_later_migrations_add_what_is_missing_and_skip_what_version_1_made(db):
    from peewee import TextField
    from playhouse.migrate import SchemaMigrator

    from opg_incident_core import migrations, storage

    migrator = SchemaMigrator.from_database(db)
    columns = lambda: {c.name for c in db.get_columns("incident")}  # noqa: E731
    migrations.add_column_if_missing(db, migrator, storage.Incident, "call_url")  # made by v1: nothing to do
    assert "call_url" in columns()

    class Later(storage.Incident):
        mood = TextField(null=True)

        class Meta:
            table_name = "incident"

    migrations.add_column_if_missing(db, migrator, Later, "mood")
    migrations.add_column_if_missing(db, migrator, Later, "mood")  # twice: still one column
    assert "mood" in columns()
    migrations.add_index_if_missing(db, migrator, storage.Incident, ("title",))
    migrations.add_index_if_missing(db, migrator, storage.Incident, ("title",))
    assert sum(1 for i in db.get_indexes("incident") if tuple(i.columns) == ("title",)) == 1


def test_compiled_queries_make_the_rows_peewee_makes(db):
    """storage.run(model=...) builds instances from a reader resolved once (issue 17): the same values and
    types as Peewee's own select (times as datetimes, booleans as bools, foreign keys as ids), nothing dirty,
    and a second run (reader cached) alike."""
    import datetime as dt

    inc = storage.Incident.create(number=7, title="Payments", reporter="@ann", drill=True, channel_id="C7",
                                  declared_at=dt.datetime(2026, 1, 2, 3, 4, 5))
    storage.TimelineEntry.create(incident=inc, kind="note", at=dt.datetime(2026, 1, 2, 3, 5), author="@ann",
                                 text="hello", recorded_at=dt.datetime(2026, 1, 2, 3, 5))
    Incident, Entry = storage.Incident, storage.TimelineEntry
    for _ in range(2):
        [row] = storage.run("test_incident", lambda n: Incident.select().where(Incident.number == n), (7,),
                            model=Incident)
        assert row.__data__ == Incident.get(Incident.number == 7).__data__
        assert row.declared_at == dt.datetime(2026, 1, 2, 3, 4, 5) and row.drill is True and not row._dirty
        [entry] = storage.run("test_entry", lambda i: Entry.select().where(Entry.incident == i), (inc.id,),
                              model=Entry)
        assert entry.__data__ == Entry.get(Entry.incident == inc.id).__data__
        assert entry.incident_id == inc.id and entry.at == dt.datetime(2026, 1, 2, 3, 5)
    assert storage.run("test_none", lambda n: Incident.select().where(Incident.number == n), (8,),
                       model=Incident) == []


def test_a_compiled_change_counts_its_rows_and_parameters_out_of_order_are_refused(db):
    """storage.change: an UPDATE compiled once, the rows it changed. Peewee writes an UPDATE's columns in the
    model's order, not the order they are given in: parameters given in another order would land in the wrong
    columns, so compiling refuses them (issue 17: inbox.mark_processed compiled)."""
    import datetime as dt

    Inbox = storage.InboxEntry
    storage.insert(Inbox, dict(key="E1", kind="events_api", received_at=dt.datetime(2026, 1, 1), payload="{}",
                               processed_at=None))
    when = dt.datetime(2026, 1, 1, 0, 0, 1)
    with pytest.raises(ValueError):  # processed_at first: the SQL says payload first
        storage.change("test_marked_wrong", lambda at, none, k: Inbox.update(processed_at=at, payload=none)
                       .where(Inbox.key == k, Inbox.processed_at.is_null()), (when, None, "E1"))
    mark = ("test_marked", lambda none, at, k: Inbox.update(payload=none, processed_at=at)
            .where(Inbox.key == k, Inbox.processed_at.is_null()))
    assert storage.change(*mark, (None, when, "E1")) == 1
    assert storage.change(*mark, (None, when, "E1")) == 0  # marked already
    row = Inbox.get(Inbox.key == "E1")
    assert (row.processed_at, row.payload) == (when, None)
