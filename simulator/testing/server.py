"""A real livesim server for a test, in a thread with its own event loop.

In a thread, not on the test's loop, so that one object serves sync tests, async tests (whose
loop may be blocked by a sync call) and browser tests alike; the controls are plain blocking HTTP
calls to the server, as any client of the API makes them, so what a test drives is exactly what
a UI sees.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.error
import urllib.parse
import urllib.request
from argparse import Namespace
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

STARTUP_TIMEOUT = 30.0
"""Seconds to build the streams and bind: a 100 000-post archive takes a few."""
REQUEST_TIMEOUT = 30.0


class LivesimError(Exception):
    """The server refused a request: its status and JSON error body (``where`` names the input)."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{status}: {body.get('error') if isinstance(body, dict) else body}")


class LivesimServer:
    """A livesim server on ``127.0.0.1`` and a free port, with one stream per archive.

    ``archive``: an archive file (default: the bundled one); ``config``: a livesim TOML file
    instead (its streams and feeds, ``archive`` added); ``stream``: options of the stream made
    for the archive (``speed``, ``paused``, ``loop``, ``max_gap``, ``start``, ``faults``,
    ``timestamps``, ``scenario`` …, as in ``[[streams]]``); ``server``: ``[server]`` keys.
    """

    def __init__(
        self,
        archive: str | Path | None = None,
        *,
        config: str | Path | None = None,
        stream: Mapping[str, Any] | None = None,
        scenario: Any = None,
        server: Mapping[str, Any] | None = None,
    ) -> None:
        self.archive = archive
        self.config = config
        self.stream_options = {**(stream or {})}
        if scenario is not None:
            self.stream_options["scenario"] = scenario
        self.server_options = {**(server or {})}
        self.url = ""
        self.ws_url = ""
        self.stream_ids: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    # Life ---------------------------------------------------------------------------------

    def start(self) -> LivesimServer:
        """Build and bind (errors, such as a bad archive or option, raise here), then serve in
        the background until ``stop``."""
        ready: Future[str] = Future()
        self._thread = threading.Thread(target=self._serve, args=(ready,), daemon=True)
        self._thread.name = "livesim-server"
        self._thread.start()
        self.url = ready.result(STARTUP_TIMEOUT)
        self.ws_url = self.url.replace("http://", "ws://", 1)
        self.stream_ids = [s["id"] for s in self.get("/api/streams")]
        return self

    def stop(self) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopped.set)
        if self._thread is not None:
            self._thread.join(STARTUP_TIMEOUT)
        self._thread = None

    def __enter__(self) -> LivesimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, ready: Future[str]) -> None:
        try:
            asyncio.run(self._main(ready))
        except BaseException as exc:  # reported to ``start``, which raises it in the test
            if not ready.done():
                ready.set_exception(exc)

    async def _main(self, ready: Future[str]) -> None:
        from aiohttp import web

        from ..web.app import create_app, runner_options

        settings, feeds, prebuilt = self._configure()
        app = create_app(settings, feeds, prebuilt)
        runner = web.AppRunner(app, shutdown_timeout=1.0, **runner_options(settings))
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self._loop = asyncio.get_running_loop()
            self._stopped = asyncio.Event()
            ready.set_result(f"http://127.0.0.1:{runner.addresses[0][1]}")
            await self._stopped.wait()
        finally:
            await runner.cleanup()

    def _configure(self) -> Any:
        """``livesim serve``'s own configuration, the process environment left out (a test's
        server must not change with the shell that runs it)."""
        from ..cli.serve import configure

        archives = [str(self.archive)] if self.archive is not None else []
        args = Namespace(config=self.config, archives=archives, host="127.0.0.1", port=0)
        settings, feeds, prebuilt = configure(args, env={})
        if not self.stream_options and not self.server_options:
            return settings, feeds, prebuilt  # the replays as configured, made once
        streams = tuple(_updated(stream, self.stream_options) for stream in settings.streams)
        server = _updated(settings.server, {**self.server_options, "port": 0})
        settings = settings.model_copy(update={"streams": streams, "server": server})
        return settings, feeds, None

    # Requests -----------------------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """``method path`` with ``body`` as JSON; the JSON answer. ``LivesimError`` for 4xx/5xx."""
        data = None if body is None else orjson.dumps(body)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT) as response:
                return orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                answer: Any = orjson.loads(raw)
            except orjson.JSONDecodeError:
                answer = raw.decode(errors="replace")
            raise LivesimError(exc.code, answer) from None

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, {} if body is None else body)

    def stream(self, stream_id: str | None = None) -> StreamHandle:
        """A stream's controls; without an id, the first stream (the archive's)."""
        if stream_id is None:
            if not self.stream_ids:
                raise LookupError("this server has no stream")
            stream_id = self.stream_ids[0]
        return StreamHandle(self, stream_id)


class StreamHandle:
    """One stream's addresses and controls, each a call of the REST API."""

    def __init__(self, server: LivesimServer, stream_id: str) -> None:
        self.server = server
        self.id = stream_id
        quoted = urllib.parse.quote(stream_id, safe="")
        self.api = f"/api/streams/{quoted}"
        self.events_url = f"{server.url}/streams/{quoted}/events"
        self.ws_url = f"{server.ws_url}/streams/{quoted}/ws"
        self.page_url = f"{server.url}/?stream={quoted}"

    def state(self) -> dict[str, Any]:
        value: dict[str, Any] = self.server.get(self.api)
        return value

    def snapshot(self, limit: int | None = None, before: str | None = None) -> dict[str, Any]:
        """The snapshot, or one page of it (``limit``, ``before``)."""
        query = {k: v for k, v in (("limit", limit), ("before", before)) if v is not None}
        suffix = "?" + urllib.parse.urlencode(query) if query else ""
        value: dict[str, Any] = self.server.get(f"{self.api}/posts{suffix}")
        return value

    def _control(self, op: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        value: dict[str, Any] = self.server.post(f"{self.api}/{op}", dict(body or {}))
        return value

    def pause(self) -> dict[str, Any]:
        return self._control("pause")

    def resume(self) -> dict[str, Any]:
        return self._control("resume")

    def restart(self) -> dict[str, Any]:
        return self._control("restart")

    def speed(self, speed: float | str) -> dict[str, Any]:
        return self._control("speed", {"speed": speed})

    def seek(self, to: str) -> dict[str, Any]:
        return self._control("seek", {"to": to})

    def step(self, events: int | None = None, *, until: str | None = None) -> dict[str, Any]:
        """On a paused stream: the next ``events`` events (default 1), or up to ``until``
        (``"+5m"``); the stream's state after them."""
        if until is not None:
            return self._control("step", {"until": until})
        return self._control("step", {"events": 1 if events is None else events})

    def post(self, body: str = "", **fields: Any) -> dict[str, Any]:
        """A live post (``headline``, ``author``, ``key_event``, ``pinned`` …); the post."""
        answer = self.server.post(f"{self.api}/posts", {"body": body, **fields})
        post: dict[str, Any] = answer["post"]
        return post

    def update(self, post_id: str, **fields: Any) -> dict[str, Any]:
        answer = self.server.request("PATCH", f"{self.api}/posts/{post_id}", fields)
        post: dict[str, Any] = answer["post"]
        return post

    def delete(self, post_id: str) -> None:
        self.server.request("DELETE", f"{self.api}/posts/{post_id}")

    def pin(self, post_id: str, pinned: bool = True) -> None:
        self.server.post(f"{self.api}/posts/{post_id}/{'pin' if pinned else 'unpin'}")


def _updated(model: M, options: Mapping[str, Any]) -> M:
    """``model`` with ``options`` changed, each checked as the config file's would be (an error
    names the key: ``streams[0].timestamps``); the rest as it was."""
    if not options:
        return model
    names = set(options)
    required = {
        k: getattr(model, k) for k, f in type(model).model_fields.items() if f.is_required()
    }
    checked = type(model).model_validate({**required, **options})
    return model.model_copy(update={name: getattr(checked, name) for name in names})
