"""HTTP mode: signed POSTs to the app's Events API, slash-command and interactivity URLs.

Per api.slack.com/apis/events-api and authentication/verifying-requests-from-slack: events are
JSON, slash commands a form, interactions a form with `payload=<json>`; each request carries
`X-Slack-Request-Timestamp` and `X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:ts:body"))`.
The HTTP response is the ack (2xx within `ack_timeout`). Failed events are retried with
`X-Slack-Retry-Num` / `X-Slack-Retry-Reason` unless the app answers with `X-Slack-No-Retry: 1`.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Optional
from urllib.parse import urlencode

import aiohttp

from .delivery import Delivery, DeliveryLog, LoopThread, Transport

DEFAULT_PATHS = {"events_api": "/slack/events", "slash_commands": "/slack/commands",
                 "interactive": "/slack/interactive"}


def sign(signing_secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def encode_body(kind: str, payload: dict) -> tuple:
    """(content type, raw body) for a delivery type."""
    if kind == "events_api":
        return "application/json", json.dumps(payload).encode()
    if kind == "slash_commands":
        return "application/x-www-form-urlencoded", urlencode(payload).encode()
    return "application/x-www-form-urlencoded", urlencode({"payload": json.dumps(payload)}).encode()


class HttpTransport(Transport):
    """Delivers payloads as signed HTTP requests to `app_url` + the path for their type."""

    def __init__(self, loop: LoopThread, log_: DeliveryLog, signing_secret: str,
                 app_url: Optional[str] = None, paths: Optional[dict] = None, ack_timeout=3.0,
                 max_retries=3, retry_delay=0.0):
        super().__init__(loop, log_, ack_timeout, max_retries)
        self.signing_secret = signing_secret
        self.app_url = app_url
        self.paths = dict(DEFAULT_PATHS, **(paths or {}))
        self.retry_delay = retry_delay
        self._session: Optional[aiohttp.ClientSession] = None

    def url_for(self, kind: str) -> str:
        if not self.app_url:
            raise RuntimeError("FakeSlack(mode='http') needs app_url before delivering")
        return self.app_url.rstrip("/") + self.paths[kind]

    def headers_for(self, delivery: Delivery, content_type: str, body: bytes) -> dict:
        timestamp = str(int(time.time()))
        headers = {"Content-Type": content_type,
                   "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
                   "X-Slack-Request-Timestamp": timestamp,
                   "X-Slack-Signature": sign(self.signing_secret, timestamp, body)}
        if delivery.retry_attempt:
            headers["X-Slack-Retry-Num"] = str(delivery.retry_attempt)
            headers["X-Slack-Retry-Reason"] = delivery.retry_reason or "http_timeout"
        return headers

    async def _send(self, delivery: Delivery) -> None:
        if self._session is None:
            # trust_env=False: never route loopback deliveries through HTTP(S)_PROXY
            self._session = aiohttp.ClientSession(trust_env=False)
        url = self.url_for(delivery.type)
        content_type, body = encode_body(delivery.type, delivery.payload)
        headers = self.headers_for(delivery, content_type, body)
        self._attempt(delivery, url)
        try:
            async with self._session.post(url, data=body, headers=headers,
                                          timeout=aiohttp.ClientTimeout(total=self.deadline(delivery))) as resp:
                text = await resp.text()
                self.log.record_ack(delivery.envelope_id, _json_or_none(text), resp.status, text,
                                    headers={k.lower(): v for k, v in resp.headers.items()})
                if not 200 <= resp.status < 300 and resp.headers.get("X-Slack-No-Retry") != "1":
                    self._retry_later(delivery, "http_error", self.retry_delay)
        except asyncio.TimeoutError:
            self.log.record_failure(delivery, "http_timeout")
            self._retry_later(delivery, "http_timeout", self.retry_delay)
        except aiohttp.ClientError as exc:
            self.log.record_failure(delivery, f"connection_failed: {exc!r}")
            self._retry_later(delivery, "connection_failed", self.retry_delay)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _json_or_none(text: str):
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
