"""``web/accept_errors.py``: out of file descriptors, a flood of accept errors logs a few lines
with counts; ``serve`` warns at start when the open-file limit is below what connections need
(issue #12 F6).
"""

from __future__ import annotations

import asyncio
import re
import socket
from typing import Any

import pytest


async def test_accept_errors_are_logged_once_a_second_with_a_count() -> None:
    """F6: asyncio reports EMFILE on accept up to ``backlog`` times a tick; one line a second."""
    import errno

    from simulator.web.accept_errors import AcceptErrors

    now = [100.0]
    passed: list[dict[str, Any]] = []
    others: list[dict[str, Any]] = []
    throttle = AcceptErrors(clock=lambda: now[0], report=passed.append, other=others.append)
    emfile = OSError(errno.EMFILE, "Too many open files")
    context = {"message": "socket.accept() out of system resource", "exception": emfile}
    loop = asyncio.get_running_loop()
    for _ in range(4096):
        throttle(loop, dict(context))
    assert len(passed) == 1 and "suppressed" not in passed[0]["message"]
    now[0] += 0.5
    throttle(loop, dict(context))
    assert len(passed) == 1
    now[0] += 0.6
    throttle(loop, dict(context))
    assert len(passed) == 2
    assert "4096 more like it in the last 1.1 s" in passed[1]["message"], passed[1]
    unrelated = {"message": "Task exception was never retrieved"}
    throttle(loop, unrelated)
    assert others == [unrelated]


def test_a_server_out_of_file_descriptors_logs_accept_errors_sparingly(tmp_path: Any) -> None:
    """F6: a real server under ``ulimit -n 64`` flooded with connections: a few log lines with
    counts, not hundreds of thousands; it answers again once the flood is gone."""
    import time
    import urllib.request

    from cli_helpers import serving

    with serving("--port", "0", cwd=tmp_path, shell="ulimit -n 64") as served:
        port = int(served.url.rsplit(":", 1)[1])
        flood = []
        try:
            for _ in range(150):
                flood.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            time.sleep(1.5)  # two reports at least: the first, and one a second later
        finally:
            for sock in flood:
                sock.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                with urllib.request.urlopen(served.url + "/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        status, stderr = served.stop()
    lines = [line for line in stderr.splitlines() if "out of system resource" in line]
    assert 2 <= len(lines) <= 5, (len(lines), stderr[:2000])
    assert re.search(r"\(\d+ more like it in the last 1\.\d s\)", lines[1]), lines[1]
    assert "the open-file limit (64) is below server.max_connections (19000) + 64" in stderr
    assert "Traceback" not in stderr


def test_the_open_file_limit_is_checked_against_max_connections() -> None:
    """F6: past the open-file limit clients get no 503, only failed connects: serve says so at
    start (the ``ulimit -n 64`` test above sees the line)."""
    import resource

    from simulator.cli.serve import FILES_BESIDES_CONNECTIONS, open_file_shortfall

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        pytest.skip("no open-file limit here")
    assert open_file_shortfall(soft - FILES_BESIDES_CONNECTIONS) is None
    warning = open_file_shortfall(soft)
    assert warning is not None and f"open-file limit ({soft}) is below" in warning
