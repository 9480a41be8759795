"""Settings precedence (flags > ``LIVESIM_*`` environment > config file > defaults), per setting,
through the real parser, loader and ``resolve``; and the loader's errors, each naming its place."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import simulator
from simulator import settings as settings_module
from simulator.cli import build_parser
from simulator.cli.serve import resolve
from simulator.core.model import ArchiveError
from simulator.settings import Override, Settings
from simulator.sources import BUNDLED

BUNDLED_ID = "aljazeera-iraq-2014-06"
SEED = Path(simulator.__file__).resolve().parent / "data" / BUNDLED
STREAM = f'[[streams]]\nid = "s"\nfeed = "{BUNDLED_ID}"\n'


@dataclass(frozen=True)
class Setting:
    """One setting: how each layer sets it, how to read it, and the value each layer gives.

    A layer the setting does not have (no flag, no variable) is ``None``. Each layer's value
    differs from the one below it, so the winner is always visible.
    """

    name: str
    read: Callable[[Settings], Any]
    default: Any
    file: tuple[str, Any]
    env: tuple[dict[str, str], Any] | None
    flag: tuple[list[str], Any] | None


def stream(settings: Settings) -> Any:
    (only,) = settings.streams
    return only


SETTINGS = [
    Setting(
        "host",
        lambda s: s.server.host,
        "127.0.0.1",
        ('[server]\nhost = "127.0.0.2"\n', "127.0.0.2"),
        ({"LIVESIM_HOST": "127.0.0.3, ::1"}, "127.0.0.3,::1"),
        (["--host", "localhost"], "localhost"),
    ),
    Setting(
        "port",
        lambda s: s.server.port,
        8080,
        ("[server]\nport = 8001\n", 8001),
        ({"LIVESIM_PORT": "8002"}, 8002),
        (["--port", "0"], 0),
    ),
    Setting(
        "log_format",
        lambda s: s.server.log_format,
        "text",
        ('[server]\nlog_format = "json"\n', "json"),
        ({"LIVESIM_LOG_FORMAT": "text"}, "text"),
        (["--log-format", "json"], "json"),
    ),
    Setting(
        "token",
        lambda s: s.server.token,
        None,
        ('[server]\ntoken = "from-the-file-0123"\n', "from-the-file-0123"),
        ({"LIVESIM_TOKEN": "from-the-environment"}, "from-the-environment"),
        None,  # never a flag: it would show in `ps`
    ),
    Setting(
        "event loop",
        lambda s: s.server.event_loop,
        "asyncio",
        ('[server]\nevent_loop = "uvloop"\n', "uvloop"),
        None,
        (["--event-loop", "asyncio"], "asyncio"),
    ),
    Setting(
        "speed",
        lambda s: stream(s).speed,
        60.0,
        (STREAM + "speed = 2\n", 2.0),
        None,
        (["--speed", "max"], math.inf),
    ),
    Setting(
        "max_gap",
        lambda s: stream(s).max_gap,
        120.0,
        (STREAM + 'max_gap = "5m"\n', 300.0),
        None,
        (["--max-gap", "none"], None),
    ),
    Setting(
        "loop",
        lambda s: stream(s).loop,
        True,
        (STREAM + "loop = true\n", True),  # the file can only restate the default here…
        None,
        (["--no-loop"], False),
    ),
]
LAYERS = [(f, e, g) for f, e, g in itertools.product((False, True), repeat=3)]
"""Which of file, environment and flag are present: all eight combinations."""
CASES = [
    (setting, layers)
    for setting in SETTINGS
    for layers in LAYERS
    if not (layers[1] and setting.env is None) and not (layers[2] and setting.flag is None)
]


def case_id(setting: Setting, layers: tuple[bool, bool, bool]) -> str:
    present = [n for n, on in zip(("file", "env", "flag"), layers, strict=True) if on]
    return f"{setting.name}:{'+'.join(present) or 'default'}"


@pytest.mark.parametrize(("setting", "layers"), CASES, ids=[case_id(*case) for case in CASES])
def test_precedence(tmp_path: Path, setting: Setting, layers: tuple[bool, bool, bool]) -> None:
    use_file, use_env, use_flag = layers
    args, expected = ["serve"], setting.default
    env: dict[str, str] = {}
    if use_file:
        (tmp_path / "c.toml").write_text(setting.file[0], encoding="utf-8")
        args += ["--config", str(tmp_path / "c.toml")]
        expected = setting.file[1]
    if use_env and setting.env is not None:
        env, expected = setting.env
    if use_flag and setting.flag is not None:
        args += setting.flag[0]
        expected = setting.flag[1]
    settings, _ = resolve(build_parser().parse_args(args), env)
    assert setting.read(settings) == expected


def test_replay_flags_apply_to_every_configured_stream(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        "".join(
            f'[[streams]]\nid = "s{n}"\nfeed = "{BUNDLED_ID}"\nspeed = {n}\nloop = true\n'
            for n in (1, 2, 3)
        ),
        encoding="utf-8",
    )
    args = ["serve", "--config", str(config), "--speed", "600", "--max-gap", "10s", "--no-loop"]
    settings, _ = resolve(build_parser().parse_args(args), {})
    assert [(s.id, s.speed, s.max_gap, s.loop) for s in settings.streams] == [
        (f"s{n}", 600.0, 10.0, False) for n in (1, 2, 3)
    ]
    settings, _ = resolve(build_parser().parse_args(["serve", "--config", str(config)]), {})
    assert [s.speed for s in settings.streams] == [1.0, 2.0, 3.0]


def test_replay_flags_apply_to_archives_named_with_a_config(tmp_path: Path) -> None:
    """Streams made for archives on the command line get the flags too, beside configured ones."""
    config = tmp_path / "c.toml"
    config.write_text(STREAM + "speed = 5\n", encoding="utf-8")
    archive = tmp_path / "blog.txt"
    archive.write_bytes(SEED.read_bytes())
    args = ["serve", "--config", str(config), "--speed", "7", str(archive)]
    settings, feeds = resolve(build_parser().parse_args(args), {})
    assert {(s.id, s.feed, s.speed) for s in settings.streams} == {
        ("s", BUNDLED_ID, 7.0),
        ("blog", "blog", 7.0),
    }
    assert set(feeds) == {BUNDLED_ID, "blog"}


# The loader's errors: one line naming the variable, the flag, or the file and key


def load_error(
    tmp_path: Path, toml: str | None, env: dict[str, str], flags: tuple[Override, ...] = ()
) -> str:
    path = None
    if toml is not None:
        path = tmp_path / "c.toml"
        path.write_text(toml, encoding="utf-8")
    with pytest.raises(ArchiveError) as caught:
        settings_module.load(path, env, flags)
    return str(caught.value).replace(str(tmp_path) + "/", "")


@pytest.mark.parametrize(
    ("toml", "env", "flags", "error"),
    [
        (
            "[server]\nport = 70000\n",
            {},
            [],
            "c.toml: server.port: Input should be less than or equal to 65535",
        ),
        (
            "[server]\nport = 1\n",
            {"LIVESIM_PORT": "70000"},
            [],
            "LIVESIM_PORT: Input should be less than or equal to 65535",
        ),
        (
            None,
            {},
            [Override("--host", ("server", "host"), "")],
            "--host: an empty address in ''",
        ),
        (
            "server = 1\n",
            {"LIVESIM_PORT": "1"},
            [],
            "c.toml: server: expected a table, got an integer",
        ),
        ("[[feeds]]\nid = 3\n", {}, [], "c.toml: feeds[0].path: required key is missing"),
        (
            '[[feeds]]\npath = "x"\nid = "no spaces"\n',
            {},
            [],
            "c.toml: feeds[0].id: expected a letter or digit",
        ),
        (
            '[server]\nsse_heartbeat = "10ms"\n',
            {},
            [],
            "c.toml: server.sse_heartbeat: must be 0 (off) or at least 50ms",
        ),
        (
            STREAM + STREAM,
            {},
            [],
            "c.toml: streams[1].id: stream id 's' is already used by streams[0]",
        ),
        (
            "a = " + "[" * 5000 + "]" * 5000,
            {},
            [],
            "c.toml: invalid TOML: arrays or tables nested too deeply",
        ),
        (
            STREAM + "speed = inf\n",
            {},
            [],
            "c.toml: streams[0].speed: expected a positive number up to 1000000 or 'max', got inf",
        ),
    ],
)
def test_load_errors_name_their_place(
    tmp_path: Path, toml: str | None, env: dict[str, str], flags: list[Override], error: str
) -> None:
    assert load_error(tmp_path, toml, env, tuple(flags)).startswith(error)


def test_a_stream_flag_names_itself_in_an_error(tmp_path: Path) -> None:
    flags = (Override("--speed", ("streams", "*", "speed"), "0"),)
    assert load_error(tmp_path, STREAM + STREAM.replace('"s"', '"t"'), {}, flags).startswith(
        "--speed: expected a positive number"
    )


def test_empty_environment_values_are_unset(tmp_path: Path) -> None:
    settings = settings_module.load(None, {"LIVESIM_PORT": "", "LIVESIM_TOKEN": ""})
    assert (settings.server.port, settings.server.token) == (8080, None)


def test_any_server_key_from_the_environment(tmp_path: Path) -> None:
    """``LIVESIM_SERVER__KEY`` sets any ``[server]`` key over the file; a shortcut such as
    ``LIVESIM_PORT`` wins over its long form."""
    (tmp_path / "c.toml").write_text("[server]\nmax_connections = 7\nport = 1\n", "utf-8")
    env = {
        "LIVESIM_SERVER__MAX_CONNECTIONS": "5000",
        "LIVESIM_SERVER__PORT": "2",
        "LIVESIM_PORT": "3",
        "LIVESIM_SERVER__SSE_HEARTBEAT": "",
    }
    settings = settings_module.load(tmp_path / "c.toml", env)
    assert (settings.server.max_connections, settings.server.port) == (5000, 3)
    assert settings.server.sse_heartbeat == 15.0


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"LIVESIM_SERVER__MAX_CONNECTIONS": "0"}, "LIVESIM_SERVER__MAX_CONNECTIONS: Input should"),
        ({"LIVESIM_SERVER__NO_SUCH_KEY": "1"}, "LIVESIM_SERVER__NO_SUCH_KEY: unknown key"),
        ({"LIVESIM_SERVER__PORT__X": "1"}, "LIVESIM_SERVER__PORT: expected one value"),
        ({"LIVESIM_SERVER": "port=1"}, "LIVESIM_SERVER: set [server] keys one by one"),
    ],
)
def test_environment_errors_name_the_variable(
    tmp_path: Path, env: dict[str, str], error: str
) -> None:
    assert load_error(tmp_path, None, env).startswith(error)


def test_the_shipped_config_is_valid_and_states_the_defaults() -> None:
    """config/livesim.toml documents [server] with the defaults: loading it changes nothing."""
    path = SEED.parent.parent.parent / "config" / "livesim.toml"
    shipped = settings_module.load(path, {})
    assert shipped.server == settings_module.ServerConfig()


def test_archives_with_their_own_ids_are_a_stream_each(tmp_path: Path) -> None:
    """One archive twice under different ids is fine: ids, not contents, must differ."""
    (tmp_path / "export.txt").write_bytes(SEED.read_bytes())
    (tmp_path / "other.txt").write_bytes(SEED.read_bytes())
    args = ["serve", str(tmp_path / "export.txt"), str(tmp_path / "other.txt")]
    settings, feeds = resolve(build_parser().parse_args(args), {})
    assert [s.id for s in settings.streams] == ["export", "other"]
    assert set(feeds) == {BUNDLED_ID, "export", "other"}


def test_a_duplicate_feed_id_names_both_sources(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "export.txt").write_bytes(SEED.read_bytes())
    (tmp_path / "export.txt").write_bytes(SEED.read_bytes())
    first, second = str(tmp_path / "a" / "export.txt"), str(tmp_path / "export.txt")
    with pytest.raises(ArchiveError) as caught:
        resolve(build_parser().parse_args(["serve", first, second]), {})
    assert str(caught.value).startswith(
        f"feed id 'export' comes from both {first} and {second}; give one another id"
    )
