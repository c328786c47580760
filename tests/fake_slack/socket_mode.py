"""Socket Mode: the `/link/?ticket=...` websocket, hello, envelopes, acks, disconnects.

Behaviour follows docs.slack.dev/apis/events-api/using-socket-mode: `hello` right after the
upgrade, envelopes spread over open connections (round-robin here), every envelope must be acked
with `{"envelope_id": ...}` (optionally `payload` when `accepts_response_payload`), unacked
events are redelivered with `retry_attempt`/`retry_reason`, and `disconnect` asks the client to
reconnect through apps.connections.open. Envelopes sent while no connection is usable are held
and flushed to the next connection after its hello.
"""
from __future__ import annotations

import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from aiohttp import WSMsgType, web

from .delivery import Delivery, DeliveryLog, LoopThread, Transport

log = logging.getLogger(__name__)


@dataclass
class Connection:
    """One websocket opened by the app."""

    id: int
    ws: Any = field(repr=False)
    opened_at: float
    hello_at: Optional[float] = None
    closed_at: Optional[float] = None
    disconnect_sent: Optional[str] = None
    envelopes_sent: int = 0
    frames_received: list = field(default_factory=list, repr=False)

    @property
    def is_open(self) -> bool:
        return self.closed_at is None and not self.ws.closed

    @property
    def usable(self) -> bool:
        """Open, greeted, and not asked to go away."""
        return self.is_open and self.hello_at is not None and self.disconnect_sent is None


class SocketModeTransport(Transport):
    """Serves the websocket and delivers envelopes over it."""

    def __init__(self, loop: LoopThread, log_: DeliveryLog, app_id: str, ack_timeout=3.0,
                 max_retries=3):
        super().__init__(loop, log_, ack_timeout, max_retries)
        self.app_id = app_id
        self.connections: list[Connection] = []
        self.tickets: set = set()
        self.pending: deque = deque()
        self._round_robin = 0

    # --- connection setup --------------------------------------------------------------------
    def issue_url(self, base_ws_url: str) -> str:
        """A single-use websocket URL for apps.connections.open."""
        ticket = secrets.token_hex(16)
        self.tickets.add(ticket)
        return f"{base_ws_url}/link/?ticket={ticket}&app_id={self.app_id}"

    def open_connections(self) -> list:
        return [c for c in self.connections if c.is_open]

    async def handle_link(self, request: web.Request) -> web.StreamResponse:
        """GET /link/?ticket=...: upgrade, say hello, read acks until the socket closes."""
        ticket = request.query.get("ticket")
        if ticket not in self.tickets:
            return web.Response(status=401, text="invalid or used ticket")
        self.tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(len(self.connections) + 1, ws, time.time())
        self.connections.append(conn)
        await ws.send_str(json.dumps(self._hello()))
        conn.hello_at = time.time()
        await self._flush_pending()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_frame(conn, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            conn.closed_at = time.time()
        return ws

    def _hello(self) -> dict:
        return {"type": "hello", "num_connections": len(self.open_connections()),
                "debug_info": {"host": "fake-slack-link", "build_number": 1,
                               "approximate_connection_time": 3600,
                               "started": time.strftime("%Y-%m-%d %H:%M:%S")},
                "connection_info": {"app_id": self.app_id}}

    def _on_frame(self, conn: Connection, data: str) -> None:
        """A frame from the app: an ack, or something we only keep for inspection."""
        try:
            frame = json.loads(data)
        except ValueError:
            frame = {"invalid_json": data}
        conn.frames_received.append(frame)
        if isinstance(frame, dict) and "envelope_id" in frame:
            try:
                deadline = self.deadline(self.log.get(frame["envelope_id"]))
            except KeyError:
                deadline = None
            self.log.record_ack(frame["envelope_id"], frame.get("payload"), 200, data,
                                connection_id=conn.id, raw=frame, deadline=deadline)
        else:
            log.warning("fake Slack got a non-ack frame: %s", data[:200])

    # --- sending ------------------------------------------------------------------------------
    def _pick(self) -> Optional[Connection]:
        usable = [c for c in self.connections if c.usable]
        if not usable:
            return None
        self._round_robin += 1
        return usable[self._round_robin % len(usable)]

    async def _send(self, delivery: Delivery) -> None:
        conn = self._pick()
        if conn is None:
            self.pending.append(delivery)
            return
        self._attempt(delivery, conn.id)
        try:
            await conn.ws.send_str(json.dumps(delivery.envelope()))
        except Exception as exc:  # the socket went away between pick and send
            self.log.record_failure(delivery, f"send failed: {exc!r}")
            delivery.attempts.pop()
            self.pending.append(delivery)
            return
        conn.envelopes_sent += 1
        self._watch(delivery)

    async def _flush_pending(self) -> None:
        while self.pending and self._pick() is not None:
            await self._send(self.pending.popleft())

    async def send_frame(self, frame: dict, connection_id: Optional[int] = None) -> list:
        """Send a raw frame to one connection or to all open ones; returns their ids."""
        targets = [c for c in self.open_connections()
                   if connection_id is None or c.id == connection_id]
        for conn in targets:
            await conn.ws.send_str(json.dumps(frame))
        return [c.id for c in targets]

    async def disconnect(self, reason: str, connection_id: Optional[int] = None,
                         close_after: Optional[float] = None) -> list:
        """Send `{"type": "disconnect"}`; the connection gets no further envelopes and, with
        `close_after`, is closed by the server that many seconds later (as Slack does)."""
        frame = {"type": "disconnect", "reason": reason,
                 "debug_info": {"host": "fake-slack-link"}}
        ids = await self.send_frame(frame, connection_id)
        for conn in self.connections:
            if conn.id in ids:
                conn.disconnect_sent = reason
                if close_after is not None:
                    self.loop.loop.call_later(close_after, self.loop.submit, self.drop(conn.id, 1000))
        return ids

    async def drop(self, connection_id: Optional[int] = None, code: int = 1011) -> list:
        """Close sockets abruptly (no disconnect message), like a network failure."""
        targets = [c for c in self.open_connections()
                   if connection_id is None or c.id == connection_id]
        for conn in targets:
            await conn.ws.close(code=code, message=b"fake-slack drop")
        return [c.id for c in targets]

    async def close(self) -> None:
        await self.drop(code=1001)
