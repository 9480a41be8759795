"""One load client: a logical subscriber that lives through reconnects, judged by its
``Sequence``."""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any

from ..connection import Connection, HandshakeError, open_connection
from ..judge import Sequence

if TYPE_CHECKING:
    from .run import Share

MAX_BACKOFF = 5.0
REFUSING = frozenset({429, 503})
"""Statuses that mean "not now" (limits, overload): counted as refusals, not as failures."""


def transport_of(number: int, transport: str) -> str:
    if transport == "mix":
        return "sse" if number % 2 == 0 else "ws"
    return transport


class LoadClient:
    """One subscriber across its connections: the ``frames.Sink`` its connections feed."""

    def __init__(self, share: Share, number: int, start: bytes | None) -> None:
        self.share = share
        self.number = number
        self.transport = transport_of(number, share.options.transport)
        self.sequence = Sequence(start)
        self.hist = share.hist
        self.joined = float("inf")
        self.conn: Connection | None = None
        self.opened = self.failed = self.refused = self.connect_failed = 0
        self.reconnects = self.churned = self.server_closed = 0
        self.bytes = 0
        self.node = number % len(share.targets)
        """The node (index in ``share.targets``) of the connection open or tried last."""
        self.first_node = self.node
        self.switches = 0

    def event(
        self,
        event_id: bytes,
        type: bytes,
        due: float | None,
        reset_reason: bytes | None,
        now: float,
    ) -> None:
        self.sequence.event(event_id, reset_reason)
        self.share.received += 1
        if due is not None and due >= self.joined:
            self.hist.add(now - due)

    def malformed(self) -> None:
        self.sequence.counts.malformed += 1

    async def run(self) -> None:
        share = self.share
        backoff = 0.1
        # due_at is truncated to the millisecond
        self.joined = max(time.time() - 0.001, share.options.warm_until)
        tried = False
        while not share.stopping:
            if tried and share.options.switch_nodes and len(share.targets) > 1:
                self.node = (self.node + 1) % len(share.targets)
                self.switches += 1
            tried = True
            node = share.nodes[self.node]
            try:
                conn = await open_connection(
                    self,
                    share.targets[self.node],
                    self.transport,
                    self.sequence.cursor,
                    max_event_bytes=share.options.max_event_bytes,
                )
            except (OSError, TimeoutError, HandshakeError) as exc:
                if isinstance(exc, ConnectionRefusedError) or (
                    isinstance(exc, HandshakeError) and exc.status in REFUSING
                ):
                    self.refused += 1
                    node["refused"] += 1
                else:
                    self.failed += 1
                    self.connect_failed += 1
                    node["connect_failed"] += 1
                share.error(exc)
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            self.opened += 1
            node["opened"] += 1
            share.open += 1
            self.conn = conn
            before = self.sequence.counts.received
            try:
                await conn.closed
            finally:
                share.open -= 1
                self.conn = None
                self.bytes += conn.bytes
            if share.stopping:
                return
            self.reconnects += 1
            if conn.error is not None:  # a body we would not take: the connection failed
                self.failed += 1
                node["failed"] += 1
                share.errors[conn.error] += 1
            elif conn.by_us:
                continue
            else:
                self.server_closed += 1
            if self.sequence.counts.received > before:
                backoff = 0.1
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, MAX_BACKOFF)

    def row(self) -> dict[str, Any]:
        counts = self.sequence.counts
        return {
            "client": self.number,
            "transport": self.transport,
            "opened": self.opened,
            "failed": self.failed,
            "refused": self.refused,
            "connect_failed": self.connect_failed,
            "reconnects": self.reconnects,
            "node": self.first_node,
            "switches": self.switches,
            **counts.as_dict(),
        }
