"""The ``livesim`` command: the happy path and every way to misuse it.

Commands that end before serving run in-process through ``simulator.cli.main``, with their own
working directory, environment, stdout and stderr: the same parser, handlers and error lines as
the installed command, without a second's interpreter start each. What only a process shows (the
entry point itself, a port in use) runs as a subprocess; serving, signals and the open-file limit
are in test_cli_serve.py.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cli_helpers import ROOT, environment

from simulator.cli import main
from simulator.sources import BUNDLED

SEED = ROOT / "simulator" / "data" / BUNDLED


def livesim(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``livesim ARGS`` run by ``main`` in this process, as the installed command would run it
    in ``cwd`` with only ``env``'s ``LIVESIM_*`` variables: exit status, stdout and stderr."""
    out, err = io.BytesIO(), io.BytesIO()
    stdout = io.TextIOWrapper(out, encoding="utf-8", errors="replace")
    stderr = io.TextIOWrapper(err, encoding="utf-8", errors="replace")
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.chdir(cwd),
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
    ):
        for name in [name for name in os.environ if name.startswith("LIVESIM_")]:
            patch.delenv(name)
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        try:
            status = main(list(args))
        except SystemExit as exc:  # argparse: --help, usage errors
            status = exc.code if isinstance(exc.code, int) else 1
        finally:
            gc.enable()  # serve turns the collector off until its streams are built
            stdout.flush()
            stderr.flush()
    text = out.getvalue().decode("utf-8", "replace"), err.getvalue().decode("utf-8", "replace")
    return subprocess.CompletedProcess(["livesim", *args], status, *text)


def livesim_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m simulator ARGS``: the command as a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "simulator", *args],
        cwd=cwd,
        env=environment(env),
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=60,
    )


def run_all(
    commands: dict[str, list[str]], cwd: Path
) -> dict[str, subprocess.CompletedProcess[str]]:
    return {key: livesim(*args, cwd=cwd) for key, args in commands.items()}


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
            "import-id": ["import", "seed.txt", "--id", "iraq"],
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
            "help-script": ["script", "--help"],
            "help-synth": ["synth", "--help"],
            "help-tail": ["tail", "--help"],
            "help-load": ["load", "--help"],
            "help-alert": ["alert", "--help"],
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


def test_import_with_an_id(
    workdir: Path, good: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = good["import-id"]
    assert (result.returncode, result.stderr) == (0, "")
    header, *posts = result.stdout.splitlines()
    assert json.loads(header)["id"] == "iraq"
    original = (workdir / "blog.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(original[0])["id"] != "iraq"
    assert posts == original[1:]


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
        (
            "help",
            ["serve", "import", "inspect", "validate", "script", "synth", "tail", "load", "alert"],
        ),
        ("help-import", ["--output", "--format", "--timezone", "--date"]),
        ("help-inspect", ["--json", "--format", "--timezone", "--date"]),
        ("help-validate", ["--format", "--timezone", "--date"]),
        ("help-serve", ["--config", "--host", "--port", "--speed", "--max-gap", "--no-loop"]),
        ("help-script", ["--config", "--scenario", "--seed", "--edit-delay", "--json"]),
        ("help-synth", ["--posts", "--seed", "--output"]),
        ("help-tail", ["URL", "--url", "--ws", "--json", "--count", "--max-event-bytes"]),
        ("help-load", ["--clients", "--transport", "--ramp", "--churn", "--max-p99", "--procs"]),
        ("help-alert", ["--rules", "--backfill", "--count", "--duration", "--max-snapshot-bytes"]),
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


def test_the_entry_point_is_the_same_command(tmp_path: Path) -> None:
    """``python -m simulator`` (what the ``livesim`` script runs) is ``main``, in a process."""
    result = livesim_process("--help", cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == livesim("--help", cwd=tmp_path).stdout


# Bad input: one line on stderr naming the place, a non-zero status, never a traceback


@dataclass(frozen=True)
class Sparse:
    """A file of ``size`` bytes that takes no room on disk (a hole)."""

    size: int


FIFO = "fifo"


@dataclass(frozen=True)
class Bad:
    args: list[str]
    files: dict[str, bytes | None | Sparse | str] = field(default_factory=dict)
    """Files to create first (``None``: a directory; ``FIFO``: a named pipe)."""
    where: str = ""
    """What the one line of stderr must start with after ``livesim: ``."""
    says: str = ""
    prefix: str = "livesim: "
    """``validate`` lists a JSON archive's problems as bare ``FILE:LINE: message`` lines."""
    env: dict[str, str] = field(default_factory=dict)


SEED_BYTES = SEED.read_bytes()
HEADER = b'{"type":"feed","version":1,"title":"x"}\n'
POST = b'{"type":"post","id":"a","body":"b","published_at":"2014-06-25T06:52:29Z"}\n'
EXPORT_JSONL = HEADER.replace(b'"title"', b'"id":"export","title"') + POST
STREAM_A = b'[[streams]]\nid = "a"\nfeed = "aljazeera-iraq-2014-06"\n'
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
    "long-timezone": Bad(
        ["inspect", "--timezone", "x" * 10_000, "s.txt"],
        {"s.txt": SEED_BYTES},
        "s.txt:",
        "unknown timezone 'xxx",  # cut short: the test also bounds the line's length
    ),
    # Files that are not regular files, or too large to read: refused before reading
    "dev-zero": Bad(["serve", "/dev/zero"], where="/dev/zero:", says="not a regular file"),
    "fifo": Bad(["serve", "--port", "0", "pipe.txt"], {"pipe.txt": FIFO}, "pipe.txt:", "FIFO"),
    "fifo-inspect": Bad(["inspect", "pipe.jsonl"], {"pipe.jsonl": FIFO}, "pipe.jsonl:", "FIFO"),
    "huge": Bad(
        ["inspect", "huge.txt"],
        {"huge.txt": Sparse(2**30 + 1)},
        "huge.txt:",
        "too large (1073741825 bytes; at most 1073741824 bytes",
    ),
    "config-dev-zero": Bad(["serve", "--config", "/dev/zero"], where="/dev/zero:", says="regular"),
    "config-fifo": Bad(["serve", "--config", "c.toml"], {"c.toml": FIFO}, "c.toml:", "a FIFO"),
    "config-huge": Bad(
        ["serve", "--config", "c.toml"], {"c.toml": Sparse(2**20 + 1)}, "c.toml:", "too large"
    ),
    # Config files of any wrong shape
    "config-missing": Bad(["serve", "--config", "none.toml"], where="none.toml:", says="no such"),
    "config-server-array": Bad(
        ["serve", "--config", "c.toml"],
        {"c.toml": b"server = [1, 2]\n"},
        "c.toml: server:",
        "expected a table, got an array",
    ),
    "config-streams-string": Bad(
        ["serve", "--config", "c.toml"],
        {"c.toml": b'streams = "x"\n'},
        "c.toml: streams:",
        "expected an array, got a string",
    ),
    "config-feeds-number": Bad(
        ["serve", "--config", "c.toml"], {"c.toml": b"feeds = 3\n"}, "c.toml: feeds:", "array"
    ),
    "config-stream-not-table": Bad(
        ["serve", "--config", "c.toml"],
        {"c.toml": b"streams = [1]\n"},
        "c.toml: streams[0]:",
        "expected a table, got an integer",
    ),
    "config-deep": Bad(
        ["serve", "--config", "c.toml"],
        {"c.toml": b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n"},
        "c.toml:",
        "nested too deeply",
    ),
    "config-unknown-key": Bad(
        ["serve", "--config", "c.toml"],
        {"c.toml": b"[server]\nprot = 80\n"},
        "c.toml: server.prot:",
        "unknown key",
    ),
    "config-bad-toml": Bad(
        ["serve", "--config", "c.toml"], {"c.toml": b"[server\n"}, "c.toml:", "invalid TOML"
    ),
    "config-speed-inf": Bad(
        ["serve", "--config", "c.toml"],
        {"c.toml": b'[[streams]]\nid = "a"\nfeed = "aljazeera-iraq-2014-06"\nspeed = inf\n'},
        "c.toml: streams[0].speed:",
        "got inf",
    ),
    # Values from the environment name the variable
    "env-port": Bad(["serve"], where="LIVESIM_PORT:", says="integer", env={"LIVESIM_PORT": "x"}),
    "env-log-format": Bad(
        ["serve"], where="LIVESIM_LOG_FORMAT:", env={"LIVESIM_LOG_FORMAT": "xml"}
    ),
    "env-short-token": Bad(
        ["serve"], where="LIVESIM_TOKEN:", says="at least 16", env={"LIVESIM_TOKEN": "secret"}
    ),
    "long-host": Bad(["serve", "--host", "h" * 10_000], where="--host:", says="at most"),
    "long-host-among-two": Bad(
        ["serve", "--host", "::1," + "h" * 300], where="--host:", says="300 characters, at most 253"
    ),
    "empty-host-in-list": Bad(
        ["serve", "--host", "127.0.0.1,"], where="--host:", says="an empty address"
    ),
    "host-twice": Bad(
        ["serve", "--host", "::1, ::1"], where="--host:", says="'::1' is given twice"
    ),
    "nine-hosts": Bad(
        ["serve", "--host", ",".join(f"127.0.0.{n}" for n in range(1, 10))],
        where="--host:",
        says="9 addresses, at most 8",
    ),
    # Two sources of one id: refused, naming both
    "duplicate-feed": Bad(
        ["serve", "blog.jsonl", "export.txt"],
        {"blog.jsonl": EXPORT_JSONL, "export.txt": SEED_BYTES},
        "feed id 'export' comes from both blog.jsonl and export.txt;",
        "livesim import --id NAME",
    ),
    "duplicate-bundled": Bad(
        ["serve", "--config", "c.toml"],
        {
            "c.toml": b'[[feeds]]\npath = "s.txt"\nid = "aljazeera-iraq-2014-06"\n',
            "s.txt": SEED_BYTES,
        },
        "feed id 'aljazeera-iraq-2014-06' comes from both the bundled archive",
        "c.toml feeds[0] (s.txt)",
    ),
    "duplicate-stream": Bad(
        ["serve", "--config", "c.toml"],
        {"c.toml": STREAM_A + STREAM_A},
        "c.toml: streams[1].id:",
        "stream id 'a' is already used by streams[0]",
    ),
    "duplicate-stream-and-archive": Bad(
        ["serve", "--config", "c.toml", "a.txt"],
        {"c.toml": STREAM_A, "a.txt": SEED_BYTES},
        "stream id 'a' comes from both c.toml streams[0] and a.txt;",
    ),
    "feed-id-not-a-stream-id": Bad(
        ["serve", "odd.jsonl"],
        {"odd.jsonl": HEADER.replace(b'"title"', b'"id":"an id","title"') + POST},
        "odd.jsonl: feed id 'an id' cannot be a stream id",
        "livesim import --id NAME",
    ),
    "unknown-feed": Bad(
        ["serve", "--config", "c.toml"],
        {"c.toml": STREAM_A.replace(b"aljazeera-iraq-2014-06", b"nope")},
        "c.toml: streams[0].feed: unknown feed 'nope'",
    ),
    # Bound beyond loopback with no token: refused with how to set one
    "no-token": Bad(
        ["serve", "--host", "0.0.0.0", "--port", "0"],
        where="host 0.0.0.0 is reachable from other machines",
        says="set LIVESIM_TOKEN",
    ),
    "no-token-second-address": Bad(
        ["serve", "--host", "127.0.0.1,0.0.0.0", "--port", "0"],
        where="host 0.0.0.0 is reachable from other machines",
        says="set LIVESIM_TOKEN",
    ),
    "no-token-from-config": Bad(
        ["serve", "--config", "c.toml", "--port", "0"],
        {"c.toml": b'[server]\nhost = "::"\n'},
        "host :: is reachable",
        "token",
    ),
    "port-in-use": Bad(["serve", "--port", "{busy}"], where="cannot listen on 127.0.0.1:"),
}


IN_A_PROCESS = {"port-in-use"}
"""Cases that get as far as starting the server (its loop, its logging): a process of their own."""


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    dirs: dict[str, Path] = {}
    for key, case in BAD.items():
        dirs[key] = tmp_path_factory.mktemp(key)
        for name, content in case.files.items():
            make_file(dirs[key] / name, content)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        return {
            key: (livesim_process if key in IN_A_PROCESS else livesim)(
                *(arg.replace("{busy}", port) for arg in BAD[key].args),
                cwd=cwd,
                env=BAD[key].env,
            )
            for key, cwd in dirs.items()
        }


def make_file(path: Path, content: bytes | None | Sparse | str) -> None:
    if content is None:
        path.mkdir()
    elif content == FIFO:
        os.mkfifo(path)
    elif isinstance(content, Sparse):
        with path.open("wb") as file:
            file.truncate(content.size)
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)


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
    assert len(lines[0]) < 400, "a long value is cut short in the message"


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


# Usage errors: argparse's usage and one error line naming the flag, exit status 2

USAGE: dict[str, tuple[list[str], str]] = {
    "port-high": (["serve", "--port", "70000"], "argument --port: expected a port number"),
    "port-negative": (["serve", "--port", "-1"], "argument --port: expected a port number"),
    "port-huge": (["serve", "--port", "9" * 10_000], "argument --port: expected a port number"),
    "speed-nan": (["serve", "--speed", "nan"], "argument --speed: expected a positive number"),
    "speed-long": (["serve", "--speed", "9" * 10_000], "argument --speed:"),
    "max-gap-huge": (["serve", "--max-gap", "1e308"], "argument --max-gap: must be"),
    "max-gap-nan": (["serve", "--max-gap", "NaN"], "argument --max-gap: must be"),
    "log-format": (["serve", "--log-format", "xml"], "argument --log-format: invalid choice"),
    "event-loop": (["serve", "--event-loop", "trio"], "argument --event-loop: invalid choice"),
    "import-id": (["import", "--id", "a b", "x.txt"], "argument --id: expected a letter"),
    "import-id-long": (["import", "--id", "a" * 10_000, "x.txt"], "argument --id: expected"),
}


@pytest.fixture(scope="module")
def usage(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    return run_all({key: args for key, (args, _) in USAGE.items()}, tmp_path_factory.mktemp("u"))


@pytest.mark.parametrize("key", list(USAGE))
def test_usage_error(usage: dict[str, subprocess.CompletedProcess[str]], key: str) -> None:
    result, (args, says) = usage[key], USAGE[key]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith(f"livesim {args[0]}: error: {says}"), last
    assert len(last) < 300, "a long value is cut short in the message"
