"""The canonical archive format: round trips, the JSON Schema, the variants, every problem found."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

import simulator
from simulator.core import archive
from simulator.core.importers import ImportOptions, import_text
from simulator.core.model import ArchiveError, Feed, Media, Post, TimeSource

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = Path(simulator.__file__).parent / "data" / "archive.schema.json"
DOCS_SCHEMA_PATH = ROOT / "docs" / "archive.schema.json"
SRC = "blog.jsonl"
T = "2014-06-25T06:52:29Z"
T0 = datetime(2014, 6, 25, 6, 52, 29, tzinfo=UTC)


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def jsonl(*records: Any) -> str:
    """Lines of an archive: dicts are encoded, strings written as they are."""
    return "".join((r if isinstance(r, str) else orjson.dumps(r).decode()) + "\n" for r in records)


HEADER = {"type": "feed", "version": 1, "id": "f", "title": "Feed"}


def post(post_id: Any = "a", **fields: Any) -> dict[str, Any]:
    return {"type": "post", "id": post_id, "body": "text", "published_at": T, **fields}


def problems(text: str) -> list[str]:
    return [str(p) for p in archive.check(text, SRC)[1]]


# Round trip


def test_round_trip_of_the_bundled_archive(bundled: Feed) -> None:
    data = archive.dumps(bundled)
    loaded = archive.loads(data.decode(), SRC)
    assert loaded.posts == bundled.posts
    assert loaded == bundled
    assert archive.dumps(loaded) == data


def test_round_trip_through_the_importer(bundled: Feed) -> None:
    data = archive.dumps(bundled)
    again = import_text(data.decode(), ImportOptions(source=SRC, feed_id="other"))
    assert again.posts == bundled.posts
    assert again.id == bundled.id  # the header's id wins over the file name


def test_dumped_shape(bundled: Feed) -> None:
    lines = archive.dumps(bundled).decode().splitlines()
    assert len(lines) == 43
    header = json.loads(lines[0])
    assert header["type"] == "feed" and header["version"] == 1  # no changes: still version 1
    assert header["title"] == "Iraq Blog"
    first = json.loads(lines[1])
    assert list(first) == ["type", *archive.POST_FIELDS[:-1]]  # key_event only when true
    assert "key_event" not in first  # written only when true
    assert first["published_at"] == "2014-06-24T17:52:29Z"
    assert first["time_source"] == "extrapolated"
    assert "اثار القصف" in archive.dumps(bundled).decode()  # UTF-8, not \u escapes


_text = st.text(max_size=40)
_opt = st.one_of(st.none(), _text)
_media = st.builds(
    Media,
    kind=st.sampled_from(["youtube", "instagram", "image", "gallery", "link"]),
    title=_opt,
    caption=_opt,
    credit=_opt,
    url=_opt,
    count=st.one_of(st.none(), st.integers(min_value=0, max_value=1000)),
)
_post = st.builds(
    Post,
    id=st.just(""),
    body=_text,
    published_at=st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.just(UTC)
    ),
    time_source=st.sampled_from(list(TimeSource)),
    headline=_opt,
    author=_opt,
    editor=_opt,
    source=_opt,
    media=st.lists(_media, max_size=3).map(tuple),
    extra=st.dictionaries(st.sampled_from(["url", "tags", "lang"]), _opt, max_size=2),
)


@given(st.lists(_post, min_size=1, max_size=5), _text.filter(str.strip))
def test_round_trip_of_any_posts(posts: list[Post], title: str) -> None:
    feed = Feed(
        id="f",
        title=title,
        posts=tuple(replace(p, id=f"p{i}") for i, p in enumerate(posts)),
    )
    data = archive.dumps(feed)
    loaded = archive.loads(data.decode(), SRC)
    assert loaded == feed
    assert archive.dumps(loaded) == data


# The JSON Schema


def test_schema_copies_are_identical() -> None:
    assert DOCS_SCHEMA_PATH.read_bytes() == SCHEMA_PATH.read_bytes()


def test_every_emitted_line_validates(bundled: Feed, validator: Any) -> None:
    for number, line in enumerate(archive.dumps(bundled).decode().splitlines(), 1):
        errors = [e.message for e in validator.iter_errors(json.loads(line))]
        assert errors == [], f"line {number}: {errors}"


@pytest.mark.parametrize(
    "record",
    [
        {"type": "post", "id": "a", "published_at": T, "time_source": "explicit"},
        {**post(time_source="explicit"), "published_at": "yesterday"},
        {**post(time_source="explicit"), "published_at": None},
        post(time_source="guessed"),
        post(),  # no time_source
        post(time_source="explicit", media="not an array"),
        post(time_source="explicit", media=[{"title": "no kind"}]),
        post(time_source="explicit", media=[{"kind": "gallery", "count": "3"}]),
        post(time_source="explicit", media=[{"kind": "gallery", "count": -1}]),
        post(time_source="explicit", media=[{"kind": "gallery", "count": 10_001}]),
        post(time_source="explicit", media=[{"kind": "image"}] * 101),
        post(time_source="explicit", key_event="yes"),
        post(time_source="explicit", key_event=1),
        {**post(time_source="explicit"), "id": ""},
        {**post(time_source="explicit"), "type": "comment"},
        {"type": "feed", "version": 3, "title": "Feed"},
        {"type": "feed", "version": 1},
        ["not", "an", "object"],
    ],
)
def test_schema_rejects(record: Any, validator: Any) -> None:
    assert not validator.is_valid(record)


def test_schema_allows_extra_fields(validator: Any) -> None:
    assert validator.is_valid({**HEADER, "publisher": "Al Jazeera"})
    assert validator.is_valid(post(time_source="interpolated", lang="ar", tags=["x"]))


# Variants


def test_json_document_variant(bundled: Feed) -> None:
    lines = [json.loads(line) for line in archive.dumps(bundled).decode().splitlines()]
    doc = {"feed": lines[0], "posts": lines[1:]}
    for option in (0, orjson.OPT_INDENT_2):
        loaded = archive.loads(orjson.dumps(doc, option=option).decode(), "blog.json")
        assert loaded == bundled


def test_plain_array_variant(bundled: Feed) -> None:
    records = [archive.post_record(p) for p in bundled.posts]
    loaded = archive.loads(orjson.dumps(records, option=orjson.OPT_INDENT_2).decode(), "x.json")
    assert loaded.posts == bundled.posts
    assert (loaded.id, loaded.title, loaded.timezone) == ("x-json", "x.json", "UTC")


def test_single_line_files() -> None:
    loaded = archive.loads(jsonl(post()), SRC)  # one post, no header
    assert [p.id for p in loaded.posts] == ["a"]
    assert problems(jsonl(HEADER)) == [f"{SRC}:1: no posts"]
    assert problems('{"feed": {"title": "t"}, "posts": []}') == [f"{SRC}:1: no posts"]


def test_missing_time_source_reads_as_explicit_and_extras_are_kept() -> None:
    loaded = archive.loads(jsonl(HEADER, post(lang="ar")), SRC)
    only = loaded.posts[0]
    assert only.time_source is TimeSource.EXPLICIT
    assert only.published_at == datetime(2014, 6, 25, 6, 52, 29, tzinfo=UTC)
    assert only.extra == {"lang": "ar"}
    assert b'"lang":"ar"' in archive.dumps(loaded)


def test_blank_lines_are_skipped_and_line_numbers_still_count() -> None:
    text = jsonl(HEADER, "", post("a"), "   ", post("b", body=None))
    assert problems(text) == [f"{SRC}:5: $.body: required string is missing"]


# problems(): every problem, with line and JSON path


def test_every_problem_with_line_and_path() -> None:
    text = jsonl(
        HEADER,
        post("a"),
        {"type": "post", "id": "b", "published_at": T},
        post("c", published_at="yesterday"),
        post("d", time_source="guessed"),
        post("e", media="photo.jpg"),
        post("a"),
        post("f", media=[{"title": "no kind"}, {"kind": "gallery", "count": "3"}]),
        post("g", headline=5),
        post(None),
        post("h", published_at=None),
        [1, 2],
    )
    assert problems(text) == [
        f"{SRC}:3: $.body: required string is missing",
        f"{SRC}:4: $.published_at: not an ISO-8601 time: 'yesterday'",
        f"{SRC}:5: $.time_source: expected one of explicit, interpolated, extrapolated, "
        "got 'guessed'",
        f"{SRC}:6: $.media: expected an array, got a string",
        f"{SRC}:7: $.id: duplicate id 'a' (first on line 2)",
        f"{SRC}:8: $.media[0]: expected an object with a 'kind'",
        f"{SRC}:8: $.media[1].count: expected an integer from 0 to 10000",
        f"{SRC}:9: $.headline: expected a string, got a number",
        f"{SRC}:10: $.id: required string is missing or empty",
        f"{SRC}:11: $.published_at: required time is missing",
        f"{SRC}:12: $: expected a JSON object",
    ]
    with pytest.raises(ArchiveError) as caught:
        archive.loads(text, SRC)
    assert (caught.value.source, caught.value.line) == (SRC, 3)


def test_header_problems() -> None:
    text = jsonl({"type": "feed", "version": 1, "title": "", "timezone": 3}, post())
    assert problems(text) == [
        f"{SRC}:1: $.title: required string is missing or empty",
        f"{SRC}:1: $.timezone: expected a string, got a number",
    ]


def test_one_problem_per_bad_field() -> None:
    assert problems(jsonl(HEADER, post(5, body=7))) == [
        f"{SRC}:2: $.id: expected a string, got a number",
        f"{SRC}:2: $.body: expected a string, got a number",
    ]


def test_a_second_header_is_a_problem() -> None:
    assert problems(jsonl(HEADER, post(), HEADER)) == [
        f"{SRC}:3: $.type: expected 'post', got 'feed'",
        f"{SRC}:3: $.body: required string is missing",
        f"{SRC}:3: $.published_at: required time is missing",
    ]


def test_document_problems_name_json_paths() -> None:
    doc = {"feed": {"title": "t"}, "posts": [post("a"), post("a", media={})]}
    assert problems(orjson.dumps(doc).decode()) == [
        f"{SRC}:1: $.posts[1].media: expected an array, got an object",
        f"{SRC}:1: $.posts[1].id: duplicate id 'a' (first on line 1)",
    ]
    assert problems(orjson.dumps([post("a"), "b"]).decode()) == [
        f"{SRC}:1: $[1]: expected a JSON object"
    ]


def test_invalid_json_names_its_line() -> None:
    text = jsonl(HEADER, post("a"), '{"type": "post", "id": "b", "body": ', post("c"))
    found = list(archive.check(text, SRC)[1])
    assert len(found) == 1
    assert (found[0].source, found[0].line) == (SRC, 3)
    assert str(found[0]).startswith(f"{SRC}:3: invalid JSON: ")


def test_invalid_json_in_a_document_names_its_line() -> None:
    text = '{\n  "feed": {"title": "t"},\n  "posts": [\n    {"id": "a",, }\n  ]\n}\n'
    [problem] = archive.check(text, SRC)[1]
    assert problem.line == 4
    assert "invalid JSON" in problem.message


def test_truncated_document() -> None:
    [problem] = archive.check('{"type":"feed"', SRC)[1]
    assert str(problem).startswith(f"{SRC}:1: invalid JSON")


@pytest.mark.parametrize("text", ["", "\n", "   \n\t\n"])
def test_empty_file(text: str) -> None:
    assert problems(text) == [f"{SRC}:1: empty file"]


@pytest.mark.parametrize("text", [jsonl(HEADER), "[]", '{"posts": []}'])
def test_no_posts(text: str) -> None:
    assert problems(text) == [f"{SRC}:1: no posts"]
    with pytest.raises(ArchiveError, match="no posts"):
        archive.loads(text, SRC)


def test_not_an_archive_document() -> None:
    assert problems('{"feed": {"title": "t"}}') == [
        f"{SRC}:1: $: expected an array of posts or {{feed, posts}}"
    ]


def test_out_of_range_time_is_a_problem_not_a_crash() -> None:
    text = jsonl(post(published_at="9999-12-31T23:59:59-01:00"))
    assert problems(text) == [
        f"{SRC}:1: $.published_at: not an ISO-8601 time: '9999-12-31T23:59:59-01:00'"
    ]


def test_boolean_is_not_a_count() -> None:
    text = jsonl(post(media=[{"kind": "gallery", "count": True}]))
    assert problems(text) == [f"{SRC}:1: $.media[0].count: expected an integer from 0 to 10000"]


def test_unicode_line_separators_inside_strings() -> None:
    # orjson leaves U+2028, U+2029 and U+0085 unescaped: only "\n" may end a JSON Lines record.
    body = "one\u2028two\u2029three\x85four"
    feed = Feed(id="f", title="T\u2028", posts=(Post(id="a", body=body, published_at=T0),))
    loaded = archive.loads(archive.dumps(feed).decode(), SRC)
    assert loaded.title == "T\u2028"
    assert loaded.posts[0].body == body


# The format's documentation


def test_documented_example_is_real_and_valid(bundled: Feed, validator: Any) -> None:
    doc = (ROOT / "docs" / "archive-format.md").read_text(encoding="utf-8")
    example = doc.split("```jsonl\n", 1)[1].split("```", 1)[0]
    lines = example.splitlines()
    assert len(lines) == 3
    emitted = archive.dumps(bundled).decode().splitlines()
    assert all(line in emitted for line in lines)
    for line in lines:
        assert validator.is_valid(json.loads(line))
    assert len(archive.loads(example, SRC).posts) == 2


def test_documented_json_layouts_load() -> None:
    doc = (ROOT / "docs" / "archive-format.md").read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in doc.split("```json\n")[1:]]
    assert len(blocks) == 2
    for block in blocks:
        [loaded] = archive.loads(block, "my-blog.json").posts
        assert (loaded.id, loaded.body, loaded.time_source) == ("a", "First.", TimeSource.EXPLICIT)


def test_key_event_round_trip_and_checks(validator: Any) -> None:
    flagged = {**post(time_source="explicit"), "key_event": True}
    assert validator.is_valid(flagged)
    assert validator.is_valid({**post(time_source="explicit"), "key_event": None})
    feed = archive.loads(json.dumps(flagged), SRC)
    assert feed.posts[0].key_event is True
    assert archive.post_record(feed.posts[0])["key_event"] is True
    assert archive.loads(archive.dumps(feed).decode(), SRC).posts == feed.posts
    plain = archive.loads(json.dumps({**flagged, "key_event": None}), SRC)
    assert plain.posts[0].key_event is False
    assert "key_event" not in archive.post_record(plain.posts[0])
    problems = [str(p) for p in archive.check(json.dumps({**flagged, "key_event": "yes"}), SRC)[1]]
    assert problems == [f"{SRC}:1: $.key_event: expected true or false, got a string"]
