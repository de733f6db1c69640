"""The pure parts of scripts/bench_cleaner.py: the workload (the same bytes every time, and
the same records KafkaProbe.java makes), the reading of Kafka's cleaner stats and of
DumpLogSegments' output, Kafka's offset checkpoints, our log read back as the probe prints
it, and the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.bench import cleaner_stats, kafka_check
from scripts.bench.cleaner_stats import (
    CleanStats,
    DumpFindings,
    combined,
    dump_stderr_findings,
    dump_stdout_findings,
    figures_of,
    kafka_clean_stats,
    render,
    throttle_label,
)
from scripts.bench.cleaner_workload import Workload, draw
from scripts.bench.kafka_check import (
    file_unchanged,
    log_extent,
    log_records,
    record_line,
    with_checkpoint_entry,
)
from scripts.bench.parse import ParseError
from scripts.bench_cleaner import (
    MIB,
    main,
    ours_clean,
    same_records,
    same_segments,
    write_ours,
)
from storage.batch import build_batch

# A stats block as Kafka 4.4.0's cleaner logged it in a run of the harness (100,000 records,
# 10,000 keys, 1 MiB segments), with the line before it and the logger's name after it.
KAFKA_CLEANER_LOG = """\
[2026-12-06 11:33:07,938] INFO Cleaner 0: Swapping in cleaned segment LogSegment(baseOffset=88000, size=691862, lastModifiedTime=1796556786372, largestRecordTimestamp=1767225695999) for segment(s) [LogSegment(baseOffset=88000, size=975304, lastModifiedTime=1796556786372, largestRecordTimestamp=1767225695999)] in log Log(dir=/tmp/e_scratch/run1/kafka/kafka-1/data/bench-0, topicId=jajZFeVSQwK6MQVcNGbD9w, topic=bench, partition=0, highWatermark=100000, lastStableOffset=100000, logStartOffset=0, logEndOffset=100000) (org.apache.kafka.storage.internals.log.Cleaner)
[2026-12-06 11:33:07,944] INFO [kafka-log-cleaner-thread-0]: 
\tLog cleaner thread 0 cleaned log bench-0 (dirty section = [0, 96000])
\t11.2 MB of log processed in 0.3 seconds (34.6 MB/sec).
\tIndexed 11.2 MB in 0.2 seconds (73.4 Mb/sec, 47.1% of total time)
\tBuffer utilization: 0.2%
\tCleaned 11.2 MB in 0.2 seconds (65.3 Mb/sec, 52.9% of total time)
\tStart size: 11.2 MB (96,000 messages)
\tEnd size: 1.2 MB (10,000 messages)
\t89.2% size reduction (89.6% fewer messages)
 (org.apache.kafka.storage.internals.log.LogCleaner$CleanerThread)
[2026-12-06 11:33:22,619] INFO Terminating process due to signal SIGTERM (org.apache.kafka.common.utils.internals.LoggingSignalHandler)
"""  # noqa: E501, W291


# -- the workload ----------------------------------------------------------------------------


def test_workload_keys_are_the_ones_kafka_probe_computes() -> None:
    # KafkaProbe.draw(1, i, 0) and "key-%08d" of it modulo 1000, printed by the JVM for i < 6.
    workload = Workload(records=6, keys=1000)
    assert draw(1, 0, 0) == 10451216379200822465
    assert [workload.key(i) for i in range(6)] == [
        b"key-00000465", b"key-00000590", b"key-00000761",
        b"key-00000045", b"key-00000520", b"key-00000737",
    ]  # fmt: skip


def test_workload_batches_are_the_same_bytes_every_time() -> None:
    def batches(w: Workload) -> list[bytes]:
        return [build_batch(b, base_offset=i * w.batch_records) for i, b in enumerate(w.batches())]

    first = Workload(records=2500, keys=300, tombstone_share=0.2, batch_records=1000, seed=7)
    again = Workload(records=2500, keys=300, tombstone_share=0.2, batch_records=1000, seed=7)
    other_seed = Workload(records=2500, keys=300, tombstone_share=0.2, batch_records=1000, seed=8)
    assert batches(first) == batches(again)
    assert batches(first) != batches(other_seed)
    assert [len(b) for b in first.batches()] == [1000, 1000, 500]
    assert first.batch_count == 3


def test_workload_records_carry_their_index_timestamp_and_tombstone_share() -> None:
    w = Workload(records=4000, keys=50, value_bytes=20, tombstone_share=0.25)
    records = [r for batch in w.batches() for r in batch]
    assert [r.timestamp - w.base_timestamp_ms for r in records] == list(range(4000))
    assert all(r == w.record(i) for i, r in enumerate(records))
    live = [(i, r.value) for i, r in enumerate(records) if r.value is not None]
    assert all(v == i.to_bytes(8, "big") + b"." * 12 for i, v in live)
    tombstones = 4000 - len(live)
    assert 850 < tombstones < 1150  # a quarter, give or take the draws
    assert len({r.key for r in records}) == 50
    no_tombstones = Workload(records=500, keys=5, tombstone_share=0.0)
    assert not any(r.value is None for b in no_tombstones.batches() for r in b)
    assert all(
        r.value is None for b in Workload(records=500, tombstone_share=1.0).batches() for r in b
    )


def test_max_batch_bytes_bounds_a_real_batch() -> None:
    w = Workload(records=1000, keys=10**9, value_bytes=300, batch_records=1000)
    batch = build_batch(next(w.batches()), base_offset=0)
    assert len(batch) <= w.max_batch_bytes()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"records": 0}, "--records"),
        ({"keys": 0}, "--keys"),
        ({"value_bytes": 7}, "--value-bytes"),
        ({"tombstone_share": 1.5}, "--tombstones"),
        ({"batch_records": 0}, "--batch-records"),
        ({"seed": -1}, "--seed"),
        ({"batch_records": 100_000, "value_bytes": 1000}, "fewer --batch-records"),
    ],
)
def test_workload_refuses_bad_parameters_naming_the_flag(
    kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Workload(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--segment-bytes", "65536"], "Kafka 4.4 refuses segment.bytes below 1048576"),
        (["--only", "redpanda"], "--only takes kafka, ours or both"),
        (["--keys", "0"], "--keys must be at least 1"),
        (["--only", "ours", "--throttle-mib", "-1"], "--throttle-mib must be 0 or more"),
    ],
)
def test_bad_flags_are_refused_before_anything_runs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_probe_args_are_in_the_probes_order() -> None:
    w = Workload(records=5, keys=3, value_bytes=9, tombstone_share=0.5, batch_records=2, seed=4)
    assert w.probe_args() == ["5", "3", "9", "0.5", "2", "4", str(w.base_timestamp_ms)]


# -- our log, written and read back ----------------------------------------------------------


def test_our_log_is_written_the_same_each_time_and_read_back_as_the_probe_prints(
    tmp_path: Path,
) -> None:
    w = Workload(records=3000, keys=100, tombstone_share=0.1, batch_records=250)
    write_ours(tmp_path / "a" / "t-0", w, 64 * 1024)
    write_ours(tmp_path / "b" / "t-0", w, 64 * 1024)
    same, detail = same_segments(tmp_path / "a" / "t-0", tmp_path / "b" / "t-0")
    assert same, detail
    lines = list(log_records(tmp_path / "a" / "t-0"))
    assert len(lines) == 3000
    first = w.record(0)
    assert first.key is not None and first.value is not None
    assert lines[0] == record_line(0, first.timestamp, first.key, first.value)
    assert lines[0] == f"record 0 {first.timestamp} x{first.key.hex()} x{first.value.hex()}"
    tombstone = next(i for i in range(3000) if w.is_tombstone(i))
    assert lines[tombstone].endswith(" -")
    assert log_extent(tmp_path / "a" / "t-0").start_offset == 0
    assert log_extent(tmp_path / "a" / "t-0").end_offset == 3000


def test_same_segments_names_the_first_file_that_differs(tmp_path: Path) -> None:
    w = Workload(records=600, keys=10, batch_records=100)
    write_ours(tmp_path / "a" / "t-0", w, 16 * 1024)
    write_ours(tmp_path / "b" / "t-0", w, 16 * 1024)
    segment = sorted((tmp_path / "b" / "t-0").glob("*.log"))[1]
    data = bytearray(segment.read_bytes())
    data[-1] ^= 1
    segment.write_bytes(bytes(data))
    assert same_segments(tmp_path / "a" / "t-0", tmp_path / "b" / "t-0") == (
        False,
        f"{segment.name} differs",
    )


def test_our_clean_keeps_each_keys_latest_record_below_the_active_segment(tmp_path: Path) -> None:
    w = Workload(records=6000, keys=200, tombstone_share=0.05, batch_records=100)
    partition = tmp_path / "t-0"
    write_ours(partition, w, 48 * 1024)
    active_base = int(sorted(partition.glob("*.log"))[-1].stem)
    stats, after = ours_clean(partition, w, 48 * 1024, None)
    assert (stats.first_dirty_offset, stats.end_offset) == (0, active_base)
    assert stats.start_records == active_base
    latest = {w.key(i): i for i in range(active_base)}
    kept = sorted(latest.values()) + list(range(active_base, w.records))
    assert stats.end_records == len(latest)  # tombstones stay until their delete horizon
    assert list(log_records(partition)) == [
        record_line(i, w.base_timestamp_ms + i, w.key(i), w.value(i)) for i in kept
    ]
    assert after == sum(p.stat().st_size for p in partition.glob("*.log"))
    assert log_extent(partition).end_offset == w.records


def test_our_throttled_clean_keeps_the_same_records(tmp_path: Path) -> None:
    w = Workload(records=3000, keys=100, batch_records=100)
    write_ours(tmp_path / "a" / "t-0", w, 32 * 1024)
    write_ours(tmp_path / "b" / "t-0", w, 32 * 1024)
    ours_clean(tmp_path / "a" / "t-0", w, 32 * 1024, None)
    ours_clean(tmp_path / "b" / "t-0", w, 32 * 1024, 64 * MIB)
    verdict = same_records(tmp_path / "a" / "t-0", tmp_path / "b" / "t-0")
    assert verdict.startswith("identical, ")


def test_same_records_names_where_two_logs_part(tmp_path: Path) -> None:
    write_ours(tmp_path / "a" / "t-0", Workload(records=300, keys=10, seed=1), 1 << 20)
    write_ours(tmp_path / "b" / "t-0", Workload(records=300, keys=10, seed=2), 1 << 20)
    assert same_records(tmp_path / "a" / "t-0", tmp_path / "b" / "t-0").startswith(
        "differ after 0 records: ours 'record 0 "
    )


def test_a_file_is_unchanged_when_equal_or_only_grown_by_zeros_where_allowed(
    tmp_path: Path,
) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.write_bytes(b"\x00\x01entries")
    theirs.write_bytes(b"\x00\x01entries")
    assert file_unchanged(ours, theirs, grown_ok=False)
    theirs.write_bytes(b"\x00\x01entries" + bytes(64))
    assert not file_unchanged(ours, theirs, grown_ok=False)
    assert file_unchanged(ours, theirs, grown_ok=True)
    theirs.write_bytes(b"\x00\x01entries" + bytes(8) + b"\x01")
    assert not file_unchanged(ours, theirs, grown_ok=True)
    assert not file_unchanged(ours, tmp_path / "missing", grown_ok=True)


def test_kafka_check_refuses_a_directory_without_segments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "t-0").mkdir()
    assert kafka_check.main([str(tmp_path / "t-0")]) == 2
    assert "is not a partition directory" in capsys.readouterr().err


def test_offset_checkpoint_entry_is_replaced_or_added() -> None:
    text = "0\n2\nother 0 5\nbench 0 0\n"
    assert with_checkpoint_entry(text, "bench", 0, 42) == "0\n2\nother 0 5\nbench 0 42\n"
    assert with_checkpoint_entry("0\n0\n", "bench", 1, 7) == "0\n1\nbench 1 7\n"
    with pytest.raises(ValueError, match="version 0"):
        with_checkpoint_entry("1\n0\n", "bench", 0, 1)
    with pytest.raises(ValueError, match="count"):
        with_checkpoint_entry("0\n3\nbench 0 0\n", "bench", 0, 1)


# -- Kafka's cleaner stats -------------------------------------------------------------------


def test_kafka_cleaner_stats_block_is_read_with_its_thousands_separators() -> None:
    (stats,) = kafka_clean_stats(KAFKA_CLEANER_LOG, "bench-0")
    assert stats == CleanStats(
        log="bench-0",
        first_dirty_offset=0,
        end_offset=96000,
        mb_processed=11.2,
        seconds=0.3,
        mb_per_s=34.6,
        start_mb=11.2,
        start_records=96000,
        end_mb=1.2,
        end_records=10000,
    )
    assert kafka_clean_stats(KAFKA_CLEANER_LOG, "other-0") == []


def test_two_rounds_of_a_clean_combine_into_sums_and_the_rate_of_the_sums() -> None:
    second = (
        KAFKA_CLEANER_LOG.replace("[0, 96000]", "[96000, 1096000]")
        .replace("11.2 MB of log processed in 0.3", "1,011.2 MB of log processed in 2.7")
        .replace("(96,000 messages)", "(1,000,000 messages)")
    )
    both = kafka_clean_stats(KAFKA_CLEANER_LOG + second)
    assert [s.end_offset for s in both] == [96000, 1096000]
    total = combined(both)
    assert total.mb_processed == pytest.approx(1022.4)
    assert total.seconds == pytest.approx(3.0)
    assert total.mb_per_s == pytest.approx(1022.4 / 3.0)
    assert total.start_records == 1_096_000
    assert total.end_offset == 1096000
    with pytest.raises(ParseError, match="cleaned log"):
        combined([])


# -- DumpLogSegments -------------------------------------------------------------------------


def test_dump_output_counts_batches_records_and_sanity_verdicts() -> None:
    stdout = [
        "Dumping /d/00000000000000008000.log\n",
        "Log starting offset: 8000\n",
        "baseOffset: 9000 lastOffset: 9999 count: 1 baseSequence: -1 lastSequence: -1 "
        "producerId: -1 producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false "
        "isControl: false deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: "
        "1767225609293 size: 183 magic: 2 compresscodec: none crc: 980175703 isvalid: true\n",
        "| offset: 9999 CreateTime: 1767225609999 keySize: 12 valueSize: 100 sequence: -1 "
        "headerKeys: [] key: key-00000001 payload: \x00\x00\n",
        "\x0f.......\n",  # the rest of a payload that held a newline
        "/d/00000000000000008000.index passed sanity check.\n",
    ]
    findings = DumpFindings()
    dump_stdout_findings(stdout, findings)
    assert (findings.files, findings.batches, findings.records, findings.sane_indexes) == (
        1,
        1,
        1,
        1,
    )
    assert findings.ok


def test_dump_errors_are_what_is_not_compactions_gaps() -> None:
    findings = DumpFindings()
    dump_stdout_findings(
        [
            "baseOffset: 0 lastOffset: 9 count: 10 position: 0 crc: 1 isvalid: false\n",
            "Found 17 invalid bytes at the end of 00000000000000000000.log\n",
        ],
        findings,
    )
    stderr = (
        "Non-consecutive offsets in /d/00000000000000064000.log\n"
        "  -1 is followed by 64017\n"
        "  64017 is followed by 64022\n"
        "[2026-12-06 11:40:00,000] WARN something about the JVM (x.y)\n"
        "Mismatches in :/d/00000000000000000000.index\n"
        "  Index offset: 1999, log offset: 2000\n"
    )
    dump_stderr_findings(stderr, 1, findings)
    assert findings.gaps == 1  # the tool's "-1 is followed by" (its first record) is no gap
    assert findings.errors == [
        "baseOffset: 0 lastOffset: 9 count: 10 position: 0 crc: 1 isvalid: false",
        "Found 17 invalid bytes at the end of 00000000000000000000.log",
        "Mismatches in :/d/00000000000000000000.index",
        "  Index offset: 1999, log offset: 2000",
        "DumpLogSegments exited 1",
    ]
    assert not findings.ok


# -- the table -------------------------------------------------------------------------------


def test_table_shows_both_sides_and_ratios_only_for_rate_and_time() -> None:
    kafka = CleanStats("t-0", 0, 900, 100.0, 4.0, 25.0, 100.0, 900, 10.0, 90)
    ours = CleanStats("t-0", 0, 900, 100.0, 2.0, 50.0, 100.0, 900, 10.5, 90)
    run = throttle_label(None)
    figures = {
        "kafka": {**figures_of(kafka, run), "log_bytes_before": 123456.0},
        "ours": figures_of(ours, run),
    }
    table = render(figures, [run]).splitlines()
    assert table[0] == "| figure | Kafka 4.4.0 | ours | ours/Kafka |"
    assert "| whole log before the clean, bytes | 123,456 | n/a | - |" in table
    assert "| no throttle: MB/s | 25.00 | 50.00 | 2.00 |" in table
    assert "| no throttle: time, s | 4.00 | 2.00 | 0.50 |" in table
    assert "| no throttle: cleaned section after, MB | 10.0 | 10.5 | - |" in table
    assert "| no throttle: whole log after, bytes | n/a | n/a | - |" in table


def test_throttle_labels() -> None:
    assert throttle_label(None) == "no throttle"
    assert throttle_label(10 * cleaner_stats.MIB) == "throttle 10 MiB/s"
    assert throttle_label(1_500_000) == "throttle 1,500,000 B/s"
