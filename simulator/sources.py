"""Where archives come from: files on disk, and the archive bundled with the package."""

from __future__ import annotations

import os
import stat
from datetime import date
from importlib import resources
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .core.importers import ImportOptions, import_bytes
from .core.model import ArchiveError, Feed, shown, slug

BUNDLED = "aljazeera-iraq-2014-06.txt"

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Feed and stream ids: they appear in URLs, and a feed's id is its default stream's id."""
ID_RULE = "a letter or digit, then up to 63 letters, digits, '.', '_' or '-'"


def bundled_feed() -> Feed:
    return import_bytes(
        resources.files("simulator").joinpath("data", BUNDLED).read_bytes(),
        ImportOptions(source=BUNDLED, feed_id=slug(Path(BUNDLED).stem)),
    )


def load_feed(
    path: str | Path,
    *,
    format: str | None = None,
    timezone: str | None = None,
    day: date | None = None,
) -> Feed:
    """Read and import one archive file, naming it in every error."""
    path = Path(path)
    # The bytes are passed on unnamed, so that the importer can let them go (see import_bytes).
    return import_bytes(read_archive(path), _options(path, timezone, day), format)


def _options(path: Path, timezone: str | None, day: date | None) -> ImportOptions:
    zone_name = timezone or "UTC"
    try:
        tz = zone(zone_name)
    except ArchiveError as exc:
        raise exc.at(str(path)) from None
    return ImportOptions(
        source=str(path),
        timezone=tz,
        timezone_name=zone_name,
        date=day,
        feed_id=slug(path.stem),
    )


MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024
"""The largest archive read: 1 GiB is far beyond any live blog (the bundled one is 40 KB) and
holds about two million synthetic posts (``livesim synth``) for load tests; the whole file is
held in memory while it is parsed (docs/archive-format.md, "Bounds", has the bounds within it)."""


def read_archive(path: Path) -> bytes:
    """The file's bytes, or an error that names it."""
    return read_regular_file(path, MAX_ARCHIVE_BYTES, "an archive file")


def read_regular_file(path: Path, limit: int, kind: str) -> bytes:
    """At most ``limit`` bytes of a regular file, or an error that names it.

    A FIFO would block forever and ``/dev/zero`` never ends, so anything but a regular file is
    refused before it is opened; the size is checked again while reading, since a file can grow
    between the check and the read (and ``/proc`` files report size 0). The read asks for the
    stated size and one byte more, not for ``limit``: a buffer of ``limit`` bytes (1 GiB for an
    archive) would be reserved for every file, however small.
    """
    where = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ArchiveError("no such file", source=where) from None
    except OSError as exc:
        raise ArchiveError(exc.strerror or "cannot read", source=where) from None
    except ValueError:  # a NUL byte in the name
        raise ArchiveError("not a valid file name", source=where) from None
    if stat.S_ISDIR(info.st_mode):
        raise ArchiveError(f"is a directory, not {kind}", source=where)
    if not stat.S_ISREG(info.st_mode):
        raise ArchiveError(f"not a regular file ({_kind(info.st_mode)})", source=where)
    if info.st_size > limit:
        raise ArchiveError(_too_large(f"{info.st_size} bytes", limit), source=where)
    try:
        # O_NONBLOCK: should the path be swapped for a FIFO after the check, open does not hang.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as file:
            opened = os.fstat(fd)
            regular = stat.S_ISREG(opened.st_mode)
            data = _read_at_most(file, min(opened.st_size, limit), limit) if regular else b""
    except FileNotFoundError:
        raise ArchiveError("no such file", source=where) from None
    except OSError as exc:
        raise ArchiveError(exc.strerror or "cannot read", source=where) from None
    if not regular:
        raise ArchiveError("not a regular file", source=where)
    if len(data) > limit:
        raise ArchiveError(_too_large(f"more than {limit} bytes", limit), source=where)
    return data


def _read_at_most(file: BinaryIO, expected: int, limit: int) -> bytes:
    """The file's bytes, up to ``limit + 1`` (one more shows it is over), reading ``expected``
    first and then, should there be more, in pieces."""
    data = file.read(expected + 1)
    if len(data) <= expected:
        return data
    pieces = [data]
    size = len(data)
    while size <= limit and (piece := file.read(min(READ_PIECE, limit + 1 - size))):
        pieces.append(piece)
        size += len(piece)
    return b"".join(pieces)


READ_PIECE = 1 << 20


def _too_large(size: str, limit: int) -> str:
    mib = f", {limit / 2**20:g} MiB" if limit >= 2**20 else ""
    return f"too large ({size}; at most {limit} bytes{mib})"


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a file"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ArchiveError(
            f"unknown timezone {shown(name)} (use an IANA name such as UTC or Asia/Qatar)"
        ) from None
