"""``livesim push --to redis://…``: a real redis-server, started here on a free port, receives
the stream (XADD) and the channel (PUBLISH). Under CI a missing redis-server fails the test."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_push import archive, push

REDIS = shutil.which("redis-server")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def redis_url(tmp_path: Path) -> AsyncIterator[str]:
    if REDIS is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed, and CI=true: this test must run")
        pytest.skip("redis-server is not installed")
    import redis.asyncio as redis

    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        REDIS,
        *("--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
        *("--dir", str(tmp_path)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(200):
            try:
                if await client.ping():
                    break
            except (redis.ConnectionError, OSError):
                await asyncio.sleep(0.02)
        else:
            pytest.fail("redis-server did not start")
        yield url
    finally:
        await client.aclose()
        process.terminate()
        await process.wait()


async def test_xadd_puts_every_event_on_the_stream_in_order(redis_url: str, tmp_path: Path) -> None:
    import redis.asyncio as redis

    status, report, err = await push(
        str(archive(tmp_path)),
        *("--to", f"{redis_url}?stream=blog", "--speed", "max", "--concurrency", "1", "--json"),
    )
    assert status == 0, err
    assert report["acknowledged"] == 14 and report["statuses"] == {"xadd": 14}
    client = redis.Redis.from_url(redis_url)
    try:
        entries: Any = await client.xrange("blog")
    finally:
        await client.aclose()
    assert len(entries) == 14
    envelopes = [orjson.loads(fields[b"data"]) for _, fields in entries]
    assert [e["id"] for e in envelopes] == [fields[b"id"].decode() for _, fields in entries]
    assert [int(e["id"].rsplit("-", 1)[1]) for e in envelopes] == list(range(1, 15))
    assert envelopes[2]["type"] == "post.updated" == entries[2][1][b"type"].decode()
    assert envelopes[2]["post"]["body"] == "post 1, corrected"


async def test_publish_reaches_a_subscriber(redis_url: str, tmp_path: Path) -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe("live")
    try:
        status, report, err = await push(
            str(archive(tmp_path, 3)), "--to", f"{redis_url}?channel=live", "--json"
        )
        assert status == 0, err
        assert report["statuses"] == {"publish": 5}
        got = []
        for _ in range(50):  # the subscribe confirmation reads as None, once
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
            if message is not None:
                got.append(orjson.loads(message["data"])["type"])
            if len(got) == 5:
                break
    finally:
        await pubsub.aclose()
        await client.aclose()
    assert got == ["post.created", "post.created", "post.updated", "post.created", "post.pinned"]


async def test_an_unreachable_redis_is_exit_1(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0?stream=s"
    status, report, err = await push(
        str(archive(tmp_path, 3)), "--to", url, "--retries", "1", "--timeout", "1s", "--json"
    )
    assert status == 1 and report["failed"] == 5 and report["errors"][0].startswith("redis:")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "takes one of ?stream=KEY"),
        ("?stream=a&channel=b", "takes one of"),
        ("?stream=", "takes one of"),
        ("?stream=" + "k" * 2000, "1 to 1024 characters"),
        ("?topic=x", "unknown query parameter 'topic'"),
    ],
)
async def test_bad_redis_urls_are_usage_errors(query: str, message: str, tmp_path: Path) -> None:
    status, _, err = await push(str(archive(tmp_path)), "--to", "redis://127.0.0.1:1/0" + query)
    assert status == 2 and message in err and len(err.splitlines()) == 1
