"""Live-blog platform endpoints (``/compat/…``): a front end written for ScribbleLive, WordPress
Liveblog, the Guardian or Superdesk Liveblog follows a livesim stream by changing only its host.

Each platform's module maps our posts to its JSON with pure functions and keeps its handlers thin;
all of them read a stream through the snapshot's projection and one ``Changes`` per stream
(``changes.py``), so every platform sees the same posts at the same playhead as SSE and WebSocket.
"""

from __future__ import annotations

import weakref

from aiohttp import web

from . import guardian, jsonld, liveblog, scribblelive, wp_liveblog
from .common import TRACKERS


def setup(app: web.Application) -> None:
    """Register every platform's routes: the one call ``create_app`` makes."""
    app[TRACKERS] = weakref.WeakKeyDictionary()
    app.add_routes(scribblelive.routes)
    app.add_routes(wp_liveblog.routes)
    app.add_routes(guardian.routes)
    app.add_routes(liveblog.routes)
    app.add_routes(jsonld.routes)
