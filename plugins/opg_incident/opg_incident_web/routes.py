"""The living document on errbot's Flask app: read-only pages, JSON and the RCA draft.

`register_routes` may run on every (re)activation of the plugin: rules are added once, and every view
looks the current service and settings up through getters at request time.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from flask import Response, current_app, jsonify, redirect, request, url_for
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from opg_incident_core import NotFound, storage
from opg_incident_core.views import document_url
from opg_incident_core.queries import DRILLS, STATUSES, count_incidents, incident_facts, list_incidents

from . import access, charts, present, rca

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
EXTENSION = "opg_incident_web"
PER_PAGE = 25
MAX_PAGE = 1_000_000
MAX_NUMBER = 2**31 - 1  # incident numbers past this name no incident (and overflow SQLite's integers)
FIRST_YEAR, LAST_YEAR = 1970, 9998  # /stats months: a chart of 60 months stays within datetime's range
# The index counts matching incidents up to this many; past it the page says "more than 1,000" and pages
# by next/previous, so that the page costs the same with 1 k or 100 k incidents on record.
COUNT_CAP = 1000
REFRESH_SECONDS = 30
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


@dataclass
class WebState:
    """What the views need, swapped in place on every registration."""

    service: Callable
    settings: Callable
    guard: access.Guard
    public_url: str
    slack_base: str
    names: Callable | None = None  # user id -> display name (the Slack adapter's cached users.info), or None


def register_routes(flask_app, service_getter: Callable, settings_getter: Callable, config,
                    names: Callable | None = None) -> WebState:
    """Serve the living document on `flask_app`. Idempotent: call it on every activation. `names`: a user's
    display name from their id (the Slack adapter's cache; None on the console: ids are shown)."""
    port = getattr(config, "INCIDENT_WEB_PORT", 3141)
    public_url = (getattr(config, "INCIDENT_PUBLIC_URL", "") or f"http://localhost:{port}").rstrip("/")
    state = WebState(
        service=service_getter, settings=settings_getter, public_url=public_url,
        guard=access.Guard(token=getattr(config, "INCIDENT_WEB_TOKEN", "") or "",
                           trusted_header=getattr(config, "INCIDENT_WEB_TRUSTED_HEADER", "") or "",
                           secure_cookie=public_url.startswith("https://")),
        slack_base=present.slack_web_base(getattr(config, "SLACK_API_URL", "")), names=names,
    )
    flask_app.extensions[EXTENSION] = state
    for rule, endpoint, view in (
        ("/incidents", "index", index),
        ("/incidents/<int:number>", "incident", incident),
        ("/incidents/<int:number>.json", "incident_json", incident_json),
        ("/incidents/<int:number>/rca.md", "rca", rca_draft),
        ("/stats", "stats", stats),
        ("/incidents/style.css", "style", style),
    ):
        _add_rule(flask_app, rule, f"{EXTENSION}_{endpoint}", view)
    return state


def _add_rule(app, rule: str, endpoint: str, view) -> None:
    if endpoint in app.view_functions:
        return  # registered by an earlier activation; the view reads the new state
    try:
        app.add_url_rule(rule, endpoint, view, methods=["GET"])
    except AssertionError:
        # Flask refuses setup calls once it has served a request (the Webserver plugin may have started
        # first); werkzeug's map takes new rules at any time, so add it the way add_url_rule would.
        app.url_map.add(app.url_rule_class(rule, endpoint=endpoint, methods={"GET", "HEAD", "OPTIONS"}))
        app.view_functions[endpoint] = view
    log.info("Living document: serving %s", rule)


# -- plumbing ---------------------------------------------------------------------------------------

_env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=True,
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters["segments"] = present.segments
_env.filters["user"] = present.user
_env.filters["plain"] = present.slack_text
_env.filters["link_url"] = present.safe_url
_env.globals.update(kind_label=present.kind_label, kind_category=present.kind_category)


def _state() -> WebState:
    return current_app.extensions[EXTENSION]


def _url(endpoint: str, **values) -> str:
    return url_for(f"{EXTENSION}_{endpoint}", **values)


def page(kind: str = "html"):
    """Guard a view, give it a database connection of its own, and set the security headers."""
    def decorate(view):
        @functools.wraps(view)
        def wrapper(**kwargs):
            state = _state()
            decision = access.decide(state.guard, request)
            if decision.redirect_to:
                response = redirect(decision.redirect_to, code=303)
                access.set_cookie(response, state.guard)
            elif not decision.allowed:
                response = _refused(kind, state.guard)
            elif kwargs.get("number", 0) > MAX_NUMBER:
                response = _error(kind, 404, f"There is no incident {kwargs['number']}.", decision)
            else:
                db = storage.database.obj
                opened = db.is_closed()
                if opened:
                    db.connect()
                try:
                    response = view(state, decision, **kwargs)
                except NotFound as exc:
                    response = _error(kind, 404, str(exc), decision)
                finally:
                    if opened and not db.is_closed():
                        db.close()
            response.headers.update({"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                                     "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                                     "Cache-Control": "no-store"})
            return response
        return wrapper
    return decorate


def _render(template: str, decision, http_status: int = 200, **context) -> Response:
    settings = _state().settings()
    values = {"url": _url, "zone": settings.time_zone, "viewer": decision.viewer if decision else None,
              "refresh": None, **context}
    return Response(_env.get_template(template).render(values), status=http_status, mimetype="text/html")


def _error(kind: str, status: int, message: str, decision=None) -> Response:
    if kind == "json":
        response = jsonify(error=message)
        response.status_code = status
        return response
    if kind == "text":
        return Response(message + "\n", status=status, mimetype="text/plain")
    return _render("error.html", decision, http_status=status, heading="Page not found" if status == 404
                   else "There is a problem", message=message)


def _refused(kind: str, guard: access.Guard) -> Response:
    message = ("You need access to read incidents. Open the living-document link from the incident channel, "
               "or sign in through your organisation's login.")
    response = _error(kind, 401, message)
    if guard.token:
        response.headers["WWW-Authenticate"] = 'Bearer realm="opg-incident"'
    return response


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = request.args.get(name, default)
    if value not in allowed:
        raise BadChoice(f"{name} must be one of {', '.join(allowed)}")
    return value


class BadChoice(ValueError):
    pass


def _record(state: WebState, number: int):
    return rca.gather(state.service(), number)


# -- views ------------------------------------------------------------------------------------------

@page()
def index(state: WebState, decision):
    settings = state.settings()
    try:
        status = _choice("status", STATUSES, "all")
        drills = _choice("drills", DRILLS, "with")
        page_no = request.args.get("page", "1")
        if not (page_no.isascii() and page_no.isdigit()) or not 1 <= int(page_no) <= MAX_PAGE:
            raise BadChoice(f"page must be a whole number from 1 to {MAX_PAGE:,}")
        page_no = int(page_no)
    except BadChoice as exc:
        return _error("html", 400, f"That filter is not valid: {exc}.", decision)
    total = count_incidents(status, drills, at_most=COUNT_CAP)
    exact = total <= COUNT_CAP
    pages = max(1, math.ceil(total / PER_PAGE)) if exact else None
    # One row more than a page tells whether there is a next page without counting them all.
    incidents = list_incidents(status, drills, limit=PER_PAGE + 1, offset=(page_no - 1) * PER_PAGE)
    has_next, incidents = len(incidents) > PER_PAGE, incidents[:PER_PAGE]
    now = dt.datetime.now(dt.timezone.utc)
    rows = [{"inc": i, "status": present.status_tag(i), "severity": present.severity_tag(settings, i.severity),
             "started": present.when(i.declared_at, settings.zone), "took": present.took(i, now),
             "started_iso": present.iso(i.declared_at, settings.zone)} for i in incidents]

    def page_url(n: int) -> str:
        return _url("index", status=status, drills=drills, page=n)

    names = present.people([i.roles.get("lead") for i in incidents], lookup=state.names)
    return _render("index.html", decision, rows=rows, total=total, exact=exact, cap=f"{COUNT_CAP:,}", names=names,
                   page=page_no, pages=pages, has_next=has_next, status=status, drills=drills,
                   statuses=STATUSES, drill_choices=DRILLS, page_url=page_url)


@page()
def incident(state: WebState, decision, number: int):
    settings = state.settings()
    inc, timeline, actions, history = _record(state, number)
    zone = settings.zone
    roles = []
    for role in settings.roles:
        holder = inc.roles.get(role.key)
        since = next((h.assigned_at for h in reversed(history) if h.role == role.key and h.released_at is None),
                     inc.declared_at if role.key == "reporter" else None)
        roles.append({"role": role, "holder": holder, "since": present.when(since, zone) if holder else ""})
    role_name = {r.key: r.name for r in settings.roles}
    pending = state.service().handovers(number)
    return _render(
        "incident.html", decision, inc=inc, roles=roles, role_name=role_name, history=history,
        timeline=timeline, actions=actions, status=present.status_tag(inc), pending=pending,
        names=present.record_people(inc, timeline, actions, history, pending, state.names),
        severity=present.severity_tag(settings, inc.severity), when=lambda v: present.when(v, zone),
        iso=lambda v: present.iso(v, zone), took=present.took(inc),
        channel_url=present.channel_url(state.slack_base, inc.channel_id),
        headline_url=present.message_url(state.slack_base, inc.headline_channel_id, inc.headline_ts),
        refresh=REFRESH_SECONDS if inc.is_open else None,
        updated=present.when(dt.datetime.now(dt.timezone.utc), zone, seconds=True))


@page("json")
def incident_json(state: WebState, decision, number: int):
    inc, timeline, actions, history = _record(state, number)
    pending = state.service().handovers(number)
    doc = present.incident_document(inc, timeline, actions, history, state.settings(),
                                    url=document_url(state.public_url, number), slack_base=state.slack_base,
                                    pending=pending, names=present.record_people(inc, timeline, actions, history,
                                                                                 pending, state.names))
    return jsonify(doc)


@page("text")
def rca_draft(state: WebState, decision, number: int):
    inc, timeline, actions, history = _record(state, number)
    text = rca.draft(inc, timeline, actions, history, state.settings(), url=document_url(state.public_url, number),
                     names=present.record_people(inc, timeline, actions, history, (), state.names))
    response = Response(text, mimetype="text/markdown")
    response.headers["Content-Disposition"] = f'inline; filename="incident-{number}-rca.md"'
    return response


@page()
def stats(state: WebState, decision):
    settings = state.settings()
    try:
        months = int(request.args.get("months", "12"))
        if not 1 <= months <= 60:
            raise ValueError
        end = request.args.get("end", "")  # YYYY-MM: the last month shown (default this month)
        last = (dt.datetime.strptime(end, "%Y-%m").replace(day=15, tzinfo=settings.zone) if end
                else dt.datetime.now(dt.timezone.utc))
        if not FIRST_YEAR <= last.year <= LAST_YEAR:
            raise ValueError
    except ValueError:
        return _error("html", 400, "months must be a whole number from 1 to 60, and end a month as YYYY-MM "
                      f"from {FIRST_YEAR} to {LAST_YEAR}.", decision)
    starts = charts.month_starts(last, settings.zone, months)
    following = charts.month_starts(starts[-1] + dt.timedelta(days=32), settings.zone, 1)[0]
    facts = incident_facts(starts[0], following)
    resolved = [f.time_to_resolve for f in facts if f.closed_at and not f.report]
    return _render("stats.html", decision, months=months, end=end, total=len(facts), resolved=len(resolved),
                   charts=[charts.severity_chart(facts, settings, starts),
                           charts.resolve_chart(facts, settings, starts)])


def style():
    response = Response((HERE / "static" / "style.css").read_text(encoding="utf-8"), mimetype="text/css")
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
