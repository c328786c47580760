"""The bot's own web server: waitress, a production WSGI server, serving a Flask app of ours (the living
document and, in Slack's HTTP mode, Slack's request URLs) on INCIDENT_WEB_HOST:INCIDENT_WEB_PORT.

errbot's Webserver plugin is not loaded: it also serves `/echo`, which reflects a POST body as HTML on the
living document's origin. waitress reads requests on one I/O thread and runs the app on a fixed pool of
threads, so slow or idle connections hold no thread; it refuses a body over `MAX_BODY` with 413 from the
Content-Length header, before reading it; it closes connections idle for `IDLE_SECONDS`.

waitress times only silence: a client sending a byte every few seconds kept its connection for ever, and
`CONNECTIONS` of them kept everyone else out. So each request must arrive whole (headers and body) within
`REQUEST_SECONDS` of its first byte, or `BUSY_REQUEST_SECONDS` while the server holds more than `BUSY`
connections (a real client sends a request in milliseconds); a connection that has not is closed.

The server outlives a reload of the plugin (it keeps its port); the views look the current plugin's state
up through getters, so a reload only registers them again.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from flask import Flask, Response, request
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # Slack's payloads are far smaller; anything bigger is refused unread
THREADS = 8
CONNECTIONS = 100
IDLE_SECONDS = 10
REQUEST_SECONDS = 10       # from a request's first byte to its last
BUSY_REQUEST_SECONDS = 2   # the same, while the server holds more than BUSY connections
BUSY = CONNECTIONS * 3 // 4
EXTENSION_SLACK = "opg_incident_slack_http"

_lock = threading.Lock()
_app: Flask | None = None
_servers: dict[tuple[str, int], "WebServer"] = {}


def web_app() -> Flask:
    """The one Flask app of this process (routes are added to it on every activation, idempotently)."""
    global _app
    with _lock:
        if _app is None:
            _app = Flask("opg_incident_web")
            _app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
        return _app


def register_slack_http(app: Flask, paths, handler: Callable) -> None:
    """Slack's request URLs: each POST body and its headers go to `handler(path, body, headers)`, which
    answers (status, JSON object or None). The handler is swapped in place on every registration."""
    app.extensions[EXTENSION_SLACK] = handler

    def slack_view():
        if request.content_length is not None and request.content_length > MAX_BODY:
            return Response("", status=413)
        status, body = app.extensions[EXTENSION_SLACK](request.path, request.get_data(cache=False),
                                                       dict(request.headers))
        if body is None:
            return Response("", status=status)
        response = app.json.response(body)
        response.status_code = status
        return response

    for path in paths:
        endpoint = "opg_slack_" + path.strip("/").replace("/", "_")
        if endpoint not in app.view_functions:
            app.add_url_rule(path, endpoint=endpoint, view_func=slack_view, methods=["POST"])


class AccessLog:
    """WSGI middleware: one DEBUG line per request, with the path but never the query string (a token may
    travel in it) nor any header."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            log.debug("%s %r %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", ""), status.split(" ")[0])
            return start_response(status, headers, exc_info)
        return self.app(environ, start)


class _Channel(HTTPChannel):
    """waitress's connection, knowing since when it has been reading the request it has not finished."""

    reading_since: float | None = None

    def received(self, data):
        if data and self.request is None:
            self.reading_since = time.monotonic()  # the first bytes of a request
        try:
            return super().received(data)
        finally:
            if self.request is None:  # each request read so far is whole
                self.reading_since = None


class _Server(TcpWSGIServer):
    """waitress's server, which also closes connections too slow to send their request (`maintenance` runs
    on its I/O thread every `cleanup_interval`)."""

    channel_class = _Channel

    def maintenance(self, now):
        super().maintenance(now)  # the idle ones
        busy = len(self.active_channels) > BUSY
        cutoff = time.monotonic() - (BUSY_REQUEST_SECONDS if busy else REQUEST_SECONDS)
        slow = [c for c in list(self.active_channels.values())
                if not (c.will_close or c.requests) and c.reading_since is not None and c.reading_since < cutoff]
        for channel in slow:
            channel.will_close = True
        if slow:
            log.info("Web server: closed %d connection(s) too slow sending a request (%d open)", len(slow),
                     len(self.active_channels))


def create_server(app, **options):
    """waitress's create_server, with our server and channel classes."""
    adj = Adjustments(**options)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    sockets: dict = {}
    servers = [_Server(app, sockets, dispatcher=dispatcher, adj=adj, sockinfo=info) for info in adj.listen]
    if len(servers) == 1:
        return servers[0]
    return MultiSocketServer(sockets, adj, [(s.effective_host, s.effective_port) for s in servers], dispatcher,
                             servers[-1].log_info)


class WebServer:
    """waitress on a daemon thread. `start` binds at once, so a port in use fails the start loudly."""

    def __init__(self, app: Flask, host: str, port: int):
        self.host, self.port = host, port
        self._server = create_server(
            AccessLog(app), host=host, port=port, threads=THREADS, connection_limit=CONNECTIONS,
            channel_timeout=IDLE_SECONDS, cleanup_interval=1, max_request_body_size=MAX_BODY,
            max_request_header_size=64 * 1024, ident="opg-incident", expose_tracebacks=False)
        self._thread = threading.Thread(target=self._serve, daemon=True, name="opg-web")

    def start(self) -> "WebServer":
        self._thread.start()
        log.info("Web server: serving http://%s:%s/ (waitress, %d threads)", self.host, self.port, THREADS)
        return self

    def _serve(self) -> None:
        try:
            self._server.run()
        except Exception:  # closed at exit
            log.debug("Web server stopped", exc_info=True)

    def stop(self) -> None:
        self._server.close()


def start_web_server(app: Flask, config) -> WebServer | None:
    """Serve `app` on INCIDENT_WEB_HOST:INCIDENT_WEB_PORT, once per process (again after a reload: the
    running server is kept)."""
    port = int(getattr(config, "INCIDENT_WEB_PORT", 0) or 0)
    if not port:
        return None
    host = getattr(config, "INCIDENT_WEB_HOST", "127.0.0.1") or "127.0.0.1"
    with _lock:
        server = _servers.get((host, port))
        if server is None:
            server = _servers[(host, port)] = WebServer(app, host, port).start()
    return server
