"""``kraft-dump-log``: Kafka's ``kafka-dump-log.sh`` (DumpLogSegments) for our segment files.

    kraft-dump-log --files F[,F2...] [--print-data-log] [--deep-iteration] [--max-bytes N]
                   [--skip-record-metadata] [--verify-index-only] [--index-sanity-check]
                   [--offsets-decoder]

Output matches Kafka's line for line (the ``.log`` lines checked against Kafka 4.4.0): for a
``.log``, ``Dumping <file>``, ``Log starting offset: <base>``, one ``baseOffset: ... isvalid:
true`` line per batch and, with ``--deep-iteration`` or ``--print-data-log``, one ``| offset:
...`` line per record (its key and payload as UTF-8 text with ``--print-data-log``); for a
``.index``, ``offset: N position: P``;
for a ``.timeindex``, ``timestamp: T offset: N``; for a producer snapshot (``.snapshot``), one
``producerId: ... lastTimestamp: ...`` line per producer, with its last batch. Like Kafka, an
index dump stops at the first zero entry after the first (a preallocated tail) and
offset-index entries are checked against the ``.log`` beside them (``Mismatches in :<file>``
on stderr). With ``--offsets-decoder`` (which implies ``--print-data-log``) the keys and
payloads of ``__consumer_offsets`` records are printed as Kafka's JSON
(:mod:`storage.offsets_decoder`), and a record that does not parse, has no key, or that our
group coordinator would not load gets a line on stderr too.

Compacted segments print as Kafka's: a batch keeps the base and last offsets it was written
with while records inside it are gone (``count`` below ``lastOffset - baseOffset + 1``), an
emptied batch kept for its producer's sequence shows ``count: 0``, and a batch of tombstones
under a delete horizon shows ``deleteHorizonMs: OptionalLong[<ms>]``. With
``--deep-iteration``, offsets that do not follow each other are listed at the end on stderr
(``Non-consecutive offsets in <absolute path>``, then ``  A is followed by B``) as Kafka 4.4
lists them: counted from -1, so a segment whose first record is not offset 0 lists it too,
pairs in offset order, files in Java HashMap order (:mod:`storage.java_order`). That is
information, not damage: the exit status stays 0.

Where Kafka would print a stack trace or carry on silently, this tool says what is wrong and
where: a batch that does not parse or fails its CRC gets a line on stderr naming the file, the
byte position and what was expected and found, after the lines of everything read before it.
Exit status: 0 all files read cleanly; 1 something was corrupt, damaged or unreadable; 2 a
usage error; 130 interrupted (Ctrl+C).

The web console's disk view prints files with the same code (:func:`dump_files`, both streams
into one, via :mod:`storage.log_files`), and says where a dump stopped short, which the tool,
like Kafka's, leaves unsaid for ``--max-bytes`` (:class:`DumpStop`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NoReturn, TextIO

from storage.batch import (
    BATCH_HEADER,
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC,
    MAGIC_OFFSET,
    MIN_BATCH_LENGTH,
    BatchHeader,
    Record,
    check_batch,
    decode_batch,
    read_header,
)
from storage.errors import CorruptRecordError, CorruptSnapshotError
from storage.index import (
    OFFSET_ENTRY,
    TIME_ENTRY,
    IndexDamagedError,
    OffsetIndex,
    TimeIndex,
    read_used_entries,
)
from storage.java_order import hash_map_order, string_hash
from storage.limits import PRODUCER_SNAPSHOT_BYTES_MAX
from storage.offsets_decoder import decode_record, missing_key_message
from storage.producer_snapshot import SNAPSHOT_SUFFIX, decode

RECORD_INDENT = "|"
# Kafka's --max-bytes default: Integer.MAX_VALUE, i.e. "the whole file".
MAX_BYTES_DEFAULT = 2**31 - 1
# Kafka's default for --max-message-size (accepted for compatibility; batches are read whole).
MAX_MESSAGE_SIZE_DEFAULT = 5 * 1024 * 1024

_COMPRESSION_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
# Batch attribute bit 6: the base timestamp holds the delete horizon (compacted tombstones).
_DELETE_HORIZON_MASK = 0x40
_CONTROL_TYPES = {0: "ABORT", 1: "COMMIT"}
_CONTROL_KEY = struct.Struct(">hh")  # version, type
_END_TXN_VALUE = struct.Struct(">hi")  # version, coordinator epoch

_UNSUPPORTED_FLAGS = (
    "--value-decoder-class",
    "--key-decoder-class",
    "--transaction-log-decoder",
    "--share-group-state-decoder",
    "--cluster-metadata-decoder",
    "--remote-log-metadata-decoder",
)


@dataclass(frozen=True)
class DumpOptions:
    print_data: bool = False
    deep: bool = False
    skip_record_metadata: bool = False
    max_bytes: int = MAX_BYTES_DEFAULT
    verify_index_only: bool = False
    index_sanity_only: bool = False
    offsets_decoder: bool = False  # keys and payloads as __consumer_offsets records


@dataclass(frozen=True)
class DumpStop:
    """Where a ``.log`` dump ended before the end of its file: ``position`` is the first byte
    not shown (a batch starts there, or a torn tail does), of ``file_size`` bytes. ``reason``
    is :data:`STOPPED_AT_MAX_BYTES` (the next batch ends past ``--max-bytes``; Kafka stops
    there without a word, and so does the tool: the web console says it) or
    :data:`STOPPED_AT_TORN_TAIL` (the bytes left are not a whole batch: a batch being appended
    while the file was read, or a torn write)."""

    position: int
    file_size: int
    reason: str


STOPPED_AT_MAX_BYTES = "max_bytes"
STOPPED_AT_TORN_TAIL = "torn_tail"


@dataclass
class Report:
    """Where the output goes and what went wrong, for the exit status and the final summary."""

    out: TextIO
    err: TextIO
    problems: int = 0
    # Per .log file (its name as given): where its dump stopped short of the file's end.
    stops: dict[str, DumpStop] = field(default_factory=dict)
    # Per file (its absolute path), as Kafka 4.4 keeps them: index offset -> the log's last
    # offset at that position, and a record's offset -> the next record's where they are not
    # consecutive. Printed at the end in Kafka's order (see _print_summary).
    index_mismatches: dict[str, dict[int, int]] = field(default_factory=dict)
    non_consecutive: dict[str, dict[int, int]] = field(default_factory=dict)

    def line(self, text: str) -> None:
        self.out.write(text + "\n")

    def problem(self, text: str) -> None:
        # Flushed first so that, with both streams on one terminal or file, the problem comes
        # after the lines read before it.
        self.problems += 1
        self.out.flush()
        self.err.write(text + "\n")
        self.err.flush()


def _java_bool(value: bool) -> str:
    return "true" if value else "false"


def _base_offset_of(path: Path) -> int | None:
    stem = path.name.split(".")[0]
    return int(stem) if stem.isdigit() else None


def _corruption_detail(error: CorruptRecordError, batch_position: int) -> str:
    """The reader's message with its batch-relative byte turned into a file position."""
    message = str(error)
    prefix, sep, rest = message.partition(": ")
    detail = rest if sep and prefix.startswith("corrupt record batch") else message
    if error.position is not None:
        return f"at byte {batch_position + error.position}: {detail}"
    return detail


# ---------------------------------------------------------------------------------------------
# .log
# ---------------------------------------------------------------------------------------------


def batch_line(header: BatchHeader, position: int, valid: bool) -> str:
    """Kafka's ``printBatchLevel`` line for a v2 batch."""
    delete_horizon = (
        f"OptionalLong[{header.base_timestamp}]"
        if header.attributes & _DELETE_HORIZON_MASK
        else "OptionalLong.empty"
    )
    timestamp_type = "LogAppendTime" if header.is_log_append_time else "CreateTime"
    codec = _COMPRESSION_NAMES.get(header.compression, f"unknown({header.compression})")
    return (
        f"baseOffset: {header.base_offset} lastOffset: {header.last_offset} "
        f"count: {header.record_count} baseSequence: {header.base_sequence} "
        f"lastSequence: {header.last_sequence} producerId: {header.producer_id} "
        f"producerEpoch: {header.producer_epoch} "
        f"partitionLeaderEpoch: {header.partition_leader_epoch} "
        f"isTransactional: {_java_bool(header.is_transactional)} "
        f"isControl: {_java_bool(header.is_control)} deleteHorizonMs: {delete_horizon} "
        f"position: {position} {timestamp_type}: {header.max_timestamp} size: {header.size} "
        f"magic: {header.magic} compresscodec: {codec} crc: {header.crc} "
        f"isvalid: {_java_bool(valid)}"
    )


def _control_text(record: Record) -> str:
    key = record.key or b""
    if len(key) < _CONTROL_KEY.size:
        return " controlType: UNKNOWN(-1)"
    _version, type_id = _CONTROL_KEY.unpack_from(key)
    name = _CONTROL_TYPES.get(type_id)
    value = record.value or b""
    if name is not None and len(value) >= _END_TXN_VALUE.size:
        _v, coordinator_epoch = _END_TXN_VALUE.unpack_from(value)
        return f" endTxnMarker: {name} coordinatorEpoch: {coordinator_epoch}"
    return f" controlType: UNKNOWN({type_id})"


@dataclass(frozen=True)
class RecordContents:
    """The texts after ``key:`` and ``payload:`` (None: not printed), and what is wrong with
    the record, if anything (a line on stderr)."""

    key: str | None
    payload: str | None
    problem: str | None = None


def record_contents(record: Record, options: DumpOptions) -> RecordContents:
    """A record's key and payload as the dump prints them: UTF-8 text, or with
    ``--offsets-decoder`` Kafka's JSON of a ``__consumer_offsets`` record."""
    if not options.offsets_decoder:
        return RecordContents(
            None if record.key is None else record.key.decode("utf-8", "replace"),
            None if record.value is None else record.value.decode("utf-8", "replace"),
        )
    if record.key is None:
        return RecordContents(None, None, missing_key_message(record.offset))
    decoded = decode_record(record.offset, record.key, record.value)
    return RecordContents(decoded.key, decoded.payload, decoded.problem)


def record_line(
    header: BatchHeader,
    record: Record,
    options: DumpOptions,
    contents: RecordContents | None = None,
) -> str:
    """Kafka's deep-iteration line for one record (``contents``: its key and payload texts,
    worked out here if not given)."""
    prefix = f"{RECORD_INDENT} "
    parts: list[str] = []
    if not options.skip_record_metadata:
        timestamp_type = "LogAppendTime" if header.is_log_append_time else "CreateTime"
        key_size = -1 if record.key is None else len(record.key)
        value_size = -1 if record.value is None else len(record.value)
        if header.base_sequence == -1:
            sequence = -1
        else:
            sequence = (header.base_sequence + record.offset - header.base_offset) & 0x7FFFFFFF
        header_keys = ",".join(name for name, _ in record.headers)
        parts.append(
            f"{prefix}offset: {record.offset} {timestamp_type}: {record.timestamp} "
            f"keySize: {key_size} valueSize: {value_size} sequence: {sequence} "
            f"headerKeys: [{header_keys}]"
        )
        prefix = " "
        if header.is_control:
            parts.append(_control_text(record))
    if options.print_data and not header.is_control:
        if contents is None:
            contents = record_contents(record, options)
        if contents.key is not None:
            parts.append(f"{prefix}key: {contents.key}")
            prefix = " "
        if contents.payload is not None:
            # Kafka 4.4: "| payload: ..." when neither metadata nor key came before it.
            parts.append(f"{prefix}payload: {contents.payload}")
    return "".join(parts)


def _read_at(f: BinaryIO, position: int, size: int) -> bytes:
    f.seek(position)
    return f.read(size)


def _crc_error(data: bytes) -> CorruptRecordError | None:
    try:
        check_batch(data)
    except CorruptRecordError as e:
        return e
    return None


def _dump_records(
    path: Path, data: bytes, position: int, last_offset: int, options: DumpOptions, report: Report
) -> int:
    """Prints the records of a checked batch; returns the last offset seen."""
    try:
        header, records = decode_batch(data)
    except CorruptRecordError as e:
        report.problem(
            f"Cannot read the records of the batch in {path} at position {position}: "
            f"{_corruption_detail(e, position)}"
        )
        return read_header(data).last_offset  # as for a CRC failure: not a gap as well
    for record in records:
        # Kafka 4.4 starts from -1 with no exception for the first record, so a segment
        # whose first record is not offset 0 reports "-1 is followed by <it>" too.
        if record.offset != last_offset + 1:
            report.non_consecutive.setdefault(str(path.absolute()), {})[last_offset] = record.offset
        last_offset = record.offset
        if options.print_data and not header.is_control:
            contents = record_contents(record, options)
            report.line(record_line(header, record, options, contents))
            if contents.problem is not None:
                report.problem(f"{path}: offset {record.offset}: {contents.problem}")
        else:
            report.line(record_line(header, record, options))
    return last_offset


def dump_log(path: Path, options: DumpOptions, report: Report) -> None:
    """Prints the batches (and records, if asked) of one ``.log`` file."""
    base = _base_offset_of(path)
    if base is not None:
        report.line(f"Log starting offset: {base}")
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        limit = min(file_size, options.max_bytes)
        position = 0
        last_offset = -1
        while position < limit:
            head = _read_at(f, position, HEADER_SIZE)
            if len(head) == HEADER_SIZE:
                batch_length = BATCH_HEADER.unpack(head)[1]
                size = batch_length + LOG_OVERHEAD
                framed = head[MAGIC_OFFSET] == MAGIC and batch_length >= MIN_BATCH_LENGTH
            else:
                size, framed = HEADER_SIZE, True
            if framed and position + size > limit:
                if limit < file_size:
                    # --max-bytes cut the file here: Kafka stops without a word.
                    report.stops[str(path)] = DumpStop(position, file_size, STOPPED_AT_MAX_BYTES)
                    return
                # A torn tail: Kafka's line, then ours saying what is missing.
                report.stops[str(path)] = DumpStop(position, file_size, STOPPED_AT_TORN_TAIL)
                left = file_size - position
                report.line(f"Found {left} invalid bytes at the end of {path.name}")
                wanted = f"a batch of {size} bytes" if len(head) == HEADER_SIZE else "a header"
                report.problem(
                    f"Corrupt tail in {path} at position {position}: expected {wanted}, "
                    f"found {left} bytes"
                )
                return
            if framed:
                data = head + _read_at(f, position + HEADER_SIZE, size - HEADER_SIZE)
            else:
                data = head
            try:
                header = read_header(data)
            except CorruptRecordError as e:
                report.problem(
                    f"Corrupt batch in {path} at position {position}: "
                    f"{_corruption_detail(e, position)}; the batches after it cannot be found"
                )
                return
            crc_error = _crc_error(data)
            report.line(batch_line(header, position, crc_error is None))
            if crc_error is not None:
                report.problem(
                    f"Corrupt batch in {path} at position {position}: "
                    f"{_corruption_detail(crc_error, position)}"
                )
                # Its records are not shown (Kafka would show them unchecked): take the
                # offsets it claims as read, so they are not reported as a gap as well.
                last_offset = header.last_offset
            elif options.deep:
                last_offset = _dump_records(path, data, position, last_offset, options, report)
            position += header.size
        if position < file_size:
            # --max-bytes ended exactly where a batch ends.
            report.stops[str(path)] = DumpStop(position, file_size, STOPPED_AT_MAX_BYTES)


# ---------------------------------------------------------------------------------------------
# .index and .timeindex
# ---------------------------------------------------------------------------------------------


def _read_index(path: Path, entry_size: int) -> bytes:
    """An index file's entries (:func:`storage.index.read_used_entries`): not the zeros after
    them in an active segment's 10 MiB preallocated file, which a disk view or kraft-dump-log
    call would otherwise read whole."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return read_used_entries(fd, entry_size, os.fstat(fd).st_size)
    finally:
        os.close(fd)


def _index_entries(data: bytes, entry: struct.Struct, relative_at: int) -> list[tuple[int, int]]:
    """The raw entries of ``data`` (:func:`_read_index`) up to Kafka's stop rule: the first
    entry after the first whose relative offset is 0 is the zero-filled, preallocated tail.
    One departure: a preallocated index with no entry yet (an active segment's, a running
    broker's healthy file) reads as empty, where Kafka's tool prints its all-zero first entry
    and then reports a mismatch for it. A time index's real first entry (timestamp 0, the
    base offset) is printed (storage.index says when it reads as one)."""
    whole = len(data) - len(data) % entry.size
    out: list[tuple[int, int]] = []
    for i, fields in enumerate(entry.iter_unpack(data[:whole])):
        if fields[relative_at] == 0 and i > 0:
            break
        out.append((fields[0], fields[1]))
    return out


def dump_index(path: Path, options: DumpOptions, report: Report) -> None:
    """Prints an offset index, checking each entry against the ``.log`` beside it."""
    base = _base_offset_of(path)
    if base is None:
        report.problem(f"Cannot dump {path}: its name does not start with a base offset")
        return
    data = _read_index(path, OFFSET_ENTRY.size)
    entries = _index_entries(data, OFFSET_ENTRY, 0)
    if not entries:
        report.line(f"{path} is empty.")
        return
    log_path = path.with_name(path.name.split(".")[0] + ".log")
    log_size = log_path.stat().st_size if log_path.exists() else None
    try:
        # Without the .log beside it, positions cannot be checked against its size.
        unknown_log_size = 2**31
        whole = data[: len(entries) * OFFSET_ENTRY.size]
        OffsetIndex.parse(base, whole, log_size=unknown_log_size if log_size is None else log_size)
    except IndexDamagedError as e:
        report.problem(f"{path} failed the sanity check (it would be rebuilt): {e}")
        if options.index_sanity_only:
            return
    else:
        if options.index_sanity_only:
            report.line(f"{path} passed sanity check.")
            return
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open(log_path, "rb")) if log_size is not None else None
        for relative, position in entries:
            offset = base + relative
            if log is not None:
                found = _last_offset_at(log, position)
                if found != offset:
                    report.index_mismatches.setdefault(str(path.absolute()), {})[offset] = found
            if not options.verify_index_only:
                report.line(f"offset: {offset} position: {position}")
    if len(data) % OFFSET_ENTRY.size:
        report.problem(
            f"{path} ends with {len(data) % OFFSET_ENTRY.size} bytes that are not a whole entry"
        )


def _last_offset_at(log: BinaryIO, position: int) -> int:
    """The last offset of the batch at ``position`` in the log, or -1 if none is there."""
    head = _read_at(log, position, HEADER_SIZE)
    if len(head) < HEADER_SIZE:
        return -1
    fields = BATCH_HEADER.unpack(head)
    return int(fields[0]) + int(fields[6]) if fields[3] == MAGIC else -1


def dump_time_index(path: Path, options: DumpOptions, report: Report) -> None:
    """Prints a time index."""
    base = _base_offset_of(path)
    if base is None:
        report.problem(f"Cannot dump {path}: its name does not start with a base offset")
        return
    data = _read_index(path, TIME_ENTRY.size)
    entries = _index_entries(data, TIME_ENTRY, 1)
    try:
        TimeIndex.parse(base, data[: len(entries) * TIME_ENTRY.size])
    except IndexDamagedError as e:
        report.problem(f"{path} failed the sanity check (it would be rebuilt): {e}")
        if options.index_sanity_only:
            return
    else:
        if options.index_sanity_only:
            report.line(f"{path} passed sanity check.")
            return
    if not options.verify_index_only:
        for timestamp, relative in entries:
            report.line(f"timestamp: {timestamp} offset: {base + relative}")
    if len(data) % TIME_ENTRY.size:
        report.problem(
            f"{path} ends with {len(data) % TIME_ENTRY.size} bytes that are not a whole entry"
        )


# ---------------------------------------------------------------------------------------------
# .snapshot
# ---------------------------------------------------------------------------------------------


def dump_producer_snapshot(path: Path, report: Report) -> None:
    """Prints a producer snapshot as Kafka's ``dumpProducerIdSnapshot`` does: per producer its
    epoch, transaction fields and last timestamp, then its last batch (absent for an entry
    that carries only an epoch, whose line keeps Kafka's trailing space)."""
    with open(path, "rb") as f:
        data = f.read(PRODUCER_SNAPSHOT_BYTES_MAX + 1)
    try:
        entries = decode(data, str(path))
    except CorruptSnapshotError as error:
        report.problem(str(error))
        return
    for e in entries:
        txn = e.current_txn_first_offset
        first_offset = f"OptionalLong[{txn}]" if txn >= 0 else "OptionalLong.empty"
        line = (
            f"producerId: {e.producer_id} producerEpoch: {e.producer_epoch} "
            f"coordinatorEpoch: {e.coordinator_epoch} currentTxnFirstOffset: {first_offset} "
            f"lastTimestamp: {e.timestamp} "
        )
        if e.has_batch:
            line += (
                f"firstSequence: {e.first_sequence} lastSequence: {e.last_sequence} "
                f"lastOffset: {e.last_offset} offsetDelta: {e.offset_delta} "
                f"timestamp: {e.timestamp}"
            )
        report.line(line)


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {value}")
    return value


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="kraft-dump-log",
        description=(
            "Parse segment files (.log, .index, .timeindex) and producer snapshots (.snapshot) "
            "and print their contents."
        ),
    )
    parser.add_argument(
        "--files",
        action="append",
        required=True,
        help="REQUIRED: the comma separated list of data and index log files to be dumped.",
    )
    parser.add_argument(
        "--print-data-log", action="store_true", help="Print the records' keys and payloads."
    )
    parser.add_argument(
        "--deep-iteration", action="store_true", help="Print every record, not only batches."
    )
    parser.add_argument(
        "--skip-record-metadata", action="store_true", help="Print only records' key/payload."
    )
    parser.add_argument(
        "--max-bytes",
        type=_positive_int,
        default=MAX_BYTES_DEFAULT,
        help="Read only the batches within the first N bytes of each .log file.",
    )
    parser.add_argument(
        "--max-message-size",
        type=_positive_int,
        default=MAX_MESSAGE_SIZE_DEFAULT,
        help=argparse.SUPPRESS,  # accepted as Kafka does; batches are read whole here
    )
    parser.add_argument(
        "--verify-index-only", action="store_true", help="Check indexes without printing them."
    )
    parser.add_argument(
        "--index-sanity-check", action="store_true", help="Only run the index sanity check."
    )
    parser.add_argument(
        "--offsets-decoder",
        action="store_true",
        help=(
            "If set, log data will be parsed as offset data from the __consumer_offsets topic "
            "(implies --print-data-log)."
        ),
    )
    for flag in _UNSUPPORTED_FLAGS:
        parser.add_argument(flag, nargs="?", const="", default=None, help=argparse.SUPPRESS)
    return parser


def _in_kafka_order(per_file: dict[str, dict[int, int]]) -> list[str]:
    # Kafka 4.4 keeps these per file in a HashMap keyed by the absolute path, each file's
    # entry added by computeIfAbsent when its first pair is found (dicts keep that order).
    return hash_map_order(((name, string_hash(name)) for name in per_file), compute_if_absent=True)


def _print_summary(report: Report) -> None:
    """Kafka's closing blocks on stderr: index mismatches (newest index entry first, as
    Kafka's reverse-ordered TreeMap has them), then non-consecutive offsets (by offset)."""
    report.out.flush()
    for name in _in_kafka_order(report.index_mismatches):
        report.problems += 1
        report.err.write(f"Mismatches in :{name}\n")
        mismatches = report.index_mismatches[name]
        for index_offset in sorted(mismatches, reverse=True):
            log_offset = mismatches[index_offset]
            report.err.write(f"  Index offset: {index_offset}, log offset: {log_offset}\n")
    for name in _in_kafka_order(report.non_consecutive):
        report.err.write(f"Non-consecutive offsets in {name}\n")
        pairs = report.non_consecutive[name]
        for first in sorted(pairs):
            report.err.write(f"  {first} is followed by {pairs[first]}\n")
    report.err.flush()


def run(files: Sequence[str], options: DumpOptions, out: TextIO, err: TextIO) -> int:
    """Dumps each file in order; the exit status (0 clean, 1 if anything was wrong)."""
    report = dump_files(files, options, out, err)
    return 1 if report.problems else 0


def dump_files(files: Sequence[str], options: DumpOptions, out: TextIO, err: TextIO) -> Report:
    """Writes what the tool prints for ``files`` (its stdout to ``out``, its stderr to ``err``,
    which may be the same stream: the lines then come in the order a terminal shows them) and
    returns the report: how many problems, and where a ``.log`` dump stopped short."""
    report = Report(out, err)
    for name in files:
        path = Path(name)
        report.line(f"Dumping {name}")
        suffix = path.suffix
        try:
            if suffix == ".log":
                dump_log(path, options, report)
            elif suffix == ".index":
                dump_index(path, options, report)
            elif suffix == ".timeindex":
                dump_time_index(path, options, report)
            elif suffix == SNAPSHOT_SUFFIX:
                dump_producer_snapshot(path, report)
            else:
                out.flush()
                err.write(f"Ignoring unknown file {name}\n")
        except BrokenPipeError:
            raise  # our output is gone, not the file: main() stops quietly
        except OSError as e:
            report.problem(f"Cannot read {name}: {e.strerror or e}")
    _print_summary(report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the tool with ``argv`` (default: the command line); returns the exit status."""
    try:
        parser = _build_parser()
        args = parser.parse_args(argv)
        for flag in _UNSUPPORTED_FLAGS:
            if getattr(args, flag.lstrip("-").replace("-", "_")) is not None:
                parser.error(f"{flag} is not supported")
        files = [f for group in args.files for f in group.split(",") if f]
        if not files:
            parser.error("--files names no file")
        # Kafka: a decoder implies --print-data-log, which implies --deep-iteration.
        print_data = args.print_data_log or args.offsets_decoder
        options = DumpOptions(
            print_data=print_data,
            deep=args.deep_iteration or print_data,
            skip_record_metadata=args.skip_record_metadata,
            max_bytes=args.max_bytes,
            verify_index_only=args.verify_index_only,
            index_sanity_only=args.index_sanity_check,
            offsets_decoder=args.offsets_decoder,
        )
        return run(files, options, sys.stdout, sys.stderr)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly; point stdout at /dev/null so the
        # interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return e.code if isinstance(e.code, int) else 0 if e.code is None else 2


if __name__ == "__main__":
    sys.exit(main())
