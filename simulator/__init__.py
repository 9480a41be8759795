"""livesim: replay archived live-blog posts over WebSocket and Server-Sent Events."""

__version__ = "0.1.0"
