"""The aiohttp application: Web API, Socket Mode link, response_url hooks, file uploads.

Everything listens on 127.0.0.1 with an ephemeral port. Responses carry lower-case headers like
real Slack (errbot-backend-slackv3 reads `auth.headers["x-oauth-scopes"]` case-sensitively).
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from aiohttp import web

from .spec import SPECS


@dataclass
class Call:
    """One Web API request as the fake saw it."""

    method: str
    params: dict
    time: float
    token_kind: Optional[str]
    status: int = 200
    response: Any = None
    http_method: str = "POST"
    headers: dict = field(default_factory=dict, repr=False)
    injected: bool = False  # the answer came from a fault the test asked for (fail_next, rate_limit)

    @property
    def ok(self) -> bool:
        return isinstance(self.response, dict) and self.response.get("ok") is True

    @property
    def error(self) -> Optional[str]:
        return self.response.get("error") if isinstance(self.response, dict) else None


class CallLog:
    """Thread-safe list of Web API calls; the failed ones are also kept apart, for the ledger, and
    survive `clear()` (a test resetting the calls it looks at does not hide a refusal)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._failed: list[Call] = []

    def add(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)
            if not call.ok:
                self._failed.append(call)

    def failed(self, since: int = 0) -> list:
        with self._lock:
            return self._failed[since:]

    def failed_count(self) -> int:
        with self._lock:
            return len(self._failed)

    def all(self) -> list:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


async def read_params(request: web.Request) -> tuple:
    """(query string arguments, body arguments, whether the body was JSON); file parts are ignored."""
    query: dict = dict(request.query)
    if not request.body_exists:
        return query, {}, False
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            body = None
        return query, body if isinstance(body, dict) else {}, True
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        return query, {k: v for k, v in form.items() if isinstance(v, str)}, False
    return query, {}, False


def json_response(body: Any, status: int = 200, headers: Optional[dict] = None) -> web.Response:
    all_headers = {"content-type": "application/json; charset=utf-8"}
    if isinstance(body, str):
        all_headers["content-type"] = "text/html; charset=utf-8"
        payload = body
    else:
        payload = json.dumps(body)
    all_headers.update(headers or {})
    return web.Response(status=status, text=payload, headers=all_headers)


class Server:
    """Routes requests to the fake's Web API, transports and hooks."""

    def __init__(self, fake):
        self.fake = fake
        self.port: Optional[int] = None
        self._runner: Optional[web.AppRunner] = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self.handle_api)
        app.router.add_get("/link", self.fake.socket.handle_link)
        app.router.add_get("/link/", self.fake.socket.handle_link)
        app.router.add_post("/hooks/{kind}/{token}", self.handle_hook)
        app.router.add_post("/upload/{file_id}/{secret}", self.handle_upload)
        return app

    async def start(self) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.port

    async def stop(self) -> None:
        await self.fake.socket.close()
        await self.fake.http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        query, body, from_json = await read_params(request)
        spec = SPECS.get(method)
        if from_json and not (spec and spec.json):
            body = {}  # Slack reads JSON bodies only for the methods that take them (spec.py)
        token_in_body = None if from_json else body.pop("token", None)
        params = dict(query, **body)
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else (token_in_body or query.get("token"))
        params.pop("token", None)
        token_kind = self.fake.api.token_kind(token)
        call = Call(method, params, time.time(), token_kind, http_method=request.method,
                    headers=dict(request.headers))
        fault = self.fake.faults.take(method) or self.fake.faults.check_rate(method)
        if fault and fault.delay:
            await asyncio.sleep(fault.delay)
        wait = None
        if not (fault and fault.replaces_answer) and token_kind is not None:
            wait = self.fake.rate_limits.check(method, token_kind, self.fake.channel_key(params))
        if fault and fault.replaces_answer:
            call.status, headers, call.response = fault.response()
            call.injected = True
        elif wait is not None:
            call.status, headers = 429, {"retry-after": str(wait)}
            call.response = {"ok": False, "error": "ratelimited"}
        else:
            call.response = self.fake.api.call(method, params, token, from_json)
            headers = {}
            if self.fake.faults.take_loss(method, params):  # Slack acted; the answer never came back
                call.response, call.injected = {"ok": False, "error": "internal_error"}, True
        if token_kind is not None:
            scopes = ",".join(self.fake.api.granted(token_kind, token))
            headers.update({"x-oauth-scopes": scopes,
                            "x-accepted-oauth-scopes": ",".join(spec.bot_scopes) if spec else ""})
        self.fake.calls_log.add(call)
        return json_response(call.response, call.status, headers)

    async def handle_hook(self, request: web.Request) -> web.Response:
        """response_url: up to 5 posts within 30 minutes."""
        token = request.match_info["token"]
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except ValueError:
                self.fake.hook_errors.append((400, "invalid_payload", request.match_info["kind"]))
                return web.Response(status=400, text="invalid_payload")
        else:
            form = await request.post()
            try:
                data = json.loads(form.get("payload", "{}"))
            except ValueError:
                self.fake.hook_errors.append((400, "invalid_payload", request.match_info["kind"]))
                return web.Response(status=400, text="invalid_payload")
        status, text = self.fake.use_response_url(token, data if isinstance(data, dict) else {})
        if status != 200:
            self.fake.hook_errors.append((status, text, request.match_info["kind"]))
        return web.Response(status=status, text=text)

    async def handle_upload(self, request: web.Request) -> web.Response:
        stored = self.fake.files.get(request.match_info["file_id"])
        if stored is None:
            return web.Response(status=404, text="file_not_found")
        if request.content_type == "multipart/form-data":
            form = await request.post()
            part = next(iter(form.values()), b"")
            stored["content"] = part.file.read() if hasattr(part, "file") else str(part).encode()
        else:
            stored["content"] = await request.read()
        return web.Response(text=f"OK - {len(stored['content'])}")
