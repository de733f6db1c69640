"""Recovery properties: whatever a crash leaves of the unflushed tail (a cut at any byte, a
flipped byte, zeros), opening the log keeps exactly the whole valid batches before the damage
and nothing after it, and fails in no other way."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.batch import NewRecord, iter_batches
from storage.errors import KafkaStorageError
from storage.index import OFFSET_ENTRY_SIZE, TIME_ENTRY_SIZE
from storage.limits import INDEX_PREALLOCATE_BYTES
from storage.log import Log
from storage.log_config import LogConfig

T0 = 1_700_000_000_000
CONFIG = LogConfig(segment_bytes=6000, index_interval_bytes=400)
SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@dataclass(frozen=True)
class Batch:
    file: str
    position: int
    end: int
    base_offset: int
    next_offset: int
    data: bytes


class Template:
    """The template log: its directory, .log file names and batches (in log order)."""

    def __init__(self, directory: Path, files: list[str], batches: list[Batch]) -> None:
        self.directory = directory
        self.files = files
        self.batches = batches

    def __repr__(self) -> str:
        return f"Template({len(self.files)} segments, {len(self.batches)} batches)"

    def kept_before(self, file: str, position: int) -> list[Batch]:
        """The batches that lie wholly before byte ``position`` of ``file``."""
        return [b for b in self.batches if (b.file, b.end) <= (file, position)]


@pytest.fixture(scope="module")
def template() -> Iterator[Template]:
    """A closed log of several segments with batches of varied sizes, copied per example."""
    root = Path(tempfile.mkdtemp(prefix="log-recovery-"))
    log = Log.open(root / "t-0", CONFIG)
    for i in range(80):
        value = bytes([i % 251]) * (10 + 17 * (i % 7))
        log.append_as_leader([NewRecord(b"k", value, T0 + i)] * (1 + i % 5), i // 20)
    log.close()
    directory = root / "t-0"
    files = sorted(p.name for p in directory.glob("*.log"))
    batches = []
    for name in files:
        data = (directory / name).read_bytes()
        for position, header in iter_batches(data):
            end = position + header.size
            batches.append(
                Batch(
                    name, position, end, header.base_offset, header.next_offset, data[position:end]
                )
            )
    assert len(files) >= 4
    yield Template(directory, files, batches)
    shutil.rmtree(root)


@pytest.fixture(autouse=True)
def quiet_recovery_warnings() -> Iterator[None]:
    logger = logging.getLogger("storage")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(level)


class Scratch:
    """A copy of the template log, removed afterwards."""

    def __init__(self, template: Template) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="log-recovery-case-"))
        self.directory = self.root / "t-0"
        shutil.copytree(template.directory, self.directory)

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.root)

    def path(self, name: str) -> Path:
        return self.directory / name

    def log_bytes(self) -> bytes:
        return b"".join(p.read_bytes() for p in sorted(self.directory.glob("*.log")))


def read_everything(log: Log) -> bytes:
    parts = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, 5000)
        assert data, f"no progress at {offset}"
        parts.append(data)
        offset = list(iter_batches(data))[-1][1].next_offset
    return b"".join(parts)


def assert_recovered_to(log: Log, scratch: Scratch, kept: list[Batch]) -> None:
    expected = b"".join(b.data for b in kept)
    assert log.offline is None
    assert log.log_end_offset == (kept[-1].next_offset if kept else 0)
    assert read_everything(log) == expected
    assert scratch.log_bytes() == expected
    # The log goes on from there.
    end = log.log_end_offset
    log.append_as_leader([NewRecord(None, b"after", T0)], 9)
    assert log.read_records(end, 100)[0].value == b"after"
    log.close()


@SETTINGS
@given(data=st.data())
def test_a_log_cut_at_any_byte_recovers_to_the_whole_batches_before_the_cut(
    template: Template, data: st.DataObject
) -> None:
    name = data.draw(st.sampled_from(template.files), label="segment")
    with Scratch(template) as scratch:
        size = scratch.path(name).stat().st_size
        cut = data.draw(st.integers(0, size), label="cut")
        with open(scratch.path(name), "r+b") as f:
            f.truncate(cut)
        log = Log.open(scratch.directory, CONFIG, recovery_point=0)
        # A segment cut short ends the log there (the next segment no longer follows it).
        kept = template.kept_before(name, cut) if cut < size else template.batches
        assert_recovered_to(log, scratch, kept)


@SETTINGS
@given(data=st.data())
def test_a_byte_flipped_above_the_recovery_point_cuts_the_log_at_its_batch(
    template: Template, data: st.DataObject
) -> None:
    recovery_point = data.draw(st.sampled_from([0, *(b.base_offset for b in template.batches)]))
    above = [b for b in template.batches if b.base_offset >= recovery_point]
    victim = data.draw(st.sampled_from(above), label="batch")
    where = data.draw(st.integers(victim.position, victim.end - 1), label="byte")
    xor = data.draw(st.integers(1, 255))
    with Scratch(template) as scratch:
        with open(scratch.path(victim.file), "r+b") as f:
            f.seek(where)
            byte = f.read(1)[0]
            f.seek(where)
            f.write(bytes([byte ^ xor]))
        log = Log.open(scratch.directory, CONFIG, recovery_point=recovery_point)
        if 12 <= where - victim.position < 16:
            # partition_leader_epoch lies outside the CRC and no rule constrains it (Kafka's
            # format): the batch stays, with the changed epoch.
            assert log.log_end_offset == template.batches[-1].next_offset
            log.close()
            return
        # Every other byte is checked (CRC, length, magic, dense offsets): the flipped batch
        # goes, with everything after it, and nothing before it.
        kept = template.kept_before(victim.file, victim.position)
        assert_recovered_to(log, scratch, kept)


@SETTINGS
@given(data=st.data())
def test_a_zero_filled_tail_is_cut(template: Template, data: st.DataObject) -> None:
    name = template.files[-1]
    with Scratch(template) as scratch:
        size = scratch.path(name).stat().st_size
        start = data.draw(st.integers(0, size), label="zeros from")
        length = data.draw(st.integers(1, 9000), label="zeros")
        # What a torn write into a preallocated file leaves: zeros where the tail should be.
        with open(scratch.path(name), "r+b") as f:
            f.truncate(start)
            f.seek(start)
            f.write(b"\x00" * length)
        content = scratch.path(name).read_bytes()
        log = Log.open(scratch.directory, CONFIG, recovery_point=0)
        # Zeros never make a batch (magic 0), but a zero written over a zero changes nothing:
        # the batches kept are those whose bytes are still all there.
        kept = [b for b in template.batches if b.file < name]
        for batch in (b for b in template.batches if b.file == name):
            if content[batch.position : batch.end] != batch.data:
                break
            kept.append(batch)
        assert_recovered_to(log, scratch, kept)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_damage_anywhere_opens_or_goes_offline_and_reads_raise_only_storage_errors(
    template: Template, data: st.DataObject
) -> None:
    recovery_point = data.draw(st.integers(0, template.batches[-1].next_offset + 5))
    with Scratch(template) as scratch:
        for _ in range(data.draw(st.integers(1, 4))):
            name = data.draw(st.sampled_from(sorted(p.name for p in scratch.directory.iterdir())))
            path = scratch.path(name)
            content = bytearray(path.read_bytes())
            if content and data.draw(st.booleans()):
                at = data.draw(st.integers(0, len(content) - 1))
                content[at] ^= data.draw(st.integers(1, 255))
            else:
                del content[data.draw(st.integers(0, len(content))) :]
            path.write_bytes(bytes(content))
        log = Log.open(scratch.directory, CONFIG, recovery_point=recovery_point)
        try:
            read_everything(log)
            log.offset_for_timestamp(T0 + 40)
        except KafkaStorageError:
            assert log.offline is not None
        log.close()


@SETTINGS
@given(data=st.data())
def test_an_unclean_stop_with_any_entries_of_a_preallocated_index_lost_recovers_the_same_indexes(
    template: Template, data: st.DataObject
) -> None:
    """What ``kill -9`` (or a power cut) may leave of the active segment's preallocated index
    files: the first entries, then zeros where a page never reached the disk, then whatever
    was there (entries of a longer log this one was truncated from), zeros to the file's
    preallocated length. Recovery reads up to the first zero entry only, and the log and its
    indexes come out as the clean template's."""
    active = template.files[-1].removesuffix(".log")
    recovery_point = data.draw(st.sampled_from([0, *(b.base_offset for b in template.batches)]))
    with Scratch(template) as scratch:
        for suffix, size in ((".index", OFFSET_ENTRY_SIZE), (".timeindex", TIME_ENTRY_SIZE)):
            path = scratch.path(active + suffix)
            entries = path.read_bytes()
            count = len(entries) // size
            kept = data.draw(st.integers(0, count), label=f"{suffix} entries kept")
            hole = data.draw(st.integers(0, 3), label=f"{suffix} zero entries")
            stale = data.draw(st.binary(max_size=3 * size), label=f"{suffix} after the hole")
            with open(path, "r+b") as f:
                f.truncate(kept * size)
                f.seek((kept + hole) * size)
                f.write(stale if hole else b"")
                f.truncate(INDEX_PREALLOCATE_BYTES // size * size)
        log = Log.open(scratch.directory, CONFIG, recovery_point=recovery_point)
        assert log.offline is None
        assert log.log_end_offset == template.batches[-1].next_offset
        assert read_everything(log) == b"".join(b.data for b in template.batches)
        log.close()
        for path in sorted(template.directory.glob("*index")):
            assert scratch.path(path.name).read_bytes() == path.read_bytes(), path.name
