"""Operators' endpoints on a Flask app: `/healthz` (the process answers), `/readyz` (it can do its work)
and `/metrics` (Prometheus, guarded like the living document). The first two are open and carry no
incident data: check names and, on failure, a short reason.

    register_ops_routes(app, readiness_checks=[("database", database_check(clock)), ...],
                        metrics=Metrics(clock, settings), metrics_guard=lambda: guard)
"""
from __future__ import annotations

import logging
from typing import Callable, Iterable

from flask import Response, current_app, jsonify, redirect, request

from opg_incident_core import health, storage

from . import access
from .routes import _add_rule

log = logging.getLogger(__name__)
EXTENSION = "opg_incident_ops"
LIVING_DOCUMENT = "opg_incident_web"  # the living document's state (routes.WebState) holds its guard
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class NotReady(Exception):
    """A readiness check failed; the message is shown on /readyz (no incident data in it)."""


Check = Callable[[], object]  # raises (or returns False) when not ready


class OpsState:
    def __init__(self, checks, metrics, guard):
        self.checks: list[tuple[str, Check]] = list(checks)
        self.metrics = metrics
        self.guard: Callable[[], access.Guard | None] = guard


def register_ops_routes(app, readiness_checks: Iterable[tuple[str, Check]] = (), metrics=None,
                        metrics_guard: Callable[[], access.Guard | None] | None = None) -> OpsState:
    """Add /healthz, /readyz and /metrics to `app`. Idempotent: a second call swaps the state the views
    read. `metrics_guard` gives the access.Guard of /metrics; by default the living document's."""
    state = OpsState(readiness_checks, metrics, metrics_guard or _living_document_guard)
    app.extensions[EXTENSION] = state
    for rule, endpoint, view in (("/healthz", "healthz", healthz), ("/readyz", "readyz", readyz),
                                 ("/metrics", "metrics", metrics_view)):
        _add_rule(app, rule, f"{EXTENSION}_{endpoint}", view)  # once; also after the first request
    return state


def healthz():
    return _json({"status": "alive"}, 200)


def readyz():
    state: OpsState = current_app.extensions[EXTENSION]
    results, ready = {}, True
    for name, check in state.checks:
        try:
            ok = check() is not False
            results[name] = "ok" if ok else "failing"
        except NotReady as exc:
            ok, results[name] = False, f"failing: {exc}"
        except Exception as exc:  # the type only: a driver's message may quote data
            ok, results[name] = False, f"failing: {type(exc).__name__}"
        ready = ready and ok
    if not ready:
        log.warning("Not ready: %s", ", ".join(f"{k} {v}" for k, v in results.items() if v != "ok"))
    return _json({"status": "ready" if ready else "not ready", "checks": results}, 200 if ready else 503)


def metrics_view():
    state: OpsState = current_app.extensions[EXTENSION]
    guard = state.guard()
    if guard is None:
        return _json({"error": "metrics are guarded like the living document, which is not set up"}, 503)
    decision = access.decide(guard, request)
    if decision.redirect_to:
        response = redirect(decision.redirect_to, code=303)
        access.set_cookie(response, guard)
        return response
    if not decision.allowed:
        response = _json({"error": "You need access to read the metrics."}, 401)
        if guard.token:
            response.headers["WWW-Authenticate"] = 'Bearer realm="opg-incident"'
        return response
    if state.metrics is None:
        return _json({"error": "metrics are not enabled"}, 404)
    body, content_type = state.metrics.exposition()
    return Response(body, status=200, headers={**HEADERS, "Content-Type": content_type})


# -- readiness checks --------------------------------------------------------------------------------

def database_check(clock: Callable) -> Check:
    """The database takes a write (a row written and rolled back)."""
    def check():
        db = storage.database.obj
        opened = db.is_closed()
        try:
            health.database_writable(clock())
        finally:
            if opened and not db.is_closed():
                db.close()
    return check


def outbox_check(clock: Callable, max_age_seconds: float = 600.0) -> Check:
    """The outbox moves: no item has been due (its next attempt time passed, next in its incident's queue)
    for longer than `max_age_seconds`. Items waiting for their time, such as a long Retry-After, are fine."""
    def check():
        db = storage.database.obj
        opened = db.is_closed()
        try:
            state = health.outbox_state(clock())
        finally:
            if opened and not db.is_closed():
                db.close()
        if state.overdue_seconds > max_age_seconds:
            raise NotReady(f"an item has been due for {state.overdue_seconds:.0f} s and not sent ({state.pending} "
                           f"waiting; limit {max_age_seconds:.0f} s)")
    return check


def readiness_checks(clock: Callable, bot, config) -> list[tuple[str, Check]]:
    """The plugin's checks: the outbox's limit is INCIDENT_READY_OUTBOX_SECONDS (600 s by default)."""
    limit = float(getattr(config, "INCIDENT_READY_OUTBOX_SECONDS", 600) or 600)
    return [("database", database_check(clock)), ("chat", chat_check(bot)), ("outbox", outbox_check(clock, limit))]


def chat_check(bot) -> Check:
    """errbot's backend is up: Slack's Socket Mode connected (HTTP mode: the token was accepted), or the
    Text console running."""
    def check():
        mode = getattr(bot, "mode", None)
        if mode == "slackv3":
            socket_mode = getattr(bot, "slack_socket_mode", None)
            if socket_mode is not None:
                if not socket_mode.is_connected():
                    raise NotReady("Socket Mode is not connected to Slack")
            elif not getattr(bot, "auth", None):
                raise NotReady("not connected to Slack yet")
        elif mode != "text":
            raise NotReady(f"backend {mode!r} is not running")
    return check


def _living_document_guard() -> access.Guard | None:
    web = current_app.extensions.get(LIVING_DOCUMENT)
    return getattr(web, "guard", None)


def _json(body: dict, status: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers.update(HEADERS)
    return response
