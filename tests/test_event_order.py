"""Slack events about one pinned message or one channel handled out of order (they are recorded on several
threads, handled on two workers, and Slack does not promise order): the record ends as Slack's state is,
on SQLite and PostgreSQL. Each event goes through channel_events.handle_event, as the Slack adapter
passes it, onto the real service."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from opg_incident_slack.channel_events import handle_event

CHANNEL, MSG_TS, PINNER, AUTHOR = "C0INC1", "1709632680.000100", "U0PINNER", "U0AUTHOR"


@pytest.fixture
def inc(service, clock):
    number = service.declare("Payments are failing", "@ann").incident.number
    service.attach_channel(number, CHANNEL, "inc-1-payments", "@ann")
    clock.advance(hours=1)
    return number


@pytest.fixture
def handle(service):
    interactions = SimpleNamespace(service=service, slack=None)  # every event below is complete: Slack is not asked
    return lambda event: handle_event(interactions, event)


def pin(event_ts: str, text: str, edited_ts: str | None = None) -> dict:
    message = {"type": "message", "user": AUTHOR, "text": text, "ts": MSG_TS, "pinned_to": [CHANNEL],
               "permalink": f"https://example.slack.com/archives/{CHANNEL}/p1709632680000100"}
    if edited_ts:
        message["edited"] = {"user": AUTHOR, "ts": edited_ts}
    return {"type": "pin_added", "user": PINNER, "channel_id": CHANNEL, "event_ts": event_ts,
            "item": {"type": "message", "channel": CHANNEL, "message": message}}


def unpin(event_ts: str) -> dict:
    return {"type": "pin_removed", "user": PINNER, "channel_id": CHANNEL, "event_ts": event_ts,
            "item": {"type": "message", "channel": CHANNEL, "message": {"type": "message", "ts": MSG_TS}}}


def edit(event_ts: str, text: str, pinned: bool = True) -> dict:
    """message_changed as Slack sends it: the edit's own time in message.edited.ts, the event's just after;
    a pinned message says where it is pinned (pinned_to)."""
    where = {"pinned_to": [CHANNEL]} if pinned else {}
    return {"type": "message", "subtype": "message_changed", "channel": CHANNEL, "hidden": True,
            "ts": event_ts, "event_ts": event_ts,
            "message": {"type": "message", "user": AUTHOR, "text": text, "ts": MSG_TS, **where,
                        "edited": {"user": AUTHOR, "ts": event_ts.split(".")[0] + ".000000"}},
            "previous_message": {"type": "message", "user": AUTHOR, "text": "(before)", "ts": MSG_TS, **where}}


def delete(event_ts: str, pinned: bool = True) -> dict:
    where = {"pinned_to": [CHANNEL]} if pinned else {}
    return {"type": "message", "subtype": "message_deleted", "channel": CHANNEL, "hidden": True,
            "deleted_ts": MSG_TS, "ts": event_ts, "event_ts": event_ts,
            "previous_message": {"type": "message", "user": AUTHOR, "text": "(before)", "ts": MSG_TS, **where}}


def archive(kind: str, event_ts: str) -> dict:
    return {"type": f"channel_{kind}", "channel": CHANNEL, "user": PINNER, "event_ts": event_ts}


def rename(event_ts: str, name: str) -> dict:
    return {"type": "channel_rename", "event_ts": event_ts,
            "channel": {"id": CHANNEL, "name": name, "created": 1709632000}}


def pinned(service, number) -> list[str]:
    return [e.text for e in service.timeline(number) if e.kind == "pin"]


# -- edits of a pinned message ------------------------------------------------------------------------
def test_two_edits_handled_in_reverse_keep_the_newer_text(service, inc, handle):
    handle(pin("1709632700.000001", "v0"))
    handle(edit("1709632720.000020", "v2"))
    handle(edit("1709632710.000010", "v1"))  # Slack sent it first
    assert pinned(service, inc) == ["v2"]


def test_edits_in_order_still_apply(service, inc, handle):
    handle(pin("1709632700.000001", "v0"))
    handle(edit("1709632710.000010", "v1"))
    handle(edit("1709632720.000020", "v2"))
    assert pinned(service, inc) == ["v2"]


def test_an_edit_handled_before_its_pin_is_kept_when_the_pin_comes(service, inc, handle):
    handle(edit("1709632710.000010", "corrected"))
    assert pinned(service, inc) == []  # not pinned yet (as far as we know): nothing shows
    handle(pin("1709632700.000001", "wrong figure"))
    assert pinned(service, inc) == ["corrected"]


def test_a_pin_made_after_an_edit_carries_the_edited_text(service, inc, handle):
    """Edited, then pinned: the pin's message is the edited one (and not older than the edit)."""
    handle(edit("1709632710.000010", "corrected"))
    handle(pin("1709632720.000001", "corrected again", edited_ts="1709632715.000000"))
    assert pinned(service, inc) == ["corrected again"]


def test_an_edit_older_than_the_pinned_text_is_ignored(service, inc, handle):
    handle(pin("1709632730.000001", "v2", edited_ts="1709632720.000000"))
    handle(edit("1709632710.000010", "v1"))
    assert pinned(service, inc) == ["v2"]


def test_edits_and_deletes_of_messages_not_pinned_leave_no_row(service, inc, handle):
    """Only a message Slack says is pinned here is remembered for a pin that may come late."""
    from opg_incident_core.storage import TimelineEntry

    before = TimelineEntry.select().count()
    handle(edit("1709632710.000010", "just chatting", pinned=False))
    handle(delete("1709632720.000020", pinned=False))
    assert TimelineEntry.select().count() == before


# -- deletions -----------------------------------------------------------------------------------------
def test_a_delete_handled_before_its_pin_keeps_the_message_off_the_timeline(service, inc, handle):
    handle(delete("1709632710.000010"))
    handle(pin("1709632700.000001", "secret pasted by mistake"))
    assert pinned(service, inc) == []


def test_a_delete_handled_after_an_early_edit_still_wins_over_the_late_pin(service, inc, handle):
    """Slack: pin, edit, delete; handled: edit, delete, pin."""
    handle(edit("1709632710.000010", "corrected"))
    handle(delete("1709632720.000020"))
    handle(pin("1709632700.000001", "secret"))
    assert pinned(service, inc) == []


def test_a_delete_in_order_removes_the_pin(service, inc, handle):
    handle(pin("1709632700.000001", "secret"))
    handle(delete("1709632710.000010"))
    assert pinned(service, inc) == []


def test_unpin_overtaking_its_pin_stays_guarded(service, inc, handle):
    handle(unpin("1709632700.000002"))
    handle(pin("1709632700.000001", "x"))
    assert pinned(service, inc) == []


# -- the channel ---------------------------------------------------------------------------------------
def test_archive_then_unarchive_handled_in_reverse_leave_the_channel_unarchived(service, inc, handle):
    handle(archive("unarchive", "1709632720.000020"))
    handle(archive("archive", "1709632710.000010"))
    assert service.for_channel(CHANNEL).channel_archived is False


def test_unarchive_then_archive_handled_in_reverse_leave_the_channel_archived(service, inc, handle):
    handle(archive("archive", "1709632720.000020"))
    handle(archive("unarchive", "1709632710.000010"))
    assert service.for_channel(CHANNEL).channel_archived is True


def test_archive_and_unarchive_in_order_still_apply(service, inc, handle):
    handle(archive("archive", "1709632710.000010"))
    assert service.for_channel(CHANNEL).channel_archived is True
    handle(archive("unarchive", "1709632720.000020"))
    assert service.for_channel(CHANNEL).channel_archived is False


def test_two_renames_handled_in_reverse_keep_the_newer_name(service, inc, handle):
    handle(rename("1709632720.000020", "inc-1-cards"))
    handle(rename("1709632710.000010", "inc-1-payments-old"))
    assert service.for_channel(CHANNEL).channel_name == "inc-1-cards"


def test_renames_in_order_still_apply(service, inc, handle):
    handle(rename("1709632710.000010", "inc-1-a"))
    handle(rename("1709632720.000020", "inc-1-b"))
    assert service.for_channel(CHANNEL).channel_name == "inc-1-b"


# -- the schema ----------------------------------------------------------------------------------------
NEW_COLUMNS = {"timeline_entry": ("edited_ts",), "incident": ("channel_name_ts", "channel_archive_ts")}


def test_a_database_made_before_the_order_columns_gets_them_and_keeps_its_rows(db, db_url, service, inc):
    """A version-2 database (no edited_ts, channel_name_ts, channel_archive_ts) opens: version 3 adds them."""
    from playhouse.migrate import SchemaMigrator, migrate

    from opg_incident_core import open_database, storage
    from opg_incident_core.migrations import MIGRATIONS, current_version

    service.log(inc, "note", "kept through the migration", "@ann")
    migrator = SchemaMigrator.from_database(db)
    for table, columns in NEW_COLUMNS.items():
        for column in columns:
            migrate(migrator.drop_column(table, column))
    storage.SchemaVersion.delete().where(storage.SchemaVersion.version > 2).execute()
    assert current_version(db) == 2
    db.close()

    again = open_database(db_url)
    try:
        assert current_version(again) == len(MIGRATIONS) == 3
        for table, columns in NEW_COLUMNS.items():
            assert set(columns) <= {c.name for c in again.get_columns(table)}
        assert "kept through the migration" in [e.text for e in service.timeline(inc)]
        handle = SimpleNamespace(service=service, slack=None)
        handle_event(handle, rename("1709632720.000020", "inc-1-cards"))
        handle_event(handle, rename("1709632710.000010", "inc-1-old"))
        assert service.for_channel(CHANNEL).channel_name == "inc-1-cards"
    finally:
        again.close()
