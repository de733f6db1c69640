"""The cluster-wide state checker shared by the simulation and integration tiers.

It looks at one partition's replicas at a time, as *views*: which node, whether the metadata
has it in the ISR, its batches (raw bytes, from its log start), its high watermark (HW) and
log end offset. The rules it checks are the ones replication promises (docs/design.md,
"Replication"), no more:

1. Each log is well formed: batches dense and ascending from the log start, ending at the
   log end offset; log start <= HW <= log end.
2. Replicas agree below the HW: every batch a replica holds below its own HW is the
   committed batch at that offset, byte for byte, on every replica that holds that offset.
   (Above its HW a replica may hold a tail no one else has: an uncommitted write of a leader
   that was deposed, which it truncates by leader epoch when it follows again.)
3. Every ISR member holds every batch below the highest HW of any replica: the controller
   elects the next leader from the ISR, so a member missing a committed batch is a lost
   acknowledged record waiting to happen.
4. At most one node leads a partition at any one leader epoch.

Rules 1 and 2 hold for ``cleanup.policy=delete`` only. A compacted log (``compacted=True``,
which the caller knows from the topic's config: a view is only files or a log) has gaps, and
each replica's cleaner rewrites its batches at its own moments, so replicas differ byte for
byte. What compaction promises instead (:func:`check_compacted_pair`):

1c. Offsets strictly increase (batches ascending and apart, the log start in or before the
    first batch, the last batch ending at or below the log end).
2c. Below the lower of two replicas' HWs, an offset held by both holds the same record (key,
    value, timestamp, headers); and for every key, its latest record there is the same on
    both, or deleted on both (a tombstone, or nothing left once a tombstone went past its
    horizon). A replica whose latest is older (or missing) must hold a later record of that
    key below its own HW: its cleaner, working up to its own (higher) HW, superseded it.
3c. Every ISR member holds offsets up to the highest HW (its log end is not below it).

:class:`CommitTracker` adds time: the committed offset (the highest HW any replica has
exposed) never decreases, and no batch below it is ever truncated or changed on an ISR
member, nor below its own HW on any replica. A follower's HW may lag the leader's and a new
leader's HW may start lower than the old leader's (as in Kafka), so those are not checked.
It is for delete-policy logs: a cleaner changes committed batches by design.

Views come from a live log (:func:`view_of_log`: the simulation's ``MemoryLog`` or a ``Log``),
from bytes, or from a node's directory on disk (:func:`view_of_directory`), read without
changing a file. Every failure raises :class:`InvariantViolation` naming the partition, the
node(s), the offset and what differed.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from server.log_manager import HW_FILE, LOG_START_FILE, RECOVERY_POINT_FILE
from storage.batch import Record, check_batch, decode_batch, read_header
from storage.checkpoints import OffsetCheckpointFile
from storage.errors import CorruptRecordError
from storage.memory_log import MemoryLog
from storage.partition_log import PartitionLog


class InvariantViolation(AssertionError):
    """A replication invariant does not hold; the message says where and what."""


@dataclass(frozen=True)
class ReplicaView:
    """One replica of one partition as the checker sees it.

    ``batches[i]`` holds the offsets ``bases[i]`` to ``ends[i] - 1``; the first batch holds
    the log start offset. ``tail_bytes`` counts bytes after the last whole batch (a file being
    written, or a torn tail that recovery would cut); they are not part of the log.
    """

    node: int
    in_isr: bool
    log_start_offset: int
    high_watermark: int
    log_end_offset: int
    batches: tuple[bytes, ...]
    bases: tuple[int, ...]
    ends: tuple[int, ...]
    tail_bytes: int = 0

    @classmethod
    def of_bytes(
        cls,
        node: int,
        data: bytes,
        *,
        high_watermark: int,
        in_isr: bool = False,
        log_start_offset: int | None = None,
    ) -> ReplicaView:
        """A view of a log whose batches are ``data`` (from its log start), CRCs checked."""
        batches, bases, ends = _parse(data, node)
        if log_start_offset is not None:
            start = log_start_offset
        else:
            start = bases[0] if bases else 0
        end = ends[-1] if ends else start
        return cls(node, in_isr, start, high_watermark, end, batches, bases, ends)

    def index_of(self, offset: int) -> int:
        """Index of the first batch whose base offset is >= ``offset``."""
        return bisect.bisect_left(self.bases, offset)

    def describe(self) -> str:
        return (
            f"node {self.node}{' (ISR)' if self.in_isr else ''}: log "
            f"[{self.log_start_offset}, {self.log_end_offset}), HW {self.high_watermark}"
        )


def _parse(data: bytes, node: int) -> tuple[tuple[bytes, ...], tuple[int, ...], tuple[int, ...]]:
    batches: list[bytes] = []
    bases: list[int] = []
    ends: list[int] = []
    pos = 0
    while pos < len(data):
        try:
            header = check_batch(data, pos)
        except CorruptRecordError as e:
            raise InvariantViolation(
                f"node {node}: the log does not parse at byte {pos}: {e}"
            ) from None
        batches.append(data[pos : pos + header.size])
        bases.append(header.base_offset)
        ends.append(header.next_offset)
        pos += header.size
    return tuple(batches), tuple(bases), tuple(ends)


# -- views of live logs and of directories -----------------------------------------------------


# Bytes per read when a view reads a log (reads stop at segment ends anyway).
_VIEW_READ_BYTES = 1 << 20


def view_of_log(node: int, log: PartitionLog, *, in_isr: bool) -> ReplicaView:
    """A view of an open log. A ``MemoryLog``'s batches are taken as they are (no parsing:
    the simulation checks after every step); any other log is read batch by batch."""
    if isinstance(log, MemoryLog):
        batches: list[bytes] = []
        bases: list[int] = []
        ends: list[int] = []
        for segment in log.segments:
            batches += segment.batches
            bases += [h.base_offset for h in segment.headers]
            ends += [h.next_offset for h in segment.headers]
        return ReplicaView(
            node,
            in_isr,
            log.log_start_offset,
            log.high_watermark,
            log.log_end_offset,
            tuple(batches),
            tuple(bases),
            tuple(ends),
        )
    chunks: list[bytes] = []
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, _VIEW_READ_BYTES)
        if not data:
            break
        chunks.append(data)
        pos = 0
        while pos < len(data):  # the next read starts after the last batch of this one
            header = read_header(data, pos)
            offset = header.next_offset
            pos += header.size
    return ReplicaView.of_bytes(
        node,
        b"".join(chunks),
        high_watermark=log.high_watermark,
        in_isr=in_isr,
        log_start_offset=log.log_start_offset,
    )


def view_of_directory(
    node: int,
    log_dir: Path,
    topic: str,
    partition: int,
    *,
    in_isr: bool = False,
    high_watermark: int | None = None,
    compacted: bool = False,
) -> ReplicaView:
    """A view of ``<log_dir>/<topic>-<partition>`` read from the files, changing nothing.

    Meant for a stopped node; a running node's files may be mid-write, which only makes the
    view older (give its ``high_watermark`` as it reports it, read before the files: its
    checkpoint file is a few seconds old). The HW (unless given) and the log start come from
    the log directory's checkpoint files, the HW capped at the log end as the node caps it
    when it opens the log. Bytes after the last whole batch at or above the recovery point
    are a torn tail (recovery would cut them): they are counted in ``tail_bytes``, not read.
    A bad batch below the recovery point raises InvariantViolation (the node would take the
    log offline). A ``compacted`` log's batches may start past the end of the one before (a
    gap the cleaner left); any other log's must follow each other.
    """
    key = (topic, partition)
    hw = OffsetCheckpointFile(log_dir / HW_FILE).read().get(key, 0)
    if high_watermark is not None:
        hw = high_watermark
    recovery_point = OffsetCheckpointFile(log_dir / RECOVERY_POINT_FILE).read().get(key, 0)
    log_start = OffsetCheckpointFile(log_dir / LOG_START_FILE).read().get(key, 0)
    directory = log_dir / f"{topic}-{partition}"
    batches: list[bytes] = []
    bases: list[int] = []
    ends: list[int] = []
    tail = 0
    files = sorted(directory.glob("*.log"))
    for n, path in enumerate(files):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            expected = ends[-1] if ends else int(path.stem)
            try:
                header = check_batch(data, pos)
                if (
                    header.base_offset < expected
                    if compacted
                    else (ends and header.base_offset != expected)
                ):
                    raise CorruptRecordError(
                        f"expected base offset {'at least ' if compacted else ''}{expected}, "
                        f"found {header.base_offset}",
                        pos,
                    )
            except CorruptRecordError as e:
                if expected < recovery_point:
                    raise InvariantViolation(
                        f"{topic}-{partition} on node {node}: {path.name} is corrupt at byte "
                        f"{pos} (offset {expected}, below the recovery point "
                        f"{recovery_point}): {e}"
                    ) from None
                tail = len(data) - pos + sum(p.stat().st_size for p in files[n + 1 :])
                break
            batches.append(data[pos : pos + header.size])
            bases.append(header.base_offset)
            ends.append(header.next_offset)
            pos += header.size
        if tail:
            break
    # Batches wholly below the log start are gone for the node (retention moved past them).
    keep = bisect.bisect_right(ends, log_start)
    batches, bases, ends = batches[keep:], bases[keep:], ends[keep:]
    start = max(log_start, bases[0]) if bases else log_start
    end = ends[-1] if ends else start
    return ReplicaView(
        node,
        in_isr,
        start,
        min(max(hw, start), end),
        end,
        tuple(batches),
        tuple(bases),
        tuple(ends),
        tail,
    )


# -- the checks --------------------------------------------------------------------------------


def describe_batch(batch: bytes) -> str:
    """One batch in a failure message: its offsets, leader epoch, CRC and size."""
    try:
        h = read_header(batch)
    except CorruptRecordError as e:
        return f"an unreadable batch ({e})"
    return (
        f"offsets {h.base_offset}-{h.last_offset}, leader epoch {h.partition_leader_epoch}, "
        f"crc {h.crc:#010x}, {h.size} bytes"
    )


def check_well_formed(partition: str, view: ReplicaView, *, compacted: bool = False) -> None:
    """Rule 1 for one view (1c for a compacted log)."""
    where = f"{partition} on node {view.node}"
    if not len(view.batches) == len(view.bases) == len(view.ends):
        raise InvariantViolation(f"{where}: the view's batches and offsets differ in count")
    if not view.log_start_offset <= view.high_watermark <= view.log_end_offset:
        raise InvariantViolation(
            f"{where}: the HW {view.high_watermark} is outside the log "
            f"[{view.log_start_offset}, {view.log_end_offset}]"
        )
    if compacted:
        _check_ascending(where, view)
        return
    if not view.bases:
        if view.log_end_offset != view.log_start_offset:
            raise InvariantViolation(
                f"{where}: no batches, but the log ends at "
                f"{view.log_end_offset}, not {view.log_start_offset}"
            )
        return
    # List comparisons run in C: this is cheap enough to do after every simulated step.
    if view.bases[1:] != view.ends[:-1]:
        gap = next(i for i in range(1, len(view.bases)) if view.bases[i] != view.ends[i - 1])
        raise InvariantViolation(
            f"{where}: offsets are not dense: a batch ends at {view.ends[gap - 1]} and the "
            f"next starts at {view.bases[gap]}"
        )
    if not view.bases[0] <= view.log_start_offset < view.ends[0]:
        raise InvariantViolation(
            f"{where}: the first batch ({view.bases[0]}-{view.ends[0] - 1}) does not hold "
            f"the log start offset {view.log_start_offset}"
        )
    if view.ends[-1] != view.log_end_offset:
        raise InvariantViolation(
            f"{where}: the last batch ends at {view.ends[-1]}, the log end offset is "
            f"{view.log_end_offset}"
        )


def _check_ascending(where: str, view: ReplicaView) -> None:
    """Rule 1c: batches in ascending order with gaps allowed between them."""
    for i, (base, end) in enumerate(zip(view.bases, view.ends, strict=True)):
        if end <= base:
            raise InvariantViolation(f"{where}: a batch at {base} ends at {end}")
        if i and base < view.ends[i - 1]:
            raise InvariantViolation(
                f"{where}: offsets do not increase: a batch ends at {view.ends[i - 1]} and the "
                f"next starts at {base}"
            )
    if view.ends and view.ends[0] <= view.log_start_offset:
        raise InvariantViolation(
            f"{where}: the first batch ({view.bases[0]}-{view.ends[0] - 1}) is below the log "
            f"start offset {view.log_start_offset}"
        )
    if view.ends and view.ends[-1] > view.log_end_offset:
        raise InvariantViolation(
            f"{where}: the last batch ends at {view.ends[-1]}, past the log end offset "
            f"{view.log_end_offset}"
        )


def records_of(view: ReplicaView, low: int, high: int) -> dict[int, Record]:
    """The data records of ``view`` at offsets [low, high), by offset (control batches, which
    hold no key a consumer reads, left out)."""
    out: dict[int, Record] = {}
    for i in range(max(view.index_of(low) - 1, 0), len(view.batches)):
        if view.bases[i] >= high:
            break
        if view.ends[i] <= low:
            continue
        try:
            header, records = decode_batch(view.batches[i])
        except CorruptRecordError as e:
            raise InvariantViolation(
                f"node {view.node}: the batch at {view.bases[i]} does not decode: {e}"
            ) from None
        if header.is_control:
            continue
        for record in records:
            if low <= record.offset < high:
                out[record.offset] = record
    return out


def _latest_by_key(records: Mapping[int, Record]) -> dict[bytes | None, Record]:
    out: dict[bytes | None, Record] = {}
    for offset in sorted(records):
        out[records[offset].key] = records[offset]
    return out


def _describe_record(record: Record | None) -> str:
    if record is None:
        return "nothing"
    value = "a tombstone" if record.value is None else f"value {record.value[:40]!r}"
    return f"offset {record.offset} ({value})"


def check_compacted_pair(partition: str, a: ReplicaView, b: ReplicaView) -> None:
    """Rule 2c between two replicas of a compacted log (module docstring)."""
    low = max(a.log_start_offset, b.log_start_offset)
    bound = min(a.high_watermark, b.high_watermark)
    if low >= bound:
        return
    ra, rb = records_of(a, low, bound), records_of(b, low, bound)
    for offset in sorted(ra.keys() & rb.keys()):
        p, q = ra[offset], rb[offset]
        if (p.key, p.value, p.timestamp, p.headers) != (q.key, q.value, q.timestamp, q.headers):
            raise InvariantViolation(
                f"{partition}: offset {offset} holds different records on node {a.node} "
                f"(key {p.key!r}, {_describe_record(p)}) and node {b.node} (key {q.key!r}, "
                f"{_describe_record(q)}); {a.describe()}; {b.describe()}"
            )
    la, lb = _latest_by_key(ra), _latest_by_key(rb)
    later: dict[int, set[bytes | None]] = {}  # node -> keys it holds in [bound, its HW)
    for key in la.keys() | lb.keys():
        x, y = la.get(key), lb.get(key)
        if x is not None and y is not None and x.offset == y.offset:
            continue
        if (x is None or x.value is None) and (y is None or y.value is None):
            continue  # deleted on both
        behind, ahead = (a, b) if (x.offset if x else -1) < (y.offset if y else -1) else (b, a)
        if behind.node not in later:
            above = records_of(behind, bound, behind.high_watermark)
            later[behind.node] = {r.key for r in above.values()}
        if key in later[behind.node]:
            continue  # superseded on that replica by a later record, cleaned up to its HW
        raise InvariantViolation(
            f"{partition}: key {key!r}: the latest record below offset {bound} is "
            f"{_describe_record(x)} on node {a.node} and {_describe_record(y)} on node "
            f"{b.node}, and node {behind.node} holds no later record of the key below its HW "
            f"(node {ahead.node} holds one it lacks); {a.describe()}; {b.describe()}"
        )


def _first_difference(
    partition: str,
    a: ReplicaView,
    a_what: str,
    b: ReplicaView,
    b_what: str,
    low: int,
    high: int,
) -> InvariantViolation | None:
    """Compares the batches of ``a`` and ``b`` over offsets [low, high); ``a`` must hold them
    all. Returns the violation at the first difference (a batch ``b`` lacks, or other bytes)."""
    if low >= high:
        return None
    ia, ib = a.index_of(low), b.index_of(low)
    ja = a.index_of(high)
    jb = ib + (ja - ia)
    # Tuple comparisons run in C: cheap enough to do after every simulated step.
    if a.batches[ia:ja] == b.batches[ib:jb] and a.bases[ia:ja] == b.bases[ib:jb]:
        return None
    for i in range(ia, ja):
        offset = a.bases[i]
        k = ib + (i - ia)
        if k >= len(b.batches) or b.bases[k] != offset:
            return InvariantViolation(
                f"{partition}: offset {offset} is {a_what} on node {a.node} "
                f"({describe_batch(a.batches[i])}), but node {b.node} ({b_what}) "
                + (
                    f"does not hold it (its log ends at {b.log_end_offset})"
                    if b.log_end_offset <= offset
                    else "has a batch boundary elsewhere there"
                    + (f" ({describe_batch(b.batches[k])})" if k < len(b.batches) else "")
                )
                + f"; {a.describe()}; {b.describe()}"
            )
        if b.batches[k] != a.batches[i]:
            return InvariantViolation(
                f"{partition}: offset {offset} differs: node {a.node} ({a_what}) holds "
                f"{describe_batch(a.batches[i])}, node {b.node} ({b_what}) holds "
                f"{describe_batch(b.batches[k])}; {a.describe()}; {b.describe()}"
            )
    return None


def check_replicas(
    partition: str, views: Sequence[ReplicaView], *, compacted: bool = False
) -> None:
    """Rules 1-3 over one partition's replicas at one moment; 1c-3c for a compacted log."""
    for view in views:
        check_well_formed(partition, view, compacted=compacted)
    if not views:
        return
    top = max(views, key=lambda v: (v.high_watermark, -v.node))
    if compacted:
        for view in views:
            if view is top:
                continue
            check_compacted_pair(partition, top, view)
            if view.in_isr and view.log_end_offset < top.high_watermark:
                raise InvariantViolation(
                    f"{partition}: node {view.node} is in the ISR but its log ends at "
                    f"{view.log_end_offset}, below the HW {top.high_watermark}; "
                    f"{top.describe()}; {view.describe()}"
                )
        return
    for view in views:
        if view is top:
            continue
        low = max(view.log_start_offset, top.log_start_offset)
        # Rule 2: below its own HW a replica holds the committed batches.
        problem = _first_difference(
            partition,
            view,
            f"below its HW {view.high_watermark}",
            top,
            f"HW {top.high_watermark}",
            low,
            view.high_watermark,
        )
        if problem is None and view.in_isr:
            # Rule 3: an ISR member holds everything below the highest HW.
            problem = _first_difference(
                partition,
                top,
                f"below the HW {top.high_watermark}",
                view,
                "in the ISR",
                low,
                top.high_watermark,
            )
        if problem is not None:
            raise problem


def check_one_leader_per_epoch(partition: str, leaders: Mapping[int, int]) -> None:
    """Rule 4: ``leaders`` maps each node that believes it leads to its leader epoch."""
    by_epoch: dict[int, list[int]] = {}
    for node, epoch in sorted(leaders.items()):
        by_epoch.setdefault(epoch, []).append(node)
    for epoch, nodes in sorted(by_epoch.items()):
        if len(nodes) > 1:
            raise InvariantViolation(
                f"{partition}: nodes {nodes} all believe they lead at leader epoch {epoch}"
            )


def identical(views: Iterable[ReplicaView]) -> bool:
    """Whether the replicas hold the same log, byte for byte (and no torn tails)."""
    views = list(views)
    return all(
        v.tail_bytes == 0
        and v.batches == views[0].batches
        and v.log_start_offset == views[0].log_start_offset
        for v in views
    )


def check_identical(partition: str, views: Sequence[ReplicaView]) -> None:
    """After healing: every view holds the same batches from the same log start."""
    check_replicas(partition, views)
    if not views or identical(views):
        return
    for view in views:
        if view.tail_bytes:
            raise InvariantViolation(
                f"{partition}: node {view.node} has {view.tail_bytes} bytes of torn tail"
            )
    first = views[0]
    for view in views[1:]:
        low = max(first.log_start_offset, view.log_start_offset)
        high = max(first.log_end_offset, view.log_end_offset)
        a, b = (first, view) if first.log_end_offset >= view.log_end_offset else (view, first)
        problem = _first_difference(partition, a, "held", b, "a replica", low, high)
        if problem is not None:
            raise problem
        if first.log_start_offset != view.log_start_offset:
            raise InvariantViolation(
                f"{partition}: log start {first.log_start_offset} on node {first.node}, "
                f"{view.log_start_offset} on node {view.node}"
            )


# -- the committed offset over time ------------------------------------------------------------


@dataclass
class _Committed:
    high_watermark: int = 0
    batches: list[bytes] = field(default_factory=list)
    bases: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)


class CommitTracker:
    """Rules 1-3 at each observation, plus what must hold over time: per partition, the
    committed offset (the highest HW any replica exposed) never decreases, and the batches
    below it never change: not on any ISR member, and not below any replica's own HW."""

    def __init__(self) -> None:
        self._partitions: dict[str, _Committed] = {}

    def committed_offset(self, partition: str) -> int:
        c = self._partitions.get(partition)
        return 0 if c is None else c.high_watermark

    def committed_batches(self, partition: str) -> list[tuple[int, bytes]]:
        """(base offset, bytes) of each committed batch so far."""
        c = self._partitions.get(partition)
        return [] if c is None else list(zip(c.bases, c.batches, strict=True))

    def observe(self, partition: str, views: Sequence[ReplicaView]) -> None:
        check_replicas(partition, views)
        c = self._partitions.setdefault(partition, _Committed())
        if c.bases:
            history = ReplicaView(
                -1,
                True,
                c.bases[0],
                c.high_watermark,
                c.ends[-1],
                tuple(c.batches),
                tuple(c.bases),
                tuple(c.ends),
            )
            for view in views:
                low = max(view.log_start_offset, history.log_start_offset)
                if view.in_isr:
                    problem = _first_difference(
                        partition,
                        history,
                        f"committed (a replica exposed HW {c.high_watermark})",
                        view,
                        "in the ISR",
                        low,
                        c.high_watermark,
                    )
                else:
                    problem = _first_difference(
                        partition,
                        view,
                        f"below its HW {view.high_watermark}",
                        history,
                        "the committed history",
                        low,
                        min(view.high_watermark, c.high_watermark),
                    )
                if problem is not None:
                    raise problem
        top = max(views, key=lambda v: (v.high_watermark, -v.node), default=None)
        if top is None or top.high_watermark <= c.high_watermark:
            return
        start = top.index_of(c.ends[-1] if c.ends else top.log_start_offset)
        stop = top.index_of(top.high_watermark)
        c.batches += top.batches[start:stop]
        c.bases += top.bases[start:stop]
        c.ends += top.ends[start:stop]
        c.high_watermark = top.high_watermark
