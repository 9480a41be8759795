from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fixture_text import fixture, utc

from simulator.core.importers import ImportOptions, detect, import_text, timestamped
from simulator.core.model import ArchiveError, TimeSource

QATAR = ZoneInfo("Asia/Qatar")


def parse(text: str, **options: Any) -> list[tuple[datetime | None, str]]:
    feed = timestamped.parse(text, ImportOptions(**options))
    return [(post.published_at, post.body) for post in feed.posts]


# The oldest-first fixture: GMT stamps, two date lines, midnight crossed inside the first section.


def test_oldest_first_fixture_through_import_text() -> None:
    text = fixture("timestamped-oldest-first.txt")
    assert detect(text) == "timestamped"
    feed = import_text(text, ImportOptions(source="amara.txt"))

    assert feed.id == "cyclone-amara-live-storm-makes-landfall"
    assert feed.title == "Cyclone Amara live: storm makes landfall"
    assert feed.description == (
        "Live updates as Cyclone Amara, the strongest storm to hit the coast in a decade, "
        "moves inland. All times GMT."
    )
    assert feed.timezone == "UTC"
    assert [p.published_at for p in feed.posts] == [
        utc(2014, 6, 9, 18, 45),
        utc(2014, 6, 9, 19, 30),
        utc(2014, 6, 9, 21, 10),
        utc(2014, 6, 9, 22, 45),
        utc(2014, 6, 9, 23, 50),
        utc(2014, 6, 10, 0, 15),
        utc(2014, 6, 10, 1, 40),
        utc(2014, 6, 10, 6, 10),
        utc(2014, 6, 10, 7, 45),
        utc(2014, 6, 10, 9, 20),
        utc(2014, 6, 10, 11, 30),
        utc(2014, 6, 10, 13, 15),
    ]
    assert {p.time_source for p in feed.posts} == {TimeSource.EXPLICIT}
    assert all(p.id.startswith("p-") for p in feed.posts)
    assert [p.headline for p in feed.posts] == [
        "Cyclone Amara upgraded to category four",
        None,
        None,
        None,
        "Power cut in northern districts",
        None,
        "Landfall",
        "Daylight reveals damage",
        None,
        None,
        "Aid agencies appeal for funds",
        "Airport reopens",
    ]
    assert [p.source for p in feed.posts] == [
        "Reuters",
        "AFP",
        None,
        None,
        "AP",
        None,
        "AP",
        None,
        "Reuters",
        None,
        None,
        "AFP",
    ]


def test_oldest_first_fixture_bodies() -> None:
    feed = timestamped.parse(fixture("timestamped-oldest-first.txt"), ImportOptions())
    bodies = [p.body for p in feed.posts]
    assert bodies[0] == (
        "The regional weather agency has upgraded the storm to category four, with sustained "
        "winds of 215km/h recorded offshore."
    )
    assert bodies[1] == (
        "Authorities have ordered the evacuation of low-lying districts in the port city of "
        "Saldana, affecting an estimated 120,000 residents."
        "\n\nBuses are being laid on from the central station."
    )
    assert bodies[2] == (
        "All ferry crossings to the outer islands have been cancelled until further notice, "
        "the port authority said."
    )
    assert bodies[3] == (
        "Our correspondent in Saldana says the wind has picked up sharply in the past hour and "
        "rain is now falling heavily across the city."
        '\n\n"People are staying indoors. The streets are almost empty," she said.'
    )
    assert bodies[4] == (
        "The national grid operator says about 40,000 homes are without electricity after a "
        "transmission line came down."
    )
    assert bodies[11] == (
        "Saldana International Airport has reopened after a 20-hour closure, "
        "though delays are expected."
    )
    assert all(p.id == "" for p in feed.posts)


def test_explicit_gmt_stamps_ignore_the_local_zone() -> None:
    text = fixture("timestamped-oldest-first.txt")
    local = timestamped.parse(text, ImportOptions(timezone=QATAR, timezone_name="Asia/Qatar"))
    plain = timestamped.parse(text, ImportOptions())
    assert [p.published_at for p in local.posts] == [p.published_at for p in plain.posts]
    assert local.timezone == "Asia/Qatar"


# The newest-first fixture: local Doha times in mixed styles, one date line, midnight crossed.


def test_newest_first_fixture_in_qatar_time() -> None:
    text = fixture("timestamped-newest-first.txt")
    assert detect(text) == "timestamped"
    options = ImportOptions(timezone=QATAR, timezone_name="Asia/Qatar")
    feed = import_text(text, options)

    assert feed.title == "Gulf Cup final live: Qatar v Oman"
    assert feed.timezone == "Asia/Qatar"
    assert [p.published_at for p in feed.posts] == [
        utc(2014, 6, 14, 11, 5),
        utc(2014, 6, 14, 17, 0),
        utc(2014, 6, 14, 18, 58),
        utc(2014, 6, 14, 19, 41),
        utc(2014, 6, 14, 20, 10),
        utc(2014, 6, 14, 20, 55),
        utc(2014, 6, 14, 21, 10),
        utc(2014, 6, 14, 22, 20),
        utc(2014, 6, 15, 6, 5),
        utc(2014, 6, 15, 7, 33),
    ]
    assert [p.headline for p in feed.posts] == [
        "Team news",
        "Kick-off",
        None,
        None,
        None,
        'Coach: "We believed until the end"',
        "Celebrations on the Corniche",
        None,
        None,
        "Squad parades trophy",
    ]
    assert [p.source for p in feed.posts] == [
        "AP",
        None,
        None,
        None,
        None,
        None,
        "Reuters",
        None,
        "AFP",
        None,
    ]


def test_newest_first_parse_returns_oldest_first() -> None:
    options = ImportOptions(timezone=QATAR, timezone_name="Asia/Qatar")
    feed = timestamped.parse(fixture("timestamped-newest-first.txt"), options)
    bodies = [p.body for p in feed.posts]
    assert bodies[0] == (
        "Oman are unchanged from the semi-final. Qatar bring in a fresh striker, with the captain "
        "passed fit after a knee injury."
    )
    assert bodies[2] == (
        "Qatar equalise with a header from the far post. Oman had led since the 12th minute."
    )
    assert bodies[4] == "FULL TIME: Qatar 2-1 Oman. The hosts are champions."
    assert bodies[8] == (
        "The emir has congratulated the team in a message posted on the official news agency's "
        'website, calling the win "a victory for the whole nation".'
    )
    times = [p.timed for p in feed.posts]
    assert times == sorted(times)


# Stamp and date-line forms.


@pytest.mark.parametrize(
    "stamp",
    [
        "2110 GMT:",
        "2110GMT -",
        "21:10 GMT -",
        "21.10 GMT:",
        "21:10 UTC:",
        "9.10pm:",
        "9:10 pm -",
        "9:10 p.m. \u2013",
        "09:10PM:",
        "21:10 -",
        "21:10:",
        "21:10 \u2014",
        "  21:10 -",
    ],
)
def test_stamp_forms(stamp: str) -> None:
    text = f"{stamp} Something happened.\n{stamp} Something else happened.\n"
    assert timestamped.sniff(text)
    assert parse(text, date=date(2014, 6, 9)) == [
        (utc(2014, 6, 9, 21, 10), "Something happened."),
        (utc(2014, 6, 9, 21, 10), "Something else happened."),
    ]


def test_stamp_with_seconds_and_body_on_next_line() -> None:
    text = "21:10:30 -\nSomething happened.\n\n21:11 GMT:\n\nMore.\n"
    assert parse(text, date=date(2014, 6, 9)) == [
        (utc(2014, 6, 9, 21, 10, 30), "Something happened."),
        (utc(2014, 6, 9, 21, 11), "More."),
    ]


def test_midnight_and_noon_in_twelve_hour_time() -> None:
    text = "12.05am: Just after midnight.\n6am: Dawn.\n12:30 pm - Just after noon.\n"
    assert parse(text, date=date(2014, 6, 9)) == [
        (utc(2014, 6, 9, 0, 5), "Just after midnight."),
        (utc(2014, 6, 9, 6), "Dawn."),
        (utc(2014, 6, 9, 12, 30), "Just after noon."),
    ]


@pytest.mark.parametrize(
    "date_line",
    [
        "Monday, 9 June 2014",
        "Monday 9 June 2014",
        "Mon 9th Jun 2014",
        "9 June 2014",
        "June 9, 2014",
        "Monday, June 9, 2014",
        "2014-06-09",
        "## 9 June 2014 ##",
        "9 JUNE 2014:",
    ],
)
def test_date_line_forms(date_line: str) -> None:
    text = f"Blog\n\n{date_line}\n\n21:10 GMT: One.\n\n21:20 GMT: Two.\n"
    assert parse(text) == [(utc(2014, 6, 9, 21, 10), "One."), (utc(2014, 6, 9, 21, 20), "Two.")]


def test_date_line_without_year_takes_it_from_another_date_line() -> None:
    text = "10 June\n08:00 - Later.\n\n9 June 2014\n21:00 - Earlier.\n"
    assert parse(text) == [
        (utc(2014, 6, 9, 21), "Earlier."),
        (utc(2014, 6, 10, 8), "Later."),
    ]


def test_date_line_without_year_takes_it_from_date_option() -> None:
    text = "9 June\n21:00 - One.\n21:30 - Two.\n"
    assert parse(text, date=date(2015, 1, 1))[0] == (utc(2015, 6, 9, 21), "One.")


def test_date_line_beats_date_option() -> None:
    text = "9 June 2014\n21:00 - One.\n21:30 - Two.\n"
    assert parse(text, date=date(2015, 1, 1))[0] == (utc(2014, 6, 9, 21), "One.")


def test_date_option_dates_entries_before_any_date_line() -> None:
    text = "21:00 - One.\n\n10 June 2014\n\n09:00 - Two.\n"
    assert parse(text, date=date(2014, 6, 9)) == [
        (utc(2014, 6, 9, 21), "One."),
        (utc(2014, 6, 10, 9), "Two."),
    ]


# Direction and midnight.


def test_oldest_first_rolls_over_midnight() -> None:
    text = "23:50 - Before.\n00:10 - After.\n"
    assert parse(text, date=date(2014, 6, 9)) == [
        (utc(2014, 6, 9, 23, 50), "Before."),
        (utc(2014, 6, 10, 0, 10), "After."),
    ]


def test_newest_first_rolls_back_over_midnight() -> None:
    text = "00:10 - After.\n23:50 - Before.\n"
    assert parse(text, date=date(2014, 6, 10)) == [
        (utc(2014, 6, 9, 23, 50), "Before."),
        (utc(2014, 6, 10, 0, 10), "After."),
    ]


def test_newest_first_is_detected_from_the_times() -> None:
    text = "15:00 - Third.\n14:00 - Second.\n13:00 - First.\n"
    assert parse(text, date=date(2014, 6, 9)) == [
        (utc(2014, 6, 9, 13), "First."),
        (utc(2014, 6, 9, 14), "Second."),
        (utc(2014, 6, 9, 15), "Third."),
    ]


def test_newest_first_is_detected_from_date_lines() -> None:
    text = "10 June 2014\n01:00 - Later.\n\n9 June 2014\n23:00 - Earlier.\n"
    assert parse(text) == [(utc(2014, 6, 9, 23), "Earlier."), (utc(2014, 6, 10, 1), "Later.")]


def test_overnight_gap_counts_as_a_new_day() -> None:
    text = "17:00 - Evening.\n18:30 - Late.\n08:00 - Next morning.\n09:00 - Later.\n"
    assert [t for t, _ in parse(text, date=date(2014, 6, 9))] == [
        utc(2014, 6, 9, 17),
        utc(2014, 6, 9, 18, 30),
        utc(2014, 6, 10, 8),
        utc(2014, 6, 10, 9),
    ]


def test_slightly_late_post_stays_on_the_same_day() -> None:
    text = "14:00 - A.\n13:55 - B.\n14:10 - C.\n"
    assert parse(text, date=date(2014, 6, 9)) == [
        (utc(2014, 6, 9, 13, 55), "B."),
        (utc(2014, 6, 9, 14), "A."),
        (utc(2014, 6, 9, 14, 10), "C."),
    ]


def test_local_times_convert_to_utc() -> None:
    text = "02:30 - Early in Doha.\n03:00 - Later.\n"
    assert parse(text, date=date(2014, 6, 9), timezone=QATAR)[0] == (
        utc(2014, 6, 8, 23, 30),
        "Early in Doha.",
    )


# Entry text.


def test_headline_needs_its_own_paragraph_and_more_text() -> None:
    text = (
        "10:00 - Talks collapse in Geneva\n\nDelegates walked out after two hours.\n\n"
        "10:05 - Talks collapse in Geneva\nafter delegates walked out.\n\n"
        "10:10 - Talks collapse in Geneva\n\n"
        "10:15 - Talks have collapsed in Geneva.\n\nDelegates walked out.\n\n"
        "10:20 - delegates say talks are over\n\nNo date for more.\n\n"
        "10:25 - Is this the end of the process?\n\nNobody knows.\n"
    )
    feed = timestamped.parse(text, ImportOptions(date=date(2014, 6, 9)))
    assert [(p.headline, p.body) for p in feed.posts] == [
        ("Talks collapse in Geneva", "Delegates walked out after two hours."),
        (None, "Talks collapse in Geneva after delegates walked out."),
        (None, "Talks collapse in Geneva"),
        (None, "Talks have collapsed in Geneva.\n\nDelegates walked out."),
        (None, "delegates say talks are over\n\nNo date for more."),
        (None, "Is this the end of the process?\n\nNobody knows."),
    ]


def test_long_first_line_is_not_a_headline() -> None:
    first = "A" + " very" * 20 + " long opening line without a full stop"
    text = f"10:00 - {first}\n\nMore text.\n"
    feed = timestamped.parse(text, ImportOptions(date=date(2014, 6, 9)))
    assert feed.posts[0].headline is None
    assert feed.posts[0].body == f"{first}\n\nMore text."


def test_headline_with_only_a_credit_after_it_is_the_body() -> None:
    text = "10:00 - Talks collapse in Geneva\n\n[Reuters]\n\n10:05 - More.\n"
    post = timestamped.parse(text, ImportOptions(date=date(2014, 6, 9))).posts[0]
    assert (post.headline, post.body, post.source) == (None, "Talks collapse in Geneva", "Reuters")


def test_empty_entries_are_dropped() -> None:
    text = "10:00 -\n\n10:05 - Something.\n10:10 -   \n"
    assert parse(text, date=date(2014, 6, 9)) == [(utc(2014, 6, 9, 10, 5), "Something.")]


def test_header_date_lines_are_not_description() -> None:
    text = "Blog title\nFirst line of intro\n\nMonday, 9 June 2014\n\nSecond para.\n\n10:00 - A.\n"
    feed = timestamped.parse(text, ImportOptions())
    assert feed.title == "Blog title"
    assert feed.description == "First line of intro\n\nSecond para."


@pytest.mark.parametrize(
    ("source", "title", "feed_id"),
    [("archive/kabul-live.txt", "kabul-live", "kabul-live"), ("<stdin>", "Live blog", "live-blog")],
)
def test_missing_title_falls_back(source: str, title: str, feed_id: str) -> None:
    feed = timestamped.parse(
        "10:00 - A.\n10:05 - B.\n", ImportOptions(source, date=date(2014, 1, 1))
    )
    assert (feed.title, feed.id, feed.description) == (title, feed_id, None)


def test_text_without_entries_has_no_posts() -> None:
    feed = timestamped.parse("Just a title\n\nAnd some prose.\n", ImportOptions())
    assert feed.posts == ()
    with pytest.raises(ArchiveError, match=r"no posts found \(read as timestamped\)"):
        import_text("Just a title\n", ImportOptions(), format="timestamped")


# Errors.


def test_time_only_entries_need_a_date() -> None:
    text = "Blog\n\n21:10 GMT: One.\n21:20 GMT: Two.\n"
    with pytest.raises(ArchiveError) as caught:
        timestamped.parse(text, ImportOptions())
    assert caught.value.line == 3
    assert caught.value.message == "time-only entries need a date: pass --date YYYY-MM-DD"
    with pytest.raises(ArchiveError) as caught:
        import_text(text, ImportOptions(source="blog.txt"), format="timestamped")
    assert str(caught.value) == "blog.txt:3: time-only entries need a date: pass --date YYYY-MM-DD"


@pytest.mark.parametrize(
    ("stamp", "shown"),
    [
        ("25:61 GMT:", "25:61 GMT"),
        ("2561 GMT:", "2561 GMT"),
        ("21:75 -", "21:75"),
        ("13.05pm:", "13.05pm"),
        ("0:10 am -", "0:10 am"),
    ],
)
def test_impossible_time_names_its_line(stamp: str, shown: str) -> None:
    text = f"Blog\n9 June 2014\n21:00 GMT: Fine.\n\n{stamp} Not fine.\n"
    with pytest.raises(ArchiveError) as caught:
        timestamped.parse(text, ImportOptions())
    assert caught.value.line == 5
    assert caught.value.message == f"impossible time {shown!r}"


def test_impossible_date_names_its_line() -> None:
    text = "Blog\n\n31 June 2014\n\n21:00 GMT: One.\n"
    with pytest.raises(ArchiveError) as caught:
        import_text(text, ImportOptions(source="b.txt"), format="timestamped")
    assert str(caught.value) == "b.txt:3: impossible date 31/6/2014"


def test_yearless_date_without_any_year_names_its_line() -> None:
    text = "Blog\n\n9 June\n\n21:00 GMT: One.\n"
    with pytest.raises(ArchiveError) as caught:
        timestamped.parse(text, ImportOptions())
    assert caught.value.line == 3


# Detection.


def test_sniff() -> None:
    assert timestamped.sniff(fixture("timestamped-oldest-first.txt"))
    assert timestamped.sniff(fixture("timestamped-newest-first.txt"))
    assert timestamped.sniff("2110 GMT: only one entry")
    assert not timestamped.sniff(fixture("liveblog.rss"))
    assert not timestamped.sniff("Title\n\nSome prose.\n\n21:10 - one stamp.\n\nMore prose.\n")
    assert not timestamped.sniff("The meeting is at 21:10 tonight.\nAnd 22:00 tomorrow.\n")
    assert not timestamped.sniff("")


def test_bundled_scribblelive_sample_is_not_timestamped() -> None:
    sample = Path(__file__).parent.parent / "simulator" / "data" / "aljazeera-iraq-2014-06.txt"
    assert not timestamped.sniff(sample.read_text(encoding="utf-8"))


def test_windows_line_endings() -> None:
    text = "Blog\r\n\r\n9 June 2014\r\n21:10\r\nFirst.\r\n\r\n21:20 - Second.\r\n"
    assert timestamped.sniff(text)
    assert parse(text) == [
        (utc(2014, 6, 9, 21, 10), "First."),
        (utc(2014, 6, 9, 21, 20), "Second."),
    ]


def test_dates_beyond_the_calendar_name_their_line() -> None:
    text = "9999-12-31\n23:00 - A.\n00:10 - B.\n00:20 - C.\n"
    with pytest.raises(ArchiveError) as caught:
        timestamped.parse(text, ImportOptions())
    assert (caught.value.line, caught.value.message) == (3, "date out of range")
