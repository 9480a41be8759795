"""The ticker page in headless Chromium: media, key events, kiosk and private modes, the post form,
the seek slider, the new-posts marker, reload without loss or repeat, and a reset.

Chromium comes from the system (Debian's ``chromium`` package, installed by ``.ci/run``); the
Playwright package only drives it. Without it the test is skipped locally and fails in CI.
Screenshots go to ``$TMPDIR/livesim-ticker/`` (their paths are printed; ``pytest -s`` shows them).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import BUNDLED_ID, Server, StartServer

from simulator.core.model import Feed, Media, Post, TimeSource
from simulator.core.synth import synthesize

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
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SHOTS = Path(tempfile.gettempdir()) / "livesim-ticker"
ARABIC = "أعلنت الحكومة العراقية حالة التأهب القصوى في بغداد"
PHOTO_CAPTION = "Smoke rises over the Baiji refinery"
NEWSROOM = {"key_events": {"headline": True}, "pin_latest_key_event": True}
"""Key events on the posts with a headline, the newest pinned: what a newsroom scenario does."""

WINDOW = 200
"""Posts the ticker keeps besides the pinned ones (``WINDOW`` in ticker.js)."""
BIG_POSTS = 100_000
BIG_RUN = 30.0
"""Seconds the page may take to follow the 100 000-post stream to its end at speed max. At max
the server paces to its subscribers, so the run lasts as long as the page takes to swallow the
whole archive and its edits (about 110 000 events): a few seconds here. The window is full after
the first 200 posts and each frame's work is the same from then on, so the whole archive, or 30 s
of it on a slow machine, shows what a minute would."""
EVALUATE_LIMIT = 5.0
"""Seconds an evaluate may take while the stream floods the page. Between floods it answers in
a few milliseconds (the figures are printed); during one, the test's loop also runs the server
at full tilt on a shared machine, so the bound is generous, and still far from the 30-80 s a
page holding every post took."""
STALL_LIMIT = 2000.0
"""Milliseconds the page's own main thread may go without running a timer during the flood."""

STALLS = """
window.stalls = {longest: 0, last: performance.now()};
setInterval(() => {
  const now = performance.now();
  window.stalls.longest = Math.max(window.stalls.longest, now - window.stalls.last);
  window.stalls.last = now;
}, 20);
"""
"""The longest the page's main thread went without running a 20 ms timer: how long a click or a
scroll would have waited, measured in the page, apart from the test's own loop (which also runs
the server, busy at speed max)."""

if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


class Browser:
    """A Chromium page that records console errors, page errors and failed requests."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.problems: list[str] = []

    async def page(self, viewport: dict[str, int] = DESKTOP) -> Any:
        page = await self.browser.new_page(viewport=viewport)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("response", self._response)
        page.on("requestfailed", lambda request: self.problems.append(f"failed: {request.url}"))
        return page

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status} {response.url}")

    def assert_clean(self) -> None:
        assert self.problems == []


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    assert CHROMIUM, "CI must install chromium"
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield Browser(browser)
        finally:
            await browser.close()


@pytest.fixture
async def page(chromium: Browser) -> Any:
    return await chromium.page()


async def _screenshot(page: Any, name: str) -> Path:
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def _demo_feed(bundled: Feed) -> Feed:
    """The bundled archive plus what it lacks: a photo with a URL and a right-to-left post, early
    in the archive so the newest posts on top are the archive's own."""
    first = bundled.posts[0].timed
    photo = Media(kind="image", caption=PHOTO_CAPTION, credit="Reuters", url="/static/favicon.svg")
    extra = (
        Post(
            id="photo-1",
            body="",
            published_at=first + timedelta(minutes=1),
            time_source=TimeSource.EXPLICIT,
            media=(photo,),
        ),
        Post(
            id="hostile-1",
            headline="W" * 10_000,
            body="<script>alert(1)</script>",
            published_at=first + timedelta(seconds=90),
            time_source=TimeSource.EXPLICIT,
            media=(Media(kind="youtube", title="<b>clip</b>", url="javascript:alert(1)"),),
        ),
        Post(
            id="rtl-1",
            body=ARABIC,
            published_at=first + timedelta(minutes=2),
            time_source=TimeSource.EXPLICIT,
        ),
        Post(
            id="gallery-1",
            body="",
            published_at=first + timedelta(minutes=3),
            time_source=TimeSource.EXPLICIT,
            media=(Media(kind="gallery", count=12, title="Scenes from Mosul"),),
        ),
    )
    return replace(bundled, posts=bundled.posts[:1] + extra + bundled.posts[1:])


async def _whole_archive(start_server: StartServer, bundled: Feed) -> Server:
    """A paused stream at the end of the demo archive: every post visible at once."""
    feed = _demo_feed(bundled)
    stream = {
        "id": BUNDLED_ID,
        "feed": BUNDLED_ID,
        "start": "end",
        "paused": True,
        "loop": False,
        "scenario": NEWSROOM,
    }
    return await start_server(streams=[stream], feeds={BUNDLED_ID: feed})


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


async def test_media_key_events_time_labels_rtl_and_favicon(
    start_server: StartServer, bundled: Feed, chromium: Browser
) -> None:
    server = await _whole_archive(start_server, bundled)
    page = await chromium.page()
    favicons: list[int] = []

    def seen(response: Any) -> None:
        if response.url.endswith("/favicon.svg"):
            favicons.append(response.status)

    page.on("response", seen)
    await page.goto(server.base + "/")
    await _wait_for_posts(page, 45)
    status, snapshot = await server.get(f"/api/streams/{BUNDLED_ID}/posts")
    assert status == 200
    posts = {p["id"]: p for p in snapshot["posts"]}
    await page.wait_for_timeout(900)  # the arrival highlight fades
    await _screenshot(page, "ticker-1280x800")

    # A photo with a URL: a lazy <img>, its caption as alt text, and it loads.
    img = page.locator("#post-photo-1 img")
    assert await img.get_attribute("loading") == "lazy"
    assert await img.get_attribute("alt") == PHOTO_CAPTION
    await page.locator("#post-photo-1").scroll_into_view_if_needed()
    await page.wait_for_function(
        "document.querySelector('#post-photo-1 img').naturalWidth > 0", timeout=5_000
    )
    # The seed's gallery: a strip of three captioned frames (no URL in the archive), and the
    # captions are not repeated as body text.
    gallery = next(
        p
        for p in posts.values()
        if any(m["kind"] == "gallery" for m in p["media"])
        and any(m["kind"] == "image" for m in p["media"])
    )
    strip = page.locator(f"#post-{gallery['id']} .strip figure")
    assert await strip.count() == 3
    captions = await strip.locator("figcaption").all_inner_texts()
    assert [c.split("Reuters")[0].strip().rsplit(" ", 1)[-1] for c in captions] == [
        "Basra",
        "Najaf",
        "Kerbala",
    ]
    assert await page.locator(f"#post-{gallery['id']} p").count() == 0
    assert "Gallery · 3 photos" in (await page.text_content(f"#post-{gallery['id']}") or "")
    # A gallery with no picture in the archive is its line alone, no grey frames.
    assert await page.locator("#post-gallery-1 .placeholder").count() == 0
    text = await page.text_content("#post-gallery-1") or ""
    assert "Gallery · 12 photos · Scenes from Mosul" in text
    # YouTube and Instagram embeds are links.
    youtube = page.locator("a.embed.youtube")
    assert await youtube.count() == 5  # the archive's four and the hostile one
    assert (await youtube.first.get_attribute("href") or "").startswith("https://www.youtube.com/")
    instagram = await page.locator("a.embed.instagram").evaluate_all("as => as.map(a => a.href)")
    assert instagram == [
        f"https://www.instagram.com/{u}/" for u in ("cjchivers", "andrewquilty", "plattys1")
    ]

    # Hostile text is text: no script, no javascript: link, a 10 KB word wraps in its card.
    hostile = page.locator("#post-hostile-1")
    assert await hostile.locator("p").text_content() == "<script>alert(1)</script>"
    assert await page.locator("a[href^='javascript']").count() == 0
    link = await hostile.locator("a.embed").get_attribute("href")
    assert link == "https://www.youtube.com/results?search_query=%3Cb%3Eclip%3C%2Fb%3E"
    widths = await page.evaluate(
        "[document.getElementById('post-hostile-1').scrollWidth,"
        " document.querySelector('main').clientWidth]"
    )
    assert widths[0] <= widths[1]

    # Inferred times: a discreet mark with the explanation as a tooltip, no visible label.
    inferred = sum(1 for p in posts.values() if p["time_source"] != "explicit")
    assert inferred == 38
    assert await page.locator(".post-time .approx[title]").count() == inferred
    text = await page.inner_text("#posts")
    assert "extrapolated" not in text and "interpolated" not in text

    # Key events: highlighted, listed newest first, pinned post on top; a click jumps there.
    keys = [p["id"] for p in snapshot["posts"] if p.get("key_event")]
    assert len(keys) == 17  # the archive's 16 headlines and the hostile one
    listed = await page.locator("#key-events a").evaluate_all("as => as.map(a => a.dataset.postId)")
    assert listed == keys
    assert await page.locator("#posts > li.key").count() == 17
    pinned = [p["id"] for p in snapshot["posts"] if p["pinned"]]
    assert len(pinned) == 1
    assert (await _page_ids(page))[0] == pinned[0]
    target = keys[-1]
    await page.click(f"#key-events a[data-post-id='{target}']")
    await page.wait_for_function(
        f"""(() => {{ const r = document.getElementById('post-{target}').getBoundingClientRect();
            return r.top >= 0 && r.top < window.innerHeight / 2; }})()""",
        timeout=5_000,
    )
    assert "flash" in (await page.get_attribute(f"#post-{target}", "class") or "")

    # Right-to-left text runs right to left; the favicon is served.
    rtl = page.locator("#post-rtl-1 p")
    assert await rtl.get_attribute("dir") == "auto"
    assert await rtl.evaluate("p => getComputedStyle(p).direction") == "rtl"
    assert await page.get_attribute("link[rel=icon]", "href") == "/static/favicon.svg"
    assert favicons and set(favicons) == {200}  # the icon, and the demo photo uses it too

    await page.evaluate(
        "document.querySelector('.gallery:has(figcaption)').scrollIntoView({block: 'center'})"
    )
    await _screenshot(page, "ticker-1280x800-media")
    phone = await chromium.page(PHONE)
    await phone.goto(server.base + "/")
    await _wait_for_posts(phone, 45)
    assert not await phone.locator("#key-events").is_visible()  # folded on a phone
    await phone.wait_for_timeout(900)
    await _screenshot(phone, "ticker-390-phone")
    chromium.assert_clean()


async def test_kiosk_mode_has_no_controls_and_large_type(
    start_server: StartServer, bundled: Feed, chromium: Browser
) -> None:
    server = await _whole_archive(start_server, bundled)
    page = await chromium.page({"width": 1920, "height": 1080})
    await page.goto(server.base + "/?kiosk=1")
    await _wait_for_posts(page, 45)
    for hidden in ("#toolbar", "#compose", "#toggle", "#seek", "#stream-picker"):
        assert not await page.locator(hidden).is_visible(), hidden
    assert await page.locator("#key-events").is_visible()
    size = await page.eval_on_selector(".post p", "p => parseFloat(getComputedStyle(p).fontSize)")
    assert size >= 28
    await _screenshot(page, "ticker-kiosk-1920x1080")
    chromium.assert_clean()


LONG_BODY = "\n\n".join(
    f"Paragraph {n}: the minister's full statement, read out at the press conference in"
    " Baghdad, runs on and on about the security situation in the north of the country."
    for n in range(1, 13)
)


async def test_kiosk_clamps_a_long_pin_and_keeps_new_posts_in_view(
    start_server: StartServer, bundled: Feed, chromium: Browser
) -> None:
    server = await _whole_archive(start_server, bundled)
    page = await chromium.page(DESKTOP)
    await page.goto(server.base + "/?kiosk=1")
    await _wait_for_posts(page, 46)
    status, snapshot = await server.get(f"/api/streams/{BUNDLED_ID}/posts")
    earlier_pin = next(p["id"] for p in snapshot["posts"] if p["pinned"])
    long_pin = {"headline": "Minister's statement in full", "body": LONG_BODY, "pinned": True}
    status, answer = await server.post(f"/api/streams/{BUNDLED_ID}/posts", long_pin)
    assert status == 201, answer
    pinned = answer["post"]["id"]
    await page.wait_for_function(
        f"document.querySelector('#posts > li')?.dataset.postId === {pinned!r}"
    )
    # Two pins: the newest heads the list, clamped; the other is named in the strip above.
    top = page.locator(f"#post-{pinned}")
    assert "clamped" in (await top.get_attribute("class") or "")
    box = await top.bounding_box()
    assert box is not None and box["height"] < DESKTOP["height"] / 3
    strip = page.locator("#also-pinned a")
    assert await strip.evaluate_all("as => as.map(a => a.dataset.postId)") == [earlier_pin]

    for n in range(1, 4):
        status, _ = await server.post(
            f"/api/streams/{BUNDLED_ID}/posts", {"headline": f"Update {n}", "body": "More."}
        )
        assert status == 201
    await _wait_for_posts(page, 50)
    await page.wait_for_timeout(1_300)  # the arrival highlight fades
    await _screenshot(page, "ticker-kiosk-1280x800-pinned")
    ids = await _page_ids(page)
    assert ids[0] == pinned and ids[1].startswith("live-")
    for post_id in ids[1:4]:  # the three new posts, newest first under the pin, on screen
        top_edge, bottom = await page.eval_on_selector(
            f"#post-{post_id}",
            "n => { const r = n.getBoundingClientRect(); return [r.top, r.bottom]; }",
        )
        assert 0 <= top_edge < DESKTOP["height"], (post_id, top_edge)
        if post_id != ids[3]:  # the two newest whole, the third begun
            assert bottom <= DESKTOP["height"], (post_id, bottom)

    # No simulator internals; a clock that ticks.
    for hidden in ("#state", ".approx", "#toolbar"):
        assert not await page.locator(hidden).first.is_visible(), hidden
    clock = await page.text_content("#clock") or ""
    assert re.fullmatch(r"\d\d:\d\d:\d\d UTC", clock), clock
    await page.wait_for_function(
        f"document.getElementById('clock').textContent !== {clock!r}", timeout=3_000
    )
    chromium.assert_clean()


async def test_a_stream_replayed_as_of_today_shows_todays_times_and_the_time_of_day(
    start_server: StartServer, chromium: Browser
) -> None:
    server = await start_server(
        streams=[{"id": "today", "feed": BUNDLED_ID, "speed": 60, "timestamps": "now"}]
    )
    page = await chromium.page()
    await page.goto(server.base + "/?stream=today")
    await _wait_for_posts(page, 2)
    assert await page.evaluate("window.livesim.timestamps") == "now"
    clock = await page.text_content("#clock")
    assert re.fullmatch(r"\d\d:\d\d:\d\d UTC", clock or ""), clock  # not the archive's 2014
    await page.wait_for_function(f"document.getElementById('clock').textContent !== {clock!r}")
    stamps = await page.eval_on_selector_all("time.post-time", "ts => ts.map(t => t.dateTime)")
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    assert stamps and all(str(date.today().year) <= t[:4] and t <= now for t in stamps), stamps
    chromium.assert_clean()


async def test_private_replay_pauses_only_itself(
    start_server: StartServer, chromium: Browser
) -> None:
    server = await start_server(
        streams=[{"id": BUNDLED_ID, "feed": BUNDLED_ID, "speed": 20, "max_gap": "10s"}]
    )
    page = await chromium.page()
    await page.goto(server.base + "/?private=1&speed=20&max_gap=10s")
    await _wait_for_posts(page, 3)
    assert await page.evaluate("window.livesim.source instanceof WebSocket")
    assert await page.text_content("#mode") == "Private replay"
    await page.click("#toggle")
    await page.wait_for_function(
        "document.getElementById('state').textContent.startsWith('paused')", timeout=10_000
    )
    status, shared = await server.get(f"/api/streams/{BUNDLED_ID}")
    assert status == 200 and shared["state"] == "playing"
    held = len(await _page_ids(page))
    await page.wait_for_timeout(1_500)  # three posts' time at this speed
    assert len(await _page_ids(page)) == held

    # The seek slider steers the private replay too: to the end, every post arrives at once.
    await page.eval_on_selector(
        "#seek", "s => { s.value = s.max; s.dispatchEvent(new Event('change')); }"
    )
    await _wait_for_posts(page, 42)
    status, shared = await server.get(f"/api/streams/{BUNDLED_ID}")
    assert shared["state"] == "playing" and shared["position"]["index"] < 40
    await _screenshot(page, "ticker-private")
    chromium.assert_clean()


async def test_seek_slider_seeks_the_shared_stream(start_server: StartServer, page: Any) -> None:
    server = await start_server(
        streams=[{"id": BUNDLED_ID, "feed": BUNDLED_ID, "paused": True, "loop": False}]
    )
    await page.goto(server.base + "/")
    await page.wait_for_function("window.livesim.cursor !== null")
    span = await page.eval_on_selector("#seek", "s => Number(s.max)")
    assert span == 239857  # the archive's first to last post, in seconds
    await page.eval_on_selector(
        "#seek",
        "s => { s.value = String(24 * 3600); s.dispatchEvent(new Event('input'));"
        " s.dispatchEvent(new Event('change')); }",
    )
    await page.wait_for_function("document.querySelectorAll('#posts > li').length >= 10")
    status, stream = await server.get(f"/api/streams/{BUNDLED_ID}")
    assert stream["position"]["archive_time"] == "2014-06-25T17:52:29Z"
    assert stream["state"] == "paused"


async def test_post_form_publishes_and_shows_the_servers_error(
    start_server: StartServer, bundled: Feed, chromium: Browser
) -> None:
    server = await _whole_archive(start_server, bundled)
    status, answer = await server.post(f"/api/streams/{BUNDLED_ID}/posts", [])
    assert status == 400, answer  # served: a body that is not an object is refused
    page = await chromium.page()
    await page.goto(server.base + "/")
    await _wait_for_posts(page, 45)
    await page.click("#compose summary")
    await page.fill("[name=headline]", "Ceasefire announced in Tikrit")
    await page.fill("[name=body]", "Officials say the ceasefire starts at midnight.")
    await page.fill("[name=source]", "Reuters")
    await page.check("[name=key_event]")
    await page.click("#post-form button[type=submit]")
    await page.wait_for_function(
        "[...document.querySelectorAll('#posts h2')].some(h => h.textContent.includes('Tikrit'))",
        timeout=5_000,
    )
    ids = await _page_ids(page)
    assert ids[1].startswith("live-")  # newest, under the pinned post
    assert await page.locator(f"#key-events a[data-post-id='{ids[1]}']").count() == 1
    assert (await page.text_content("#post-ok") or "").startswith("Published")
    assert await page.input_value("[name=headline]") == ""

    chromium.assert_clean()

    await page.click("#post-form button[type=submit]")  # nothing filled in: a 400
    error = page.locator("#post-error")
    await error.wait_for(state="visible")
    assert (await error.text_content() or "").startswith("body.body: ")
    assert all("400" in problem for problem in chromium.problems)

    # Whatever the server answers, its JSON error is what the form shows (here a 404).
    status, _ = await server.delete(f"/api/streams/{BUNDLED_ID}")
    assert status == 200
    await page.fill("[name=body]", "Anyone there?")
    await page.click("#post-form button[type=submit]")
    await page.wait_for_function(
        "document.getElementById('post-error').textContent.includes('404') ||"
        " document.getElementById('post-error').textContent.includes('no stream')"
    )


async def test_new_posts_marker_when_scrolled_down(
    start_server: StartServer, chromium: Browser
) -> None:
    server = await start_server(
        streams=[{"id": BUNDLED_ID, "feed": BUNDLED_ID, "speed": 20, "max_gap": "10s"}]
    )
    page = await chromium.page({"width": 1280, "height": 500})
    await page.goto(server.base + "/")
    await _wait_for_posts(page, 6)
    await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    marker = page.locator("#new-posts")
    await marker.wait_for(state="visible", timeout=10_000)
    assert "new posts" in (await marker.text_content() or "")
    await marker.click()
    await page.wait_for_function("window.scrollY === 0", timeout=5_000)
    await marker.wait_for(state="hidden", timeout=5_000)
    chromium.assert_clean()


async def test_private_replay_honours_paused_and_faults_in_its_address(
    start_server: StartServer, chromium: Browser
) -> None:
    server = await start_server()
    page = await chromium.page()
    sockets: list[str] = []
    page.on("websocket", lambda socket: sockets.append(socket.url))
    await page.goto(
        server.base + "/?private=1&paused=1&speed=max&loop=false&faults=duplicate:1,seed:3"
    )
    await page.wait_for_function(
        "document.getElementById('connection').textContent === 'private'", timeout=10_000
    )
    assert await page.text_content("#state") == "paused · max speed"
    await page.wait_for_timeout(1_000)  # at speed max, a playing replay would be done by now
    assert await _page_ids(page) == []
    query = sockets[0].split("?", 1)[1]
    assert "paused=true" in query and "faults=duplicate%3A1%2Cseed%3A3" in query

    await page.click("#toggle")  # resume: the whole archive, every event twice, shown once
    await _wait_for_posts(page, 42)
    await page.wait_for_function(
        "document.getElementById('state').textContent === 'ended'", timeout=10_000
    )
    ids = await _page_ids(page)
    assert len(ids) == len(set(ids))
    async with server.session.get(server.base + "/metrics") as response:
        metrics = await response.text()
    assert 'livesim_faults_injected_total{kind="duplicate"}' in metrics
    assert await page.locator("#key-count").is_hidden()  # no key events, no "0" badge
    chromium.assert_clean()


async def test_private_replay_with_a_bad_address_says_so(
    start_server: StartServer, page: Any
) -> None:
    server = await start_server()
    await page.goto(server.base + "/?private=1&speed=fast")
    notice = page.locator("#notice")
    await notice.wait_for(state="visible", timeout=15_000)
    assert "could not start" in (await notice.text_content() or "")
    assert await page.text_content("#connection") == "refused"


async def test_ticker_holds_a_big_stream_at_speed_max(
    start_server: StartServer, bundled: Feed, chromium: Browser
) -> None:
    """100 000 posts at speed max: the server sends as fast as the page takes them. The page keeps
    its window, answers while the flood lasts, is never dropped as slow, and ends showing the
    stream's newest posts."""
    feed = synthesize(bundled, BIG_POSTS)
    stream = {"id": "big", "feed": feed.id, "speed": "max", "loop": False, "paused": True}
    server = await start_server(streams=[stream], feeds={feed.id: feed})
    page = await chromium.page()
    await page.add_init_script(STALLS)
    await page.goto(server.base + "/?stream=big")
    await page.wait_for_function("window.livesim.cursor !== null")
    status, _ = await server.post("/api/streams/big/resume")
    assert status == 200

    answers: list[float] = []
    largest = 0
    began = time.monotonic()
    ended = False
    while not ended and time.monotonic() - began < BIG_RUN:
        await page.wait_for_timeout(250)
        asked = time.perf_counter()
        shown, pill = await page.evaluate(
            "[document.querySelectorAll('#posts > li').length,"
            " document.getElementById('state').textContent]"
        )
        answers.append(time.perf_counter() - asked)
        largest = max(largest, shown)
        ended = pill == "ended"
    took = time.monotonic() - began
    if not ended:  # a slow machine: stop the flood where it is and judge that
        status, _ = await server.post("/api/streams/big/pause")
        assert status == 200
    status, snapshot = await server.get("/api/streams/big/posts")
    assert status == 200
    await page.wait_for_function(
        f"window.livesim.cursor === {snapshot['cursor']!r}", timeout=30_000
    )
    await page.wait_for_function("!window.livesim.pendingRender")
    events, stall, renders = await page.evaluate(
        "[window.livesim.events, window.stalls.longest, window.livesim.renders]"
    )
    answers.sort()
    print(
        f"big stream: {events} events in {took:.1f} s ({'ended' if ended else 'paused'}),"
        f" {renders} renders; evaluate median {answers[len(answers) // 2] * 1000:.0f} ms,"
        f" max {answers[-1] * 1000:.0f} ms; longest stall in the page {stall:.0f} ms;"
        f" largest list {largest}"
    )
    assert events > 50 * WINDOW  # far past the window: the flood was real
    assert answers[-1] < EVALUATE_LIMIT
    assert stall < STALL_LIMIT
    assert largest <= WINDOW
    status, state = await server.get("/api/streams/big")
    assert state["dropped_slow"] == 0
    async with server.session.get(server.base + "/metrics") as response:
        assert "livesim_slow_drops_total 0.0" in await response.text()
    assert await page.evaluate("window.livesim.resets") == 0
    newest = [p["id"] for p in snapshot["posts"][:WINDOW]]
    assert await _page_ids(page) == newest
    total = len(snapshot["posts"]) + snapshot["omitted"]
    assert await page.text_content("#count") == f"{WINDOW} of {total} posts"
    await _screenshot(page, "ticker-big-stream")
    chromium.assert_clean()

    # Reloaded: the page asks for the newest page (?limit=) and offers the older ones, a page
    # (?before=) at a time.
    await page.reload()
    await page.wait_for_function(f"window.livesim.cursor === {snapshot['cursor']!r}")
    await page.wait_for_function("!window.livesim.pendingRender")
    assert await _page_ids(page) == newest
    await page.locator("#older").click()
    await page.wait_for_function(f"window.livesim.limit >= {2 * WINDOW}")
    await page.wait_for_function("!window.livesim.pendingRender")
    assert await _page_ids(page) == [p["id"] for p in snapshot["posts"][: 2 * WINDOW]]
    # The old page's event stream, cut by the reload, is reported as a failed request.
    assert [p for p in chromium.problems if "/streams/big/events?" not in p] == []
