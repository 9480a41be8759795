"""Where archives come from: files on disk, and the archive bundled with the package."""

from __future__ import annotations

from datetime import date
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .importers import ImportOptions, import_bytes
from .model import ArchiveError, Feed, slug

BUNDLED = "aljazeera-iraq-2014-06.txt"


def bundled_feed() -> Feed:
    data = resources.files("simulator").joinpath("data", BUNDLED).read_bytes()
    return import_bytes(data, ImportOptions(source=BUNDLED, feed_id=slug(Path(BUNDLED).stem)))


def load_feed(
    path: str | Path,
    *,
    format: str | None = None,
    timezone: str | None = None,
    day: date | None = None,
) -> Feed:
    """Read and import one archive file, naming it in every error."""
    path = Path(path)
    data = read_archive(path)
    zone_name = timezone or "UTC"
    try:
        tz = zone(zone_name)
    except ArchiveError as exc:
        raise exc.at(str(path)) from None
    options = ImportOptions(
        source=str(path),
        timezone=tz,
        timezone_name=zone_name,
        date=day,
        feed_id=slug(path.stem),
    )
    return import_bytes(data, options, format)


def read_archive(path: Path) -> bytes:
    """The file's bytes, or an error that names it."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ArchiveError("no such file", source=str(path)) from None
    except IsADirectoryError:
        raise ArchiveError("is a directory, not an archive file", source=str(path)) from None
    except OSError as exc:
        raise ArchiveError(exc.strerror or "cannot read", source=str(path)) from None


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ArchiveError(
            f"unknown timezone {name!r} (use an IANA name such as UTC or Asia/Qatar)"
        ) from None
