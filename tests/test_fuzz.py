"""Hostile input from hypothesis against one running server per surface (issue #6, acceptance).

Surfaces: ``POST /api/streams`` bodies, the stream controls' bodies, live posts (``POST``,
``PATCH``, ``DELETE``, pin and unpin under ``/api/streams/{id}/posts``), private-replay query
strings, cursors (``Last-Event-ID`` and ``?since=``, shared and private), and WebSocket messages
(controls and post ops, shared and private). Invariants, checked for every example:

- every answer is a 4xx JSON error ``{"error", "where", "status"}`` (one line, short, its
  ``status`` the HTTP status), or a 2xx JSON body, or an event stream that ``clients/sse.py``
  reads to its first event; never a 5xx, never a hang;
- a WebSocket answers each message with a JSON error, a pong, a ``resumed`` marker or events, and
  stays open;
- ``/healthz`` answers after every example, and ``/readyz`` lists no failed stream;
- nothing is logged at ERROR (a bug the middleware turned into a 500, a replay that raised);
- a watcher subscribed to another stream of the same server receives every event while the
  fuzzing runs: contiguous serials, up to the stream's latest, nothing lost.

How hypothesis meets asyncio here. The server is the ``start_server`` fixture's, on the test's
event loop. hypothesis drives synchronous functions, and running its examples on that loop (one
``run_until_complete`` each) would stop the server, its streams and the watcher between examples.
So the test hands the loop back: ``await asyncio.to_thread(surface, harness)`` runs the
``@given`` function in a worker thread, and each example submits its requests to the server's
loop with ``asyncio.run_coroutine_threadsafe(...).result(timeout)``. The loop keeps running the
server, its streams and the watcher the whole time; a hang is a ``TimeoutError`` with the example
that caused it; hypothesis shrinks and reports failures as usual. One server per surface (not per
example) keeps the run short; ``max_examples`` per surface keeps the whole module well under 40 s.

Inputs that found a bug stay here as ``@example``s (see each surface).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import string
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
import pytest
import sse
from conftest import BUNDLED_ID, Server, StartServer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from clients.sse import SSEReader
from simulator.web.snapshots import SNAPSHOTS
from simulator.web.state import PRIVATE, PRIVATE_STREAMS, SETTINGS, STREAMS

T = TypeVar("T")
FEED = BUNDLED_ID
FAST = {"feed": FEED, "speed": 60, "max_gap": "1s", "loop": True}
"""About 60 events a second, looping: something is always happening."""
SERVER_STREAMS = [
    {"id": "watched", **FAST},  # the watcher's: nothing the fuzzer sends touches it
    {"id": "fuzz", **FAST},  # controls and WebSocket ops land here
    {"id": "cursors", **FAST},  # cursors are thrown at it; never controlled, so it keeps playing
]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
"""Per surface; ``FUZZ_EXAMPLES=3000 pytest tests/test_fuzz.py`` digs deeper."""
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TIMEOUT = 10.0
"""Seconds any one request may take before it counts as a hang."""
OPS = ["pause", "resume", "restart", "seek", "speed", "step"]
POST_OPS = ["post", "update_post", "delete_post", "pin_post", "unpin_post"]
POST_FIELDS = ["headline", "body", "author", "source", "media", "key_event", "pinned"]
ARCHIVE_POSTS = ["p-66e33032b5", "p-8bffc67d93", "p-71f02e8132"]


# Strategies --------------------------------------------------------------------------------------

NESTED_ARRAY = "[" * 1000 + "]" * 1000
NESTED_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000
EXTREMES: list[Any] = [
    0,
    -0.0,
    -1,
    1,
    0.5,
    5e-324,
    1e-300,
    1e308,
    -1e308,
    2**63,
    2**64,
    -(2**63) - 1,
    10**400,
    math.inf,
    -math.inf,
    math.nan,
    "NaN",
    "nan",
    "inf",
    "-inf",
    "Infinity",
    "1e400",
    "1e308",
    "2e19",
    "5e-324",
    "",
    " ",
    "max",
    "MAX",
    "9" * 10_000,
    "x" * 10_000,
    "\x00",
    "a\nb",
    "💥",
    "\ud800",
    True,
    False,
    None,
    [],
    {},
    [1, 2],
    {"a": 1},
    "start",
    "end",
    "p-66e33032b5",
    "2014-06-25T06:00:00Z",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00Z",
    "2014-06-25T06:00:00+14:00",
    "+1000000h",
    "-1000000h",
    "+1e12s",
    "1e12",
    "1h30m",
    "250ms",
    "none",
    "off",
]
scalars = st.one_of(
    st.sampled_from(EXTREMES),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.booleans(),
    st.none(),
)
json_values = st.one_of(
    st.sampled_from(EXTREMES),  # drawn often on purpose: they are what finds bugs
    st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
        ),
        max_leaves=8,
    ),
)
RAW_BODIES = [
    NESTED_ARRAY,
    NESTED_OBJECT,
    '{"speed": 1, "speed": "fast"}',
    '{"to": "start", "to": 5}',
    f'{{"feed": "{FEED}", "feed": 1}}',
    '{"speed": 1e400}',
    '{"speed": -0.0}',
    '{"speed": NaN}',
    '{"speed": Infinity}',
    '{"speed": 18446744073709551616}',
    "\ufeff{}",
    "{",
    "null",
    "1",
    '"str"',
    "[]",
    "\x00",
    '{"a": "\\ud800"}',
]
raw_bodies = st.one_of(
    st.sampled_from(RAW_BODIES).map(str.encode),
    st.binary(max_size=64),
    st.just(b"\xff\xfe{}"),
)


def dumps(value: Any) -> bytes:
    """Python's JSON writer: big ints, NaN and Infinity literals and lone surrogates go out as
    written (orjson, the server's reader, refuses some of them: that is the point)."""
    return json.dumps(value).encode()


def objects(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects over the fields a surface knows, plus a stranger now and then."""
    key = st.one_of(st.sampled_from(keys), st.text(max_size=12), st.just("k" * 10_000))
    return st.dictionaries(key, json_values, max_size=len(keys) + 1)


scenario_steps = st.fixed_dictionaries(
    {},
    optional={
        "action": st.sampled_from(["pin", "unpin", "delete", "update", "fly"]) | json_values,
        "post": st.sampled_from(["p-66e33032b5", "p-8bffc67d93", "zzz"]) | json_values,
        "after": json_values,
        "extra": json_values,
    },
)
stream_bodies = st.fixed_dictionaries(
    {"feed": st.just(FEED) | json_values},
    optional={
        "id": st.from_regex(r"\Af[a-z0-9]{0,8}\Z") | json_values,
        "speed": json_values,
        "max_gap": json_values,
        "loop": json_values,
        "start": json_values,
        "paused": json_values,
        "loop_pause": json_values,
        "edit_delay": json_values,
        "scenario": st.lists(scenario_steps, max_size=3) | json_values,
        "bogus": json_values,
    },
)


def as_query(value: Any) -> str:
    """An extreme as query text. A request line over 8 190 bytes never reaches the app (aiohttp's
    parser answers it with a text/plain 400, docs/operations.md), so long values stay under it."""
    text = value if isinstance(value, str) else json.dumps(value)
    return text[:5000]


media_items = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["image", "video", "link", "nope"]) | json_values,
        "url": json_values,
        "title": json_values,
        "caption": json_values,
        "count": json_values,
        "extra": json_values,
    },
)
post_fields = st.fixed_dictionaries(
    {},
    optional={
        "headline": json_values,
        "body": st.sampled_from(["Breaking: …", "", "x" * 70_000]) | json_values,
        "author": json_values,
        "source": json_values,
        "media": st.lists(media_items, max_size=3) | json_values,
        "key_event": json_values,
        "pinned": json_values,
        "bogus": json_values,
    },
)
post_ids = st.one_of(st.sampled_from(ARCHIVE_POSTS), st.text(max_size=12), st.just("x" * 2000))


# Query values travel as text: the extremes as strings, and text with the awkward characters.
query_text = st.one_of(
    st.sampled_from([as_query(v) for v in EXTREMES if v != "\ud800"]),
    st.sampled_from(["true", "false", "1", "0", "yes", "no", "on", "off", "TRUE", "maybe"]),
    st.text(max_size=20),
)
raw_query = st.text(
    alphabet=string.ascii_letters + string.digits + "%&=;+-._~!$'()*,:@/?[]",
    max_size=60,
)
PRIVATE_KEYS = [
    *["speed", "from", "max_gap", "loop", "paused", "faults", "scenario", "timestamps"],
    *["since", "last_event_id", "token"],
]

# Header values: anything but the characters a header cannot carry (aiohttp refuses them).
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)


def cursors(incarnation: str, serial: int) -> st.SearchStrategy[str]:
    """Cursors near the real ones (this replay's incarnation, serials around its latest) and
    far from them."""
    near = st.integers(min_value=-3, max_value=3).map(lambda d: f"{incarnation}-{serial + d}")
    numbers = st.one_of(
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([0, 2**63 - 1, 2**63, 2**64, 10**18, 10**19]),
    )
    return st.one_of(
        near,
        numbers.map(lambda n: f"{incarnation}-{n}"),
        st.sampled_from(["9" * 5000, "0" * 30, "", "-", "1e3", "+5", " 5", "٣", "NaN"]).map(
            lambda s: f"{incarnation}-{s}"
        ),
        st.sampled_from(["", "-", "-1", "--1", "0", "nope-1", f"{incarnation}", "a-b-c-1"]),
        header_text,
    )


ws_ops = st.one_of(
    st.sampled_from(["ping", "resume", *OPS, *POST_OPS, "fly", "", "PAUSE"]), json_values
)
ws_fields = st.sampled_from(["to", "speed", "since", "post", *POST_FIELDS])
ws_objects = st.fixed_dictionaries(
    {"op": ws_ops},
    optional={"to": json_values, "speed": json_values, "since": json_values, "x": json_values},
)
ws_messages = st.one_of(
    ws_objects.map(json.dumps),
    st.tuples(ws_ops, ws_fields, json_values).map(lambda m: json.dumps({"op": m[0], m[1]: m[2]})),
    st.tuples(st.sampled_from(OPS), ws_fields, json_values).map(
        lambda m: json.dumps({"op": m[0], m[1]: m[2]})
    ),
    st.sampled_from(RAW_BODIES),
    st.sampled_from(["not json", "[1,2]", '{"op":5}', '{"op":"seek"}', "", "{}"]),
    st.binary(max_size=32),
    st.text(max_size=40),
)


# The harness -------------------------------------------------------------------------------------


class Harness:
    """The server's loop, seen from hypothesis' worker thread."""

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.examples = 0

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's loop and wait for it; then check ``/healthz``."""
        result = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(coro, TIMEOUT), self.loop
        ).result()
        asyncio.run_coroutine_threadsafe(healthy(self.server), self.loop).result()
        self.examples += 1
        return result


async def healthy(server: Server) -> None:
    """Alive, and no stream failed: a replay that raised would answer 409 from then on, which
    would otherwise pass for a 4xx."""
    async with asyncio.timeout(5):  # generous: the suite runs on 2 shared cores
        status, body = await server.get("/healthz")
        assert status == 200 and body["ok"] is True, body
        status, body = await server.get("/readyz")
        assert status == 200 and body["failed"] == [], body


PAGE_TYPES = {"text/html", "text/css", "text/javascript", "application/javascript"}
"""What the ticker page and its files are served as."""


async def check_answer(response: aiohttp.ClientResponse) -> Any:
    """The invariant for an HTTP answer; the JSON body (None for an event stream)."""
    status = response.status
    assert status < 500, (status, await response.text())
    if status >= 400:
        assert response.content_type == "application/json", (status, await response.text())
        if response.method == "HEAD":  # the headers a GET would get, no body
            return None
        body = await response.json()
        assert isinstance(body, dict) and set(body) == {"error", "where", "status"}, body
        assert body["status"] == status, body
        error = body["error"]
        assert isinstance(error, str) and 0 < len(error) <= 500, body
        assert error.isprintable(), body  # one line, no control characters
        assert body["where"] is None or isinstance(body["where"], str), body
        assert body["where"] is None or len(body["where"]) <= 300, body
        return body
    if response.content_type == "text/event-stream":
        reader = SSEReader(response)
        try:
            event = await reader.next_event()  # StopAsyncIteration: ended with no event
        finally:
            await reader.aclose()
        json.loads(event.data)
        return None
    if response.method in ("HEAD", "OPTIONS") or status == 204:
        assert await response.read() == b"", (status, response.method)
        return None
    if response.url.path == "/" or response.url.path.startswith("/static/"):
        assert response.content_type in PAGE_TYPES, (status, response.content_type)
        return None
    assert response.content_type == "application/json", (status, await response.text())
    return await response.json()


class Watcher:
    """A subscriber of the ``watched`` stream that checks it loses nothing."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.serials: list[int] = []
        self.gaps: list[tuple[int, int]] = []
        self.started = asyncio.Event()
        self.arrived = asyncio.Event()
        self.before = 0
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        url = self.server.base + "/streams/watched/events"
        async with sse.connect(self.server.session, url) as reader:
            while True:
                event = await reader.next_event()
                serial = int(event.id.rsplit("-", 1)[1])
                if self.serials and serial != self.serials[-1] + 1:
                    self.gaps.append((self.serials[-1], serial))
                self.serials.append(serial)
                self.arrived.set()
                if len(self.serials) >= 3:
                    self.started.set()

    async def __aenter__(self) -> Watcher:
        self.task = asyncio.create_task(self.run())
        async with asyncio.timeout(TIMEOUT):
            await self.started.wait()
        self.before = len(self.serials)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        if exc[0] is None:
            await self.check()
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task

    async def check(self) -> None:
        """Every event up to the stream's latest (at the end of the fuzzing) arrived, in order."""
        assert self.task is not None and not self.task.done(), "the watcher's stream ended"
        latest = self.server.app[STREAMS]["watched"].replay.serial
        async with asyncio.timeout(TIMEOUT):
            while self.serials[-1] < latest:
                self.arrived.clear()
                await self.arrived.wait()
        assert not self.gaps, f"the watcher missed events: {self.gaps[:5]}"
        assert len(self.serials) > self.before + 1, "the watcher received nothing while fuzzing"


async def fuzz(start_server: StartServer, surface: Callable[[Harness], None]) -> None:
    server = await start_server(streams=SERVER_STREAMS)
    harness = Harness(server, asyncio.get_running_loop())
    async with Watcher(server):
        await asyncio.to_thread(surface, harness)
    assert harness.examples >= EXAMPLES, harness.examples


# Surfaces ----------------------------------------------------------------------------------------


async def post(server: Server, path: str, body: bytes) -> Any:
    async with server.session.post(server.base + path, data=body) as response:
        return await check_answer(response)


def create_streams(h: Harness) -> None:
    async def attempt(body: bytes) -> None:
        answer = await post(h.server, "/api/streams", body)
        if answer is not None and "links" in answer:  # made: delete it, keep the server clean
            async with h.server.session.delete(h.server.base + answer["links"]["self"]) as r:
                assert r.status == 200, await r.text()

    @FUZZ
    @given(st.one_of(stream_bodies.map(dumps), raw_bodies))
    @example(dumps({"feed": FEED, "k" * 10_000: 1}))  # the error named the 10 KB key
    @example(dumps({"feed": FEED, "a\nb": 1}))  # a raw newline in the error line
    def check(body: bytes) -> None:
        h.run(attempt(body))

    check()


def control_streams(h: Harness) -> None:
    @FUZZ
    @given(
        st.sampled_from(OPS),
        st.one_of(objects(["to", "speed", "since", "events", "until"]).map(dumps), raw_bodies),
    )
    @example("speed", dumps({"speed": 5e-324}))
    @example("step", b'{"events": 1e308}')
    @example("step", b'{"until": "+99999999999h"}')
    @example("seek", dumps({"to": "+1e12s"}))
    @example("seek", dumps({"to": "x" * 10_000}))  # the error quoted all 10 KB
    def check(op: str, body: bytes) -> None:
        h.run(post(h.server, f"/api/streams/fuzz/{op}", body))

    check()


async def live_post(server: Server, method: str, path: str, body: bytes) -> None:
    async with server.session.request(method, server.base + path, data=body) as response:
        answer = await check_answer(response)
    if method == "POST" and path.endswith("/posts") and response.status == 201:
        created = answer["post"]["id"]
        async with server.session.delete(f"{server.base}{path}/{created}") as response:
            await check_answer(response)


def live_posts(h: Harness) -> None:
    base = "/api/streams/fuzz/posts"

    @FUZZ
    @given(
        st.sampled_from(["POST", "PATCH", "DELETE", "pin", "unpin"]),
        post_ids,
        st.one_of(post_fields.map(dumps), raw_bodies),
    )
    def check(action: str, post: str, body: bytes) -> None:
        quoted = quote(post, safe="")
        if action == "POST":
            h.run(live_post(h.server, "POST", base, body))
        elif action in ("pin", "unpin"):
            h.run(live_post(h.server, "POST", f"{base}/{quoted}/{action}", body))
        else:
            h.run(live_post(h.server, action, f"{base}/{quoted}", body))

    check()


async def send(server: Server, method: str, path: str, headers: dict[str, str]) -> None:
    url = URL(server.base + path, encoded=True)
    async with server.session.request(method, url, headers=headers, data=b"{}") as response:
        await check_answer(response)


ORIGINS = ["http://localhost:3000", "http://[::1]:1", "null", "http://evil.example", "*"]
HOSTS = ["localhost", "127.0.0.1:1", "[::1]", "[::1", "evil.example", "a.localhost", ":", ""]


def access_headers(h: Harness) -> None:
    """Host, Origin and Authorization as a browser, a rebinding page or a script might send."""
    headers = st.fixed_dictionaries(
        {},
        optional={
            "Host": st.sampled_from(HOSTS) | header_text,
            "Origin": st.sampled_from(ORIGINS) | header_text,
            "Authorization": st.just("Bearer ") | header_text,
        },
    )

    @FUZZ
    @given(
        st.sampled_from(["GET", "POST", "DELETE", "PATCH", "PUT", "OPTIONS", "HEAD"]),
        st.sampled_from(["/api/streams/fuzz/pause", "/api/streams", "/api/streams/nope", "/"]),
        headers,
    )
    def check(method: str, path: str, headers: dict[str, str]) -> None:
        h.run(send(h.server, method, path, headers))

    check()


segments = st.one_of(
    st.sampled_from(["api", "streams", "feeds", "fuzz", FEED, "posts", "events", "ws", "static"]),
    st.sampled_from(["..", ".", "%2e%2e", "%2F", "%00", "%zz", "%", "~", "index.html", "x" * 3000]),
    st.text(alphabet=string.ascii_letters + string.digits + "-._~%!$&'()*+,;=:@", max_size=12),
)


def page_queries(h: Harness) -> None:
    """``?limit=&before=`` on a stream's and a feed's posts: a page or a 400 naming the
    parameter, never a 500 (#15)."""
    queries = st.one_of(
        st.dictionaries(st.sampled_from(["limit", "before"]), query_text),
        st.dictionaries(st.just("before"), st.sampled_from([*ARCHIVE_POSTS, "live-1", ""])).map(
            lambda q: {**q, "limit": "2"}
        ),
    )
    paths = st.sampled_from(["/api/streams/fuzz/posts", f"/api/feeds/{FEED}/posts"])

    @FUZZ
    @given(
        st.builds(lambda path, query: URL(path).with_query(query), paths, queries).filter(
            lambda url: len(url.raw_path_qs) < 8000  # longer never reaches the app (see above)
        )
    )
    def check(url: URL) -> None:
        h.run(send(h.server, "GET", url.raw_path_qs, {}))

    check()


def paths(h: Harness) -> None:
    """Any method on any path: unknown routes, wrong methods, traversal, bad escapes."""

    @FUZZ
    @given(
        st.sampled_from(["GET", "POST", "DELETE", "PATCH", "PUT", "OPTIONS", "HEAD", "TRACE"]),
        st.lists(segments, min_size=1, max_size=5)
        .map(lambda parts: "/" + "/".join(parts))
        .filter(lambda path: len(path) < 8000),  # longer never reaches the app (see above)
    )
    def check(method: str, path: str) -> None:
        if method == "GET" and path.endswith(("/events", "/ws")):
            method = "HEAD"  # subscriptions are the other surfaces' business
        h.run(send(h.server, method, path, {}))

    check()


async def get_events(server: Server, url: URL, headers: dict[str, str] | None = None) -> None:
    async with server.session.get(url, headers=headers) as response:
        await check_answer(response)


def private_queries(h: Harness) -> None:
    base = URL(h.server.base + f"/feeds/{FEED}/events")

    @FUZZ
    @given(
        st.one_of(
            st.dictionaries(st.sampled_from(PRIVATE_KEYS) | st.text(max_size=8), query_text).map(
                lambda params: base.with_query(params)
            ),
            raw_query.map(lambda raw: URL(f"{base}?{raw}", encoded=True)),
        ).filter(lambda url: len(url.raw_path_qs) < 8000)
    )
    @example(base.with_query({"\x1f": "0"}))  # echoed a control character in the error
    @example(base.with_query({"k" * 5000: "0"}))  # echoed a 5 KB name in the error
    def check(url: URL) -> None:
        h.run(get_events(h.server, url))

    check()


def cursor_resumes(h: Harness) -> None:
    replay = h.server.app[STREAMS]["cursors"].replay
    shared = URL(h.server.base + "/streams/cursors/events")
    private = URL(h.server.base + f"/feeds/{FEED}/events")

    @FUZZ
    @given(
        cursors(replay.incarnation, replay.serial),
        st.sampled_from(["header", "since", "last_event_id"]),
        st.sampled_from([shared, private]),
    )
    def check(cursor: str, how: str, url: URL) -> None:
        if how == "header":
            h.run(get_events(h.server, url, {"Last-Event-ID": cursor}))
        else:
            h.run(get_events(h.server, url.with_query({how: cursor})))

    check()


async def converse(server: Server, path: str, messages: list[str | bytes]) -> None:
    """Send the messages, then a ping; every frame up to the pong is an event or a reply, and
    the connection is still open."""
    limit = server.app[SETTINGS].server.ws_max_message
    too_big = any(len(m if isinstance(m, bytes) else m.encode()) > limit for m in messages)
    async with server.session.ws_connect(server.ws_base + path) as ws:
        for message in messages:
            if isinstance(message, bytes):
                await ws.send_bytes(message)
            else:
                await ws.send_str(message)
        await ws.send_str('{"op":"ping"}')
        while True:
            frame = await ws.receive()
            if too_big and frame.type is not aiohttp.WSMsgType.TEXT:
                assert ws.close_code == 1009, (frame, ws.close_code)  # over ws_max_message
                return
            assert frame.type is aiohttp.WSMsgType.TEXT, (frame, ws.close_code)
            value = json.loads(frame.data)
            assert isinstance(value, dict), value
            if "id" in value:
                continue
            if value["type"] == "pong":
                break
            if value["type"] == "error":
                assert isinstance(value["error"], str) and len(value["error"]) <= 500, value
                assert value["error"].isprintable(), value
                continue
            assert value["type"] == "resumed", value


def ws_conversations(h: Harness) -> None:
    @FUZZ
    @given(
        st.sampled_from(["/streams/fuzz/ws", f"/feeds/{FEED}/ws?max_gap=1s"]),
        st.lists(ws_messages, min_size=1, max_size=4),
    )
    @example("/streams/fuzz/ws", ['{"op": "speed", "speed": 5e-324}'])
    @example("/streams/fuzz/ws", ['{"op": "%s"}' % ("x" * 10_000)])  # a 10 KB error echoed it
    @example("/streams/fuzz/ws", ['{"op": "seek", "to": "%s"}' % ("x" * 10_000)])  # same
    def check(path: str, messages: list[str | bytes]) -> None:
        h.run(converse(h.server, path, messages))

    check()


@pytest.mark.parametrize(
    "surface",
    [
        create_streams,
        control_streams,
        live_posts,
        access_headers,
        paths,
        private_queries,
        page_queries,
        cursor_resumes,
        ws_conversations,
    ],
    ids=lambda f: f.__name__,
)
async def test_fuzz(
    start_server: StartServer,
    surface: Callable[[Harness], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    await fuzz(start_server, surface)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [f"{r.name}: {r.getMessage()[:300]}" for r in errors[:5]]


# Snapshots under load (issue #12, F2) ------------------------------------------------------------

SNAPSHOT_LIMITS = {"max_snapshot_bytes": 256 * 1024, "max_snapshot_bytes_in_flight": 512 * 1024}
"""Small bounds, so that a few fuzzed posts truncate the snapshot and readers compete for room."""
SNAPSHOT_KEYS = [
    "stream",
    "cursor",
    "state",
    "speed",
    "loop",
    "max_gap",
    "position",
    "timestamps",
    "posts",
    "key_events",
    "truncated",
    "omitted",
]
SNAPSHOT_POSTS = [*ARCHIVE_POSTS, "live-1", "live-2", "live-3"]
post_sizes = st.sampled_from([0, 1, 1000, 30_000, 64_000, 65_536, 65_537]) | st.integers(0, 70_000)
"""Body bytes: a few 64 KB posts pass ``max_snapshot_bytes`` here; over 65 536 is a 400."""
snapshot_action = st.one_of(
    st.tuples(st.just("post"), post_sizes, st.booleans(), st.booleans()),  # pinned, key_event
    st.tuples(st.just("patch"), st.sampled_from(SNAPSHOT_POSTS), post_sizes),
    st.tuples(st.just("delete"), st.sampled_from(SNAPSHOT_POSTS)),
    st.tuples(st.sampled_from(["pin", "unpin"]), st.sampled_from(SNAPSHOT_POSTS)),
    st.tuples(
        st.sampled_from(["full", "full", "partial", "head", "feed"]), st.integers(0, 300_000)
    ),  # how a reader reads, and where a partial one gives up
    st.tuples(st.sampled_from(["seek", "restart"])),
)
snapshot_round = st.lists(snapshot_action, min_size=1, max_size=5)
snapshot_rounds = st.lists(snapshot_round, min_size=1, max_size=4)
"""Rounds one after the other, the actions of a round at once."""


def check_snapshot(body: bytes, headers: Any, limit: int) -> None:
    """A whole snapshot: its size, its shape, and its parts agreeing with each other."""
    assert int(headers["Content-Length"]) == len(body) <= limit, (len(body), limit)
    value = json.loads(body)
    assert list(value) == SNAPSHOT_KEYS, list(value)
    ids = [p["id"] for p in value["posts"]]
    assert len(set(ids)) == len(ids), ids
    assert all(isinstance(p["pinned"], bool) for p in value["posts"])
    assert value["key_events"] == [p["id"] for p in value["posts"] if p.get("key_event")]
    assert value["truncated"] is (value["omitted"] > 0), value["omitted"]


async def read_snapshot(server: Server, mode: str, give_up: int) -> None:
    path = f"/api/feeds/{FEED}/posts" if mode == "feed" else "/api/streams/snaps/posts"
    if mode == "partial":  # reads a little, then leaves while the server writes
        host, port = server.base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        try:
            await reader.read(min(give_up, 65536) + 1)
        finally:
            writer.transport.abort()
        return
    method = "HEAD" if mode == "head" else "GET"
    async with server.session.request(method, server.base + path) as response:
        if response.status == 200 and method == "GET":
            body = await response.read()
            if mode == "feed":
                assert json.loads(body)["feed"] == FEED
            else:
                check_snapshot(body, response.headers, SNAPSHOT_LIMITS["max_snapshot_bytes"])
            return
        answer = await check_answer(response)
        if response.status == 503:
            assert response.headers["Retry-After"].isdigit()
            assert answer["where"] == "server.max_snapshot_bytes_in_flight", answer


async def perform(server: Server, action: tuple[Any, ...]) -> None:
    base = "/api/streams/snaps"
    kind = action[0]
    if kind == "post":  # kept (``live_post`` deletes what it made): posts pile up to the bounds
        body = {"body": "p" * action[1], "pinned": action[2], "key_event": action[3]}
        await post(server, f"{base}/posts", dumps(body))
    elif kind == "patch":
        edit = dumps({"body": "e" * action[2]})
        await live_post(server, "PATCH", f"{base}/posts/{action[1]}", edit)
    elif kind == "delete":
        await live_post(server, "DELETE", f"{base}/posts/{action[1]}", b"")
    elif kind in ("pin", "unpin"):
        await live_post(server, "POST", f"{base}/posts/{action[1]}/{kind}", b"")
    elif kind == "seek":
        await post(server, f"{base}/seek", dumps({"to": "-10m"}))
    elif kind == "restart":
        await post(server, f"{base}/restart", b"")
    else:
        await read_snapshot(server, kind, action[1])


async def under_load(server: Server, rounds: list[list[tuple[Any, ...]]]) -> None:
    """Each round's actions at once, then every snapshot byte in flight given back."""
    for actions in rounds:
        await asyncio.gather(*(perform(server, action) for action in actions))
    flight = server.app[SNAPSHOTS]
    while flight.in_flight:  # noqa: ASYNC110 (polling the server's count)
        await asyncio.sleep(0.01)  # the harness' timeout catches bytes never given back


def snapshots_under_load(h: Harness) -> None:
    """Live posts (up to 64 KB, pinned, key events), edits of archive posts, deletes, seeks and
    restarts on one stream while readers load its snapshot whole, in part, or by HEAD."""

    @FUZZ
    @given(snapshot_rounds)
    @example([[("post", 64_000, True, True)] * 5, [("full", 0)] * 5])  # over the bound
    @example([[("patch", ARCHIVE_POSTS[0], 64_000), ("partial", 10), ("full", 0)]])
    def check(rounds: list[list[tuple[Any, ...]]]) -> None:
        h.run(under_load(h.server, rounds))

    check()


# Schedules (issue #12) ---------------------------------------------------------------------------

CRON_FIELDS = [
    *["*", "*/5", "*/0", "0", "59", "60", "-1", "23", "24", "29", "30", "31", "31/2", "1-5"],
    *["5-1", "last", "2,4,6,9,11", "feb", "jan-dec", "mon-fri", "sun", "7", "x", "💥", "9" * 30],
]
cron_fields = st.one_of(
    st.sampled_from(CRON_FIELDS), st.integers(-2, 70).map(str), st.text(max_size=5)
)
crons = st.one_of(
    st.lists(cron_fields, min_size=4, max_size=6).map(" ".join),
    st.sampled_from(["59 23 31 2,4,6,9,11 *", "0 0 30 2 *", "0 0 29 2 thu", "x" * 10_000]),
    json_values,
)
moments = st.one_of(
    st.tuples(st.datetimes(), st.sampled_from(["", "Z", "+23:59", "-23:59", "+05:30"])).map(
        lambda moment: moment[0].isoformat() + moment[1]
    ),
    st.sampled_from(
        ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59"]
    ),
    json_values,
)
ZONES = ["UTC", "Europe/London", "America/Adak", "Pacific/Kiritimati", "Mars/Olympus", ""]
ACTIONS = ["start", "pause", "resume", "restart", "speed", "seek", "inject", "explode"]
schedule_entries = st.fixed_dictionaries(
    {"action": st.sampled_from(ACTIONS) | json_values},
    optional={
        "cron": crons,
        "interval": st.sampled_from(["1s", "0.5s", "100y", "101y", "1e308", 1, 0]) | json_values,
        "at": moments,
        "timezone": st.sampled_from(ZONES) | json_values,
        "speed": json_values,
        "to": st.sampled_from(ARCHIVE_POSTS) | json_values,
        "post": post_fields | json_values,
        "bogus": json_values,
    },
)
schedule_bodies = st.fixed_dictionaries(
    {"feed": st.just(FEED), "schedule": st.lists(schedule_entries, max_size=4) | json_values},
    optional={"start_at": moments},
)
SCHEDULE_ANSWER = 2.0
"""Seconds a schedule may take to be accepted or refused (a hundred entries included)."""


def schedules(h: Harness) -> None:
    async def attempt(body: bytes) -> None:
        began = asyncio.get_running_loop().time()
        answer = await post(h.server, "/api/streams", body)
        assert asyncio.get_running_loop().time() - began < SCHEDULE_ANSWER
        if "links" in answer:
            async with h.server.session.delete(h.server.base + answer["links"]["self"]) as r:
                assert r.status == 200, await r.text()
        else:
            assert answer["status"] == 400, answer
            places = ("body.schedule", "body.start_at")
            assert answer["where"] == "body" or answer["where"].startswith(places), answer

    never = {"cron": "59 23 31 2,4,6,9,11 *", "action": "pause"}
    rare = {"cron": "* * 29 2 thu", "timezone": "Europe/London", "action": "pause"}
    overflow = "9999-12-31T23:59:59-23:59"

    @FUZZ
    @given(schedule_bodies.map(dumps))
    @example(dumps({"feed": FEED, "schedule": [never] * 100}))  # 54 s, the loop blocked
    @example(dumps({"feed": FEED, "schedule": [rare] * 100}))  # real, and slow to search
    @example(dumps({"feed": FEED, "start_at": overflow}))  # 500, and a stream left running
    @example(dumps({"feed": FEED, "schedule": [{"action": "pause", "at": overflow}]}))
    def check(body: bytes) -> None:
        h.run(attempt(body))

    check()


# Private replays' ops (issue #12) --------------------------------------------------------------

PRIVATE_LIMITS = {
    "max_private_live_bytes": 200_000,
    "max_private_log_bytes": 65_536,
    "ws_control_rate": 100_000,
}
"""Small budgets, so that the fuzzer reaches them."""
big_bodies = st.sampled_from(["x" * 60_000, "y" * 30_000, "z" * 1000, ""])
private_posts = st.fixed_dictionaries(
    {"op": st.sampled_from(POST_OPS)},
    optional={
        "post": st.sampled_from(["live-1", "live-2", "live-3", *ARCHIVE_POSTS]) | json_values,
        "body": big_bodies | json_values,
        "headline": json_values,
        "pinned": json_values,
    },
).map(json.dumps)
private_controls = st.one_of(
    st.sampled_from(
        [
            '{"op": "seek", "to": "start"}',
            '{"op": "seek", "to": "end"}',
            '{"op": "restart"}',
            '{"op": "speed", "speed": "max"}',
            '{"op": "pause"}',
            '{"op": "resume"}',
        ]
    ),
    st.tuples(st.sampled_from(["resume"]), json_values).map(
        lambda m: json.dumps({"op": m[0], "since": m[1]})
    ),
)
private_messages = st.one_of(private_posts, private_posts, private_controls, ws_messages)


async def private_conversation(server: Server, query: str, messages: list[str | bytes]) -> None:
    """``converse`` on a private replay, then the budgets: within their limits while it is open,
    back to nothing once it closed."""
    await converse(server, f"/feeds/{FEED}/ws?{query}", messages)
    private = server.app[PRIVATE]
    assert private.live.used <= private.live.limit, private.live.used
    assert private.logs.used <= private.logs.limit, private.logs.used
    async with asyncio.timeout(TIMEOUT):
        while True:
            if not server.app[PRIVATE_STREAMS] and not private.open:
                break
            await asyncio.sleep(0.005)
    assert (private.live.used, private.logs.used, len(private.logs)) == (0, 0, 0)


def private_ws_ops(h: Harness) -> None:
    @FUZZ
    @given(
        st.sampled_from(["paused=true", "max_gap=1s", "from=end&paused=true", "speed=max"]),
        st.lists(private_messages, min_size=1, max_size=6),
    )
    @example("paused=true", [json.dumps({"op": "post", "body": "x" * 60_000})] * 5)
    @example(
        "from=end&paused=true",
        [json.dumps({"op": "update_post", "post": p, "body": "y" * 60_000}) for p in ARCHIVE_POSTS],
    )
    def check(query: str, messages: list[str | bytes]) -> None:
        h.run(private_conversation(h.server, query, messages))

    check()


async def test_fuzz_snapshots_under_load(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    streams = [*SERVER_STREAMS, {"id": "snaps", **FAST}]
    server = await start_server(streams=streams, server=SNAPSHOT_LIMITS)
    harness = Harness(server, asyncio.get_running_loop())
    async with Watcher(server):
        await asyncio.to_thread(snapshots_under_load, harness)
    assert harness.examples >= EXAMPLES, harness.examples


async def test_fuzz_schedules(start_server: StartServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    await fuzz(start_server, schedules)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [f"{r.name}: {r.getMessage()[:300]}" for r in errors[:5]]


async def test_fuzz_private_replay_ops(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    server = await start_server(streams=SERVER_STREAMS, server=PRIVATE_LIMITS)
    harness = Harness(server, asyncio.get_running_loop())
    async with Watcher(server):
        await asyncio.to_thread(private_ws_ops, harness)
    assert harness.examples >= EXAMPLES, harness.examples
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [f"{r.name}: {r.getMessage()[:300]}" for r in errors[:5]]
