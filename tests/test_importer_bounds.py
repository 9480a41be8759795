"""Archives that can't exhaust memory (issue #12, F12).

A line, a JSON document and each field of a post have a bound, checked before the line is parsed
(or a title slugged), and refused with one line naming FILE:LINE; ``validate`` reads through the
same bounded path as ``import``; memory stays within a small multiple of the file's size.
Commands run in-process through ``simulator.cli.main``, as a user would type them.
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest

from simulator import cli
from simulator.core import archive

MIB = 1 << 20
T = "2014-06-25T06:52:29Z"
HEADER = {"type": "feed", "version": 1, "id": "f", "title": "Feed"}
SRC = "blog.jsonl"
COMMANDS = ["import", "inspect", "validate"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str, starts: str, prefix: str = "livesim: ") -> str:
    """The one error line, which must start with ``livesim: `` and the place (``validate``
    lists a canonical archive's problems as bare ``FILE:LINE: message`` lines)."""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err[:2000]
    assert lines[0].startswith(prefix + starts), lines[0]
    assert len(lines[0]) < 400
    return lines[0]


def post(post_id: Any = "a", **fields: Any) -> dict[str, Any]:
    return {"type": "post", "id": post_id, "body": "text", "published_at": T, **fields}


def jsonl(*records: Any) -> bytes:
    return b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records)


def problems(data: bytes | str) -> list[str]:
    return [str(p) for p in archive.check(data, SRC)[1]]


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


# F12: a 300 MB single-line .txt ended in a MemoryError traceback in slug(title)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_single_line_text_file_is_refused_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    path = tmp_path / "one-line.txt"
    path.write_text("word " * 600_000)  # 3 MB and no line break: no title, no post
    code, out, err = run(capsys, command, str(path))
    assert (code, out) == (1, "")
    line = one_line(err, f"{path}:1: ")
    assert "3000000 characters" in line
    assert f"at most {MIB}" in line


def test_a_long_line_in_a_text_export_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "blog.txt"
    lines = ["Blog", "", "  \u2022 First post.", "  \u2022 " + "x" * MIB, "  \u2022 Third."]
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "import", str(path))
    assert code == 1
    assert f"line is {MIB + 4} characters long, at most {MIB}" in one_line(err, f"{path}:4: ")


# F12: validate of a 200 MB single-line JSONL segfaulted (import: a clean error)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_single_line_jsonl_is_refused_before_it_is_parsed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    path = tmp_path / "one-line.jsonl"
    path.write_bytes(jsonl(post(body="x" * 3_000_000)))
    code, out, err = run(capsys, command, str(path))
    assert (code, out) == (1, "")
    line = one_line(err, f"{path}:1: ", "" if command == "validate" else "livesim: ")
    assert f"{path.stat().st_size - 1} bytes" in line
    assert f"at most {MIB}" in line


def test_validate_and_import_report_the_same_long_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "blog.jsonl"
    path.write_bytes(jsonl(HEADER, post("a"), post("b", body="x" * (MIB + 1)), post("c")))
    _, _, imported = run(capsys, "import", str(path))
    code, _, validated = run(capsys, "validate", str(path))
    assert code == 1
    assert validated == imported.removeprefix("livesim: ")
    assert validated.startswith(f"{path}:3: line is {MIB + 73} bytes")


def test_validate_goes_on_after_a_long_line(tmp_path: Path) -> None:
    data = jsonl(HEADER, b" " * (MIB + 1), post("a", body=None))
    assert problems(data) == [
        f"{SRC}:2: line is {MIB + 1} bytes long, at most {MIB} (1 MiB): a line holds one post",
        f"{SRC}:3: $.body: required string is missing",
    ]


def test_a_line_at_the_bound_is_read(tmp_path: Path) -> None:
    record = orjson.dumps(post())
    line = record[:-1] + b" " * (MIB - len(record)) + b"}"
    assert len(line) == MIB
    assert [p.id for p in archive.loads(line + b"\n", SRC).posts] == ["a"]


def test_a_json_document_over_its_bound_is_refused_before_parsing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"[" + b" " * (64 * MIB) + b"]")
    code, _, err = run(capsys, "validate", str(path))
    assert code == 1
    assert one_line(err, "", "") == (
        f"{path}:1: a JSON document of {64 * MIB + 2} bytes, at most {64 * MIB} (64 MiB): "
        "write a larger archive as JSON Lines, one post a line"
    )


# Fields of a post: bounds like the live posts' (simulator/live.py), a little wider


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"body": "x" * (256 * 1024 + 1)}, "$.body: 262145 bytes, at most 262144"),
        ({"headline": "é" * 2049}, "$.headline: 4098 bytes, at most 4096"),
        ({"author": "a" * 4097}, "$.author: 4097 bytes, at most 4096"),
        ({"id": "i" * 4097}, "$.id: 4097 bytes, at most 4096"),
        ({"media": [{"kind": "image"}] * 101}, "$.media: 101 items, at most 100"),
        (
            {"media": [{"kind": "gallery", "count": 2**64 - 1}]},
            "$.media[0].count: expected an integer from 0 to 10000",
        ),
        (
            {"media": [{"kind": "gallery", "count": -1}]},
            "$.media[0].count: expected an integer from 0 to 10000",
        ),
        (
            {"media": [{"kind": "image", "title": 5}]},
            "$.media[0].title: expected a string, got a number",
        ),
        ({"media": [{"kind": "x" * 4097}]}, "$.media[0].kind: 4097 bytes, at most 4096"),
        (
            {"media": [{"kind": "link", "url": "h" * 8193}]},
            "$.media[0].url: 8193 bytes, at most 8192",
        ),
        ({"tags": nested(33)}, "$.tags: nested 33 deep, at most 32"),
    ],
)
def test_a_field_over_its_bound_is_a_problem(fields: dict[str, Any], says: str) -> None:
    assert problems(jsonl(HEADER, post(**fields))) == [f"{SRC}:2: {says}"]


def test_fields_at_their_bounds_are_read() -> None:
    fields = {
        "body": "x" * 256 * 1024,
        "headline": "é" * 2048,
        "media": [{"kind": "gallery", "count": 10_000, "url": "h" * 8192}] * 1
        + [{"kind": "image", "caption": "c" * 4096}] * 99,
        "tags": nested(32),
    }
    [loaded] = archive.loads(jsonl(HEADER, post(**fields)), SRC).posts
    assert loaded.extra == {"tags": nested(32)}


def test_header_fields_over_their_bounds() -> None:
    header = {**HEADER, "title": "t" * 4097, "description": "d" * (64 * 1024 + 1)}
    assert problems(jsonl(header, post())) == [
        f"{SRC}:1: $.title: 4097 bytes, at most 4096",
        f"{SRC}:1: $.description: 65537 bytes, at most 65536",
    ]


def test_deep_extra_fields_are_refused_when_read_not_when_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """orjson reads 1024 levels but writes only 254: import wrote a traceback."""
    path = tmp_path / "deep.jsonl"
    path.write_bytes(jsonl(HEADER, json.dumps(post(x=nested(300))).encode()))
    code, out, err = run(capsys, "import", str(path))
    assert (code, out) == (1, "")
    assert "$.x: nested 300 deep, at most 32" in one_line(err, f"{path}:2: ")


def test_a_body_over_its_bound_in_a_text_export_names_its_post(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hard-wrapped lines are joined into one paragraph, line by line: a paragraph of many lines
    took time quadratic in its length, so joining stops at the bound."""
    path = tmp_path / "blog.txt"
    wrapped = ["    " + "word " * 200] * 300  # 300 KB, never ending a sentence
    path.write_text("\n".join(["Blog", "", "  \u2022 First.", "  \u2022 Second", *wrapped]) + "\n")
    code, _, err = run(capsys, "import", str(path))
    assert code == 1
    assert "body: more than 262144 bytes, at most 262144" in one_line(err, f"{path}:4: ")


def test_a_body_over_its_bound_in_paragraphs_names_its_post(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "blog.txt"
    paragraphs = [line for i in range(250) for line in (f"    Word {i:04d}. " * 100, "")]
    path.write_text("\n".join(["  \u2022 First.", "  \u2022 Second", *paragraphs]) + "\n")
    code, _, err = run(capsys, "import", str(path))
    assert code == 1
    assert "body: 374248 bytes, at most 262144" in one_line(err, f"{path}:2: ")


def test_a_long_byline_author_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "blog.txt"
    byline = "    by " + "A" * 5000 + " 6/25/2014 6:52:29 AM"
    path.write_text("\n".join(["  \u2022 One.", byline, "  \u2022 Two."]) + "\n")
    code, _, err = run(capsys, "import", str(path))
    assert code == 1
    assert "author: 5000 bytes, at most 4096" in one_line(err, f"{path}:1: ")


def test_a_long_timestamped_entry_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "blog.txt"
    entry = ["0915 GMT: Start of a long entry"] + ["word " * 200] * 300
    path.write_text("\n".join(["Blog", "", "0900 GMT: Hello.", *entry]) + "\n")
    code, _, err = run(capsys, "import", "--date", "2014-06-25", str(path))
    assert code == 1
    assert "body: 300" in one_line(err, f"{path}:4: ")


def test_validate_stops_listing_after_a_thousand_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(jsonl(HEADER, *[{"type": "post"}] * 2000))
    code, out, err = run(capsys, "validate", str(path))
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert len(lines) == 1001
    assert lines[-1] == f"{path}: stopped after 1000 problems"


# Memory: within a small multiple of the file's size (tracemalloc: Python's own allocations)


def tiny_jsonl(posts: int) -> bytes:
    return jsonl(HEADER, *(post(f"{i}", body="b") for i in range(posts)))


def tiny_text(posts: int) -> str:
    bullets = (f"  \u2022 Post number {i:06d} says something short about it." for i in range(posts))
    return "\n".join(["Tiny blog", "", *bullets]) + "\n"


def peak_of(command: list[str], capsys: pytest.CaptureFixture[str]) -> int:
    tracemalloc.start()
    try:
        code = cli.main(command)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    out, err = capsys.readouterr()
    assert code == 0, err
    return peak


@pytest.mark.parametrize("command", COMMANDS)
def test_tiny_jsonl_posts_take_a_small_multiple_of_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Was 60x for ``import`` (orjson keeps 4 KB behind every small ``dumps``) and a 1 GiB read
    buffer whatever the file's size."""
    path = tmp_path / "tiny.jsonl"
    path.write_bytes(tiny_jsonl(5_000))
    size = path.stat().st_size
    output = ["-o", str(tmp_path / "out.jsonl")] if command == "import" else []
    peak = peak_of([command, str(path), *output], capsys)
    assert peak < 7 * size, f"{peak / size:.1f}x the file"  # 5.7x: the posts, the file, ids


@pytest.mark.parametrize("command", COMMANDS)
def test_tiny_text_posts_take_a_small_multiple_of_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    path = tmp_path / "tiny.txt"
    path.write_text(tiny_text(5_000))
    size = path.stat().st_size
    output = ["-o", str(tmp_path / "out.jsonl")] if command == "import" else []
    peak = peak_of([command, str(path), *output], capsys)
    assert peak < 10 * size, f"{peak / size:.1f}x the file"  # 8.3x: posts of 340 B, lines of 56
