"""Who may read the pages: everyone (no guard configured), holders of the shared token, or people an
authenticating reverse proxy vouches for in a trusted header.

- `INCIDENT_WEB_TOKEN`: `Authorization: Bearer <token>`, or `?token=<token>` once: the answer is a
  redirect to the same address without the token that sets a cookie holding a keyed hash of the
  token (never the token itself), so the token leaves neither the history nor Referer headers.
- `INCIDENT_WEB_TRUSTED_HEADER` (e.g. `X-Forwarded-Email` from oauth2-proxy): a request carrying a
  non-empty value is let in. Only safe when the proxy is the only way to reach the server (bind to
  127.0.0.1 or a private network) and the proxy overwrites the header; see docs/living-document.md.
"""
from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlencode

COOKIE = "opg_incident_web"
COOKIE_DAYS = 30


@dataclass(frozen=True)
class Guard:
    token: str = ""
    trusted_header: str = ""
    secure_cookie: bool = False

    @property
    def open(self) -> bool:
        return not self.token and not self.trusted_header

    def cookie_value(self) -> str:
        return hmac.new(self.token.encode(), b"opg-incident-web cookie v1", hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Decision:
    allowed: bool
    viewer: str | None = None  # who the proxy says it is, when it says so
    redirect_to: str | None = None  # accepted ?token=: go here (token removed) and set the cookie


def decide(guard: Guard, request) -> Decision:
    """Look at one Flask/werkzeug request and decide."""
    if guard.open:
        return Decision(True)
    if guard.trusted_header:
        viewer = (request.headers.get(guard.trusted_header) or "").strip()
        if viewer:
            return Decision(True, viewer=viewer[:200])
    if not guard.token:
        return Decision(False)
    scheme, _, credentials = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and _same(credentials.strip(), guard.token):
        return Decision(True)
    if _same(request.cookies.get(COOKIE, ""), guard.cookie_value()):
        return Decision(True)
    offered = request.args.get("token")
    if offered is not None and _same(offered, guard.token):
        rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
        return Decision(True, redirect_to=request.path + ("?" + urlencode(rest) if rest else ""))
    return Decision(False)


def set_cookie(response, guard: Guard) -> None:
    response.set_cookie(COOKIE, guard.cookie_value(), max_age=COOKIE_DAYS * 24 * 3600, path="/",
                        httponly=True, samesite="Lax", secure=guard.secure_cookie)


def _same(offered: str, expected: str) -> bool:
    return bool(offered) and bool(expected) and hmac.compare_digest(offered.encode(), expected.encode())
