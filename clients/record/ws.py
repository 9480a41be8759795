"""A WebSocket source: livesim's ``/streams/ID/ws`` (or anyone's sending JSON envelopes), with
the same resume and backoff as the SSE source (``sse.follow``): the cursor goes in the
``Last-Event-ID`` header of each new handshake."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, PayloadTooBig, WebSocketException

from clients.target import ClientError

from .sse import CONNECT_TIMEOUT, Seen, back_off


async def follow_ws(
    url: str,
    last_event_id: Callable[[], str],
    on_reconnect: Callable[[], None],
    max_event_bytes: int,
) -> AsyncIterator[Seen]:
    """Every envelope the source sends (frames without an ``id`` are not events), across
    reconnects, until the caller stops iterating."""
    failures = 0
    address = "ws" + url.removeprefix("http") if url.startswith("http") else url
    while True:
        headers = {"Last-Event-ID": cursor} if (cursor := last_event_id()) else {}
        before = cursor
        try:
            async with connect(
                address,
                additional_headers=headers,
                open_timeout=CONNECT_TIMEOUT,
                max_size=max_event_bytes,
                compression=None,
            ) as socket:
                async for frame in socket:
                    try:
                        value = orjson.loads(frame)
                    except orjson.JSONDecodeError:
                        continue
                    if isinstance(value, dict) and isinstance(value.get("id"), str):
                        data = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                        yield Seen(value["id"], str(value.get("type", "")), data, time.time())
        except InvalidStatus as exc:
            status = exc.response.status_code
            if 400 <= status < 500:
                raise ClientError(f"{url}: HTTP {status} (not a WebSocket stream here)") from None
        except PayloadTooBig:
            message = f"{url}: a frame over {max_event_bytes} bytes (--max-event-bytes)"
            raise ClientError(message) from None
        except (WebSocketException, OSError, TimeoutError):
            pass
        failures = await back_off(0 if last_event_id() != before else failures + 1)
        on_reconnect()
