"""Schema migrations with playhouse.migrate, from the first release on.

Each migration is a function of (database, migrator) appended to MIGRATIONS; its position is its
version. Never edit a released migration: add a new one.

Version 1 creates the tables from the models as they are in the code, so a fresh database gets every
column at once; every later migration must therefore be idempotent — it may run on a database that
already has what it adds. Use the helpers below (`add_column_if_missing`, `add_index_if_missing`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from peewee import DateTimeField, ForeignKeyField, IntegerField, PostgresqlDatabase

from . import storage

if TYPE_CHECKING:  # imported when a migration runs: a start with nothing to migrate does without it
    from playhouse.migrate import SchemaMigrator


def _v1_initial(db, migrator: SchemaMigrator) -> None:
    db.create_tables([m for m in storage.MODELS if m is not storage.SchemaVersion])


class _ConfluencePageV2(storage.BaseModel):
    """confluence_page as version 2 made it. The table belongs to the Confluence adapter (its model:
    opg_incident_confluence.store.ConfluencePage); the core only creates it, so that one list orders
    every schema change, and without importing the adapter."""

    incident = ForeignKeyField(storage.Incident, unique=True, on_delete="CASCADE")
    space = storage.CharField(max_length=255)
    title = storage.CharField(max_length=255)
    page_id = storage.CharField(max_length=64, null=True)
    url = storage.TextField(null=True)
    version = IntegerField(null=True)
    body_hash = storage.CharField(max_length=64, null=True)
    state = storage.CharField(max_length=12, default="creating")
    job_id = IntegerField(null=True)
    published_at = DateTimeField(null=True)
    published_by = storage.CharField(max_length=64, null=True)

    class Meta:
        table_name = "confluence_page"


def _v2_rca_publishing(db, migrator: SchemaMigrator) -> None:
    """The published analysis: incident.rca_url (its link, for every adapter) and confluence_page."""
    add_column_if_missing(db, migrator, storage.Incident, "rca_url")
    db.create_tables([_ConfluencePageV2], safe=True)


def _v3_event_order(db, migrator: SchemaMigrator) -> None:
    """The latest Slack event applied per pinned message's text (timeline_entry.edited_ts) and per channel
    (incident.channel_name_ts, incident.channel_archive_ts): an older event handled later changes nothing."""
    add_column_if_missing(db, migrator, storage.TimelineEntry, "edited_ts")
    add_column_if_missing(db, migrator, storage.Incident, "channel_name_ts")
    add_column_if_missing(db, migrator, storage.Incident, "channel_archive_ts")


MIGRATIONS = [_v1_initial, _v2_rca_publishing, _v3_event_order]


def add_column_if_missing(db, migrator: SchemaMigrator, model, field_name: str) -> None:
    """Add `model.field_name` unless the table has it already (a fresh database made by version 1)."""
    from playhouse.migrate import migrate

    table = model._meta.table_name
    field = model._meta.fields[field_name]
    if field.column_name not in {c.name for c in db.get_columns(table)}:
        migrate(migrator.add_column(table, field.column_name, field))


def add_index_if_missing(db, migrator: SchemaMigrator, model, columns: tuple[str, ...], unique: bool = False) -> None:
    from playhouse.migrate import migrate

    table = model._meta.table_name
    if not any(tuple(i.columns) == tuple(columns) for i in db.get_indexes(table)):
        migrate(migrator.add_index(table, columns, unique))


def current_version(db) -> int:
    if not db.table_exists(storage.SchemaVersion._meta.table_name):
        return 0
    latest = storage.SchemaVersion.select().order_by(storage.SchemaVersion.version.desc()).first()
    return latest.version if latest else 0


def migrate_to_latest(db) -> int:
    """Apply every migration not yet applied, each in its own transaction; return the version."""
    db.create_tables([storage.SchemaVersion], safe=True)
    with db.atomic():
        if isinstance(db, PostgresqlDatabase):
            # Two processes starting together must not both migrate.
            db.execute_sql("LOCK TABLE schema_version IN EXCLUSIVE MODE")
        version = current_version(db)
        if version < len(MIGRATIONS):
            from playhouse.migrate import SchemaMigrator  # (and playhouse's Postgres and CockroachDB extensions)

            migrator = SchemaMigrator.from_database(db)
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            step(db, migrator)
            storage.SchemaVersion.create(version=number)
            version = number
    return version
