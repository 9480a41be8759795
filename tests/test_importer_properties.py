"""Whatever text arrives, importing it gives a feed or an ``ArchiveError``, never a crash."""

import json
from datetime import UTC, date
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from simulator.core import archive
from simulator.core.importers import FORMATS, ImportOptions, import_text, timestamped
from simulator.core.importers.credits import split_credit
from simulator.core.model import ArchiveError, Feed, TimeSource

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

words = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "Zs", "S")), max_size=40
)
hours = st.integers(min_value=0, max_value=29)
minutes = st.integers(min_value=0, max_value=65)

time_prefixes = st.one_of(
    st.builds(lambda h, m: f"{h:02d}{m:02d} GMT:", hours, minutes),
    st.builds(lambda h, m: f"{h}:{m:02d} GMT -", hours, minutes),
    st.builds(lambda h, m, ap: f"{h}.{m:02d}{ap}:", hours, minutes, st.sampled_from(["am", "pm"])),
    st.builds(lambda h, m: f"{h}:{m:02d} am -", hours, minutes),
    st.builds(lambda h, m: f"{h:02d}:{m:02d} -", hours, minutes),
    st.builds(lambda h, m: f"{h:02d}:{m:02d}:", hours, minutes),
)
date_lines = st.one_of(
    st.sampled_from(
        [
            "Monday, 9 June 2014",
            "June 9, 2014",
            "2014-06-09",
            "9 June",
            "31 June 2014",
            "Feb 30",
            "9999-12-31",
            "0001-01-01",
        ]
    ),
    st.builds(lambda d, m: f"{d} March", st.integers(0, 40), st.integers()).map(str),
    st.builds(lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}", st.integers(0, 9999), hours, hours),
)
bylines = st.builds(
    lambda who, editor: f"    by {who} edited by {editor} 6/26/2014 8:52:36 AM", words, words
)
credits = st.sampled_from(["[AP]", "[Reuters]\u00a0", "(AFP)", "[Associated Press]", "[ISIL]"])
lines = st.one_of(
    words,
    st.builds(lambda prefix, text: f"{prefix} {text}", time_prefixes, words),
    date_lines,
    st.builds(lambda text: f"  \u2022 {text}", words),
    bylines,
    credits,
    st.builds(lambda text, credit: f"{text} {credit}", words, credits),
    st.just(""),
    st.just("    1 of 3"),
)
documents = st.lists(lines, max_size=30).map("\n".join)
xmlish = st.builds(
    lambda root, body: f"<{root}>{body}</{root}>",
    st.sampled_from(["rss", "feed", 'rss version="2.0"', "rdf:RDF"]),
    st.lists(
        st.one_of(
            st.sampled_from(
                ["<channel>", "</channel>", "<item>", "</item>", "<entry>", "</entry>"]
            ),
            st.builds(
                lambda tag, text: f"<{tag}>{text}</{tag}>",
                st.sampled_from(
                    ["title", "description", "pubDate", "guid", "link", "summary", "updated"]
                ),
                words,
            ),
            words,
        ),
        max_size=20,
    ).map("".join),
)
options = st.builds(
    ImportOptions,
    timezone=st.sampled_from([UTC, ZoneInfo("Asia/Qatar"), ZoneInfo("America/New_York")]),
    # timing.infer's start-of-day for undated posts overflows at date.min east of UTC.
    date=st.one_of(st.none(), st.dates(min_value=date(1, 1, 2), max_value=date(9999, 12, 30))),
)
any_text = st.one_of(st.text(), documents, xmlish)


def imports_cleanly(text: str, opts: ImportOptions, format: str | None) -> None:
    try:
        feed = import_text(text, opts, format)
    except ArchiveError:
        return
    assert isinstance(feed, Feed)
    assert feed.posts
    assert all(post.published_at is not None for post in feed.posts)


@PROPERTY
@given(any_text, options)
def test_auto_detect_gives_a_feed_or_an_archive_error(text: str, opts: ImportOptions) -> None:
    imports_cleanly(text, opts, None)


@PROPERTY
@given(any_text, options, st.sampled_from(sorted(FORMATS)))
def test_every_format_gives_a_feed_or_an_archive_error(
    text: str, opts: ImportOptions, name: str
) -> None:
    imports_cleanly(text, opts, name)


@PROPERTY
@given(any_text, options, st.sampled_from(sorted(FORMATS)))
def test_every_parser_gives_a_feed_or_an_archive_error(
    text: str, opts: ImportOptions, name: str
) -> None:
    sniff, parse = FORMATS[name]
    assert isinstance(sniff(text), bool)
    try:
        feed = parse(text, opts)
    except ArchiveError:
        return
    assert isinstance(feed, Feed)


@PROPERTY
@given(documents, options)
def test_timestamped_posts_are_explicit_and_chronological(text: str, opts: ImportOptions) -> None:
    try:
        feed = timestamped.parse(text, opts)
    except ArchiveError as exc:
        assert exc.line is None or exc.line >= 1
        return
    times = [post.timed for post in feed.posts]
    assert times == sorted(times)
    assert all(t.tzinfo is UTC for t in times)
    assert all(post.time_source is TimeSource.EXPLICIT for post in feed.posts)
    assert all(post.body for post in feed.posts)


@PROPERTY
@given(st.one_of(st.text(), documents))
def test_split_credit_only_removes_a_credit(text: str) -> None:
    body, source = split_credit(text)
    if source is None:
        assert body == text
    else:
        assert source
        assert len(body) < len(text)


# Hostile canonical archives (issue #12): huge lines, deep nesting, numbers past 64 bits, NaN,
# wrong types. Reading gives a feed that can be written back out, or an ArchiveError; never
# another exception (orjson writes only 254 levels and 64-bit integers).

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
deep = st.integers(min_value=1, max_value=1100).map(lambda n: "[" * n + "1" + "]" * n)
long_text = st.integers(min_value=0, max_value=(1 << 20) + 100).map(lambda n: '"' + "x" * n + '"')
raw_values = st.one_of(
    json_values.map(lambda value: json.dumps(value, allow_nan=True)),
    deep,
    long_text,
    st.sampled_from(["NaN", "-Infinity", "1e309", "18446744073709551616", "-0", "{", "[]"]),
)
field_names = st.sampled_from(
    ["id", "body", "headline", "published_at", "time_source", "media", "key_event", "extra"]
)
records = st.one_of(
    st.builds(
        lambda fields: "{" + ",".join(f'"{k}":{v}' for k, v in fields.items()) + "}",
        st.dictionaries(field_names, raw_values, max_size=5),
    ),
    st.builds(
        lambda value, count: (
            json.dumps({"id": "a", "body": "b", "published_at": "2014-06-25T06:52:29Z"})[:-1]
            + f',"media":[{{"kind":"gallery","count":{value}}}]' * count
            + "}"
        ),
        raw_values,
        st.integers(0, 1),
    ),
    raw_values,
)
hostile_archives = st.lists(records, min_size=1, max_size=4).map("\n".join)


FOUND = '{"id":"a","body":"b","published_at":"2014-06-25T06:52:29Z","%s":%s}'


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_archives)
@example(FOUND % ("x", "[" * 300 + "]" * 300))  # was a traceback when written: orjson's 254 levels
@example('{"published_at":' + "[" * 200 + "1" + "]" * 200 + "}")  # was a 400-byte error line
@example(FOUND % ("media", '[{"kind":"gallery","count":18446744073709551615}]'))
def test_a_hostile_canonical_archive_reads_to_a_writable_feed_or_an_error(text: str) -> None:
    try:
        feed = archive.loads(text, "hostile.jsonl")
    except ArchiveError as exc:
        assert "\n" not in str(exc)
        assert len(str(exc)) < 400
        return
    data = archive.dumps(feed)
    assert archive.loads(data.decode(), "again.jsonl") == feed
    checked, found = archive.check(text, "hostile.jsonl")
    assert (checked, found) == (feed, [])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_archives, st.sampled_from(sorted(FORMATS)))
def test_hostile_json_through_every_importer(text: str, name: str) -> None:
    imports_cleanly(text, ImportOptions(source="hostile"), name)
