"""The pytest plugin (entry point ``pytest11``): a ``livesim_server`` fixture.

    @pytest.mark.livesim(stream={"paused": True, "timestamps": "now"})
    def test_ticker(livesim_server):
        stream = livesim_server.stream()
        stream.step(3)
        assert len(stream.snapshot()["posts"]) == 3

The marker's arguments are ``LivesimServer``'s (``archive``, ``config``, ``stream``,
``scenario``, ``server``); ``livesim_factory`` makes servers with arguments of the test's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .server import LivesimServer

MARKER = (
    "livesim(archive=None, *, config=None, stream=None, scenario=None, server=None): "
    "what the livesim_server fixture serves"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)


@pytest.fixture
def livesim_factory() -> Iterator[Callable[..., LivesimServer]]:
    """``livesim_factory(archive=…, stream={…})``: a started server, stopped after the test."""
    started: list[LivesimServer] = []

    def make(*args: Any, **kwargs: Any) -> LivesimServer:
        server = LivesimServer(*args, **kwargs).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def livesim_server(
    request: pytest.FixtureRequest, livesim_factory: Callable[..., LivesimServer]
) -> LivesimServer:
    """A real livesim server on a free port for this test, configured by its ``livesim``
    marker (default: the bundled archive as one looping stream at speed 60)."""
    marker = request.node.get_closest_marker("livesim")
    args, kwargs = (marker.args, marker.kwargs) if marker else ((), {})
    return livesim_factory(*args, **kwargs)
