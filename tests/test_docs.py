"""The examples in README.md and docs/*.md, run against a real ``livesim serve``, so they cannot
drift from what the server does.

**Which examples run.** A fenced block with the info string ``console`` is runnable. In it, a
line starting with ``$ `` is a command (a trailing ``\\`` continues it on the next line) and the
lines up to the next command are its expected output (stdout and stderr together). Other blocks
(``sh``, ``json``, ``toml``…) are illustrations and are not run.

**How a document runs.** Each document gets a fresh ``livesim serve --port 0`` (the bundled
archive as stream ``aljazeera-iraq-2014-06``); a block preceded by the line
``<!-- test_docs [server] max_streams = 1; max_connections = 2 -->`` gets a server of its own
with those ``[server]`` settings (one per distinct marker). The blocks run in order, one
``bash -c`` per command, from the repository root with ``.venv/bin`` first on ``PATH``, so a
block can set up state a later one uses (``demo`` created, then seeked). ``127.0.0.1:8080``,
``localhost:8080`` and ``localhost:8765`` in a command (and bash's ``/dev/tcp/127.0.0.1/8080``)
become the test server's address.

**How output is compared.** Both sides are normalised first, masking what legitimately varies
between runs: an event id's incarnation (``mwvxupaj1-21`` → ``<inc>-21``; the serial stays, so
``…-0`` vs ``…-2`` is checked), ``due_at`` wall times, private replay numbers
(``private-{feed}-9`` → ``private-{feed}-<n>``) and the HTTP ``Date`` header. Then ``…`` in the
expected output matches any text within a line, and a line holding only ``…`` matches any number
of lines: that is how a document trims long bodies and time-dependent values (positions, the
posts of a playing stream). A command whose output never ends (``curl -N``) passes as soon as its
output so far matches the expected lines; it fails if it does not within 10 s.

Besides the console blocks: every ``{"error": …}`` line of docs/protocol.md must be an answer
that one of ``ERROR_REQUESTS`` gets, the WebSocket error table's replies are checked message by
message, and the documented 1009 close (reason and all) is checked with the websockets client.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import select
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import StartServer
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
DOCUMENTS = [
    "README.md",
    "docs/protocol.md",
    "docs/operations.md",
    "docs/compat.md",
    "docs/testing-clients.md",
]
FEED = "aljazeera-iraq-2014-06"
STREAM_TIMEOUT = 10.0
COMMAND_TIMEOUT = 30.0
ADDRESSES = re.compile(r"(?:127\.0\.0\.1|localhost):(?:8080|8765)")


# Reading the examples ----------------------------------------------------------------------------


@dataclass
class Example:
    document: str
    line: int
    command: str
    expected: str
    config: str | None = None
    """``[server]`` settings of the server this example needs (its block's marker)."""

    @property
    def streaming(self) -> bool:
        return bool(re.search(r"curl\s+(?:-\w*N\w*\b|.*\s-\w*N\w*\b)", self.command))

    def __str__(self) -> str:
        return f"{self.document}:{self.line}: $ {self.command}"


MARKER = re.compile(r"<!-- test_docs \[server\] (?P<settings>.*) -->")


def examples(document: str) -> list[Example]:
    lines = (ROOT / document).read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    inside = False
    current: Example | None = None
    continued = False
    config: str | None = None
    for number, line in enumerate(lines, 1):
        if not inside:
            inside = line.strip() == "```console"
            marker = MARKER.fullmatch(lines[number - 2].strip()) if number > 1 else None
            config = marker["settings"].replace("; ", "\n") if inside and marker else None
            continue
        if line.strip() == "```":
            inside = False
            current = None
            continue
        if continued and current is not None:
            current.command += "\n" + line
            continued = line.endswith("\\")
        elif line.startswith("$ "):
            current = Example(document, number, line[2:], "", config)
            found.append(current)
            continued = line.endswith("\\")
        elif current is not None:
            current.expected += line + "\n"
    return found


# Comparing ---------------------------------------------------------------------------------------

MASKS = [
    (re.compile(r"\b[0-9a-z]{7,}-(\d+\b|…)"), r"<inc>-\1"),
    (re.compile(r'"due_at": ?"[^"]*"'), '"due_at":"<time>"'),
    (re.compile(r"\b(private-[A-Za-z0-9_.-]+)-\d+\b"), r"\1-<n>"),
    (re.compile(r"^Date: .*$", re.M), "Date: <date>"),
]


def normalise(text: str) -> str:
    text = text.replace("\r\n", "\n")
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def pattern(expected: str) -> re.Pattern[str]:
    """``expected`` as a regular expression: ``…`` matches within a line, a ``…`` line any lines."""
    out = []
    for line in normalise(expected).splitlines():
        if line.strip() == "…":
            out.append(r"(?:[^\n]*\n)*?")
        else:
            parts = re.split(r" ?… ?", line)  # "a, …}" trims "a,…}" too
            out.append(".*?".join(re.escape(part) for part in parts) + r"\n")
    return re.compile("".join(out))


def matches(expected: str, actual: str, prefix: bool) -> bool:
    text = normalise(actual)
    if not text.endswith("\n"):
        text += "\n"
    regex = pattern(expected)
    return bool(regex.match(text) if prefix else regex.fullmatch(text))


# Running -----------------------------------------------------------------------------------------


@dataclass
class Livesim:
    process: subprocess.Popen[str]
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESIM_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@contextlib.contextmanager
def serving(config: Path | None = None) -> Iterator[Livesim]:
    """``livesim serve --port 0`` (with ``--config``), stopped with SIGTERM on the way out."""
    command = [str(BIN / "livesim"), "serve", "--port", "0"]
    if config is not None:
        command += ["--config", str(config)]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        found = re.search(r"http://127\.0\.0\.1:(\d+)", first)
        assert found, f"no address in {first!r}"
        yield Livesim(process, int(found[1]))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture
def livesim() -> Iterator[Livesim]:
    with serving() as server:
        yield server


@pytest.fixture(scope="module")
def shared() -> Iterator[Livesim]:
    """One server for the checks that need no fresh state (each starts in well under 2 s, but
    on a busy machine that adds up)."""
    with serving() as server:
        yield server


def run(example: Example, server: Livesim, scratch: Path) -> tuple[bool, str]:
    """Run the command; (matched, output). A streaming command is stopped once it matches.

    The documents write their files under ``/tmp/``; each run gets ``scratch`` instead (and its
    output says ``/tmp/`` again), so two checkouts testing at once don't share those files."""
    command = ADDRESSES.sub(f"127.0.0.1:{server.port}", example.command)
    command = command.replace("/tmp/", f"{scratch}/")
    command = command.replace("/dev/tcp/127.0.0.1/8080", f"/dev/tcp/127.0.0.1/{server.port}")
    process = subprocess.Popen(
        ["bash", "-c", command],
        cwd=ROOT,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    output = b""
    deadline = time.monotonic() + (STREAM_TIMEOUT if example.streaming else COMMAND_TIMEOUT)
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.05)
            if ready:
                chunk = os.read(process.stdout.fileno(), 65536)
                if not chunk:  # done: let it exit, or the kill below would take its jobs too
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(5)
                    break
                output += chunk
                text = output.decode(errors="replace").replace(f"{scratch}/", "/tmp/")
                if example.streaming and matches(example.expected, text, prefix=True):
                    return True, text
        text = output.decode(errors="replace").replace(f"{scratch}/", "/tmp/")
        return matches(example.expected, text, prefix=example.streaming), text
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        process.stdout.close()


@pytest.mark.parametrize("document", DOCUMENTS)
def test_console_examples(livesim: Livesim, document: str, tmp_path: Path) -> None:
    """A block marked ``<!-- test_docs [server] key = value; … -->`` runs against a server of
    its own with those settings (the limits' refusals need small limits)."""
    found = examples(document)
    assert found, f"{document} has no runnable (```console) examples"
    with contextlib.ExitStack() as stack:
        servers: dict[str | None, Livesim] = {None: livesim}
        for example in found:
            if example.config not in servers:
                config = tmp_path / f"server{len(servers)}.toml"
                config.write_text(f"[server]\n{example.config}\n", encoding="utf-8")
                servers[example.config] = stack.enter_context(serving(config))
            ok, output = run(example, servers[example.config], tmp_path)
            assert ok, f"{example}\n--- expected\n{example.expected}--- got\n{output}"


# Error lines of docs/protocol.md ----------------------------------------------------------------

ERROR_REQUESTS: list[tuple[str, str, Any]] = [
    ("POST", "/api/streams", {"id": "demo", "feed": FEED, "paused": True}),  # makes demo
    ("POST", "/api/streams", {"id": "demo", "feed": FEED}),
    ("POST", "/api/streams", {"feed": "nope"}),
    ("POST", "/api/streams", {}),
    ("POST", "/api/streams", {"feed": FEED, "bogus": 1}),
    ("POST", "/api/streams", {"feed": FEED, "max_gap": "2 minutes"}),
    ("POST", "/api/streams", {"feed": FEED, "start": "xyz"}),
    ("POST", "/api/streams", {"feed": FEED, "scenario": [{"action": "pin", "post": "zzz"}]}),
    ("POST", "/api/streams", b'{"feed":'),
    ("POST", "/api/streams", b"[1, 2]"),
    ("POST", "/api/streams/demo/speed", {"speed": 0}),
    ("POST", "/api/streams/demo/speed", {"speed": "fast"}),
    ("POST", "/api/streams/demo/speed", {}),
    ("POST", "/api/streams/demo/seek", {"to": "yesterday"}),
    ("POST", "/api/streams/demo/seek", {"to": "+1x"}),
    ("POST", "/api/streams/demo/seek", {}),
    ("POST", "/api/streams/demo/fly", {}),
    ("POST", "/api/streams/demo/step", {"events": 0}),
    ("POST", "/api/streams/demo/step", {"until": "-5m"}),
    ("GET", f"/api/streams/{FEED}/posts?limit=0", None),
    ("GET", f"/api/streams/{FEED}/posts?before=nope", None),
    ("GET", f"/feeds/{FEED}/events?foo=1", None),
    ("GET", f"/feeds/{FEED}/events?speed=fast", None),
    ("GET", f"/feeds/{FEED}/events?from=zzz", None),
    ("GET", f"/feeds/{FEED}/events?max_gap=-1", None),
    ("GET", f"/feeds/{FEED}/events?loop=maybe", None),
]
"""Requests whose answers the error lines of docs/protocol.md show. A new error line in the
document needs its request here."""


def request(server: Livesim, method: str, path: str, body: Any) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    if method == "POST" and data is None:
        data = b""
    req = urllib.request.Request(server.base + path, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def documented_errors(document: str) -> list[tuple[int, dict[str, Any]]]:
    lines = (ROOT / document).read_text(encoding="utf-8").splitlines()
    return [
        (number, json.loads(line))
        for number, line in enumerate(lines, 1)
        if line.startswith('{"error":')
    ]


def test_protocol_error_lines_are_real(shared: Livesim) -> None:
    answers = []
    for method, path, body in ERROR_REQUESTS:
        status, answer = request(shared, method, path, body)
        answers.append(answer)
    documented = documented_errors("docs/protocol.md")
    assert len(documented) >= 20
    missing = [
        f"docs/protocol.md:{number}: {error}"
        for number, error in documented
        if error not in answers
    ]
    produced = "\n".join(json.dumps(a) for a in answers if "error" in a)
    assert not missing, "\n".join(missing) + "\n--- the requests got\n" + produced


def ws_error_table() -> list[tuple[str, str]]:
    """(message sent, error replied) from the WebSocket section's error table."""
    text = (ROOT / "docs/protocol.md").read_text(encoding="utf-8")
    table = text[text.index("| sent | reply `error` |") :].split("\n\n", 1)[0]
    rows = []
    for line in table.splitlines()[2:]:
        sent, reply = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append((sent, reply.strip("`")))
    return rows


def test_websocket_error_table_is_real(shared: Livesim) -> None:
    rows = ws_error_table()
    assert len(rows) >= 8
    url = f"ws://127.0.0.1:{shared.port}/streams/{FEED}/ws"
    with ws_connect(url) as ws:
        ws.send('{"op":"pause"}')  # a quiet stream: replies are the only frames
        for sent, reply in rows:
            if sent == "a binary frame":
                ws.send(b"\x00\x01")
            else:
                ws.send(sent.strip("`"))
            while True:
                frame = json.loads(ws.recv(timeout=5))
                if frame["type"] == "error":
                    break
            assert frame["error"] == reply, (sent, frame)
            assert frame["where"] == reply.split(":", 1)[0]


def test_websocket_oversize_message_close_is_as_documented(shared: Livesim) -> None:
    """docs/protocol.md's close-code table: 1009, and the reason it says is sent."""
    text = (ROOT / "docs/protocol.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| 1009 |"))
    documented = row.split("|")[2].strip()
    url = f"ws://127.0.0.1:{shared.port}/streams/{FEED}/ws"
    with ws_connect(url, max_size=None) as ws:
        ws.send('{"op":"ping","pad":"' + "x" * 70_000 + '"}')
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    reason = closed.value.rcvd.reason
    assert documented == f"`{reason}`" if reason else documented.startswith("–"), documented


def test_shutdown_is_as_documented() -> None:
    """docs/operations.md, Shutdown: on SIGTERM an SSE response ends cleanly, a WebSocket gets
    1001 ``server shutting down``, and the process exits 0."""
    text = (ROOT / "docs/operations.md").read_text(encoding="utf-8")
    shutdown = text[text.index("## Shutdown") :]
    assert "**1001**" in shutdown and "**`server shutting down`**" in shutdown
    assert "status **0**" in shutdown
    with serving() as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", f"/streams/{FEED}/events")
        response = connection.getresponse()
        assert response.readline() == b"retry: 2000\n"
        with ws_connect(f"ws://127.0.0.1:{server.port}/streams/{FEED}/ws") as ws:
            server.process.send_signal(signal.SIGTERM)
            response.read()  # to the end of the chunked body: IncompleteRead if it were cut
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    ws.recv(timeout=10)
        connection.close()
        assert server.process.wait(10) == 0
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "server shutting down")


async def test_token_answers_are_as_documented(start_server: StartServer) -> None:
    """docs/operations.md's off-loopback example: its 401 line, and the token's 200. The real
    server would have to listen on a non-loopback address; this one has the same settings
    (``host = "0.0.0.0"``, a token) but listens on 127.0.0.1 like every test server."""
    text = (ROOT / "docs/operations.md").read_text(encoding="utf-8")
    documented = [
        json.loads(line)
        for line in text.splitlines()
        if line.startswith('{"error"') and "header.Authorization" in line
    ]
    assert documented
    token = "0123456789abcdef0123456789abcdef"
    server = await start_server(server={"host": "0.0.0.0", "token": token})
    path = f"/api/streams/{FEED}/pause"
    async with server.session.post(server.base + path) as response:
        assert (response.status, await response.json()) == (401, documented[0])
    headers = {"Authorization": f"Bearer {token}"}
    async with server.session.post(server.base + path, headers=headers) as response:
        assert response.status == 200
        assert (await response.json())["state"] == "paused"
