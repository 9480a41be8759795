"""Golden tests on the bundled ScribbleLive export: Al Jazeera's Iraq live blog, June 2014."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import simulator
from simulator.core.importers import ImportOptions, detect, import_bytes
from simulator.core.model import Feed, Media, Post, TimeSource
from simulator.sources import BUNDLED, bundled_feed, load_feed

SEED = Path(simulator.__file__).parent / "data" / BUNDLED

EXPLICIT_UTC = [
    datetime(2014, 6, 25, 6, 52, 29, tzinfo=UTC),
    datetime(2014, 6, 25, 7, 3, 43, tzinfo=UTC),
    datetime(2014, 6, 25, 10, 2, 35, tzinfo=UTC),
    datetime(2014, 6, 26, 8, 52, 36, tzinfo=UTC),
]


@pytest.fixture(scope="module")
def feed() -> Feed:
    return bundled_feed()


def imported(**options: object) -> Feed:
    return import_bytes(SEED.read_bytes(), ImportOptions(source=BUNDLED, **options))  # type: ignore[arg-type]


def find(feed: Feed, text: str) -> Post:
    """The one post whose headline, body or media mentions ``text``."""
    found = [
        post
        for post in feed.posts
        if text in (post.headline or "")
        or text in post.body
        or any(text in (m.title or "") or text in (m.caption or "") for m in post.media)
    ]
    assert len(found) == 1, f"{len(found)} posts mention {text!r}"
    return found[0]


def explicit(feed: Feed) -> list[Post]:
    return [p for p in feed.posts if p.time_source is TimeSource.EXPLICIT]


# The whole feed


def test_detected_as_scribblelive() -> None:
    assert detect(SEED.read_text(encoding="utf-8")) == "scribblelive"


def test_bundled_feed_and_import_bytes_agree(feed: Feed) -> None:
    direct = imported()
    assert direct.posts == feed.posts
    assert feed.id == "aljazeera-iraq-2014-06"
    assert direct.id == "iraq-blog"  # no file name given: the title's slug


def test_exactly_42_posts(feed: Feed) -> None:
    assert len(feed.posts) == 42


def test_four_explicit_times_in_utc(feed: Feed) -> None:
    assert [p.published_at for p in explicit(feed)] == EXPLICIT_UTC
    assert feed.timezone == "UTC"


def test_inferred_time_counts(feed: Feed) -> None:
    sources = [p.time_source for p in feed.posts]
    assert sources.count(TimeSource.EXPLICIT) == 4
    assert sources.count(TimeSource.INTERPOLATED) == 13
    assert sources.count(TimeSource.EXTRAPOLATED) == 25
    # 8 before the first byline, 2 + 11 between bylines, 17 after the last one.
    letter = {TimeSource.EXPLICIT: "E", TimeSource.INTERPOLATED: "i", TimeSource.EXTRAPOLATED: "x"}
    pattern = "".join(letter[s] for s in sources if s is not None)
    assert pattern == "x" * 8 + "EE" + "ii" + "E" + "i" * 11 + "E" + "x" * 17


def test_times_non_decreasing_and_follow_the_cadence(feed: Feed) -> None:
    times = [p.timed for p in feed.posts]
    assert times == sorted(times)
    # Cadence: the anchors' span over their post span, in whole seconds.
    cadence = timedelta(seconds=int((EXPLICIT_UTC[-1] - EXPLICIT_UTC[0]).total_seconds()) // 16)
    assert cadence == timedelta(hours=1, minutes=37, seconds=30)
    assert times[0] == EXPLICIT_UTC[0] - 8 * cadence
    assert times[-1] == EXPLICIT_UTC[-1] + 17 * cadence
    # A third of the way from 07:03:43 to 10:02:35 (10732 s), rounded down to the second.
    assert times[10] == datetime(2014, 6, 25, 8, 3, 20, tzinfo=UTC)
    assert times[11] == datetime(2014, 6, 25, 9, 2, 57, tzinfo=UTC)
    assert all(p.published_at is not None and p.published_at.tzinfo for p in feed.posts)


def test_ids_are_stable_and_unique(feed: Feed) -> None:
    ids = [p.id for p in feed.posts]
    assert ids == [p.id for p in imported().posts]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"p-[0-9a-f]{10}", post_id) for post_id in ids)


def test_ids_named_in_the_demo_config(feed: Feed) -> None:
    # config/livesim.toml pins and deletes these posts by id.
    assert find(feed, "More than 1,000 killed this month").id == "p-71f02e8132"
    assert find(feed, "Our latest story on the political situation").id == "p-b011144f74"


def test_timezone_shifts_explicit_times(feed: Feed) -> None:
    qatar = load_feed(SEED, timezone="Asia/Qatar")
    assert qatar.timezone == "Asia/Qatar"
    assert [p.published_at for p in explicit(qatar)] == [
        t - timedelta(hours=3) for t in EXPLICIT_UTC
    ]
    assert [p.id for p in qatar.posts] == [p.id for p in feed.posts]
    assert [p.timed for p in qatar.posts] == [p.timed - timedelta(hours=3) for p in feed.posts]


# The page around the posts


def test_page_header_is_the_feed_not_a_post(feed: Feed) -> None:
    assert feed.title == "Iraq Blog"
    assert feed.description == (
        "Sunni fighters led by group known as the Islamic State have overrun large areas of "
        "western and northern Iraq. Follow Al Jazeera's live blog for the latest updates and "
        "information."
    )
    assert feed.extra["publisher"] == "Al Jazeera English"
    assert not any("Sunni fighters led by group" in p.body for p in feed.posts)
    assert not any((p.headline or "").startswith("Iraq Blog") for p in feed.posts)
    assert feed.posts[0].body.startswith("Back to Baiji. Salah Hashim")


def test_footer_is_in_no_post(feed: Feed) -> None:
    for post in feed.posts:
        assert "Powered by" not in post.body
        assert "ScribbleLive" not in post.body


def test_bodies_are_clean(feed: Feed) -> None:
    for post in feed.posts:
        assert post.body == post.body.strip()
        assert "•" not in post.body
        assert "\u00a0" not in post.body
        assert " edited by " not in post.body  # bylines are author/editor, not text
        assert "via YouTube" not in post.body and "via Instagram" not in post.body
        assert not re.search(r"\[(AP|AFP|Reuters|REUTERS|Associated Press)\]", post.body)
        assert "\n\n\n" not in post.body


# Named posts


def test_un_casualties_headline(feed: Feed) -> None:
    post = find(feed, "More than 1,000 killed this month")
    assert post.headline == "More than 1,000 killed this month"
    assert post.body.startswith("The UN's human rights monitors say at least 1,075 people")
    assert "police, soldiers who had stopped fighting" in post.body  # hard wrap joined
    assert post.body.endswith("during the same time in Baghdad and areas in southern Iraq.")
    assert (post.author, post.editor, post.source, post.media) == (None, None, None, ())
    assert post.time_source is TimeSource.EXTRAPOLATED


def test_leading_agency_credit(feed: Feed) -> None:
    post = find(feed, "Here's more from AP")
    assert post.source == "AP"
    assert post.headline is None
    assert post.body.startswith(
        "Here's more from AP: The president of Iraq's ethnic Kurdish region declared that "
        '"we are facing a new reality'
    )
    assert "[AP]" not in post.body


def test_maliki_afp_post_with_byline(feed: Feed) -> None:
    post = find(feed, "refused to bow down to international pressure")
    assert post.author == "Shafik.Mandhai"
    assert post.editor == "Faisal Edroos"
    assert post.source == "AFP"
    assert post.published_at == datetime(2014, 6, 25, 10, 2, 35, tzinfo=UTC)
    assert post.time_source is TimeSource.EXPLICIT
    assert post.body.endswith("also far and away the most.")
    assert post.body.count("\n\n") == 3


def test_sahwa_post_rejoins_split_word(feed: Feed) -> None:
    post = find(feed, "Sahwa programme")
    assert "the US and its Middle East allies" in post.body
    assert "the U S" not in post.body and "the U\n" not in post.body
    assert (post.author, post.editor) == ("Shafik.Mandhai", "Graeme Baker")
    assert post.published_at == datetime(2014, 6, 25, 6, 52, 29, tzinfo=UTC)
    assert post.body.endswith("sidelined by Shia prime minister, Nouri al-Maliki.")


def test_second_byline_post(feed: Feed) -> None:
    post = find(feed, "repentance ceremony")
    assert (post.author, post.editor) == ("Shafik.Mandhai", "Graeme Baker")
    assert post.published_at == datetime(2014, 6, 25, 7, 3, 43, tzinfo=UTC)
    assert post.media == ()


def test_reuters_post_with_byline_on_the_26th(feed: Feed) -> None:
    post = find(feed, "Syria carried out air attacks on armed rebels")
    assert (post.author, post.editor) == ("Tamila Varshalomidze", "Graeme Baker")
    assert post.source == "Reuters"
    assert post.published_at == datetime(2014, 6, 26, 8, 52, 36, tzinfo=UTC)
    assert post.body.endswith("has denied the country has carried out attacks on Iraq.")


def test_youtube_embed_only_post(feed: Feed) -> None:
    post = find(feed, "Iraq's Sunni rebels prove formidable enemy")
    assert post.media == (
        Media(
            kind="youtube",
            title="Iraq's Sunni rebels prove formidable enemy",
            credit="Al Jazeera English",
        ),
    )
    assert post.body == ""
    assert post.headline is None


def test_youtube_embed_with_arabic_title(feed: Feed) -> None:
    title = "اثار القصف الذي قام به الطيران السوري على مدينة القائم ...الانبار 24-6-2014"
    post = find(feed, title)
    assert post.media == (Media(kind="youtube", title=title, credit="iraqi spring"),)
    assert post.body == (
        "According to the caption, this video shows the aftermath of an attack by Syrian jets in "
        "al-Qaim, Iraq."
    )


def test_second_arabic_embed_and_wrapped_body(feed: Feed) -> None:
    title = "اثر اعتداء الطيران السوري على قضاء الرطبه بتاريخ 24-6-2014"
    post = find(feed, title)
    assert post.media == (Media(kind="youtube", title=title, credit="abdo allah almslm"),)
    assert post.body == (
        "This one shows the effects of a jet strike on a fuel station in Rutba. The voiceover, "
        "off camera, says two rockets hit two separate areas in Rutba."
    )


def test_youtube_embed_followed_by_text(feed: Feed) -> None:
    post = find(feed, "Iraq's al-Sadr calls for emergency government")
    assert post.media == (
        Media(
            kind="youtube",
            title="Iraq's al-Sadr calls for emergency government",
            credit="Al Jazeera English",
        ),
    )
    assert post.body.startswith("One of Iraq's most powerful Shia leaders")
    assert post.body.endswith("Al Jazeera's Imran Khan reports from Baghdad")


@pytest.mark.parametrize(
    ("credit", "caption_start", "caption_end"),
    [
        ("plattys1", "Iraqi women wait outside displacement camp today", "#displaced #idp"),
        ("andrewquilty", "On the Kurdish side of the checkpoint", "#photojournalism #family"),
        ("cjchivers", "Iraqi Army 17th Division troops", "the Triangle of Death. This afternoon."),
    ],
)
def test_instagram_posts(feed: Feed, credit: str, caption_start: str, caption_end: str) -> None:
    post = find(feed, caption_start)
    assert len(post.media) == 1
    media = post.media[0]
    assert (media.kind, media.credit, media.title) == ("instagram", credit, None)
    assert media.caption is not None
    assert media.caption.startswith(caption_start)
    assert media.caption.endswith(caption_end)
    assert post.body == ""


def test_instagram_posts_in_order(feed: Feed) -> None:
    credits = [m.credit for p in feed.posts for m in p.media if m.kind == "instagram"]
    assert credits == ["plattys1", "andrewquilty", "cjchivers"]


def test_daily_show_gallery_counters(feed: Feed) -> None:
    post = find(feed, "The Daily Show zooms in")
    assert post.body == "The Daily Show zooms in on the latest developments in Iraq."
    assert post.media == (Media(kind="gallery", count=2), Media(kind="gallery", count=3))


def test_shia_volunteers_gallery(feed: Feed) -> None:
    post = find(feed, "military-style training in Basra")
    prefix = (
        "Shia volunteers, who have joined the Iraqi army to fight ISIL, take part in "
        "military-style training in "
    )
    assert post.media == (
        Media(kind="image", caption=prefix + "Basra", credit="Reuters"),
        Media(kind="image", caption=prefix + "Najaf", credit="Reuters"),
        Media(kind="image", caption=prefix + "Kerbala", credit="Reuters"),
        Media(kind="gallery", count=3),
    )
    assert "[Reuters]" not in post.body
    assert post.body == ""  # the captions are the photos', not repeated as text


def test_captions_are_never_repeated_in_the_body(feed: Feed) -> None:
    for post in feed.posts:
        for media in post.media:
            if media.kind == "image" and media.caption:
                assert media.caption not in post.body, post.id


def test_photo_with_agency_credit(feed: Feed) -> None:
    post = find(feed, "celebrate on a police vehicle in Mosul")
    caption = (
        "Rebels from the Islamic State in Iraq and the Levant (ISIL) celebrate on a police "
        "vehicle in Mosul"
    )
    assert post.media == (Media(kind="image", caption=caption, credit="Reuters"),)
    assert post.body == ""


def test_hague_gallery(feed: Feed) -> None:
    post = find(feed, "Highlights from British Foreign Secretary William Hague")
    assert post.body == (
        "Highlights from British Foreign Secretary William Hague press conference in Iraq:"
    )
    assert post.media == (Media(kind="gallery", count=6),)
    assert post.headline is None


def test_kurds_oil_exports(feed: Feed) -> None:
    post = find(feed, "Kurds plan boosting oil exports")
    assert post.headline == "Kurds plan boosting oil exports"
    assert post.body.startswith(
        "Iraq's self-ruling Kurds outlined plans on Wednesday to ramp up oil exports"
    )
    assert post.source == "Reuters"
    assert post.body.endswith("expanding their territory by more than a third.")


def test_jordan_headline_with_quotes(feed: Feed) -> None:
    post = find(feed, "Jordan ready to defend itself")
    assert post.headline == 'Jordan ready to defend itself from Iraq "aggression"'
    assert post.body.startswith("The Jordanian military has said it is ready")
    assert post.body.endswith('"The army will not tolerate any kind of infiltration."')
    assert post.source is None


def test_associated_press_credit_normalised(feed: Feed) -> None:
    post = find(feed, "US accuses Syria of launching airstrikes in Iraq")
    assert post.headline == "US accuses Syria of launching airstrikes in Iraq"
    assert post.source == "AP"
    assert post.body.endswith('to combat threats."')


def test_unknown_bracket_is_text_not_a_credit(feed: Feed) -> None:
    post = find(feed, "Morocco arrests group")
    assert post.headline == "Morocco arrests group accused of sending fighters to Iraq and Syria"
    assert "domestic intelligence agency (DGST)." in post.body
    assert post.source is None


def test_short_post_with_headline(feed: Feed) -> None:
    post = find(feed, "Iraq's Maliki rules out emergency government")
    assert post.headline == "Iraq's Maliki rules out emergency government"
    assert post.body == (
        'Prime minister says such a move would be "coup", in direct rebuttal of US efforts to '
        "tackle rising Sunni rebellion."
    )


def test_arabic_text_preserved_exactly(feed: Feed) -> None:
    raw = SEED.read_text(encoding="utf-8")
    arabic = [line.strip() for line in raw.splitlines() if re.search("[\u0600-\u06ff]", line)]
    assert len(arabic) == 2
    titles = [m.title for p in feed.posts for m in p.media]
    for line in arabic:
        assert line in titles
