import pytest
from fixture_text import FIXTURES, fixture, utc

from simulator.core.importers import ImportOptions, detect, import_text, rss
from simulator.core.model import ArchiveError, Media, TimeSource


def rss_doc(items: str, channel: str = "<title>Live</title>", declaration: bool = True) -> str:
    head = '<?xml version="1.0" encoding="utf-8"?>\n' if declaration else ""
    return f'{head}<rss version="2.0"><channel>{channel}{items}</channel></rss>\n'


# The RSS fixture: newest-first, HTML descriptions, an enclosure, Media RSS.


def test_rss_fixture_feed() -> None:
    feed = rss.parse(fixture("liveblog.rss"), ImportOptions(timezone_name="Europe/London"))
    assert feed.id == "harbour-fire-live-port-veritas-blaze"
    assert feed.title == "Harbour fire live: Port Veritas blaze"
    assert (
        feed.description
        == "Rolling coverage of the warehouse fire at Port Veritas & its aftermath."
    )
    assert feed.timezone == "Europe/London"
    assert feed.extra == {"link": "https://news.example.com/live/port-veritas-fire"}


def test_rss_fixture_items_in_document_order() -> None:
    posts = rss.parse(fixture("liveblog.rss"), ImportOptions()).posts
    assert [p.id for p in posts] == [f"pv-fire-{n}" for n in range(6, 0, -1)]
    assert [p.headline for p in posts] == [
        "Fire declared under control",
        "Aerial pictures show scale of damage",
        "Residents told to keep windows closed",
        "Video: firefighters battle the flames",
        "Port closed to shipping",
        "Large fire breaks out at Port Veritas",
    ]
    assert [p.published_at for p in posts] == [
        utc(2015, 3, 12, 16, 40),
        utc(2015, 3, 12, 15, 5),
        utc(2015, 3, 12, 12, 30),
        utc(2015, 3, 12, 11, 20),
        utc(2015, 3, 12, 9, 15),
        utc(2015, 3, 12, 7, 48),
    ]
    assert {p.time_source for p in posts} == {TimeSource.EXPLICIT}
    assert [p.author for p in posts] == [
        "Lena Ortiz",
        "Lena Ortiz",
        "Sam Adeyemi",
        None,
        None,
        "Sam Adeyemi",
    ]
    assert [p.source for p in posts] == ["Reuters", None, None, "AFP", None, "AP"]
    assert [p.extra for p in posts] == [
        {"link": f"https://news.example.com/live/port-veritas-fire#post-{n}"}
        for n in range(6, 0, -1)
    ]


def test_rss_fixture_bodies_are_plain_text() -> None:
    posts = rss.parse(fixture("liveblog.rss"), ImportOptions()).posts
    assert [p.body for p in posts] == [
        "The fire service says the blaze is under control, nearly nine hours after it began."
        "\n\nCrews will remain on site overnight to damp down hotspots.",
        "Drone footage released by the port authority shows the roof of the main warehouse has "
        "collapsed.",
        "Health officials have advised people living within 2km of the port to keep doors & "
        "windows closed.\n\nSchools in the area will close early.\n"
        "Parents are asked to collect children by 2pm.",
        "Footage from the scene shows crews spraying water from fireboats in the harbour.",
        "The harbour master has suspended all arrivals and departures \u2013 at least 14 vessels "
        "are waiting offshore.",
        "A large fire has broken out at a warehouse in the container terminal at Port Veritas."
        "\n\nThick black smoke can be seen for miles around.",
    ]


def test_rss_fixture_media() -> None:
    posts = rss.parse(fixture("liveblog.rss"), ImportOptions()).posts
    assert [p.media for p in posts] == [
        (),
        (
            Media(kind="image", url="https://img.example.com/pv/aerial-1.jpg"),
            Media(
                kind="image",
                url="https://img.example.com/pv/aerial-2.jpg",
                caption="Smoke rising over the collapsed roof",
            ),
        ),
        (),
        (Media(kind="video", url="https://video.example.com/pv/fireboats.mp4"),),
        (),
        (Media(kind="image", url="https://img.example.com/pv/first-smoke.jpg"),),
    ]


def test_rss_fixture_through_import_text_is_chronological() -> None:
    text = fixture("liveblog.rss")
    assert detect(text) == "rss"
    feed = import_text(text, ImportOptions(source="fire.rss"))
    assert [p.id for p in feed.posts] == [f"pv-fire-{n}" for n in range(1, 7)]
    assert feed.posts[0].published_at == utc(2015, 3, 12, 7, 48)
    assert feed.posts[-1].headline == "Fire declared under control"


# The Atom fixture.


def test_atom_fixture() -> None:
    text = fixture("liveblog.atom")
    assert detect(text) == "rss"
    feed = rss.parse(text, ImportOptions())
    assert feed.title == "Election night live: Northshire by-election"
    assert feed.id == "election-night-live-northshire-by-election"
    assert feed.description == "Results and reaction as the count goes on in Northshire."
    assert feed.extra == {"link": "https://news.example.org/live/northshire-by-election"}
    posts = feed.posts
    assert [p.id for p in posts] == [
        f"tag:news.example.org,2016:live/northshire/{n}" for n in (4, 3, 2, 1)
    ]
    assert [p.headline for p in posts] == [
        "Result: Greens take the seat",
        "Recount requested in one ward",
        "Counting under way",
        "Polls close",
    ]
    assert [p.body for p in posts] == [
        "The returning officer has declared the result: the Green candidate wins by 1,214 votes."
        "\n\nTurnout was 41.3%.",
        "Labour have asked for a bundle check in Eastgate ward. Officials say it will take about "
        "30 minutes.",
        "Ballot boxes from all 38 polling stations have arrived at the leisure centre."
        "\n\nStaff are verifying the papers before the count proper begins.",
        "Polls have now closed. A result is expected in the early hours.",
    ]
    assert [p.published_at for p in posts] == [
        utc(2016, 10, 21, 3, 12),
        utc(2016, 10, 21, 2, 35),
        utc(2016, 10, 20, 23, 5),
        utc(2016, 10, 20, 21, 0),
    ]
    assert [p.author for p in posts] == ["Priya Raman", "Priya Raman", "Tom Kerr", "Tom Kerr"]
    assert [p.source for p in posts] == [None, None, None, "PA"]
    assert posts[2].media == (
        Media(kind="image", url="https://img.example.org/northshire/count-hall.png"),
    )
    assert posts[3].extra == {}


# Item details.


def test_item_without_date_is_untimed_until_inference() -> None:
    text = rss_doc(
        "<item><title>Later</title><description>Two.</description>"
        "<pubDate>Mon, 09 Jun 2014 21:10:00 GMT</pubDate></item>"
        "<item><title>Undated</title><description>One.</description></item>"
        "<item><title>Earlier</title><description>Zero.</description>"
        "<pubDate>Mon, 09 Jun 2014 21:00:00 GMT</pubDate></item>"
    )
    posts = rss.parse(text, ImportOptions()).posts
    assert [(p.published_at, p.time_source) for p in posts] == [
        (utc(2014, 6, 9, 21, 10), TimeSource.EXPLICIT),
        (None, None),
        (utc(2014, 6, 9, 21), TimeSource.EXPLICIT),
    ]
    timed = import_text(text, ImportOptions())
    assert [(p.headline, p.published_at, p.time_source) for p in timed.posts] == [
        ("Earlier", utc(2014, 6, 9, 21), TimeSource.EXPLICIT),
        ("Undated", utc(2014, 6, 9, 21, 5), TimeSource.INTERPOLATED),
        ("Later", utc(2014, 6, 9, 21, 10), TimeSource.EXPLICIT),
    ]


def test_item_without_guid_has_empty_id_until_assigned() -> None:
    text = rss_doc("<item><title>A</title><description>Body.</description></item>")
    assert rss.parse(text, ImportOptions()).posts[0].id == ""
    assert import_text(text, ImportOptions()).posts[0].id.startswith("p-")


def test_html_is_reduced_to_text() -> None:
    html = (
        "&lt;div&gt;&lt;h2&gt;Update&lt;/h2&gt;&lt;p&gt;Line one&lt;br&gt;line&amp;nbsp;two "
        "&amp;amp; &amp;quot;more&amp;quot;&lt;/p&gt;&lt;script&gt;track()&lt;/script&gt;"
        "&lt;ul&gt;&lt;li&gt;first&lt;/li&gt;&lt;li&gt;second&lt;/li&gt;&lt;/ul&gt;&lt;/div&gt;"
    )
    text = rss_doc(f"<item><title>T</title><description>{html}</description></item>")
    assert rss.parse(text, ImportOptions()).posts[0].body == (
        'Update\n\nLine one\nline two & "more"\n\nfirst\n\nsecond'
    )


def test_title_repeating_the_body_is_not_a_headline() -> None:
    text = rss_doc(
        "<item><title>Troops have entered the city...</title>"
        "<description>Troops have entered the city from the north, witnesses say.</description>"
        "</item>"
        "<item><title>Only a title</title></item>"
    )
    posts = rss.parse(text, ImportOptions()).posts
    assert [(p.headline, p.body) for p in posts] == [
        (None, "Troops have entered the city from the north, witnesses say."),
        (None, "Only a title"),
    ]


def test_empty_items_are_skipped() -> None:
    text = rss_doc("<item></item><item><title>Kept</title><description>x</description></item>")
    assert [p.headline for p in rss.parse(text, ImportOptions()).posts] == ["Kept"]


def test_rss_source_element_naming_an_agency_is_the_source() -> None:
    text = rss_doc(
        '<item><title>A</title><description>Body.</description><source url="http://r">'
        "Reuters</source></item>"
        '<item><title>B</title><description>Body.</description><source url="http://b">'
        "Someone's blog</source></item>"
    )
    assert [p.source for p in rss.parse(text, ImportOptions()).posts] == ["Reuters", None]


def test_media_kinds() -> None:
    text = rss_doc(
        "<item><title>A</title><description>Body.</description>"
        '<enclosure url="https://x.example/clip.mp4" type="video/mp4" length="1"/>'
        '<enclosure url="https://x.example/pic" type="image/png" length="1"/>'
        '<enclosure url="https://x.example/audio.mp3" type="audio/mpeg" length="1"/>'
        '<enclosure url="https://www.youtube.com/watch?v=abc" type="text/html" length="1"/>'
        '<enclosure url="https://x.example/pic" type="image/png" length="1"/>'
        "</item>"
    )
    media = rss.parse(text, ImportOptions()).posts[0].media
    assert [(m.kind, m.url) for m in media] == [
        ("video", "https://x.example/clip.mp4"),
        ("image", "https://x.example/pic"),
        ("link", "https://x.example/audio.mp3"),
        ("youtube", "https://www.youtube.com/watch?v=abc"),
    ]


# Empty and broken feeds.


def test_feed_without_items_has_no_posts() -> None:
    text = rss_doc("", channel="<title>Quiet</title><description>Nothing yet</description>")
    feed = rss.parse(text, ImportOptions())
    assert (feed.title, feed.description, feed.posts) == ("Quiet", "Nothing yet", ())
    with pytest.raises(ArchiveError, match=r"no posts found \(read as rss\)"):
        import_text(text, ImportOptions())


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('<?xml version="1.0"?>\n<rss><channel>\n<title>x</title>\n<item><title>a</item>\n', 4),
        ("<rss><channel>\n<title>x</title>\n<item><title>a</item>\n", 3),
        ("\n\n<rss><channel>\n<title>x</title>\n<item><title>a</item>\n", 5),
    ],
)
def test_malformed_xml_names_its_line(text: str, line: int) -> None:
    with pytest.raises(ArchiveError) as caught:
        import_text(text, ImportOptions(source="bad.rss"))
    assert caught.value.line == line
    assert caught.value.source == "bad.rss"
    assert caught.value.message == "not a readable feed: mismatched tag"


def test_plain_text_read_as_rss_is_an_error() -> None:
    with pytest.raises(ArchiveError, match="not a readable feed"):
        rss.parse("2110 GMT: not a feed at all", ImportOptions())


@pytest.mark.parametrize(
    "text", ["https://example.com/feed.xml", str(FIXTURES / "liveblog.rss"), "file:///etc/hosts"]
)
def test_text_is_never_opened_as_a_url_or_file(text: str) -> None:
    with pytest.raises(ArchiveError, match="not a readable feed"):
        rss.parse(text, ImportOptions())


def test_sniff() -> None:
    assert rss.sniff(fixture("liveblog.rss"))
    assert rss.sniff(fixture("liveblog.atom"))
    assert rss.sniff('\ufeff\n  <rss version="2.0"></rss>')
    assert rss.sniff('<?xml version="1.0"?><rdf:RDF></rdf:RDF>')
    assert not rss.sniff(fixture("timestamped-oldest-first.txt"))
    assert not rss.sniff("<html><body>Not a feed</body></html>")
    assert not rss.sniff("A post mentioning <rss and <feed in prose")
    assert not rss.sniff("")


def test_atom_plain_text_content_is_not_read_as_markup() -> None:
    text = (
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
        "<entry><id>e1</id><title>Tags</title><updated>2016-10-21T02:35:00Z</updated>"
        '<content type="text">Use &lt;b&gt; for bold &amp; more.\n\nNew paragraph.</content>'
        '<summary type="text">Short version.</summary></entry></feed>'
    )
    post = rss.parse(text, ImportOptions()).posts[0]
    assert post.body == "Use <b> for bold & more.\n\nNew paragraph."
