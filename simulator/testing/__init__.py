"""livesim for other people's tests: a real server on a free port, driven step by step.

``server.LivesimServer`` runs one in a thread of its own; ``plugin`` (registered with pytest
through the ``pytest11`` entry point) hands one to a test as the ``livesim_server`` fixture.
"""

from .server import LivesimError, LivesimServer, StreamHandle

__all__ = ["LivesimError", "LivesimServer", "StreamHandle"]
