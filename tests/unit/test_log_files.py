"""What the disk view may list and read (storage.log_files): kinds by name, names that can only
mean a file of the directory, no links followed, the cluster secret never shown, and a file's
text exactly as kraft-dump-log prints it, with a closing line when it stopped short."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from storage.batch import NewRecord, build_batch
from storage.dump_log import main
from storage.log_files import (
    CHECKPOINT,
    CLEANER_OFFSET_CHECKPOINT,
    LEADER_EPOCH_CHECKPOINT,
    META_PROPERTIES,
    OFFSET_INDEX,
    OTHER,
    PARTITION_METADATA,
    PRODUCER_SNAPSHOT,
    RECOVERY_POINT_CHECKPOINT,
    REPLICATION_OFFSET_CHECKPOINT,
    SEGMENT,
    TEMPORARY,
    TIME_INDEX,
    TOPIC_CHECKPOINT_KINDS,
    TXN_INDEX,
    FileEntry,
    TextOptions,
    file_kind,
    find_file,
    is_plain_name,
    list_log_dir_files,
    list_partition_files,
    log_dir_file_kind,
    read_text,
    visible_entries,
    write_text,
)

REPO = Path(__file__).resolve().parents[2]
VECTORS = json.loads((REPO / "tests" / "data" / "kafka_v2_batches.json").read_text())
NEWS = bytes.fromhex(VECTORS["batches"][0]["hex"])  # 121 bytes, offsets 0..2
BASE = "00000000000000000000"


def second_batch() -> bytes:
    return build_batch([NewRecord(b"k", b"second", 1700000000003, ())], base_offset=3)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """A log directory as a broker keeps it, with one partition directory ``news-0``."""
    top = tmp_path / "kraft-combined-logs"
    part = top / "news-0"
    part.mkdir(parents=True)
    (top / "meta.properties").write_text("version=1\nnode.id=1\n")
    (top / "cluster.secret").write_text("do-not-show")
    (top / "recovery-point-offset-checkpoint").write_text("0\n1\nnews 0 4\n")
    (top / "weather-0").mkdir()
    (part / f"{BASE}.log").write_bytes(NEWS + second_batch())
    (part / f"{BASE}.index").write_bytes(b"")
    (part / f"{BASE}.timeindex").write_bytes(b"")
    (part / "leader-epoch-checkpoint").write_text("0\n1\n0 0\n")
    (part / "partition.metadata").write_text("version: 0\ntopic_id: x\n")
    return top


def text_of(path: Path, kind: str, options: TextOptions) -> str:
    out = io.StringIO()
    write_text(path, kind, options, out)
    return out.getvalue()


def tool_output(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    main(list(argv))
    captured = capsys.readouterr()
    return captured.out + captured.err


# -- kinds and names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        (f"{BASE}.log", SEGMENT),
        (f"{BASE}.index", OFFSET_INDEX),
        (f"{BASE}.timeindex", TIME_INDEX),
        (f"{BASE}.txnindex", TXN_INDEX),
        ("00000000000000000042.snapshot", PRODUCER_SNAPSHOT),
        ("leader-epoch-checkpoint", LEADER_EPOCH_CHECKPOINT),
        ("partition.metadata", PARTITION_METADATA),
        (f"{BASE}.log.cleaned", TEMPORARY),
        (f"{BASE}.index.swap", TEMPORARY),
        (f"{BASE}.log.deleted", TEMPORARY),
        (f"{BASE}.timeindex.replaced", TEMPORARY),
        (".leader-epoch-checkpoint.abc123.tmp", TEMPORARY),
        ("notes.log", OTHER),  # not named by a 20-digit base offset
        ("0000000000000000000.log", OTHER),  # 19 digits
        (f"{BASE}.bin", OTHER),
    ],
)
def test_a_partition_files_kind_comes_from_its_name(name: str, kind: str) -> None:
    assert file_kind(name) == kind


def test_only_meta_properties_and_checkpoints_are_the_log_dirs_files_to_show() -> None:
    assert log_dir_file_kind("meta.properties") == META_PROPERTIES
    assert log_dir_file_kind("recovery-point-offset-checkpoint") == RECOVERY_POINT_CHECKPOINT
    assert log_dir_file_kind("cleaner-offset-checkpoint") == CLEANER_OFFSET_CHECKPOINT
    assert log_dir_file_kind("some-new-checkpoint") == CHECKPOINT
    for hidden in ("cluster.secret", "news-0", "__cluster_metadata-0", "quorum-state", "x"):
        assert log_dir_file_kind(hidden) is None


@pytest.mark.parametrize(
    "name", ["", ".", "..", "../meta.properties", "a/b", "/etc/passwd", "a\0b", "x" * 256]
)
def test_a_name_that_could_leave_the_directory_is_not_plain(name: str) -> None:
    assert not is_plain_name(name)


def test_ordinary_file_names_are_plain() -> None:
    for name in (f"{BASE}.log", "..log", "a..b", "x" * 255, ".hidden.tmp"):
        assert is_plain_name(name)


# -- listings -----------------------------------------------------------------------------------


def test_a_partition_directory_lists_its_regular_files_sorted_as_ls_in_the_c_locale(
    log_dir: Path,
) -> None:
    part = log_dir / "news-0"
    (part / "00000000000000000007.log").write_bytes(b"")
    (part / "Zeta").write_bytes(b"z")  # upper case sorts before digits' followers in C
    (part / "subdir").mkdir()
    (part / "link.log").symlink_to(log_dir / "cluster.secret")
    files = list_partition_files(part)
    assert [f.name for f in files] == [
        f"{BASE}.index",
        f"{BASE}.log",
        f"{BASE}.timeindex",
        "00000000000000000007.log",
        "Zeta",
        "leader-epoch-checkpoint",
        "partition.metadata",
    ]
    by_name = {f.name: f for f in files}
    assert by_name[f"{BASE}.log"] == FileEntry(f"{BASE}.log", len(NEWS + second_batch()), SEGMENT)
    assert by_name["Zeta"].kind == OTHER


def test_the_log_directory_lists_neither_the_secret_nor_partition_directories(
    log_dir: Path,
) -> None:
    (log_dir / "replication-offset-checkpoint-link").symlink_to(log_dir / "cluster.secret")
    assert [f.to_json() for f in list_log_dir_files(log_dir)] == [
        {"name": "meta.properties", "size": 20, "kind": "meta_properties"},
        {
            "name": "recovery-point-offset-checkpoint",
            "size": 13,
            "kind": "recovery_point_checkpoint",
        },
    ]


def test_a_missing_partition_directory_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list_partition_files(tmp_path / "gone-0")


def test_find_file_finds_only_what_a_listing_shows(log_dir: Path) -> None:
    part = log_dir / "news-0"
    found = find_file(part, log_dir, f"{BASE}.log")
    assert found is not None and found[0] == part / f"{BASE}.log" and found[1].kind == SEGMENT
    found = find_file(part, log_dir, "meta.properties")
    assert found is not None and found[0] == log_dir / "meta.properties"
    assert found[1].kind == META_PROPERTIES
    (part / "evil").symlink_to(log_dir / "cluster.secret")
    for name in (
        "cluster.secret",
        "../cluster.secret",
        "../meta.properties",
        "..",
        "nope.log",
        "evil",
        "weather-0",
        "news-0",
    ):
        assert find_file(part, log_dir, name) is None, name


# -- a file's text ------------------------------------------------------------------------------


def test_a_segment_reads_exactly_as_the_tool_prints_it(
    log_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    segment = log_dir / "news-0" / f"{BASE}.log"
    for options, flags in (
        (TextOptions(max_bytes=1 << 20), []),
        (TextOptions(max_bytes=1 << 20, print_data=True), ["--print-data-log"]),
        (TextOptions(max_bytes=1 << 20, deep_iteration=True), ["--deep-iteration"]),
    ):
        text = text_of(segment, SEGMENT, options)
        assert text == tool_output(capsys, "--files", str(segment), *flags)
    assert "payload: second" in text_of(segment, SEGMENT, TextOptions(1 << 20, print_data=True))


def test_the_offsets_decoder_implies_print_data_as_on_the_command_line() -> None:
    options = TextOptions(max_bytes=10, offsets_decoder=True).dump_options()
    assert (options.print_data, options.deep, options.offsets_decoder) == (True, True, True)
    options = TextOptions(max_bytes=10, print_data=True).dump_options()
    assert (options.print_data, options.deep, options.max_bytes) == (True, True, 10)


def test_max_bytes_stops_after_the_batches_that_fit_and_the_text_says_where(
    log_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    segment = log_dir / "news-0" / f"{BASE}.log"
    size = segment.stat().st_size
    text = text_of(segment, SEGMENT, TextOptions(max_bytes=len(NEWS) + 10))
    tool = tool_output(capsys, "--files", str(segment), "--max-bytes", str(len(NEWS) + 10))
    assert text == tool + (
        f"Stopped at byte {len(NEWS)} of {size}: the next batch ends past "
        f"max_bytes={len(NEWS) + 10}; a larger max_bytes reads on.\n"
    )


def test_max_bytes_ending_exactly_at_a_batch_end_says_so_too(log_dir: Path) -> None:
    segment = log_dir / "news-0" / f"{BASE}.log"
    lines = text_of(segment, SEGMENT, TextOptions(max_bytes=len(NEWS))).splitlines()
    assert len(lines) == 4  # Dumping, Log starting offset, the first batch, the note
    assert lines[-1].startswith(f"Stopped at byte {len(NEWS)} of {segment.stat().st_size}: ")


def test_a_whole_file_read_has_no_closing_note(log_dir: Path) -> None:
    segment = log_dir / "news-0" / f"{BASE}.log"
    text = text_of(segment, SEGMENT, TextOptions(max_bytes=segment.stat().st_size))
    assert "Stopped" not in text


def test_a_half_written_last_batch_is_named_in_the_closing_note(log_dir: Path) -> None:
    segment = log_dir / "news-0" / f"{BASE}.log"
    whole = NEWS + second_batch()
    segment.write_bytes(whole[:-7])  # as a reader may find a batch being appended
    lines = text_of(segment, SEGMENT, TextOptions(max_bytes=1 << 20)).splitlines()
    left = len(whole) - 7 - len(NEWS)
    assert lines[-3] == f"Found {left} invalid bytes at the end of {segment.name}"
    assert lines[-2].startswith(f"Corrupt tail in {segment} at position {len(NEWS)}: ")
    assert lines[-1] == (
        f"Stopped at byte {len(NEWS)} of {len(whole) - 7}: the last {left} bytes are not a "
        "whole batch (one being appended as the file was read, or a write cut short)."
    )


def test_checkpoints_and_properties_read_as_their_own_text(log_dir: Path) -> None:
    part = log_dir / "news-0"
    options = TextOptions(max_bytes=1 << 20)
    assert text_of(part / "leader-epoch-checkpoint", LEADER_EPOCH_CHECKPOINT, options) == (
        "0\n1\n0 0\n"
    )
    assert text_of(log_dir / "meta.properties", META_PROPERTIES, options) == (
        "version=1\nnode.id=1\n"
    )


def test_a_text_file_longer_than_max_bytes_is_cut_with_a_note(log_dir: Path) -> None:
    path = log_dir / "recovery-point-offset-checkpoint"
    assert text_of(path, RECOVERY_POINT_CHECKPOINT, TextOptions(max_bytes=5)) == (
        "0\n1\nn\nStopped at byte 5 of 13: max_bytes=5.\n"
    )


def test_a_file_gone_or_turned_into_a_link_is_not_read(log_dir: Path) -> None:
    part = log_dir / "news-0"
    os.remove(part / "leader-epoch-checkpoint")
    (part / "leader-epoch-checkpoint").symlink_to(log_dir / "cluster.secret")
    text = text_of(part / "leader-epoch-checkpoint", LEADER_EPOCH_CHECKPOINT, TextOptions(100))
    assert text.startswith(f"Cannot read {part / 'leader-epoch-checkpoint'}: ")
    assert "do-not-show" not in text
    gone = part / f"{BASE}.log"
    os.remove(gone)
    assert text_of(gone, SEGMENT, TextOptions(100)) == (
        f"Dumping {gone}\nLog starting offset: 0\nCannot read {gone}: No such file or directory\n"
    )


def test_a_kind_without_a_text_of_its_own_gets_the_tools_answer(
    log_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = log_dir / "news-0" / f"{BASE}.log.cleaned"
    path.write_bytes(NEWS)
    text = text_of(path, TEMPORARY, TextOptions(1 << 20))
    assert text == tool_output(capsys, "--files", str(path))
    assert text == f"Dumping {path}\nIgnoring unknown file {path}\n"


def test_only_the_log_directorys_checkpoints_are_cut_to_the_requesters_topics() -> None:
    assert RECOVERY_POINT_CHECKPOINT in TOPIC_CHECKPOINT_KINDS
    assert CLEANER_OFFSET_CHECKPOINT in TOPIC_CHECKPOINT_KINDS
    assert CHECKPOINT in TOPIC_CHECKPOINT_KINDS
    # A partition's own files speak of that partition only.
    assert LEADER_EPOCH_CHECKPOINT not in TOPIC_CHECKPOINT_KINDS
    assert META_PROPERTIES not in TOPIC_CHECKPOINT_KINDS


def test_a_checkpoint_keeps_the_entries_of_topics_one_may_describe_and_says_how_many_went(
    tmp_path: Path,
) -> None:
    path = tmp_path / "replication-offset-checkpoint"
    path.write_text("0\n3\nnews 0 7\nvault 0 4\nvault 1 9\n")
    text = read_text(path, REPLICATION_OFFSET_CHECKPOINT, TextOptions(max_bytes=1 << 20))
    assert visible_entries(text, lambda topic: topic == "news") == (
        "0\n3\nnews 0 7\n(2 lines left out: they are not about topics you may describe)\n"
    )


def test_a_checkpoint_with_every_topic_visible_reads_unchanged() -> None:
    text = "0\n2\nnews 0 7\nvault 0 4\n"
    assert visible_entries(text, lambda topic: True) == text


def test_a_line_cut_by_max_bytes_is_left_out_and_the_closing_note_stays() -> None:
    # "vau" could be the start of a topic one may not see.
    text = "0\n2\nnews 0 7\nvau\nStopped at byte 17 of 26: max_bytes=17.\n"
    assert visible_entries(text, lambda topic: topic == "news") == (
        "0\n2\nnews 0 7\nStopped at byte 17 of 26: max_bytes=17.\n"
        "(1 line left out: they are not about topics you may describe)\n"
    )


def test_an_unreadable_checkpoint_keeps_its_cannot_read_line() -> None:
    text = "Cannot read /x/replication-offset-checkpoint: No such file or directory\n"
    assert visible_entries(text, lambda topic: False) == text
