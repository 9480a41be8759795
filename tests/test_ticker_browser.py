"""The ticker page in headless Chromium: it fills, survives a reload, and follows a reset.

Chromium comes from the system (Debian's ``chromium`` package, installed by ``.ci/run``); the
Playwright package only drives it. Without it the test is skipped locally and fails in CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import BUNDLED_ID, Server, StartServer

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    assert CHROMIUM, "CI must install chromium"
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


async def _page_ids(page: Any) -> list[str]:
    ids: list[str] = await page.eval_on_selector_all(
        "#posts > li", "nodes => nodes.map(n => n.dataset.postId)"
    )
    return ids


async def _wait_for_posts(page: Any, count: int) -> None:
    await page.wait_for_function(
        f"document.querySelectorAll('#posts > li').length >= {count}", timeout=20_000
    )


async def _paused_and_settled(server: Server, page: Any) -> list[str]:
    """Pause the stream, let the page take the last events, and return the snapshot's ids."""
    status, _ = await server.post(f"/api/streams/{BUNDLED_ID}/pause")
    assert status == 200
    await page.wait_for_function(
        "document.getElementById('state').textContent.startsWith('paused')", timeout=10_000
    )
    status, snapshot = await server.get(f"/api/streams/{BUNDLED_ID}/posts")
    assert status == 200
    return [p["id"] for p in snapshot["posts"]]


async def test_ticker_fills_and_reload_resumes_without_loss_or_repeat(
    start_server: StartServer, page: Any
) -> None:
    server = await start_server(
        streams=[{"id": BUNDLED_ID, "feed": BUNDLED_ID, "speed": 20, "max_gap": "10s"}]
    )
    await page.goto(server.base + "/")
    await _wait_for_posts(page, 3)
    assert await page.text_content("#feed-title") == "Iraq Blog"
    before = await _page_ids(page)

    await page.reload()
    await _wait_for_posts(page, len(before) + 3)

    expected = await _paused_and_settled(server, page)
    shown = await _page_ids(page)
    assert shown == expected
    assert len(set(shown)) == len(shown)
    assert set(before) <= set(shown)


async def test_ticker_reloads_snapshot_after_seek_back(
    start_server: StartServer, page: Any
) -> None:
    server = await start_server(
        streams=[{"id": BUNDLED_ID, "feed": BUNDLED_ID, "speed": 20, "max_gap": "10s"}]
    )
    await page.goto(server.base + "/")
    await _wait_for_posts(page, 5)
    status, _ = await server.post(f"/api/streams/{BUNDLED_ID}/seek", {"to": "start"})
    assert status == 200
    await page.wait_for_function("window.livesim.resets >= 1", timeout=10_000)

    expected = await _paused_and_settled(server, page)
    assert await _page_ids(page) == expected
