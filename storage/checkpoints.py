"""Kafka's small checkpoint files.

All are UTF-8 text with ``\\n`` line ends, written exactly as Kafka writes them, so Kafka's own
tools read ours and ours read Kafka's. Fields on a line are separated by one space when written
and by any run of whitespace when read (Kafka splits on ``\\s+``).

Offset checkpoints, one per log directory (``recovery-point-offset-checkpoint``,
``replication-offset-checkpoint``, ``log-start-offset-checkpoint``)::

    0                               version
    <count>                         number of entry lines that follow
    <topic> <partition> <offset>    one line per partition, sorted by (topic, partition)

``leader-epoch-checkpoint``, one per partition directory::

    0                               version
    <count>
    <epoch> <start offset>          one line per epoch, ascending

``partition.metadata``, one per partition directory, with no line end after the id (Kafka's
``PartitionMetadata.encode``: 43 bytes; a file written before we matched it has one, and reads
the same)::

    version: 0
    topic_id: <22-character Kafka uuid>

``.kafka_cleanshutdown``, one per log directory, written last at a clean shutdown and removed
at start (Kafka's ``CleanShutdownFileHandler``): JSON, no line end, the broker epoch of the
node that wrote it (-1 when it had none)::

    {"version":0,"brokerEpoch":<epoch>}

A file that is missing reads as empty (Kafka creates them lazily), and so does an empty one:
Kafka's ``CheckpointFile`` creates the file empty when it is first opened, and
``cleaner-offset-checkpoint`` stays so until a log is cleaned. A file that is present but
does not parse raises :class:`~storage.errors.CorruptCheckpointError` naming the file and line:
the caller decides whether to rebuild it (a recovery point can be recomputed by scanning) or to
take the partition offline.

Every write goes through :func:`storage.durable.atomic_write` (temporary file in the same
directory, fsync, rename over the target, fsync the directory), so a reader sees the old file
or the new one, never a mixture, even after a power cut.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from storage.durable import PathLike, atomic_write, fsync_dir
from storage.errors import CorruptCheckpointError
from storage.ids import ZERO_UUID, is_valid_uuid

CHECKPOINT_VERSION = 0
PARTITION_METADATA_VERSION = 0

# A checkpoint lists every partition of a log directory: about 40 bytes a line, so 64 MiB is
# over a million partitions. A bigger file is not ours; refuse it rather than load it whole.
CHECKPOINT_FILE_BYTES_MAX = 64 * 1024 * 1024

# Kafka's legal topic names; anything else (a space above all) would break the line format.
_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1

T = TypeVar("T")


# ---------------------------------------------------------------------------------------------
# The shared "version, count, entries" reader
# ---------------------------------------------------------------------------------------------


def _read_text(path: Path) -> str | None:
    """The file's text, or None if it does not exist."""
    try:
        with open(path, "rb") as f:
            raw = f.read(CHECKPOINT_FILE_BYTES_MAX + 1)
    except FileNotFoundError:
        return None
    if len(raw) > CHECKPOINT_FILE_BYTES_MAX:
        raise CorruptCheckpointError(f"larger than {CHECKPOINT_FILE_BYTES_MAX} bytes", str(path))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise CorruptCheckpointError("not UTF-8 text", str(path), line) from None


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    # The final line end leaves one empty string behind; any other empty line is damage.
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _parse_int(text: str, what: str, path: Path, line_no: int, maximum: int) -> int:
    if not _INTEGER.fullmatch(text):
        raise CorruptCheckpointError(
            f"expected {what} (an integer), found {text!r}", str(path), line_no
        )
    value = int(text)
    if value < 0 or value > maximum:
        raise CorruptCheckpointError(
            f"expected {what} in [0, {maximum}], found {value}", str(path), line_no
        )
    return value


def _read_checkpoint(
    path: Path, shape: str, field_count: int, parse_entry: Callable[[list[str], int], T]
) -> list[T]:
    """Entries of a "version, count, entries" file; [] if it is missing."""
    text = _read_text(path)
    if not text:
        return []  # missing, or created empty (Kafka's CheckpointFile reads that as no entry)
    lines = _split_lines(text)
    if len(lines) < 2:
        raise CorruptCheckpointError(
            f"expected a version line and a count line, found {len(lines)} line(s)",
            str(path),
            len(lines) + 1,
        )
    version = _parse_int(lines[0].strip(), "the version", path, 1, _INT32_MAX)
    if version != CHECKPOINT_VERSION:
        raise CorruptCheckpointError(
            f"expected version {CHECKPOINT_VERSION}, found {version}", str(path), 1
        )
    count = _parse_int(lines[1].strip(), "the entry count", path, 2, _INT32_MAX)
    body = lines[2:]
    if len(body) != count:
        raise CorruptCheckpointError(
            f"the count line says {count} entries, found {len(body)}", str(path), 2
        )
    entries: list[T] = []
    for i, line in enumerate(body):
        line_no = i + 3
        fields = line.split()
        if len(fields) != field_count:
            raise CorruptCheckpointError(f"expected '{shape}', found {line!r}", str(path), line_no)
        entries.append(parse_entry(fields, line_no))
    return entries


def _format_checkpoint(lines: list[str]) -> bytes:
    return "".join(
        f"{line}\n" for line in [str(CHECKPOINT_VERSION), str(len(lines)), *lines]
    ).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# The files
# ---------------------------------------------------------------------------------------------


class OffsetCheckpointFile:
    """A per-log-directory map (topic, partition) -> offset, in Kafka's checkpoint format.

    Used for ``recovery-point-offset-checkpoint``, ``replication-offset-checkpoint`` and
    ``log-start-offset-checkpoint``.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)

    def write(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Replaces the file atomically with ``offsets``, sorted by (topic, partition).

        Raises ``ValueError`` for an illegal topic name or a negative partition or offset
        (a bug in the caller: the file could not be read back).
        """
        lines = []
        for (topic, partition), offset in sorted(offsets.items()):
            if not _TOPIC_NAME.fullmatch(topic):
                raise ValueError(f"illegal topic name {topic!r} for {self.path}")
            if not 0 <= partition <= _INT32_MAX or not 0 <= offset <= _INT64_MAX:
                raise ValueError(
                    f"partition and offset must be non-negative: {topic} {partition} {offset}"
                )
            lines.append(f"{topic} {partition} {offset}")
        atomic_write(self.path, _format_checkpoint(lines))

    def read(self) -> dict[tuple[str, int], int]:
        """The map as written; {} if the file does not exist.

        Raises :class:`CorruptCheckpointError` (naming the file and line) if it does not parse.
        """

        def parse(fields: list[str], line_no: int) -> tuple[tuple[str, int], int]:
            topic, partition, offset = fields
            if not _TOPIC_NAME.fullmatch(topic):
                raise CorruptCheckpointError(
                    f"expected a topic name, found {topic!r}", str(self.path), line_no
                )
            p = _parse_int(partition, "a partition", self.path, line_no, _INT32_MAX)
            o = _parse_int(offset, "an offset", self.path, line_no, _INT64_MAX)
            return (topic, p), o

        return dict(_read_checkpoint(self.path, "<topic> <partition> <offset>", 3, parse))

    def create_if_missing(self) -> None:
        """Creates the file empty if it does not exist, as Kafka's ``CheckpointFile`` does
        when a broker opens it (not fsynced: an empty file and no file read the same)."""
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))


class LeaderEpochCheckpointFile:
    """A partition's ``leader-epoch-checkpoint``: (epoch, start offset) pairs, ascending."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)

    def write(self, entries: Iterable[tuple[int, int]]) -> None:
        """Replaces the file atomically with ``entries`` in the order given.

        Raises ``ValueError`` for a negative epoch or offset (a bug in the caller).
        """
        lines = []
        for epoch, start_offset in entries:
            if not 0 <= epoch <= _INT32_MAX or not 0 <= start_offset <= _INT64_MAX:
                raise ValueError(f"invalid leader epoch entry ({epoch}, {start_offset})")
            lines.append(f"{epoch} {start_offset}")
        atomic_write(self.path, _format_checkpoint(lines))

    def read(self) -> list[tuple[int, int]]:
        """The entries in file order; [] if the file does not exist.

        Raises :class:`CorruptCheckpointError` (naming the file and line) if it does not parse.
        """

        def parse(fields: list[str], line_no: int) -> tuple[int, int]:
            epoch = _parse_int(fields[0], "a leader epoch", self.path, line_no, _INT32_MAX)
            start = _parse_int(fields[1], "a start offset", self.path, line_no, _INT64_MAX)
            return epoch, start

        return _read_checkpoint(self.path, "<epoch> <start offset>", 2, parse)


class PartitionMetadataFile:
    """A partition's ``partition.metadata``: the id of the topic it belongs to.

    A directory whose name matches a topic but whose topic id does not is a leftover of a
    deleted topic of the same name; this file is how Kafka tells them apart.
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)

    def write(self, topic_id: str, *, durable: bool = True) -> None:
        """Replaces the file atomically. Raises ``ValueError`` if ``topic_id`` is not an id.
        With ``durable=False`` the caller fsyncs it (and its directory) later."""
        if not is_valid_uuid(topic_id) or topic_id == ZERO_UUID:
            raise ValueError(f"{topic_id!r} is not a Kafka topic id")
        # No line end after the id: Kafka's PartitionMetadata.encode.
        text = f"version: {PARTITION_METADATA_VERSION}\ntopic_id: {topic_id}"
        atomic_write(self.path, text.encode("utf-8"), durable=durable)

    def read(self) -> str | None:
        """The topic id; None if the file does not exist.

        Raises :class:`CorruptCheckpointError` (naming the file and line) if it does not parse.
        """
        text = _read_text(self.path)
        if text is None:
            return None
        lines = _split_lines(text)
        where = str(self.path)
        version_fields = lines[0].split(": ", 1) if lines else []
        if len(version_fields) != 2 or version_fields[0] != "version":
            found = repr(lines[0]) if lines else "an empty file"
            raise CorruptCheckpointError(f"expected 'version: 0', found {found}", where, 1)
        version = _parse_int(version_fields[1].strip(), "the version", self.path, 1, _INT32_MAX)
        if version != PARTITION_METADATA_VERSION:
            raise CorruptCheckpointError(
                f"expected version {PARTITION_METADATA_VERSION}, found {version}", where, 1
            )
        id_fields = lines[1].split(": ", 1) if len(lines) > 1 else []
        if len(id_fields) != 2 or id_fields[0] != "topic_id":
            found = repr(lines[1]) if len(lines) > 1 else "the end of the file"
            raise CorruptCheckpointError(f"expected 'topic_id: <id>', found {found}", where, 2)
        topic_id = id_fields[1].strip()
        if not is_valid_uuid(topic_id) or topic_id == ZERO_UUID:
            raise CorruptCheckpointError(f"expected a topic id, found {topic_id!r}", where, 2)
        if len(lines) > 2:
            raise CorruptCheckpointError(f"unexpected line {lines[2]!r}", where, 3)
        return topic_id


class CleanShutdownFile:
    """A log directory's ``.kafka_cleanshutdown`` (Kafka's ``CleanShutdownFileHandler``): its
    presence at start says every log in the directory was flushed and closed cleanly, so
    their recovery points and index files are trusted and nothing is re-read."""

    NAME = ".kafka_cleanshutdown"
    VERSION = 0

    def __init__(self, log_dir: PathLike) -> None:
        self.path = Path(log_dir) / self.NAME

    def exists(self) -> bool:
        return self.path.exists()

    def write(self, broker_epoch: int) -> None:
        """Writes the file durably (the last thing a clean shutdown does)."""
        text = json.dumps(
            {"version": self.VERSION, "brokerEpoch": broker_epoch}, separators=(",", ":")
        )
        atomic_write(self.path, text.encode("utf-8"))

    def read_broker_epoch(self) -> int | None:
        """The broker epoch it holds; None if it is missing or does not parse (Kafka's
        ``read`` treats both alike: only the file's presence decides anything)."""
        try:
            content = json.loads(self.path.read_bytes())
            epoch = content["brokerEpoch"]
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None

    def delete(self) -> bool:
        """Removes the file, durably (fsync of the directory: a power cut must not bring back
        a clean shutdown file for a run that went on writing); says whether it was there."""
        try:
            os.remove(self.path)
        except FileNotFoundError:
            return False
        fsync_dir(self.path.parent)
        return True
