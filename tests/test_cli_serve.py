"""``livesim serve`` as a process: the port actually bound, the settings actually used, the
open-file limit, a clean exit on SIGTERM."""

from __future__ import annotations

import json
import resource
import urllib.request
from pathlib import Path

import pytest
from cli_helpers import serving


def test_serve_speed_max_on_a_free_port_then_sigterm(tmp_path: Path) -> None:
    """The README's `--speed max --no-loop` serves; `--port 0` prints the port really bound."""
    with serving("--port", "0", "--speed", "max", "--no-loop", cwd=tmp_path) as served:
        port = int(served.url.rsplit(":", 1)[1])
        assert port != 0
        assert f"curl -N {served.url}/streams/aljazeera-iraq-2014-06/events" in served.banner[1]
        assert "speed max, loop False" in served.banner[1]
        assert served.get("/healthz")["ok"] is True
        (stream,) = served.get("/api/streams")
        assert (stream["speed"], stream["loop"]) == ("max", False)
        status, stderr = served.stop()
    assert status == 0, stderr
    assert "Traceback" not in stderr


def test_flags_win_over_the_config_file_for_every_stream(tmp_path: Path) -> None:
    """`make run ARGS="--speed 600"`: flags apply to each configured stream, with
    --event-loop uvloop and JSON logs."""
    (tmp_path / "c.toml").write_text(
        '[server]\nport = 1\nlog_format = "text"\n'
        + "".join(
            f'[[streams]]\nid = "s{n}"\nfeed = "aljazeera-iraq-2014-06"\nspeed = 2\nmax_gap = 5\n'
            for n in (1, 2)
        ),
        encoding="utf-8",
    )
    args = ["--config", "c.toml", "--speed", "600", "--max-gap", "10m", "--no-loop"]
    with serving(
        *args, "--port", "0", "--event-loop", "uvloop", "--log-format", "json", cwd=tmp_path
    ) as served:
        streams = {s["id"]: s for s in served.get("/api/streams")}
        assert set(streams) == {"s1", "s2"}
        for stream in streams.values():
            assert (stream["speed"], stream["max_gap"], stream["loop"]) == (600, 600.0, False)
        status, stderr = served.stop()
    assert status == 0, stderr
    for line in stderr.splitlines():  # the JSON log format: nothing but JSON objects
        assert isinstance(json.loads(line), dict), line


def test_open_file_limit_raised_to_the_hard_limit(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= 256:
        pytest.skip(f"needs a finite hard limit above 256 (have {hard})")
    with serving("--port", "0", cwd=tmp_path, shell="ulimit -Sn 256") as served:
        assert served.banner[0] == (
            f"livesim: open-file limit raised from 256 to {hard} (the hard limit)"
        )
        status, _ = served.stop()
    assert status == 0
    with serving("--port", "0", cwd=tmp_path, shell=f"ulimit -Sn {hard}") as served:
        assert served.banner[0].startswith("livesim: serving on "), "no line when unchanged"
        served.stop()


def test_serve_beyond_loopback_with_a_token_from_the_environment(tmp_path: Path) -> None:
    env = {"LIVESIM_TOKEN": "a-token-of-32-characters-or-so-1"}
    with serving("--host", "0.0.0.0", "--port", "0", cwd=tmp_path, env=env) as served:
        assert served.url.startswith("http://0.0.0.0:")
        status, stderr = served.stop()
    assert status == 0, stderr


def test_serve_on_two_loopback_addresses_one_port(tmp_path: Path) -> None:
    """``--host 127.0.0.1,::1``: one port on both (a load run past the ~28 000 ephemeral ports
    one destination address allows spreads its clients over the two)."""
    with serving("--host", "127.0.0.1,::1", "--port", "0", cwd=tmp_path) as served:
        port = served.url.rsplit(":", 1)[1]
        assert f"(also http://[::1]:{port})" in served.banner[0]
        for url in (f"http://127.0.0.1:{port}/healthz", f"http://[::1]:{port}/healthz"):
            with urllib.request.urlopen(url, timeout=5) as answer:
                assert answer.status == 200
        status, stderr = served.stop()
    assert status == 0, stderr
