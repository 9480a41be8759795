"""The archive a recording grows: append-only JSON Lines, valid after every line.

Each record is one ``write`` of a whole line to a file opened for appending, so a crash can only
leave the last line torn, never an earlier one; the next run (``Journal.open``) cuts a torn last
line off and carries on. A new archive's header is written to a temporary file that is renamed
into place, so no run ever leaves a file without its header.
"""

from __future__ import annotations

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
            recovered = len(data) - end
            if recovered:
                os.truncate(path, end)
            records = []
            for number, line in enumerate(data[:end].split(b"\n")[:-1], 1):
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
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            os.close(lock)
            raise ArchiveError(exc.strerror or "cannot write", source=where) from None
        except ArchiveError:
            os.close(lock)
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
                os.close(self.lock)
                self.lock = -1


def _lock(path: Path) -> int:
    """Two recordings appending to one archive would interleave and repeat: the second is
    refused. The lock is on ``.NAME.lock`` beside it, so the archive itself can be replaced."""
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
