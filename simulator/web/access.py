"""Who may do what: loopback binds, allowed Host names and control origins, bearer tokens.

Reading (snapshots, SSE, WebSocket subscriptions) is open to every origin, so front-end pages on
any port can connect. Control (creating, steering, deleting streams) from a browser is accepted
only from ``server.control_origins``; a request without ``Origin`` is not from a web page. Bound to
loopback, only loopback ``Host`` names (and ``server.hosts``) are served, which defeats DNS
rebinding; bound elsewhere, control also needs ``server.token``.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from dataclasses import dataclass
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
    """True for a loopback name or address (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    name = host.strip().lower().strip("[]")
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a ``Host`` header, without its port."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[: header.find("]") + 1] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(header: str, extra: tuple[str, ...]) -> bool:
    name = host_name(header)
    return is_loopback(name) or name in {h.lower() for h in extra}


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
    if is_loopback(server.host):
        return None
    if not server.token:
        return Refusal(
            "token",
            "control is off: no server.token (LIVESIM_TOKEN) is set",
            "header.Authorization",
        )
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    given = given or request.query.get("token", "")
    if not hmac.compare_digest(given.encode(), server.token.encode()):
        return Refusal(
            "token",
            "control needs 'Authorization: Bearer TOKEN' (server.token)",
            "header.Authorization",
        )
    return None
