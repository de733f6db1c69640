"""Kafka's checkpoint files: byte layout, round trips, and clear errors for damaged files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from storage.checkpoints import (
    CleanShutdownFile,
    LeaderEpochCheckpointFile,
    OffsetCheckpointFile,
    PartitionMetadataFile,
)
from storage.errors import CorruptCheckpointError, KafkaStorageError

TOPIC_ID = "MkU3OEVBNTcwNTJENDM2Qg"


# -- offset checkpoints ------------------------------------------------------------------------


def test_offset_checkpoint_is_written_sorted_in_kafkas_layout(tmp_path: Path) -> None:
    path = tmp_path / "recovery-point-offset-checkpoint"
    OffsetCheckpointFile(path).write({("news", 1): 7, ("log_topic", 0): 12, ("news", 0): 3})
    assert path.read_text() == "0\n3\nlog_topic 0 12\nnews 0 3\nnews 1 7\n"


def test_offset_checkpoint_round_trips(tmp_path: Path) -> None:
    f = OffsetCheckpointFile(tmp_path / "replication-offset-checkpoint")
    offsets = {("a", 0): 0, ("a.b-c_d", 12): 2**63 - 1, ("__consumer_offsets", 49): 5}
    f.write(offsets)
    assert f.read() == offsets
    f.write({})
    assert f.read() == {}
    assert f.path.read_text() == "0\n0\n"


def test_missing_offset_checkpoint_reads_as_empty(tmp_path: Path) -> None:
    assert OffsetCheckpointFile(tmp_path / "log-start-offset-checkpoint").read() == {}


def test_offset_checkpoint_reads_kafkas_whitespace_runs(tmp_path: Path) -> None:
    path = tmp_path / "cp"
    path.write_text("0\n1\nnews\t0   5\n")
    assert OffsetCheckpointFile(path).read() == {("news", 0): 5}


def test_an_empty_offset_checkpoint_reads_as_empty_as_kafkas_does(tmp_path: Path) -> None:
    # Kafka's CheckpointFile creates the file empty; cleaner-offset-checkpoint stays so until
    # a log is cleaned (what a Kafka 4.4.0 broker leaves: 0 bytes).
    path = tmp_path / "cleaner-offset-checkpoint"
    path.write_bytes(b"")
    assert OffsetCheckpointFile(path).read() == {}


def test_create_if_missing_makes_an_empty_file_and_keeps_an_existing_one(tmp_path: Path) -> None:
    f = OffsetCheckpointFile(tmp_path / "cp")
    f.create_if_missing()
    assert f.path.read_bytes() == b""
    f.write({("news", 0): 3})
    f.create_if_missing()
    assert f.read() == {("news", 0): 3}


def test_offset_checkpoint_write_refuses_a_name_with_a_space(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        OffsetCheckpointFile(tmp_path / "cp").write({("bad name", 0): 1})
    with pytest.raises(ValueError):
        OffsetCheckpointFile(tmp_path / "cp").write({("t", 0): -1})
    assert not (tmp_path / "cp").exists()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("\n", 2, "version line"),
        ("0\n", 2, "version line"),
        ("1\n0\n", 1, "version 0"),
        ("x\n0\n", 1, "version"),
        ("0\n2\nnews 0 1\n", 2, "says 2 entries, found 1"),
        ("0\n1\nnews 0 1\nnews 1 2\n", 2, "says 1 entries, found 2"),
        ("0\n1\nnews 0\n", 3, "<topic> <partition> <offset>"),
        ("0\n1\nnews 0 1 2\n", 3, "<topic> <partition> <offset>"),
        ("0\n1\nnews zero 1\n", 3, "partition"),
        ("0\n1\nnews 0 -4\n", 3, "offset"),
        ("0\n1\nnews 0 1e3\n", 3, "offset"),
        ("0\n1\nn/ws 0 1\n", 3, "topic name"),
        ("0\n2\nnews 0 1\n\n", 4, "found ''"),
    ],
)
def test_malformed_offset_checkpoint_names_file_and_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    path = tmp_path / "recovery-point-offset-checkpoint"
    path.write_text(text)
    with pytest.raises(CorruptCheckpointError) as info:
        OffsetCheckpointFile(path).read()
    err = info.value
    assert isinstance(err, KafkaStorageError)
    assert err.path == str(path)
    assert err.line == line
    assert str(path) in str(err) and f"line {line}" in str(err)
    assert words in str(err)


def test_offset_checkpoint_that_is_not_utf8_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "cp"
    path.write_bytes(b"0\n1\nnews\xff 0 1\n")
    with pytest.raises(CorruptCheckpointError) as info:
        OffsetCheckpointFile(path).read()
    assert info.value.line == 3


# -- leader epoch checkpoint -------------------------------------------------------------------


def test_leader_epoch_checkpoint_layout_and_round_trip(tmp_path: Path) -> None:
    f = LeaderEpochCheckpointFile(tmp_path / "leader-epoch-checkpoint")
    f.write([(0, 0), (3, 120), (4, 200)])
    assert f.path.read_text() == "0\n3\n0 0\n3 120\n4 200\n"
    assert f.read() == [(0, 0), (3, 120), (4, 200)]


def test_missing_leader_epoch_checkpoint_reads_as_empty(tmp_path: Path) -> None:
    assert LeaderEpochCheckpointFile(tmp_path / "leader-epoch-checkpoint").read() == []


@pytest.mark.parametrize(
    ("text", "line"),
    [("0\n1\n3\n", 3), ("0\n1\n3 x\n", 3), ("0\n1\n-3 0\n", 3), ("0\n1\n3 4 5\n", 3)],
)
def test_malformed_leader_epoch_checkpoint_names_the_line(
    tmp_path: Path, text: str, line: int
) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    path.write_text(text)
    with pytest.raises(CorruptCheckpointError) as info:
        LeaderEpochCheckpointFile(path).read()
    assert info.value.line == line
    assert str(path) in str(info.value)


def test_leader_epoch_checkpoint_write_refuses_negative_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LeaderEpochCheckpointFile(tmp_path / "e").write([(0, -1)])


# -- partition.metadata ------------------------------------------------------------------------


def test_partition_metadata_layout_and_round_trip(tmp_path: Path) -> None:
    f = PartitionMetadataFile(tmp_path / "partition.metadata")
    f.write(TOPIC_ID)
    # Kafka's PartitionMetadata.encode: no line end after the id, 43 bytes.
    assert f.path.read_bytes() == f"version: 0\ntopic_id: {TOPIC_ID}".encode()
    assert f.path.stat().st_size == 43
    assert f.read() == TOPIC_ID


def test_partition_metadata_with_a_final_newline_reads_too(tmp_path: Path) -> None:
    path = tmp_path / "partition.metadata"
    path.write_text(f"version: 0\ntopic_id: {TOPIC_ID}\n")  # as we wrote it before
    assert PartitionMetadataFile(path).read() == TOPIC_ID


def test_missing_partition_metadata_reads_as_none(tmp_path: Path) -> None:
    assert PartitionMetadataFile(tmp_path / "partition.metadata").read() is None


def test_partition_metadata_write_refuses_a_bad_id(tmp_path: Path) -> None:
    f = PartitionMetadataFile(tmp_path / "partition.metadata")
    for bad in ["short", "AAAAAAAAAAAAAAAAAAAAAA", TOPIC_ID + "A"]:
        with pytest.raises(ValueError):
            f.write(bad)
    assert not f.path.exists()


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("", 1),
        ("version 0\ntopic_id: " + TOPIC_ID + "\n", 1),
        ("version: 1\ntopic_id: " + TOPIC_ID + "\n", 1),
        ("version: 0\n", 2),
        ("version: 0\ntopicid: " + TOPIC_ID + "\n", 2),
        ("version: 0\ntopic_id: not-an-id\n", 2),
        ("version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n", 2),
        ("version: 0\ntopic_id: " + TOPIC_ID + "\nextra\n", 3),
    ],
)
def test_malformed_partition_metadata_names_the_line(tmp_path: Path, text: str, line: int) -> None:
    path = tmp_path / "partition.metadata"
    path.write_text(text)
    with pytest.raises(CorruptCheckpointError) as info:
        PartitionMetadataFile(path).read()
    assert info.value.line == line
    assert str(path) in str(info.value)


def test_partition_metadata_without_final_newline_reads(tmp_path: Path) -> None:
    path = tmp_path / "partition.metadata"
    path.write_text(f"version: 0\ntopic_id: {TOPIC_ID}")
    assert PartitionMetadataFile(path).read() == TOPIC_ID


def test_unreadable_checkpoint_raises_os_error(tmp_path: Path) -> None:
    path = tmp_path / "cp"
    os.mkdir(path)  # a directory where the file should be
    with pytest.raises(OSError):
        OffsetCheckpointFile(path).read()


# -- .kafka_cleanshutdown ----------------------------------------------------------------------


def test_clean_shutdown_file_is_kafkas_json_without_a_line_end(tmp_path: Path) -> None:
    f = CleanShutdownFile(tmp_path)
    assert not f.exists() and f.read_broker_epoch() is None
    f.write(11)
    # What a Kafka 4.4.0 broker writes (CleanShutdownFileHandler): 30 bytes.
    assert (tmp_path / ".kafka_cleanshutdown").read_bytes() == b'{"version":0,"brokerEpoch":11}'
    assert f.exists() and f.read_broker_epoch() == 11
    assert f.delete() is True
    assert not f.exists() and f.delete() is False


@pytest.mark.parametrize("text", [b"", b"{", b'{"version":0}', b'{"brokerEpoch":"x"}', b"[]"])
def test_a_clean_shutdown_file_that_does_not_parse_has_no_epoch(
    tmp_path: Path, text: bytes
) -> None:
    (tmp_path / ".kafka_cleanshutdown").write_bytes(text)
    f = CleanShutdownFile(tmp_path)
    assert f.exists() and f.read_broker_epoch() is None
