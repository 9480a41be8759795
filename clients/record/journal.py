"""The archive a recording grows: append-only JSON Lines, valid after every line.

Each record is one ``write`` of a whole line to a file opened for appending, so a crash can only
leave the last line torn, never an earlier one; the next run (``Journal.open``) reads every whole
line first, then cuts a torn last line off and carries on. A new archive's header is written to
a temporary file that is renamed into place, so no run ever leaves a file without its header.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from simulator.core.model import ArchiveError


@dataclass
class Journal:
    path: Path
    fd: int
    records: list[dict[str, Any]] = field(default_factory=list)
    """What the file held when opened (the header first), for the recorder to resume from."""
    recovered: int = 0
    """Bytes of a torn last line cut off when opened."""
    lock: int = -1
    """A descriptor holding an exclusive ``flock`` on the archive's lock file while it is open."""

    @classmethod
    def open(cls, path: Path, header: dict[str, Any]) -> Journal:
        """The archive at ``path``, created with ``header`` if it does not exist."""
        where = str(path)
        lock = _lock(path)
        try:
            if not path.exists() or path.stat().st_size == 0:
                _create(path, header)
            data = path.read_bytes()
            end = data.rfind(b"\n") + 1
            records = _records(data[:end], where)
            tail, recovered = data[end:], 0
            if tail.strip():
                try:
                    value = orjson.loads(tail)
                except orjson.JSONDecodeError:
                    value = None
                if isinstance(value, dict):  # whole, only its newline missing (hand-written)
                    records.append(value)
                    with path.open("ab") as file:
                        file.write(b"\n")
                else:  # torn by a crash mid-write: every line before it was read, so cut it
                    recovered = len(tail)
                    os.truncate(path, end)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            _unlock(path, lock)
            raise ArchiveError(exc.strerror or "cannot write", source=where) from None
        except ArchiveError:
            _unlock(path, lock)
            raise
        return cls(path, fd, records, recovered, lock)

    def write(self, record: dict[str, Any]) -> None:
        line = memoryview(orjson.dumps(record) + b"\n")
        try:
            while line:
                line = line[os.write(self.fd, line) :]
        except OSError as exc:
            raise ArchiveError(exc.strerror or "cannot write", source=str(self.path)) from None

    def close(self) -> None:
        """Everything written reaches the disk before the command says it is done."""
        if self.fd < 0:
            return
        try:
            os.fsync(self.fd)
        finally:
            os.close(self.fd)
            self.fd = -1
            if self.lock >= 0:
                _unlock(self.path, self.lock)
                self.lock = -1


def _records(data: bytes, where: str) -> list[dict[str, Any]]:
    """Every line, checked before anything is changed: a file that is not a recording (a text
    export, another program's JSON) is refused as it is, never cut."""
    records = []
    for number, line in enumerate(data.split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise ArchiveError(
                f"invalid JSON: {exc.msg} (not a recording this run can append to)",
                source=where,
                line=number,
            ) from None
        if not isinstance(value, dict):
            raise ArchiveError("expected a JSON object", source=where, line=number)
        records.append(value)
    return records


def _unlock(path: Path, lock: int) -> None:
    """Remove the lock file while still holding it, so none is left beside the archive."""
    with contextlib.suppress(OSError):
        path.with_name(f".{path.name}.lock").unlink()
    os.close(lock)


def _lock(path: Path) -> int:
    """Two recordings appending to one archive would interleave and repeat: the second is
    refused. The lock is on ``.NAME.lock`` beside it (removed when done), so the archive itself
    can be created by a rename."""
    where = str(path)
    try:
        fd = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ArchiveError(exc.strerror or "cannot write", source=where) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ArchiveError("another livesim record is writing this archive", source=where) from None
    return fd


def _create(path: Path, header: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as file:
            file.write(orjson.dumps(header) + b"\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
