"""Helpers for the Redis-shared node tests: a real ``redis-server`` on a free port, and livesim
nodes as real processes (``livesim serve --port 0 --redis …``). Under ``CI=true`` a missing
``redis-server`` fails the tests instead of skipping them."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REDIS = shutil.which("redis-server") or (
    "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
)
LEASE = "1"
"""Seconds a node's lease lasts in these tests: a dead owner is replaced within about that."""
SPEED = "600"
"""The bundled blog at this speed (gaps clamped to 2 minutes) sends an event every 0.2 s or
sooner: enough to see order and gaps without waiting."""
STREAM = "aljazeera-iraq-2014-06"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def need_redis() -> str:
    if REDIS is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed, and CI=true: this test must run")
        pytest.skip("redis-server is not installed")
    return REDIS


@dataclass
class Redis:
    """A redis-server without persistence: a restart starts it empty."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [need_redis(), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as probe,
            ):
                probe.sendall(b"PING\r\n")
                if probe.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.02)
        pytest.fail("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[Redis]:
    server = Redis(free_port(), workdir)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@dataclass
class Node:
    process: subprocess.Popen[str]
    url: str
    log: Path
    banner: list[str] = field(default_factory=list)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_node(
    redis_url: str, workdir: Path, name: str, *args: str, env: Mapping[str, str] | None = None
) -> Node:
    """``livesim serve --port 0 --redis URL`` until its banner names the port bound; ``env``:
    more ``LIVESIM_*`` settings."""
    return spawn_node(redis_url, workdir, name, *args, env=env).serving()


@dataclass
class Starting:
    """A node process started, not yet serving (its log can be watched meanwhile)."""

    process: subprocess.Popen[str]
    name: str
    log: Path
    served: bool = False

    def serving(self) -> Node:
        """Wait until its banner names the port bound."""
        assert self.process.stdout is not None
        banner: list[str] = []
        for line in self.process.stdout:
            banner.append(line)
            found = re.search(r"serving on (http://\S+)", line)
            if found:
                self.served = True
                return Node(self.process, found.group(1), self.log, banner)
        self.process.wait(timeout=10)
        pytest.fail(f"node {self.name} did not start: {banner} {self.log.read_text()}")

    def kill_unless_serving(self) -> None:
        """Clean up after a test that failed before ``serving`` returned."""
        if self.process.poll() is None and not self.served:
            self.process.kill()
            self.process.wait(timeout=10)


def spawn_node(
    redis_url: str, workdir: Path, name: str, *args: str, env: Mapping[str, str] | None = None
) -> Starting:
    log = workdir / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESIM_")} | dict(env or {})
    env["LIVESIM_SERVER__REDIS_LEASE"] = LEASE
    command = [sys.executable, "-m", "simulator", "serve", "--port", "0", "--redis", redis_url]
    command += ["--speed", SPEED, *args]
    with log.open("w") as errors:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=errors, text=True, cwd=workdir, env=env
        )
    return Starting(process, name, log)


@contextlib.contextmanager
def nodes(
    redis_url: str,
    workdir: Path,
    count: int,
    *args: str,
    name: str = "node",
    env: Mapping[str, str] | None = None,
) -> Iterator[list[Node]]:
    started: list[Node] = []
    try:
        for number in range(count):
            started.append(start_node(redis_url, workdir, f"{name}{number}", *args, env=env))
        yield started
    finally:
        for node in started:
            node.stop()
