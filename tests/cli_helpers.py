"""Helpers for tests that run ``livesim serve`` as a process of its own: its environment, its
banner, its pipes drained by threads, a clean stop."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import simulator

ROOT = Path(simulator.__file__).resolve().parent.parent


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without any ``LIVESIM_*`` of the caller's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESIM_")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8", **(extra or {})}


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    banner: list[str]
    stderr: list[str | None]
    pumps: list[threading.Thread]

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def stop(self) -> tuple[int, str]:
        """SIGTERM, then the exit status and stderr."""
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=15)
        for thread in self.pumps:
            thread.join(timeout=5)
        return status, "".join(line for line in self.stderr if line is not None)


@contextlib.contextmanager
def serving(
    *args: str, cwd: Path, env: dict[str, str] | None = None, shell: str = ""
) -> Iterator[Served]:
    """``livesim serve ARGS`` until its banner names a URL (``shell``: a ``sh`` line run first).

    Threads drain both pipes, so a chatty server never blocks and reading never hangs the test.
    """
    command = [sys.executable, "-m", "simulator", "serve", *args]
    if shell:
        command = ["sh", "-c", shell + ' && exec "$@"', "sh", *command]
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=environment(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    stdout: queue.Queue[str | None] = queue.Queue()
    stderr: list[str | None] = []
    assert process.stdout is not None and process.stderr is not None
    pumps = [
        threading.Thread(target=pump, args=(process.stdout, stdout.put), daemon=True),
        threading.Thread(target=pump, args=(process.stderr, stderr.append), daemon=True),
    ]
    for thread in pumps:
        thread.start()
    try:
        banner = read_banner(stdout)
        match = re.search(r"serving on (http://\S+)", "\n".join(banner))
        assert match, (banner, stderr)
        yield Served(process, match.group(1), banner, stderr, pumps)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=15)
        for thread in pumps:
            thread.join(timeout=5)
        process.stdout.close()
        process.stderr.close()


def pump(stream: IO[str], put: Callable[[Any], None]) -> None:
    for line in stream:
        put(line)
    put(None)


def read_banner(lines: queue.Queue[str | None], timeout: float = 20.0) -> list[str]:
    """Lines up to the last stream line (no more for a moment), or all before exit or timeout."""
    banner: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        streams_listed = any(line.startswith("  stream ") for line in banner)
        try:
            line = lines.get(timeout=min(left, 0.3) if streams_listed else left)
        except queue.Empty:
            if streams_listed:
                return banner
            break
        if line is None:
            break
        banner.append(line.rstrip("\n"))
    return banner
