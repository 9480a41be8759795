"""The pytest plugin and ``LivesimServer``: a real server in a thread, driven over its API; the
plugin itself is run by pytest in a subprocess, as a user's test suite would load it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.testing import LivesimError, LivesimServer
from simulator.testing.plugin import MARKER

ROOT = Path(__file__).resolve().parent.parent
INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
addopts = --strict-markers -p no:cacheprovider
filterwarnings = error
"""


def run_pytest(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text(INI)
    (tmp_path / "test_user.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", str(tmp_path / "test_user.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def examples() -> list[str]:
    text = (ROOT / "docs/testing.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_documented_pytest_example_passes(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, examples()[0])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_documented_browser_example_passes(tmp_path: Path) -> None:
    """The example that steps a stream and asserts the ticker, in Chromium (skipped without it,
    as the ticker's own browser tests are, except in CI)."""
    pytest.importorskip("playwright.sync_api")
    if not (shutil.which("chromium") or shutil.which("chromium-browser")) and not os.environ.get(
        "CI"
    ):
        pytest.skip("chromium is not installed (apt-get install chromium)")
    result = run_pytest(tmp_path, examples()[1])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


def test_marker_factory_and_errors_in_a_user_suite(tmp_path: Path) -> None:
    source = """
import pytest
from simulator.testing import LivesimError

@pytest.mark.livesim(stream={"paused": True, "speed": "max"}, server={"max_streams": 1})
def test_marker(livesim_server):
    assert livesim_server.stream().state()["speed"] == "max"
    with pytest.raises(LivesimError) as caught:
        livesim_server.stream().step(0)
    assert caught.value.status == 400 and caught.value.body["where"] == "body.events"

def test_factory(livesim_factory):
    one = livesim_factory(stream={"paused": True})
    two = livesim_factory(stream={"paused": False})
    assert one.url != two.url
    with pytest.raises(LivesimError) as caught:
        two.stream().step(1)
    assert caught.value.status == 409

def test_bad_option_fails_with_one_line(livesim_factory):
    with pytest.raises(ValueError, match="timestamps"):
        livesim_factory(stream={"timestamps": "today"})
"""
    result = run_pytest(tmp_path, source)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_the_plugin_is_registered_by_its_entry_point(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(INI)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--markers"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert MARKER in result.stdout


def test_server_without_pytest_steps_posts_and_pages() -> None:
    with LivesimServer(stream={"paused": True, "loop": False, "max_gap": "1s"}) as server:
        stream = server.stream()
        assert server.stream_ids == [stream.id]
        assert stream.step(3)["position"]["index"] == 3
        live = stream.post("Hello", headline="Live")
        assert stream.snapshot(limit=1)["posts"][0]["id"] == live["id"]
        assert stream.update(live["id"], body="Edited")["body"] == "Edited"
        stream.pin(live["id"])
        assert stream.snapshot()["posts"][0]["pinned"] is True
        stream.delete(live["id"])
        assert len(stream.snapshot()["posts"]) == 3
        stream.seek("start")
        assert stream.resume()["state"] == "playing"
        with pytest.raises(LivesimError) as caught:
            stream.step(1)
        assert caught.value.status == 409
        with pytest.raises(LivesimError) as caught:
            server.stream("nope").state()
        assert caught.value.status == 404
    with pytest.raises(OSError):
        server.get("/api/streams")  # stopped: the connection is refused


def test_a_bad_archive_fails_start(tmp_path: Path) -> None:
    missing = tmp_path / "missing.txt"
    with pytest.raises(Exception, match="missing.txt"):
        LivesimServer(missing).start()
