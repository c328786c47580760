"""Schema migrations with playhouse.migrate, from the first release on.

Each migration is a function of (database, migrator) appended to MIGRATIONS; its position is its
version. Never edit a released migration: add a new one.

Version 1 creates the tables from the models as they are in the code, so a fresh database gets every
column at once; every later migration must therefore be idempotent — it may run on a database that
already has what it adds. Use the helpers below (`add_column_if_missing`, `add_index_if_missing`).
"""
from __future__ import annotations

from peewee import PostgresqlDatabase
from playhouse.migrate import SchemaMigrator

from . import storage


def _v1_initial(db, migrator: SchemaMigrator) -> None:
    db.create_tables([m for m in storage.MODELS if m is not storage.SchemaVersion])


MIGRATIONS = [_v1_initial]


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
    migrator = SchemaMigrator.from_database(db)
    with db.atomic():
        if isinstance(db, PostgresqlDatabase):
            # Two processes starting together must not both migrate.
            db.execute_sql("LOCK TABLE schema_version IN EXCLUSIVE MODE")
        version = current_version(db)
        for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
            step(db, migrator)
            storage.SchemaVersion.create(version=number)
            version = number
    return version
