"""The rename pysyncobj uses to put a new dump in place: checked and durable (tmp dir)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kraft.dump import Dump, decode_dump, encode_dump
from kraft.errors import MetadataSnapshotError
from kraft.pysyncobj_hooks import DUMP_PATHS, durable_replace

GOOD = Dump((b"\x00last", 42, 3), (b"\x01prev", 41, 3), ("127.0.0.1:1",), b"{}")
NEWER = Dump((b"\x00last", 50, 4), (b"\x01prev", 49, 4), ("127.0.0.1:1",), b"{}")


@pytest.fixture
def dump_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "metadata.dump"
    path.write_bytes(encode_dump(GOOD))
    DUMP_PATHS.add(str(path))
    yield path
    DUMP_PATHS.discard(str(path))


def test_a_damaged_received_dump_never_replaces_the_good_one(dump_path: Path) -> None:
    received = dump_path.with_name("metadata.dump.1.tmp")
    data = bytearray(encode_dump(NEWER))
    data[-1] ^= 0x01  # damaged in transit or by a bug
    received.write_bytes(bytes(data))
    with pytest.raises(MetadataSnapshotError):
        durable_replace(str(received), str(dump_path))
    assert decode_dump(dump_path.read_bytes()) == GOOD


def test_a_good_dump_is_fsynced_then_renamed_then_its_directory_fsynced(
    dump_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received = dump_path.with_name("metadata.dump.1.tmp")
    received.write_bytes(encode_dump(NEWER))
    steps: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source: str, target: str) -> None:
        steps.append(("rename", str(source)))
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    durable_replace(str(received), str(dump_path))
    assert steps == [
        ("fsync", str(received)),
        ("rename", str(received)),
        ("fsync", str(dump_path.parent)),
    ]
    assert decode_dump(dump_path.read_bytes()) == NEWER
