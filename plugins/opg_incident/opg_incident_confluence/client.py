"""Confluence's REST API v1 (`/rest/api/content`, Cloud and Data Center) through atlassian-python-api.

Every failure becomes a ConfluenceError in plain words, fit to tell the person who asked: a wrong token
(401), no permission (403), no such space or page (404), a stale version (409), rate limits (429, with
Retry-After), Confluence's own errors (5xx) and an unreachable site. Rate limits and outages are
`transient`: the outbox tries again (after Retry-After). Tokens are never logged nor put in messages.
"""
from __future__ import annotations

import datetime as dt
import logging
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from opg_incident_core.errors import OutsideError

from .target import Target

log = logging.getLogger(__name__)
CONTENT = "rest/api/content"


class ConfluenceError(OutsideError):
    def __init__(self, message: str, code: str, *, transient: bool = False, retry_after: float | None = None):
        super().__init__(message, transient=transient, retry_after=retry_after)
        self.code = code


class ConfluenceClient:
    def __init__(self, target: Target, timeout: float = 20.0):
        self.target = target
        auth = dict(username=target.user, password=target.token) if target.user else dict(token=target.token)
        # No retries inside the client: a rate limit goes back to the outbox, which waits Retry-After
        # without holding a worker.
        from atlassian import Confluence  # here, not at import: it costs ~0.25 s of every start

        self.api = Confluence(url=target.url, timeout=timeout, retry_with_header=False, backoff_and_retry=False,
                              **auth)

    # -- reading ------------------------------------------------------------------------------------
    def space(self, key: str) -> dict:
        return self._call("get", f"rest/api/space/{quote(key, safe='')}",
                          not_found=f"Confluence has no space with the key {key} (or the account cannot see it). "
                                    "Check CONFLUENCE_SPACE or confluence.space in the settings: the key, not "
                                    "the name.")

    def page(self, page_id: str) -> dict | None:
        """The page with its version, or None when it is not there (deleted, or out of the account's sight)."""
        try:
            return self._call("get", f"{CONTENT}/{quote(str(page_id), safe='')}",
                              params={"expand": "version,space"})
        except ConfluenceError as exc:
            if exc.code == "not_found":
                return None
            raise

    def body_of(self, page_id: str) -> str:
        """The page's content in storage format ("" when it is not there)."""
        try:
            data = self._call("get", f"{CONTENT}/{quote(str(page_id), safe='')}", params={"expand": "body.storage"})
        except ConfluenceError as exc:
            if exc.code == "not_found":
                return ""
            raise
        return str(((data.get("body") or {}).get("storage") or {}).get("value") or "")

    def find(self, space: str, title: str) -> dict | None:
        data = self._call("get", CONTENT, params={"spaceKey": space, "title": title, "type": "page",
                                                  "expand": "version,space"})
        return next(iter(data.get("results") or []), None)

    def parent_id(self, space: str, parent: str) -> str:
        """The id of the parent page named in the settings (an id, or a title in the space)."""
        if parent.isdigit():
            page = self.page(parent)
            if page is None:
                raise ConfluenceError(f"Confluence has no page with the id {parent} (or the account cannot see it). "
                                      "Check confluence.parent in the settings.", "not_found")
            where = ((page.get("space") or {}).get("key"))
            if where and where != space:
                raise ConfluenceError(f"The parent page {parent} is in space {where}, not in {space}. Check "
                                      "confluence.parent and the space in the settings.", "not_found")
            return str(page["id"])
        page = self.find(space, parent)
        if page is None:
            raise ConfluenceError(f"Confluence has no page titled “{parent}” in space {space} to put the "
                                  "analysis under. Check confluence.parent in the settings (a title or an id).",
                                  "not_found")
        return str(page["id"])

    def url_of(self, page: dict) -> str:
        links = page.get("_links") or {}
        if links.get("webui"):
            base = links.get("base") or self.target.url
            return base.rstrip("/") + links["webui"]
        return f"{self.target.url}/pages/viewpage.action?pageId={quote(str(page['id']))}"

    # -- writing ------------------------------------------------------------------------------------
    def create(self, space: str, title: str, body: str, parent_id: str | None) -> dict:
        data = {"type": "page", "title": title, "space": {"key": space},
                "body": {"storage": {"value": body, "representation": "storage"}}}
        if parent_id:
            data["ancestors"] = [{"id": parent_id}]
        return self._call("post", CONTENT, data=data, title=title)

    def update(self, page_id: str, title: str, body: str, version: int) -> dict:
        """Version `version` of the page; Confluence refuses it (409) when the page is not at version - 1."""
        data = {"id": page_id, "type": "page", "title": title,
                "version": {"number": version, "message": "Published by opg-incident"},
                "body": {"storage": {"value": body, "representation": "storage"}}}
        return self._call("put", f"{CONTENT}/{quote(str(page_id), safe='')}", data=data, title=title)

    def add_labels(self, page_id: str, labels) -> None:
        if labels:
            self._call("post", f"{CONTENT}/{quote(str(page_id), safe='')}/label",
                       data=[{"prefix": "global", "name": name} for name in labels])

    # -- plumbing -----------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, params=None, data=None, not_found: str | None = None,
              title: str | None = None) -> dict:
        import requests  # here, not at import: a start without Confluence need not load it (issue 17, P5)

        host = self.target.host
        try:
            kwargs = {"params": params} if params else {}
            if data is not None:
                kwargs["data"] = data
            response = getattr(self.api, method)(path, advanced_mode=True, **kwargs)
        except requests.Timeout:
            raise ConfluenceError(f"Confluence at {host} did not answer in time.", "unreachable",
                                  transient=True) from None
        except (requests.RequestException, OSError) as exc:
            log.warning("Confluence %s %s: %s", method.upper(), path, type(exc).__name__)
            raise ConfluenceError(f"Confluence at {host} cannot be reached ({_reason(exc)}).", "unreachable",
                                  transient=True) from None
        status = response.status_code
        if status < 300:
            try:
                return response.json() if response.content else {}
            except ValueError:
                raise ConfluenceError(f"Confluence at {host} answered with something that is not JSON: is "
                                      "CONFLUENCE_URL the site's address (Cloud: ending in /wiki)?",
                                      "bad_answer") from None
        said = _message(response)
        log.warning("Confluence %s %s: HTTP %s %s", method.upper(), path, status, said[:200])
        if status == 401:
            raise ConfluenceError("Confluence refused the credentials (401): check CONFLUENCE_USER (the account's "
                                  "e-mail on Cloud; empty with a Data Center personal access token) and "
                                  "CONFLUENCE_TOKEN.", "unauthorized")
        if status == 403:
            raise ConfluenceError(f"The Confluence account may not do that (403): give it permission to add and "
                                  f"edit pages in space {self.target.space}.", "forbidden")
        if status == 404:
            raise ConfluenceError(not_found or f"Confluence has no such page (404): {said}", "not_found")
        if status == 409:
            raise ConfluenceError("The page was changed in Confluence meanwhile (409).", "conflict")
        if status == 429:
            wait = _retry_after(response.headers.get("Retry-After"))
            raise ConfluenceError(f"Confluence asks us to slow down (429); trying again in {wait:g} s.",
                                  "rate_limited", transient=True, retry_after=wait)
        if status >= 500:
            raise ConfluenceError(f"Confluence had a problem (HTTP {status}).", "server_error", transient=True)
        if status == 400 and title is not None and "title" in said.lower() and "exist" in said.lower():
            raise ConfluenceError(f"A page titled “{title}” already exists in space {self.target.space}.",
                                  "title_taken")
        raise ConfluenceError(f"Confluence refused the page (HTTP {status}): {said}", "refused")


def _message(response) -> str:
    try:
        data = response.json()
    except ValueError:
        return " ".join((response.text or "").split())[:300]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("reason") or "")[:300]
    return ""


def _retry_after(value: str | None) -> float:
    """Seconds to wait: Retry-After as seconds or an HTTP date; 30 s when it is missing or odd."""
    if not value:
        return 30.0
    try:
        return min(3600.0, max(0.0, float(value)))
    except ValueError:
        pass
    try:
        return min(3600.0, max(0.0, (parsedate_to_datetime(value) - dt.datetime.now(dt.timezone.utc)).total_seconds()))
    except (TypeError, ValueError):
        return 30.0


def _reason(exc: Exception) -> str:
    text = str(exc).lower()
    for needle, words in (("refused", "connection refused"), ("name or service", "unknown host"),
                          ("nodename", "unknown host"), ("certificate", "TLS certificate problem"),
                          ("timed out", "timed out")):
        if needle in text:
            return words
    return type(exc).__name__
