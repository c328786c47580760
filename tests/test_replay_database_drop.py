"""The crash replay runs every poll; a database that dropped its connection under it is opened again
(PostgreSQL), and one that stays away is said in one warning line, not an ERROR with a traceback every
round (seen in the pg_terminate storm: "Replaying unfinished inputs failed" and 80 lines of traceback)."""
import datetime as dt
import logging

import pytest
from peewee import OperationalError

from opg_incident_slack.replay import InputReplay


class Inputs:
    def in_hand(self):
        return ["Ev1"]


class Backend:
    def __init__(self):
        self.replayed = []

    def replay_inputs(self, inputs):
        self.replayed.extend(inputs)


class Service:
    """The core's inbox calls, with the database dropping the connection `drops` times first."""

    def __init__(self, drops):
        self.drops, self.held = drops, []

    def hold_inputs(self, keys):
        if self.drops:
            self.drops -= 1
            raise OperationalError("server closed the connection unexpectedly")
        self.held.extend(keys)

    def take_over_inputs(self, received_before):
        return [("Ev0", "events_api", {"event_id": "Ev0"})]


def test_a_database_that_stays_away_is_one_warning_line_and_nothing_is_taken_over(db, caplog):
    backend = Backend()
    with caplog.at_level(logging.INFO):
        InputReplay(Service(drops=10), Inputs(), backend)(dt.datetime.now(dt.timezone.utc))
    assert backend.replayed == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert any("Replaying unfinished inputs waits: the database is unavailable (server closed the connection"
               in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_dropped_postgresql_connection_is_opened_again_and_the_replay_goes_on(db):
    service, backend = Service(drops=1), Backend()
    InputReplay(service, Inputs(), backend)(dt.datetime.now(dt.timezone.utc))
    assert service.held == ["Ev1"] and backend.replayed == [("Ev0", "events_api", {"event_id": "Ev0"})]
