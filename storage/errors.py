"""The errors of the storage layer.

Two kinds, kept apart:

- :class:`CorruptRecordError`: bytes that are not a valid record batch. The batch reader raises
  this one error for anything it cannot parse, saying what it expected and what it found.
  Recovery catches it to find where a torn tail starts.
- :class:`KafkaStorageError`: a log that cannot be served (corruption below the recovery
  point, an I/O error). It names the file and the byte position, and takes the partition
  offline; the node goes on serving its other partitions.
"""

from __future__ import annotations


class CorruptRecordError(ValueError):
    """Bytes that do not parse as a Kafka v2 record batch."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position
        where = f" at byte {position}" if position is not None else ""
        super().__init__(f"corrupt record batch{where}: {message}")


class KafkaStorageError(OSError):
    """A partition's log cannot be read or written; the partition is offline."""

    def __init__(self, message: str, path: str | None = None, position: int | None = None) -> None:
        self.path = path
        self.position = position
        where = ""
        if path is not None:
            at = f", position {position}" if position is not None else ""
            where = f" (file {path}{at})"
        super().__init__(f"{message}{where}")


class OffsetOutOfRangeError(ValueError):
    """A read asked for an offset outside [log start offset, log end offset]."""

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset
        super().__init__(f"offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")


class CorruptCheckpointError(KafkaStorageError):
    """A checkpoint or metadata file (offset and leader-epoch checkpoints, partition.metadata)
    that does not parse. It names the file and, when one is to blame, the line.

    A subclass of :class:`KafkaStorageError`, as in Kafka, where a malformed checkpoint is an
    I/O failure of the log directory: the partition cannot be trusted until someone looks.
    """

    def __init__(self, message: str, path: str, line: int | None = None) -> None:
        self.line = line
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"malformed checkpoint file, {where}{message}", path)


class CorruptSnapshotError(CorruptCheckpointError):
    """A producer state snapshot (``<offset>.snapshot``, :mod:`storage.producer_snapshot`)
    that does not parse: Kafka's CorruptSnapshotException. It names the file and, when one is
    to blame, the byte position.

    Unlike the other checkpoints it never takes a partition offline: a snapshot is a cache of
    what the log's batch headers say, so its reader drops it and falls back to an older one or
    to the log itself.
    """

    def __init__(self, message: str, path: str, position: int | None = None) -> None:
        self.line = None
        # Not CorruptCheckpointError.__init__: its message speaks of lines of text.
        KafkaStorageError.__init__(self, f"malformed producer snapshot, {message}", path, position)


class RecordTooLargeError(ValueError):
    """A leader append whose batch is larger than the topic's ``max.message.bytes`` (Kafka's
    RECORD_TOO_LARGE). Nothing was written."""

    def __init__(self, size_bytes: int, max_message_bytes: int) -> None:
        self.size_bytes = size_bytes
        self.max_message_bytes = max_message_bytes
        super().__init__(
            f"the record batch is {size_bytes} bytes, larger than max.message.bytes "
            f"({max_message_bytes})"
        )


class UnexpectedAppendOffsetError(ValueError):
    """A replica append whose batches go back into the log: the first base offset is below
    the log end offset, or a batch starts at or below the previous batch's last offset
    (Kafka's UnexpectedAppendOffsetException). Gaps are not refused: a compacted leader's log
    has them. Nothing was written."""

    def __init__(self, message: str, expected_offset: int, found_offset: int) -> None:
        self.expected_offset = expected_offset
        self.found_offset = found_offset
        super().__init__(f"{message}: expected offset {expected_offset}, found {found_offset}")
