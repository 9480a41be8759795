"""Clients of a livesim server, also installed as ``livesim tail | load | alert``.

- ``tail``: ``Follower``, the snapshot + resume loop a live client needs (and the ``tail`` command).
- ``alert`` (package): rules on posts, fired once per post and rule, with webhook and command
  actions; ``rules``, ``matching``, ``actions``, ``runner``.
- ``load`` (package): many clients at once, each judged exactly from event ids (missing,
  duplicate, out of order) with lateness percentiles; one process or several; ``options``,
  ``client``, ``run``, ``verdict``, ``report``.
- ``connection`` (asyncio SSE and WebSocket subscriptions: h11 and websockets' ``ClientProtocol``
  for the handshakes), ``frames`` (sans-I/O decoders that cut id, type and ``due_at`` out of
  frames), ``judge`` (sans-I/O sequence judge and lateness histogram): the core ``load`` is
  built from, for any tool holding many connections.
- ``sse``: a spec-following SSE parser; ``target``: URLs and one-line errors; ``reads``: bounded
  JSON reads that follow redirects only within their origin.
  The commands' options are parsed in ``simulator/cli/{tail,load,alert}.py``.
"""
