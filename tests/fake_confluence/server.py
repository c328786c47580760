"""Confluence's REST API v1, the part opg-incident uses, over real HTTP on 127.0.0.1:

    GET  /rest/api/space/{key}
    GET  /rest/api/content?spaceKey=&title=[&type=&expand=]
    GET  /rest/api/content/{id}[?expand=version,space]
    POST /rest/api/content                 (title unique in a space: 400 otherwise)
    PUT  /rest/api/content/{id}            (version.number must be the current one + 1: 409 otherwise)
    GET|POST /rest/api/content/{id}/label

Basic auth (user + token) or a bearer token; anything else is 401. Faults on demand: `fail(...)`
answers the next matching requests with a status (429 with Retry-After, 500...), `stop()` makes the
site unreachable. Every request is recorded (method, path, time, status) for assertions.

    with FakeConfluence(spaces={"OPG": "Incidents"}) as wiki:
        wiki.url, wiki.pages, wiki.edit(page_id, "<p>by hand</p>")
"""
from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

USER, TOKEN = "bot@example.org", "s3cret-token"


@dataclass
class Page:
    id: str
    space: str
    title: str
    body: str
    parent: str | None
    version: int = 1
    by: str = "opg-incident"
    labels: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)  # the body of each version


@dataclass
class Fault:
    method: str
    path: str  # a regular expression
    status: int
    times: int
    headers: dict


class FakeConfluence:
    def __init__(self, spaces: dict[str, str] | None = None, *, user: str | None = USER, token: str = TOKEN):
        self.spaces = dict(spaces or {"OPG": "OPG incidents"})
        self.user, self.token = user, token
        self.pages: dict[str, Page] = {}
        self.requests: list[dict] = []
        self.faults: list[Fault] = []
        self._ids = itertools.count(10001)
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    # -- running ------------------------------------------------------------------------------------
    def start(self, port: int = 0) -> "FakeConfluence":
        fake = self

        class Handler(_Handler):
            wiki = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", port or self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-confluence", daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the port: the site is unreachable until start() again (on the same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "FakeConfluence":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/wiki"

    def bot_env(self, space: str = "OPG") -> dict:
        """The environment that points opg-incident at this Confluence."""
        return {"CONFLUENCE_URL": self.url, "CONFLUENCE_USER": self.user or "", "CONFLUENCE_TOKEN": self.token,
                "CONFLUENCE_SPACE": space}

    # -- test helpers -------------------------------------------------------------------------------
    def add_page(self, space: str, title: str, body: str = "<p>by hand</p>", parent: str | None = None,
                 by: str = "Someone Else") -> Page:
        with self._lock:
            page = Page(str(next(self._ids)), space, title, body, parent, by=by, history=[body])
            self.pages[page.id] = page
            return page

    def edit(self, page_id: str, body: str, by: str = "Alice Editor") -> Page:
        """A person edits the page in Confluence: a new version."""
        with self._lock:
            page = self.pages[page_id]
            page.body, page.version, page.by = body, page.version + 1, by
            page.history.append(body)
            return page

    def fail(self, method: str, path: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self.faults.append(Fault(method, path, status, times, headers))

    def titled(self, title: str) -> list[Page]:
        return [p for p in self.pages.values() if p.title == title]

    def calls(self, method: str, path: str = "") -> list[dict]:
        return [r for r in self.requests if r["method"] == method and re.search(path, r["path"])]

    # -- the API ------------------------------------------------------------------------------------
    def page_json(self, page: Page, expand: str = "") -> dict:
        data = {"id": page.id, "type": "page", "status": "current", "title": page.title,
                "version": {"number": page.version, "by": {"displayName": page.by}, "when": "2025-06-03T14:00:00Z"},
                "_links": {"base": self.url, "webui": f"/spaces/{page.space}/pages/{page.id}/{quote(page.title)}"}}
        if "space" in expand:
            data["space"] = {"key": page.space, "name": self.spaces.get(page.space, "")}
        if "body" in expand:
            data["body"] = {"storage": {"value": page.body, "representation": "storage"}}
        return data

    def handle(self, method: str, path: str, query: dict, body) -> tuple[int, dict | list]:
        path = path.removeprefix("/wiki")
        expand = query.get("expand", "")
        with self._lock:
            if m := re.fullmatch(r"/rest/api/space/([^/]+)", path):
                key = m.group(1)
                if method == "GET" and key in self.spaces:
                    return 200, {"key": key, "name": self.spaces[key], "type": "global"}
                return 404, {"statusCode": 404, "message": f"No space with key : {key}"}
            if path == "/rest/api/content" and method == "GET":
                found = [p for p in self.pages.values()
                         if p.space == query.get("spaceKey") and p.title == query.get("title")]
                return 200, {"results": [self.page_json(p, expand) for p in found], "size": len(found), "start": 0,
                             "limit": 25}
            if path == "/rest/api/content" and method == "POST":
                return self._create(body)
            m = re.fullmatch(r"/rest/api/content/(\d+)(/label)?", path)
            page = self.pages.get(m.group(1)) if m else None
            if m is None or page is None:
                return 404, {"statusCode": 404, "message": "No content found with id"}
            if m.group(2):
                if method == "POST":
                    for label in body if isinstance(body, list) else [body]:
                        if label["name"] not in page.labels:
                            page.labels.append(label["name"])  # a label is no new version
                return 200, {"results": [{"prefix": "global", "name": n} for n in page.labels],
                             "size": len(page.labels)}
            if method == "GET":
                return 200, self.page_json(page, expand)
            if method == "PUT":
                return self._update(page, body)
        return 405, {"statusCode": 405, "message": "Method not allowed"}

    def _create(self, body: dict) -> tuple[int, dict]:
        space = (body.get("space") or {}).get("key")
        if space not in self.spaces:
            return 404, {"statusCode": 404, "message": f"No space with key : {space}"}
        title = body.get("title") or ""
        if self._taken(space, title):
            return 400, {"statusCode": 400, "message": "A page with this title already exists: A page already "
                                                         f"exists with the title {title} in the space with key {space}"}
        parent = ((body.get("ancestors") or [{}])[0]).get("id")
        if parent and parent not in self.pages:
            return 404, {"statusCode": 404, "message": "Could not find the parent page"}
        value = body["body"]["storage"]["value"]
        page = Page(str(next(self._ids)), space, title, value, parent, history=[value])
        self.pages[page.id] = page
        return 200, self.page_json(page, "space")

    def _update(self, page: Page, body: dict) -> tuple[int, dict]:
        number = (body.get("version") or {}).get("number")
        if number != page.version + 1:
            return 409, {"statusCode": 409, "message": f"Version must be incremented on update. Current version "
                                                         f"is: {page.version}"}
        title = body.get("title") or page.title
        if title != page.title and self._taken(page.space, title):
            return 400, {"statusCode": 400, "message": "A page with this title already exists"}
        page.title, page.body, page.version, page.by = title, body["body"]["storage"]["value"], number, "opg-incident"
        page.history.append(page.body)
        return 200, self.page_json(page, "space")

    def _taken(self, space: str, title: str) -> bool:
        return any(p.space == space and p.title == title for p in self.pages.values())

    def authorised(self, header: str | None) -> bool:
        if not header:
            return False
        kind, _, value = header.partition(" ")
        if kind == "Basic" and self.user:
            return value == base64.b64encode(f"{self.user}:{self.token}".encode()).decode()
        return kind == "Bearer" and self.user is None and value == self.token

    def fault_for(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.path, path):
                    fault.times -= 1
                    return fault
        return None


class _Handler(BaseHTTPRequestHandler):
    wiki: FakeConfluence
    protocol_version = "HTTP/1.0"  # one request per connection: stop() makes the site unreachable at once

    def log_message(self, *args) -> None:
        pass

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        record = {"method": method, "path": parts.path, "query": query, "at": time.monotonic()}
        headers = {}
        if not self.wiki.authorised(self.headers.get("Authorization")):
            status, data = 401, {"statusCode": 401, "message": "Basic authentication with passwords is deprecated"}
        elif fault := self.wiki.fault_for(method, parts.path):
            status, headers = fault.status, fault.headers
            data = {"statusCode": fault.status, "message": "Rate limited" if fault.status == 429 else "Oops"}
        else:
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            status, data = self.wiki.handle(method, parts.path, query, body)
        record["status"] = status
        self.wiki.requests.append(record)
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")
