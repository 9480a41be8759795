"""Where a push goes: an HTTP(S) webhook, signed, or Redis (XADD to a stream, PUBLISH).

``open_target(url, …)`` parses ``--to`` and yields a ``send`` for ``run.push``; each send
passes the event's one serialised body on unchanged.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp

from simulator.core.model import shown

from .plan import Planned
from .run import Refused, Retry, Send
from .signing import headers

RETRY_STATUSES = frozenset({408, 429})
REDIS_SCHEMES = ("redis", "rediss")
MAX_KEY = 1024


class TargetError(ValueError):
    """A ``--to`` the push cannot use, in one line naming it."""


def check_target(url: str) -> str:
    """``http``, ``https`` or ``redis``; a ``TargetError`` for anything else."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.hostname:
        return "http"
    if parts.scheme in REDIS_SCHEMES:
        _redis_where(url)
        return "redis"
    raise TargetError(f"--to: expected an http(s):// or redis:// URL, got {shown(url)}")


def _redis_where(url: str) -> tuple[str, str, str]:
    """(url without the query, ``stream`` or ``channel``, its name)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    chosen = [(k, query[k]) for k in ("stream", "channel") if k in query]
    unknown = sorted(set(query) - {"stream", "channel"})
    if unknown:
        raise TargetError(f"--to: unknown query parameter {shown(unknown[0])} (stream, channel)")
    if len(chosen) != 1 or not chosen[0][1] or len(chosen[0][1]) > MAX_KEY:
        raise TargetError(
            "--to: a redis:// URL takes one of ?stream=KEY (XADD) or ?channel=NAME (PUBLISH), "
            f"1 to {MAX_KEY} characters"
        )
    kind, name = chosen[0]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), kind, name


@asynccontextmanager
async def http_target(
    url: str, key: bytes, request_timeout: float, concurrency: int
) -> AsyncIterator[Send]:
    connector = aiohttp.TCPConnector(limit=concurrency)
    deadlines = aiohttp.ClientTimeout(total=request_timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=deadlines) as session:

        async def send(event: Planned) -> str:
            signed = headers(key, event.id, int(time.time()), event.body)
            try:
                async with session.post(
                    url,
                    data=event.body,
                    headers={"Content-Type": "application/json", **signed},
                    allow_redirects=False,
                ) as answer:
                    status = answer.status
                    await answer.read()
            except TimeoutError:
                raise Retry(f"no answer within {request_timeout:g}s") from None
            except (aiohttp.ClientError, ConnectionError) as exc:
                raise Retry(str(exc) or type(exc).__name__) from None
            if 200 <= status < 300:
                return str(status)
            if status >= 500 or status in RETRY_STATUSES:
                raise Retry(f"HTTP {status}", str(status))
            raise Refused(f"HTTP {status}", str(status))

        yield send


@asynccontextmanager
async def redis_target(url: str, request_timeout: float, concurrency: int) -> AsyncIterator[Send]:
    import redis.asyncio as redis
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
    from redis.exceptions import TimeoutError as RedisTimeout

    where, kind, name = _redis_where(url)
    client = redis.Redis.from_url(
        where,
        socket_timeout=request_timeout,
        socket_connect_timeout=request_timeout,
        max_connections=concurrency,
    )
    try:

        async def send(event: Planned) -> str:
            try:
                if kind == "stream":
                    fields = {"id": event.id, "type": event.type, "data": event.body}
                    await client.xadd(name, fields)  # type: ignore[arg-type]
                    return "xadd"
                await client.publish(name, event.body)
                return "publish"
            except (RedisConnectionError, RedisTimeout, OSError) as exc:
                raise Retry(f"redis: {exc}") from None
            except RedisError as exc:
                raise Refused(f"redis: {exc}", "error") from None

        yield send
    finally:
        await client.aclose()
