"""Publish the analysis of an incident to Confluence, or bring the page up to date: one page per incident,
a new version each time, never over changes made in Confluence unless forced. Safe to run again after
any failure: the page we are creating is recorded first, the page we made is recorded at once, and a run
that finds the page as we left it only adds what is missing."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from opg_incident_core.views import document_url
from opg_incident_web import present, rca

from . import render, store
from .client import ConfluenceClient, ConfluenceError
from .target import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Published:
    url: str
    version: int
    change: str  # created | updated | unchanged


class Publisher:
    def __init__(self, service, settings, config, client_factory=ConfluenceClient, names=None):
        """`names(user_id) -> name`: how people are shown (their id when None or unknown)."""
        self.service = service
        self.names = names
        self._settings = settings
        self.config = config
        self.client_factory = client_factory
        self.public_url = (getattr(config, "INCIDENT_PUBLIC_URL", "") or "http://localhost:3141").rstrip("/")

    def target(self) -> Target:
        return Target.of(self._settings(), self.config)

    def publish(self, number: int, by: str, *, force: bool = False, job_id: int | None = None) -> Published:
        target = self.target()
        if target.missing():
            raise ConfluenceError("Confluence is not set up: set " + "; ".join(target.missing()) + ".",
                                  "not_configured")
        settings = self._settings()
        record = rca.gather(self.service, number)
        analysis = rca.analysis(*record, settings, url=document_url(self.public_url, number),
                                names=present.record_people(*record, lookup=self.names))
        title, body = target.title_for(record[0], settings.zone), render.storage(analysis)
        digest = hashlib.sha256(f"{title}\0{body}".encode()).hexdigest()
        client = self.client_factory(target)
        row = store.of(number)

        if row is not None and row.page_id:
            page = client.page(row.page_id)
            if page is None and not force:
                raise ConfluenceError(f"The page published before ({row.url}) is no longer in Confluence: deleted, "
                                      "moved or hidden from the account. `rca publish --force` makes a new one.",
                                      "gone")
            if page is not None:
                return self._update(client, target, number, row, page, title, body, digest, by, force, job_id)
            store.forget(number)
            row = None

        client.space(target.space)  # a clear "no such space" before anything else
        page = client.find(target.space, title)
        if page is None:
            parent = client.parent_id(target.space, target.parent) if target.parent else None
            mark = store.creating(number, target.space, title, job_id)  # committed before the page exists
            try:
                page = client.create(target.space, title, render.marker(mark) + body, parent)
            except ConfluenceError as exc:  # someone made a page with that title since our look (or we did)
                if exc.code != "title_taken" or (page := client.find(target.space, title)) is None:
                    raise
            else:
                return self._done(client, target, number, page, title, digest, by, job_id, "created")
        row = store.of(number)
        if not self._ours(client, row, page):
            if row is not None and row.state == "creating":
                store.forget(number)  # the page with that title is not the one we set out to make
            raise ConfluenceError(f"A page titled “{title}” already exists in space {target.space} "
                                  f"({client.url_of(page)}), and opg-incident did not make it. Rename or move "
                                  "that page, or change confluence.title_pattern in the settings.", "title_taken")
        # We created it and stopped before recording it (a crash, a lost answer): take it up, as version 1.
        log.info("Incident %s: taking up Confluence page %s, created by an earlier attempt", number, page["id"])
        store.saved(number, space=target.space, page_id=page["id"], url=client.url_of(page), title=title,
                    version=1, body_hash=None, job_id=job_id, by=by, at=self.service.now())
        return self._update(client, target, number, store.of(number), page, title, body, digest, by, force, job_id)

    @staticmethod
    def _ours(client, row, page: dict) -> bool:
        """Whether `page` is the one an attempt of ours created: it carries the marker recorded before it."""
        if row is None or row.state != "creating" or not row.body_hash:
            return False
        return render.marker(row.body_hash) in client.body_of(page["id"])

    def _update(self, client, target, number, row, page, title, body, digest, by, force, job_id) -> Published:
        current = page["version"]["number"]
        if current != row.version and not force:
            raise edited(number, row, page, client.url_of(page))
        if current == row.version and row.body_hash == digest:
            return self._done(client, target, number, page, title, digest, by, job_id, "unchanged")
        try:
            page = client.update(row.page_id, title, body, current + 1)
        except ConfluenceError as exc:
            if exc.code != "conflict":
                raise
            latest = client.page(row.page_id) or page  # changed between our look and our write
            if not force:
                raise edited(number, row, latest, client.url_of(latest)) from None
            page = client.update(row.page_id, title, body, latest["version"]["number"] + 1)
        return self._done(client, target, number, page, title, digest, by, job_id, "updated")

    def _done(self, client, target, number, page, title, digest, by, job_id, change) -> Published:
        url, version = client.url_of(page), page["version"]["number"]
        before = store.of(number)
        unfinished = before is not None and before.state == "written"  # an earlier run stopped after writing
        store.saved(number, space=target.space, page_id=page["id"], url=url, title=title, version=version,
                    body_hash=digest, job_id=job_id, by=by, at=self.service.now())
        client.add_labels(page["id"], target.labels)  # adding a label a page has changes nothing
        if change != "unchanged" or unfinished or self.service.get(number).rca_url != url:
            self.service.record_rca_published(number, url, by, version)
        store.finished(number)
        return Published(url, version, change)


def edited(number: int, row, page: dict, url: str) -> ConfluenceError:
    version = page.get("version") or {}
    who = ((version.get("by") or {}).get("displayName") or "someone")
    when = f" at {version['when']}" if version.get("when") else ""
    return ConfluenceError(
        f"The page of incident {number} was changed in Confluence since it was published ({url}: now version "
        f"{version.get('number')}, by {who}{when}; opg-incident wrote version {row.version}). Publishing would "
        "overwrite those changes. Bring them into the record, then `rca publish --force` to overwrite the page.",
        "edited")
