"""What we know of each incident's Confluence page: its id, the version we last wrote and a hash of what
we wrote (to tell a change made in Confluence from none). The table is created by the core's
migration 2 (opg_incident_core.migrations), which keeps a snapshot of these columns.

A row goes `creating` (before the page is created; body_hash then holds the marker the new page carries,
so that a retry can tell the page it made from someone else's page with the same title), `written` (the
page is written; its labels and the timeline may still be missing), `published` (all done)."""
from __future__ import annotations

import secrets

from peewee import DateTimeField, ForeignKeyField, IntegerField

from opg_incident_core import storage
from opg_incident_core.storage import CharField, Incident, TextField


class ConfluencePage(storage.BaseModel):
    incident = ForeignKeyField(Incident, unique=True, on_delete="CASCADE")
    space = CharField(max_length=255)
    title = CharField(max_length=255)
    page_id = CharField(max_length=64, null=True)  # NULL while the page is being created
    url = TextField(null=True)
    version = IntegerField(null=True)  # the version we wrote last
    body_hash = CharField(max_length=64, null=True)  # of the title and body we wrote last (creating: the marker)
    state = CharField(max_length=12, default="creating")  # creating | written | published
    job_id = IntegerField(null=True)  # the outbox item that wrote it last
    published_at = DateTimeField(null=True)
    published_by = CharField(max_length=64, null=True)

    class Meta:
        table_name = "confluence_page"


def of(number: int) -> ConfluencePage | None:
    return (ConfluencePage.select().join(Incident).where(Incident.number == number).first())


def creating(number: int, space: str, title: str, job_id: int | None) -> str:
    """Before the page is created (committed first): the marker the page will carry, so that a retry after a
    crash or a lost answer knows the page with this title is ours only if it carries it. An earlier attempt
    at the same page keeps its marker (the page it may have made carries that one)."""
    with storage.write():
        row = of(number) or ConfluencePage(incident=Incident.get(Incident.number == number))
        again = row.id is not None and row.state == "creating" and (row.space, row.title) == (space, title)
        mark = row.body_hash if again and row.body_hash else secrets.token_hex(16)
        row.space, row.title, row.page_id, row.url, row.version, row.body_hash = space, title, None, None, None, mark
        row.state, row.job_id = "creating", job_id
        row.save()
        return mark


def saved(number: int, *, space: str, page_id: str, url: str, title: str, version: int, body_hash: str | None,
          job_id: int | None, by: str, at) -> None:
    """The page is written; its labels and the timeline's entry may still be missing until `finished`."""
    with storage.write():
        row = of(number) or ConfluencePage(incident=Incident.get(Incident.number == number))
        row.space, row.page_id, row.url, row.title, row.version = space, str(page_id), url, title, version
        row.body_hash, row.state, row.job_id, row.published_at, row.published_by = \
            body_hash, "written", job_id, at, by
        row.save()


def finished(number: int) -> None:
    with storage.write():
        ConfluencePage.update(state="published").where(ConfluencePage.incident.in_(
            Incident.select(Incident.id).where(Incident.number == number))).execute()


def forget(number: int) -> None:
    with storage.write():
        ConfluencePage.delete().where(ConfluencePage.incident.in_(
            Incident.select(Incident.id).where(Incident.number == number))).execute()
