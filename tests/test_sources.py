"""Reading archive and config files: only regular files, and only up to a bound, each refusal one
error naming the file. (A FIFO would block the reader; ``/dev/zero`` would fill the memory.)"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from simulator.core.model import ArchiveError
from simulator.sources import MAX_ARCHIVE_BYTES, read_archive, read_regular_file


def refusal(path: Path, limit: int = MAX_ARCHIVE_BYTES) -> str:
    with pytest.raises(ArchiveError) as caught:
        read_regular_file(path, limit, "an archive file")
    assert caught.value.source == str(path)
    return caught.value.message


def test_a_regular_file_and_a_link_to_one_are_read(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"hello")
    (tmp_path / "link.txt").symlink_to(tmp_path / "a.txt")
    assert read_archive(tmp_path / "a.txt") == b"hello"
    assert read_archive(tmp_path / "link.txt") == b"hello"
    assert read_regular_file(tmp_path / "a.txt", 5, "x") == b"hello"  # the bound is inclusive


def test_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")  # opening it to read would block until a writer came
    assert refusal(tmp_path / "pipe") == "not a regular file (a FIFO)"


def test_devices_and_sockets_are_refused(tmp_path: Path) -> None:
    assert refusal(Path("/dev/zero")) == "not a regular file (a character device)"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "sock"))
        assert refusal(tmp_path / "sock") == "not a regular file (a socket)"


def test_missing_directory_and_bad_names(tmp_path: Path) -> None:
    assert refusal(tmp_path / "none") == "no such file"
    assert refusal(tmp_path) == "is a directory, not an archive file"
    assert refusal(tmp_path / "a\0b") == "not a valid file name"
    assert refusal(tmp_path / ("x" * 10_000)) == "File name too long"


def test_a_file_over_the_bound_is_refused_before_reading(tmp_path: Path) -> None:
    with (tmp_path / "huge").open("wb") as file:
        file.truncate(MAX_ARCHIVE_BYTES + 1)  # sparse: no disk, and never read
    assert refusal(tmp_path / "huge") == (
        f"too large ({MAX_ARCHIVE_BYTES + 1} bytes; at most {MAX_ARCHIVE_BYTES} bytes, 1024 MiB)"
    )


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_file_larger_than_its_stated_size_is_cut_off_at_the_bound() -> None:
    """/proc files say they are empty: the bound holds while reading too."""
    assert os.stat("/proc/self/status").st_size == 0
    assert refusal(Path("/proc/self/status"), limit=10).startswith(
        "too large (more than 10 bytes; at most 10 bytes"
    )
