"""Publishing the analysis to Confluence against the stand-in on loopback (tests/fake_confluence): the
client's errors in plain words, one page per incident with a new version per publish, refusing to
overwrite changes made in Confluence unless forced, a title taken by someone else, taking up a page a
crashed attempt created, the `rca publish` command's checks, and the outbox job with its retries."""
from __future__ import annotations

import datetime as dt
import time
import types
from email.utils import format_datetime
from urllib.parse import quote

import pytest

from fake_confluence import FakeConfluence
from fake_confluence.server import TOKEN, USER
from opg_incident_confluence import ConfluenceAdapter, ConfluenceError
from opg_incident_confluence import render, store
from opg_incident_confluence.client import ConfluenceClient
from opg_incident_confluence.publisher import Publisher
from opg_incident_core import outbox
from opg_incident_core.chat_base import Caller
from opg_incident_core.errors import InvalidInput, NotAllowed

LEAD, SCRIBE, OTHER = "U0LEAD001", "U0SCRIBE2", "U0OTHER03"
TITLE = "Incident 1: Payments are failing — root cause analysis"


@pytest.fixture
def wiki():
    with FakeConfluence() as fake:
        yield fake


def config(wiki, **more):
    values = dict(CONFLUENCE_URL=wiki.url, CONFLUENCE_USER=USER, CONFLUENCE_TOKEN=TOKEN, CONFLUENCE_SPACE="OPG",
                  INCIDENT_PUBLIC_URL="https://incidents.example")
    values.update(more)
    return types.SimpleNamespace(**values)


@pytest.fixture
def closed(service):
    n = service.declare("Payments are failing", "U0REPORT3", lead=LEAD, summary="Cards fail").incident.number
    service.assign_role(n, "scribe", SCRIBE, LEAD)
    service.close(n, LEAD)
    return n


@pytest.fixture
def publisher(service, settings_box, wiki):
    return Publisher(service, lambda: settings_box[0], config(wiki))


def with_confluence(settings_box, **values):
    settings_box[0] = settings_box[0].model_copy(
        update={"confluence": settings_box[0].confluence.model_copy(update=values)})


# -- publishing -------------------------------------------------------------------------------------

def test_publish_makes_one_page_then_new_versions_of_it(service, publisher, wiki, closed):
    first = publisher.publish(closed, LEAD, job_id=1)
    [page] = wiki.titled(TITLE)
    assert (first.change, first.version, page.version, page.space) == ("created", 1, 1, "OPG")
    assert first.url == f"{wiki.url}/spaces/OPG/pages/{page.id}/{quote(TITLE)}"  # from the page's links
    assert page.labels == ["incident", "rca"] and "Cards fail" in page.body
    assert service.get(closed).rca_url == first.url
    assert store.of(closed).page_id == page.id and store.of(closed).version == 1

    again = publisher.publish(closed, LEAD, job_id=2)  # nothing changed: no new version
    assert (again.change, page.version) == ("unchanged", 1)

    service.set_summary(closed, "An expired certificate stopped card payments", LEAD)
    second = publisher.publish(closed, SCRIBE, job_id=3)
    assert (second.change, second.version, page.version) == ("updated", 2, 2)
    assert wiki.titled(TITLE) == [page] and len(wiki.pages) == 1  # the same page, never a second one
    assert "An expired certificate" in page.body and "An expired certificate" not in page.history[0]
    assert [r["status"] for r in wiki.calls("PUT")] == [200]
    published = [e.text for e in service.timeline(closed) if e.kind == "rca_published"]
    assert published == [f"Root-cause analysis published (version 1): {first.url}",
                         f"Root-cause analysis published (version 2): {first.url}"]


def test_a_page_changed_in_confluence_is_not_overwritten_unless_forced(service, publisher, wiki, closed):
    publisher.publish(closed, LEAD, job_id=1)
    [page] = wiki.titled(TITLE)
    wiki.edit(page.id, "<p>Our analysis, written in Confluence</p>", by="Alice Editor")
    service.set_summary(closed, "Changed in the record too", LEAD)
    with pytest.raises(ConfluenceError) as refused:
        publisher.publish(closed, LEAD, job_id=2)
    assert refused.value.code == "edited" and not refused.value.transient
    assert "now version 2, by Alice Editor" in str(refused.value) and "wrote version 1" in str(refused.value)
    assert "rca publish --force" in str(refused.value)
    assert page.body == "<p>Our analysis, written in Confluence</p>" and not wiki.calls("PUT")

    forced = publisher.publish(closed, LEAD, force=True, job_id=3)
    assert (forced.change, forced.version, page.version) == ("updated", 3, 3)
    assert "Changed in the record too" in page.body


def test_a_change_between_our_look_and_our_write_is_refused_too(service, publisher, wiki, closed):
    publisher.publish(closed, LEAD, job_id=1)
    [page] = wiki.titled(TITLE)
    service.set_summary(closed, "New summary", LEAD)
    wiki.fail("PUT", "/content/", 409)  # someone saved just before us
    with pytest.raises(ConfluenceError, match="changed in Confluence since it was published"):
        publisher.publish(closed, LEAD, job_id=2)
    assert page.version == 1


def test_a_title_taken_by_a_page_we_did_not_make(service, publisher, wiki, closed):
    theirs = wiki.add_page("OPG", TITLE, "<p>someone's notes</p>")
    with pytest.raises(ConfluenceError) as refused:
        publisher.publish(closed, LEAD, job_id=1, force=True)  # not even with --force
    assert refused.value.code == "title_taken" and "opg-incident did not make it" in str(refused.value)
    assert f"/pages/{theirs.id}/" in str(refused.value) and "confluence.title_pattern" in str(refused.value)
    assert theirs.body == "<p>someone's notes</p>" and theirs.version == 1 and len(wiki.pages) == 1


def test_a_page_created_by_an_attempt_that_died_is_taken_up_not_duplicated(service, publisher, wiki, closed):
    mark = store.creating(closed, "OPG", TITLE, job_id=7)  # the attempt recorded its intent, created the page, died
    made = wiki.add_page("OPG", TITLE, render.marker(mark) + "<p>half</p>", by="opg-incident")
    result = publisher.publish(closed, LEAD, job_id=7)
    assert len(wiki.pages) == 1 and made.version == 2 and "Cards fail" in made.body
    assert (result.version, store.of(closed).page_id, store.of(closed).state) == (2, made.id, "published")


def test_a_page_someone_made_after_our_look_is_never_taken_for_ours(service, settings_box, wiki, closed):
    """Issue 15: a page with our title made by someone else between our look-up and our create (or after an
    attempt recorded itself and died before creating) is refused as taken, on this run and on every retry."""
    class Racy(ConfluenceClient):
        def create(self, space, title, body, parent_id):
            wiki.add_page(space, title, "<p>someone's own page</p>")  # made meanwhile, by hand
            return super().create(space, title, body, parent_id)

    racy = Publisher(service, lambda: settings_box[0], config(wiki), client_factory=Racy)
    with pytest.raises(ConfluenceError) as refused:
        racy.publish(closed, LEAD, job_id=1)
    [theirs] = wiki.titled(TITLE)
    assert refused.value.code == "title_taken" and f"/pages/{theirs.id}/" in str(refused.value)
    assert store.of(closed) is None  # no "creating" record left to mistake their page for ours
    plain = Publisher(service, lambda: settings_box[0], config(wiki))
    for force in (False, True):  # the retry, and even --force
        with pytest.raises(ConfluenceError, match="opg-incident did not make it"):
            plain.publish(closed, LEAD, job_id=2, force=force)
    assert (theirs.body, theirs.version, len(wiki.pages)) == ("<p>someone's own page</p>", 1, 1)
    assert not wiki.calls("PUT") and service.get(closed).rca_url is None

    # an attempt that recorded itself and died before creating; then someone took the title
    del wiki.pages[theirs.id]
    store.creating(closed, "OPG", TITLE, job_id=3)
    other = wiki.add_page("OPG", TITLE, "<p>another hand-made page</p>")
    with pytest.raises(ConfluenceError, match="opg-incident did not make it"):
        plain.publish(closed, LEAD, job_id=3)
    assert other.version == 1 and store.of(closed) is None and not wiki.calls("PUT")


def test_a_title_taken_by_our_own_earlier_attempt_is_taken_up(service, settings_box, wiki, closed):
    """The create is refused as taken, but the page there carries the marker of our earlier attempt (the
    look-up missed it): ours, so it is brought up to date, not refused and not duplicated."""
    mark = store.creating(closed, "OPG", TITLE, job_id=1)
    made = wiki.add_page("OPG", TITLE, render.marker(mark) + "<p>half</p>", by="opg-incident")

    class Blind(ConfluenceClient):  # the first look-up does not see the page yet
        looks = 0

        def find(self, space, title):
            Blind.looks += 1
            return None if Blind.looks == 1 else super().find(space, title)

    result = Publisher(service, lambda: settings_box[0], config(wiki), client_factory=Blind).publish(
        closed, LEAD, job_id=2)
    assert Blind.looks == 2 and len(wiki.pages) == 1
    assert (result.version, made.version, store.of(closed).page_id) == (2, 2, made.id) and "Cards fail" in made.body


def test_a_deleted_page_is_said_and_force_makes_a_new_one(service, publisher, wiki, closed):
    publisher.publish(closed, LEAD, job_id=1)
    [page] = wiki.titled(TITLE)
    del wiki.pages[page.id]
    with pytest.raises(ConfluenceError, match="no longer in Confluence.*rca publish --force"):
        publisher.publish(closed, LEAD, job_id=2)
    fresh = publisher.publish(closed, LEAD, force=True, job_id=3)
    assert fresh.change == "created" and store.of(closed).page_id != page.id and len(wiki.pages) == 1


def test_under_a_parent_by_title_or_id_and_each_failure_in_plain_words(service, publisher, settings_box, wiki,
                                                                       closed):
    parent = wiki.add_page("OPG", "Incident reviews")
    with_confluence(settings_box, parent="Incident reviews")
    publisher.publish(closed, LEAD, job_id=1)
    assert wiki.titled(TITLE)[0].parent == parent.id

    def failure(**settings) -> ConfluenceError:
        with_confluence(settings_box, **{"parent": "", **settings})
        other = Publisher(service, lambda: settings_box[0], config(wiki, **settings.pop("env", {})))
        n = service.declare("Another one", LEAD, lead=LEAD).incident.number
        service.close(n, LEAD)
        with pytest.raises(ConfluenceError) as caught:
            other.publish(n, LEAD, job_id=99)
        return caught.value

    assert failure(parent="99999").code == "not_found"
    assert "no page titled “Nope” in space OPG" in str(failure(parent="Nope"))
    assert "no space with the key NOPE" in str(failure(env={"CONFLUENCE_SPACE": "NOPE"}))
    wrong = failure(env={"CONFLUENCE_TOKEN": "wrong"})
    assert wrong.code == "unauthorized" and "CONFLUENCE_TOKEN" in str(wrong) and "wrong" not in str(wrong)
    wiki.fail("POST", r"/content$", 429, retry_after="7")
    limited = failure()
    assert (limited.code, limited.transient, limited.retry_after) == ("rate_limited", True, 7.0)
    wiki.stop()
    gone = failure()
    assert gone.code == "unreachable" and gone.transient and "127.0.0.1" in str(gone)


def test_labels_failing_after_an_update_still_get_the_version_on_the_timeline(service, publisher, wiki, closed):
    first = publisher.publish(closed, LEAD, job_id=1)
    service.set_summary(closed, "An expired certificate", LEAD)
    wiki.fail("POST", r"/label$", 500)  # the page is written, its labels are not
    with pytest.raises(ConfluenceError) as failed:
        publisher.publish(closed, LEAD, job_id=2)
    [page] = wiki.pages.values()
    assert failed.value.transient and page.version == 2 and store.of(closed).state == "written"
    again = publisher.publish(closed, LEAD, job_id=2)  # the retry: nothing left to write, the rest still to do
    assert (again.change, again.version, page.version, store.of(closed).state) == ("unchanged", 2, 2, "published")
    published = [e.text for e in service.timeline(closed) if e.kind == "rca_published"]
    assert published == [f"Root-cause analysis published (version 1): {first.url}",
                         f"Root-cause analysis published (version 2): {first.url}"]
    publisher.publish(closed, LEAD, job_id=3)  # done: said once only
    assert len([e for e in service.timeline(closed) if e.kind == "rca_published"]) == 2


def test_data_center_personal_access_token_without_a_user(service, settings_box, closed):
    with FakeConfluence(user=None) as dc:  # takes only "Authorization: Bearer <token>"
        token_only = Publisher(service, lambda: settings_box[0], config(dc, CONFLUENCE_USER=""))
        assert token_only.publish(closed, LEAD, job_id=1).change == "created" and len(dc.pages) == 1
        assert {r["status"] for r in dc.requests} == {200}
        wrong = Publisher(service, lambda: settings_box[0], config(dc, CONFLUENCE_USER="", CONFLUENCE_TOKEN="x"))
        with pytest.raises(ConfluenceError) as refused:
            wrong.publish(closed, LEAD, job_id=2)
        assert refused.value.code == "unauthorized"


def test_retry_after_as_an_http_date(service, publisher, wiki, closed):
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=120)
    wiki.fail("POST", r"/content$", 429, retry_after=format_datetime(when, usegmt=True))
    with pytest.raises(ConfluenceError) as limited:
        publisher.publish(closed, LEAD, job_id=1)
    assert limited.value.code == "rate_limited" and 110 <= limited.value.retry_after <= 120
    wiki.fail("POST", r"/content$", 429, retry_after=format_datetime(when - dt.timedelta(hours=1), usegmt=True))
    with pytest.raises(ConfluenceError) as past:
        publisher.publish(closed, LEAD, job_id=1)
    assert past.value.retry_after == 0  # a date gone by: try again at once


# -- the command ------------------------------------------------------------------------------------

def test_rca_publish_is_for_the_lead_scribe_or_an_admin_after_the_close(service, settings_box, wiki, closed):
    adapter = ConfluenceAdapter(service, lambda: settings_box[0], config(wiki))
    with pytest.raises(NotAllowed, match=r"^Only the Incident Lead \(.*\), the Incident Scribe \(.*\) or a bot admin may publish"):
        adapter.command(closed, "", Caller(OTHER))
    with pytest.raises(InvalidInput, match=r"Usage: `rca publish \[--force\]`"):
        adapter.command(closed, "--forse", Caller(LEAD))
    live = service.declare("Still burning", LEAD, lead=LEAD).incident.number
    with pytest.raises(InvalidInput, match="still open"):
        adapter.command(live, "", Caller(LEAD))
    assert outbox.pending() == 0
    reply = adapter.command(closed, "--force", Caller(SCRIBE, "C0CHAN"))
    assert "Publishing the root-cause analysis of incident 1 to Confluence (space OPG)" in reply.text
    assert outbox.pending(closed) == 1
    adapter.command(closed, "", Caller("@admin"))
    assert outbox.pending(closed) == 2


def test_without_settings_it_says_what_to_set(service, settings_box, closed):
    adapter = ConfluenceAdapter(service, lambda: settings_box[0], types.SimpleNamespace())
    with pytest.raises(InvalidInput) as told:
        adapter.command(closed, "", Caller(LEAD))
    for name in ("CONFLUENCE_URL", "CONFLUENCE_TOKEN", "CONFLUENCE_USER", "CONFLUENCE_SPACE", "confluence.space"):
        assert name in str(told.value)
    assert outbox.pending() == 0


# -- the job on the outbox ----------------------------------------------------------------------------

def test_the_job_publishes_retries_after_retry_after_and_tells_the_person(service, settings_box, wiki, closed):
    from opg_incident_slack.outbox_worker import OutboxWorker

    told = []
    adapter = ConfluenceAdapter(service, lambda: settings_box[0], config(wiki),
                                send=lambda user, text: told.append((user, text)))
    worker = OutboxWorker(adapter, lease_seconds=30)
    service._now = lambda: __import__("datetime").datetime.utcnow()  # the worker's delays are real seconds
    wiki.fail("POST", r"/content$", 429, retry_after="1")
    adapter.command(closed, "", Caller(LEAD))
    assert worker.run_once()
    assert told == [(LEAD, "⏳ Incident 1: Confluence asks us to slow down (429); trying again in 1 s. I will keep "
                           "trying; the analysis goes up as soon as Confluence lets me.")]
    assert not worker.run_once() and wiki.pages == {}  # not before Retry-After
    deadline = time.monotonic() + 5
    while not worker.run_once() and time.monotonic() < deadline:
        time.sleep(0.1)
    posts = wiki.calls("POST", r"/content$")
    assert [p["status"] for p in posts] == [429, 200] and posts[1]["at"] - posts[0]["at"] >= 1.0
    assert told[-1][1].startswith("📖 The root-cause analysis of incident 1 is in Confluence (version 1): http")
    assert outbox.pending() == 0

    wiki.edit(next(iter(wiki.pages)), "<p>by hand</p>")
    adapter.command(closed, "", Caller(LEAD))
    assert worker.run_once()
    assert told[-1][1].startswith("⚠️ The analysis of incident 1 was not published. The page of incident 1 was "
                                  "changed in Confluence") and len(told) == 3  # no "is in Confluence" after it
    assert outbox.pending() == 0  # a refusal ends the job: nothing left half-done to retry
