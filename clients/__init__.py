"""Clients of a livesim server, also installed as ``livesim tail | load | alert``.

- ``tail``: ``Follower``, the snapshot + resume loop a live client needs (and the ``tail`` command).
- ``alert``: rules on posts, fired once per post and rule, with webhook and command actions.
- ``load``: many clients at once, each judged exactly from event ids (missing, duplicate,
  out of order) with lateness percentiles; one process or several.
- ``connection`` (raw asyncio SSE and WebSocket subscriptions), ``frames`` (sans-I/O decoders
  that cut id, type and ``due_at`` out of frames), ``judge`` (sans-I/O sequence judge and
  lateness histogram): the core ``load`` is built from, for any tool holding many connections.
- ``sse``: a spec-following SSE parser; ``target``: URLs and one-line errors. The commands'
  options are parsed in ``simulator/cli/{tail,load,alert}.py``.
"""
