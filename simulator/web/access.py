"""Who may do what: loopback binds, allowed Host names and control origins, bearer tokens, and
how many connection slots one client address may hold.

Reading (snapshots, SSE, WebSocket subscriptions) is open to every origin, so front-end pages on
any port can connect. Control (creating, steering, deleting streams) from a browser is accepted
only from ``server.control_origins``; a request without ``Origin`` is not from a web page. Bound to
loopback, only loopback ``Host`` names (and ``server.hosts``) are served, which defeats DNS
rebinding; bound elsewhere, control also needs ``server.token``, sent in the ``Authorization``
header (a WebSocket upgrade, which browsers cannot give headers, may send ``?token=`` instead).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ..settings import ServerConfig

LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    """``origin`` or ``token``: a label of /metrics' ``livesim_connections_refused_total``."""
    message: str
    where: str


CONTROL_REFUSAL: web.RequestKey[Refusal | None] = web.RequestKey("control_refusal")
"""Why this request may not control streams (None: it may); WebSocket control ops read it."""

_ORIGIN = re.compile(
    r"(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<host>\[[0-9a-f:.]+\]|[^:/\[\]]+)(?::(?P<port>\d{1,5}|\*))?"
)


def is_loopback(host: str) -> bool:
    """True for a loopback name or address (``127.0.0.0/8``, ``::1``, ``::ffff:127.0.0.1``,
    ``localhost``)."""
    name = host.strip().lower().strip("[]")
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # a dual-stack socket's IPv4 peer
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def loopback_only(server: ServerConfig) -> bool:
    """Every address the server listens on is a loopback one: nobody else can reach it."""
    return all(is_loopback(address) for address in server.addresses)


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(header: str | None, extra: tuple[str, ...]) -> bool:
    """A loopback name, or one of ``extra``; never a missing or empty ``Host`` (an HTTP/1.0
    client without one could be a rebinding page as well as curl)."""
    name = host_name(header or "")
    return bool(name) and (is_loopback(name) or name in {h.lower() for h in extra})


def origin_allowed(origin: str, patterns: tuple[str, ...]) -> bool:
    """``origin`` matches a pattern: same scheme, host (``*.`` for subdomains), port (``*``)."""
    found = _ORIGIN.fullmatch(origin.strip().lower())
    if found is None:
        return "*" in patterns
    for pattern in patterns:
        if pattern == "*":
            return True
        want = _ORIGIN.fullmatch(pattern.strip().lower())
        if want is None or want["scheme"] != found["scheme"]:
            continue
        host, wanted = found["host"], want["host"]
        if not (host == wanted or wanted.startswith("*.") and host.endswith(wanted[1:])):
            continue
        if want["port"] == "*" or want["port"] == found["port"]:
            return True
    return False


def control_refusal(request: web.Request, server: ServerConfig) -> Refusal | None:
    """Why this request may not pause, seek, create or delete streams; None when it may."""
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin, server.control_origins):
        shown = origin[:100]
        return Refusal(
            "origin",
            f"Origin {shown!r} may not control streams (server.control_origins)",
            "header.Origin",
        )
    if loopback_only(server):
        return None
    if not server.token:
        return Refusal(
            "token",
            "control is off: no server.token (LIVESIM_TOKEN) is set",
            "header.Authorization",
        )
    given = bearer_token(request.headers.get("Authorization", ""))
    if given is None and is_websocket_upgrade(request):
        given = request.query.get("token")
    if given is None or not hmac.compare_digest(given.encode(), server.token.encode()):
        return Refusal(
            "token",
            "control needs 'Authorization: Bearer TOKEN' (server.token)",
            "header.Authorization",
        )
    return None


def bearer_token(header: str) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, the scheme in any case (RFC 7235
    §2.1); None for another scheme or none."""
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def is_websocket_upgrade(request: web.BaseRequest) -> bool:
    return request.headers.get("Upgrade", "").strip().lower() == "websocket"


def query_token_refusal(request: web.BaseRequest) -> Refusal | None:
    """``?token=`` is for WebSocket upgrades only: in any other URL it would end up in access
    logs, proxies and browser histories."""
    if "token" not in request.query or is_websocket_upgrade(request):
        return None
    return Refusal(
        "token_in_query",
        "query.token: a token in the URL is accepted for WebSocket upgrades only; "
        "send it as 'Authorization: Bearer TOKEN'",
        "query.token",
    )


# Connection slots per client address -------------------------------------------------------


def per_client_limit(address: str | None, server: ServerConfig) -> int | None:
    """The slots one client address may hold: ``server.max_connections_per_client``, or None
    (only ``max_connections`` applies) for a loopback address unless
    ``server.limit_loopback_per_client``: a load run or a reverse proxy on this host is one
    address for many clients."""
    if address is not None and is_loopback(address) and not server.limit_loopback_per_client:
        return None
    return server.max_connections_per_client


@dataclass(slots=True)
class Slots:
    """Connection slots held now: per client address, and in all (kept, not summed, since a
    request checks it)."""

    by_client: Counter[str] = field(default_factory=Counter)
    total: int = 0

    def take(self, client: str) -> None:
        self.by_client[client] += 1
        self.total += 1

    def give_back(self, client: str) -> None:
        self.total -= 1
        self.by_client[client] -= 1
        if self.by_client[client] <= 0:
            del self.by_client[client]
