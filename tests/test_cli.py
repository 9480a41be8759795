"""The real ``livesim`` command, run as a subprocess: the happy path and every way to misuse it.

Subprocesses are slow to start, so the bad-input cases all run at once in one fixture and each
test only looks at its result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import simulator
from simulator.sources import BUNDLED

ROOT = Path(simulator.__file__).resolve().parent.parent
SEED = ROOT / "simulator" / "data" / BUNDLED


def livesim(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=60,
    )


def run_all(
    commands: dict[str, list[str]], cwd: Path
) -> dict[str, subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(livesim, *args, cwd=cwd) for key, args in commands.items()}
        return {key: future.result() for key, future in futures.items()}


# The happy path: import the seed, validate it, inspect it


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    (path / "seed.txt").write_bytes(SEED.read_bytes())
    result = livesim("import", "seed.txt", "-o", "blog.jsonl", cwd=path)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "blog.jsonl: 42 posts\n")
    return path


@pytest.fixture(scope="module")
def good(workdir: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    return run_all(
        {
            "stdout": ["import", "seed.txt"],
            "validate": ["validate", "blog.jsonl"],
            "validate-text": ["validate", "seed.txt"],
            "inspect": ["inspect", "blog.jsonl"],
            "inspect-json": ["inspect", "--json", "blog.jsonl"],
            "inspect-text-json": ["inspect", "--json", "seed.txt"],
            "qatar-json": ["inspect", "--json", "--timezone", "Asia/Qatar", "seed.txt"],
            "help": ["--help"],
            "help-import": ["import", "--help"],
            "help-inspect": ["inspect", "--help"],
            "help-validate": ["validate", "--help"],
            "help-serve": ["serve", "--help"],
        },
        workdir,
    )


def test_import_writes_canonical_json_lines(workdir: Path) -> None:
    lines = (workdir / "blog.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 43
    assert json.loads(lines[0])["type"] == "feed"
    assert all(json.loads(line)["type"] == "post" for line in lines[1:])


def test_import_to_stdout_is_the_same_bytes(
    workdir: Path, good: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = good["stdout"]
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (workdir / "blog.jsonl").read_text(encoding="utf-8")


def test_validate_ok(good: dict[str, subprocess.CompletedProcess[str]]) -> None:
    for key, name in (("validate", "blog.jsonl"), ("validate-text", "seed.txt")):
        result = good[key]
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout == f"{name}: valid, 42 posts\n"


def test_inspect_text(good: dict[str, subprocess.CompletedProcess[str]]) -> None:
    result = good["inspect"]
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert "posts     42" in lines
    assert "times     4 explicit, 13 interpolated, 25 extrapolated" in lines
    assert "span      2014-06-24T17:52:29Z .. 2014-06-27T12:30:06Z  (66h37m37s)" in lines


def test_inspect_json(good: dict[str, subprocess.CompletedProcess[str]]) -> None:
    result = good["inspect-json"]
    assert (result.returncode, result.stderr) == (0, "")
    summary = json.loads(result.stdout)
    assert isinstance(summary, dict)
    assert summary["posts"] == 42
    assert summary["first"] == "2014-06-24T17:52:29Z"
    assert summary["last"] == "2014-06-27T12:30:06Z"
    assert summary["span_seconds"] == 239857
    assert summary["times"] == {"explicit": 4, "interpolated": 13, "extrapolated": 25}
    assert set(summary["gap_seconds"]) == {"median", "p90", "max"}
    assert summary["gap_seconds"]["median"] == 5850  # the observed cadence
    assert summary["gap_seconds"]["median"] <= summary["gap_seconds"]["p90"]
    assert summary["gap_seconds"]["p90"] <= summary["gap_seconds"]["max"]
    assert summary["posts_per_hour"] == pytest.approx(42 / (239857 / 3600), abs=0.01)


def test_inspect_of_the_text_and_of_its_import_agree(
    good: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    assert json.loads(good["inspect-text-json"].stdout) == json.loads(good["inspect-json"].stdout)


def test_timezone_option(good: dict[str, subprocess.CompletedProcess[str]]) -> None:
    result = good["qatar-json"]
    assert (result.returncode, result.stderr) == (0, "")
    summary = json.loads(result.stdout)
    assert summary["first"] == "2014-06-24T14:52:29Z"  # three hours earlier
    assert summary["times"]["explicit"] == 4


@pytest.mark.parametrize(
    ("key", "mentions"),
    [
        ("help", ["import", "inspect", "validate", "serve"]),
        ("help-import", ["--output", "--format", "--timezone", "--date"]),
        ("help-inspect", ["--json", "--format", "--timezone", "--date"]),
        ("help-validate", ["--format", "--timezone", "--date"]),
        ("help-serve", ["--config", "--host", "--port", "--speed", "--max-gap", "--no-loop"]),
    ],
)
def test_help(
    good: dict[str, subprocess.CompletedProcess[str]], key: str, mentions: list[str]
) -> None:
    result = good[key]
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage: livesim")
    for option in mentions:
        assert option in result.stdout


# Bad input: one line on stderr naming the place, a non-zero status, never a traceback


@dataclass(frozen=True)
class Bad:
    args: list[str]
    files: dict[str, bytes | None] = field(default_factory=dict)
    """Files to create first (``None``: a directory)."""
    where: str = ""
    """What the one line of stderr must start with after ``livesim: ``."""
    says: str = ""
    prefix: str = "livesim: "
    """``validate`` lists a JSON archive's problems as bare ``FILE:LINE: message`` lines."""


SEED_BYTES = SEED.read_bytes()
HEADER = b'{"type":"feed","version":1,"title":"x"}\n'
POST = b'{"type":"post","id":"a","body":"b","published_at":"2014-06-25T06:52:29Z"}\n'
BAD: dict[str, Bad] = {
    "missing": Bad(["inspect", "missing.txt"], where="missing.txt:", says="no such file"),
    "missing-jsonl": Bad(["validate", "missing.jsonl"], {}, "missing.jsonl:", "no such file"),
    "directory": Bad(["inspect", "adir"], {"adir": None}, "adir:", "is a directory"),
    "directory-jsonl": Bad(["validate", "d.jsonl"], {"d.jsonl": None}, "d.jsonl:", "directory"),
    "empty": Bad(["import", "empty.txt"], {"empty.txt": b""}, "empty.txt:", "empty file"),
    "blank": Bad(["inspect", "blank.jsonl"], {"blank.jsonl": b"\n \n"}, "blank.jsonl:", "empty"),
    "binary": Bad(
        ["inspect", "pic.png"],
        {"pic.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"},
        "pic.png:",
        "binary file",
    ),
    "utf16": Bad(
        ["import", "u16.txt"], {"u16.txt": "• hi".encode("utf-16")}, "u16.txt:", "binary file"
    ),
    "bad-first-byte": Bad(
        ["inspect", "ff.txt"], {"ff.txt": b"\xff\xfeabc\n"}, "ff.txt:1:", "not UTF-8 text"
    ),
    "latin1": Bad(
        ["inspect", "latin.txt"],
        {"latin.txt": b"Live blog\n\n  \xe2\x80\xa2 one\n  \xe2\x80\xa2 caf\xe9 two\n"},
        "latin.txt:4:",
        "not UTF-8 text (byte 0xe9",
    ),
    "latin1-jsonl": Bad(
        ["validate", "l.jsonl"], {"l.jsonl": HEADER + b'{"body":"caf\xe9"}\n'}, "l.jsonl:2:"
    ),
    "truncated": Bad(
        ["inspect", "t.json"], {"t.json": b'{"type":"feed"'}, "t.json:1:", "invalid JSON"
    ),
    "truncated-validate": Bad(
        ["validate", "t.json"], {"t.json": b'{"type":"feed"'}, "t.json:1:", "invalid JSON", ""
    ),
    "bad-json-line": Bad(
        ["import", "b.jsonl"], {"b.jsonl": HEADER + POST + b'{"type": "post", '}, "b.jsonl:3:"
    ),
    "no-posts-jsonl": Bad(["inspect", "h.jsonl"], {"h.jsonl": HEADER}, "h.jsonl:1:", "no posts"),
    "no-posts-validate": Bad(
        ["validate", "h.jsonl"], {"h.jsonl": HEADER}, "h.jsonl:1:", "no posts", ""
    ),
    "no-posts-text": Bad(
        ["import", "n.txt"],
        {"n.txt": b"Just a page.\n\nNo posts here at all.\n"},
        "n.txt:",
        "no posts found",
    ),
    "bad-byline": Bad(
        ["inspect", "by.txt"],
        {"by.txt": "  • one\n  • two\n    by x 13/45/2014 6:52:29 AM\n".encode()},
        "by.txt:3:",
        "byline time",
    ),
    "timezone": Bad(
        ["inspect", "--timezone", "Mars/Olympus", "s.txt"],
        {"s.txt": SEED_BYTES},
        "s.txt:",
        "unknown timezone 'Mars/Olympus'",
    ),
    "date": Bad(
        ["import", "--date", "2014-13-45", "s.txt"],
        {"s.txt": SEED_BYTES},
        "s.txt:",
        "--date '2014-13-45'",
    ),
    "output": Bad(
        ["import", "s.txt", "-o", "nodir/out.jsonl"],
        {"s.txt": SEED_BYTES},
        "nodir/out.jsonl:",
    ),
}


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    dirs: dict[str, Path] = {}
    for key, case in BAD.items():
        dirs[key] = tmp_path_factory.mktemp(key)
        for name, content in case.files.items():
            if content is None:
                (dirs[key] / name).mkdir()
            else:
                (dirs[key] / name).write_bytes(content)
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(livesim, *BAD[key].args, cwd=cwd) for key, cwd in dirs.items()}
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.parametrize("key", list(BAD))
def test_bad_input(bad: dict[str, subprocess.CompletedProcess[str]], key: str) -> None:
    case, result = BAD[key], bad[key]
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stderr.endswith("\n")
    assert lines[0].startswith(case.prefix + case.where), lines[0]
    assert case.says in lines[0]


def test_validate_lists_every_problem(tmp_path: Path) -> None:
    (tmp_path / "three.jsonl").write_bytes(
        HEADER
        + POST
        + b'{"type":"post","id":"b","published_at":"2014-06-25T07:00:00Z"}\n'
        + b'{"type":"post","id":"c","body":"","published_at":"soon"}\n'
        + b'{"type":"post","id":"a","body":"","published_at":"2014-06-25T08:00:00Z"}\n'
    )
    result = livesim("validate", "three.jsonl", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "three.jsonl:3: $.body: required string is missing",
        "three.jsonl:4: $.published_at: not an ISO-8601 time: 'soon'",
        "three.jsonl:5: $.id: duplicate id 'a' (first on line 2)",
    ]
