"""Properties of the cleaner (storage.cleaner, clean_filter, clean_swap) over random logs.

For any sequence of keyed records, tombstones, keyless records, rolls, idempotent producers
and clean rounds with an advancing clock, after every clean with checkpoint C the log read from
the beginning holds: every record written at or after C, unchanged; below C, exactly the latest
record of every key written below C (a tombstone until its batch's delete horizon passes, then
nothing), at its original offset, and no keyless record; offsets strictly increasing; every
batch with the base and last offsets it was written with; every active producer's last batch.
And a crash after any step of any group's swap recovers to the segments before that group's
swap or after it, never a mix.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from storage.batch import NewRecord, build_batch, decode_batch, iter_batches, read_header
from storage.clean_filter import delete_horizon
from storage.clean_map import ENTRY_OVERHEAD_BYTES, OffsetMap, record_keys
from storage.clean_plan import SegmentSummary, log_to_clean
from storage.clean_swap import recover_swaps, swap_in, swap_steps
from storage.cleaner import CleanedSegment, CleanResult, clean_log
from storage.errors import CorruptRecordError
from storage.log_config import LogConfig
from storage.segment import segment_name

T0 = 1_700_000_000_000
RETENTION_MS = 1_000
CONFIG = LogConfig(
    cleanup_policy="compact", segment_bytes=400, index_interval_bytes=64, delete_retention_ms=1_000
)
KEYS = [b"k0", b"k1", b"k2", b"k3", b"k4"]
SETTINGS = settings(max_examples=150, deadline=None)


def no_fsync(fd: int) -> None:
    """The tests check names and bytes, not durability: fsyncs are skipped to keep them fast."""


@contextmanager
def scratch() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="cleaner-prop-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


# -- a log written by hand: segment files of batches ------------------------------------------


@dataclass(frozen=True)
class Written:
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    batch_base: int


@dataclass
class Model:
    directory: Path
    active_base: int = 0
    next_offset: int = 0
    now: int = T0
    records: list[Written] = field(default_factory=list)
    batches: dict[int, int] = field(default_factory=dict)  # base -> last offset
    producer_last: dict[int, int] = field(default_factory=dict)  # producer -> last offset
    sequences: dict[int, int] = field(default_factory=dict)
    checkpoint: int | None = None
    removed_tombstones: set[int] = field(default_factory=set)

    def write(self, records: list[tuple[int | None, bool]], producer: int | None) -> None:
        base = self.next_offset
        new = [
            NewRecord(
                None if k is None else KEYS[k], None if tomb else b"v%d" % (base + i), self.now
            )
            for i, (k, tomb) in enumerate(records)
        ]
        sequence = self.sequences.get(producer, 0) if producer is not None else -1
        batch = build_batch(
            new,
            base_offset=base,
            producer_id=producer if producer is not None else -1,
            producer_epoch=0 if producer is not None else -1,
            base_sequence=sequence,
        )
        with open(self.directory / f"{segment_name(self.active_base)}.log", "ab") as f:
            f.write(batch)
        for i, r in enumerate(new):
            self.records.append(Written(base + i, r.key, r.value, r.timestamp, base))
        last = base + len(new) - 1
        self.batches[base] = last
        if producer is not None:
            self.producer_last[producer] = last
            self.sequences[producer] = sequence + len(new)
        self.next_offset = last + 1

    def roll(self) -> None:
        if self.next_offset != self.active_base:
            self.active_base = self.next_offset
            (self.directory / f"{segment_name(self.active_base)}.log").write_bytes(b"")


def summaries(directory: Path) -> list[SegmentSummary]:
    out: list[SegmentSummary] = []
    for path in sorted(directory.glob("*.log")):
        data = path.read_bytes()
        headers = [h for _pos, h in iter_batches(data, verify=False)]
        base = int(path.name[:20])
        out.append(
            SegmentSummary(
                base_offset=base,
                next_offset=headers[-1].next_offset if headers else base,
                size_bytes=len(data),
                max_timestamp=max((h.max_timestamp for h in headers), default=-1),
                first_batch_timestamp=headers[0].max_timestamp if headers else None,
                index_entries=0,
                time_index_entries=0,
                path=path,
            )
        )
    return out


@dataclass(frozen=True)
class OnDisk:
    batches: list[tuple[int, int, int | None, int]]  # base, last, horizon, record count
    records: list[tuple[int, bytes | None, bytes | None, int, int]]  # + timestamp, batch base


def read_log(directory: Path) -> OnDisk:
    batches: list[tuple[int, int, int | None, int]] = []
    records: list[tuple[int, bytes | None, bytes | None, int, int]] = []
    for path in sorted(directory.glob("*.log")):
        data = path.read_bytes()
        for pos, _h in iter_batches(data):
            header, recs = decode_batch(data, pos)
            batches.append(
                (header.base_offset, header.last_offset, delete_horizon(header), len(recs))
            )
            records.extend(
                (r.offset, r.key, r.value, r.timestamp, header.base_offset) for r in recs
            )
    return OnDisk(batches, records)


# -- one clean round ----------------------------------------------------------------------


def clean_round(
    model: Model,
    *,
    hw_lag: int,
    budget_keys: int | None,
    active: set[int],
    commit: Callable[[CleanedSegment], None] | None = None,
) -> tuple[CleanResult, int] | None:
    segments = summaries(model.directory)
    hw = max(model.next_offset - hw_lag, 0)
    target = log_to_clean(
        segments,
        log_start_offset=0,
        log_end_offset=model.next_offset,
        high_watermark=hw,
        checkpoint=model.checkpoint,
        now_ms=model.now,
        config=CONFIG,
    )
    if target.first_dirty >= target.first_uncleanable:
        return None
    budget = (
        OffsetMap(budget_keys * (ENTRY_OVERHEAD_BYTES + 2))
        if budget_keys is not None
        else OffsetMap()
    )
    result = clean_log(
        model.directory,
        segments,
        target,
        config=CONFIG,
        offset_map=budget,
        last_data_offsets={p: o for p, o in model.producer_last.items() if p in active},
        now_ms=model.now,
        commit=commit or (lambda c: swap_in(model.directory, c.old_bases, no_fsync)),
        fsync=no_fsync,
    )
    return result, target.first_uncleanable


def check_after_clean(
    model: Model, before: OnDisk, result: CleanResult, first_uncleanable: int, active: set[int]
) -> None:
    after = read_log(model.directory)
    cut = result.checkpoint
    horizon_before = {base: h for base, _last, h, _n in before.batches if h is not None}
    # Offsets strictly increase, batches keep their base and last offsets.
    offsets = [r[0] for r in after.records]
    assert offsets == sorted(set(offsets))
    bases = [b[0] for b in after.batches]
    assert bases == sorted(set(bases))
    for base, last, _h, _n in after.batches:
        assert model.batches[base] == last
    # Active producers' last batches survive.
    present = {(b[0], b[1]) for b in after.batches}
    for producer, last in model.producer_last.items():
        if producer in active:
            base = max(b for b in model.batches if b <= last)
            assert (base, last) in present
    # At or after the checkpoint: everything as written.
    written = [(w.offset, w.key, w.value, w.timestamp, w.batch_base) for w in model.records]
    assert [r for r in after.records if r[0] >= cut] == [w for w in written if w[0] >= cut]
    # Below it: the latest record of each key, tombstones until their horizon.
    latest: dict[bytes, Written] = {}
    for w in model.records:
        if w.offset < cut and w.key is not None:
            latest[w.key] = w
    full_map = cut == first_uncleanable
    later_keys = {w.key for w in model.records if w.offset >= cut}
    expected = []
    for key, w in latest.items():
        if w.value is None:
            horizon = horizon_before.get(w.batch_base)
            if w.offset in model.removed_tombstones or (
                horizon is not None and model.now >= horizon
            ):
                model.removed_tombstones.add(w.offset)
                event("clean: a tombstone past its horizon")
                continue
        expected.append((w.offset, w.key, w.value, w.timestamp, w.batch_base))
        del key
    below = [r for r in after.records if r[0] < cut]
    event(f"clean: {'whole map' if full_map else 'map full early'}")
    if len(after.records) < len(before.records):
        event("clean: records dropped")
    if any(n == 0 for _b, _l, _h, n in after.batches):
        event("clean: an empty batch kept")
    if any(h is not None for _b, _l, h, _n in after.batches):
        event("clean: a delete horizon set")
    if full_map:
        assert below == sorted(expected)
    else:
        # The map stopped early: a key of the batch it stopped in may supersede its latest
        # record below the checkpoint from after it (Kafka's behaviour); nothing else goes.
        assert set(below) <= set(expected)
        for r in set(expected) - set(below):
            assert r[1] in later_keys
            if r[2] is None:
                model.removed_tombstones.add(r[0])
    # A kept tombstone's batch carries a horizon: the one it had, or now + retention. An
    # emptied batch (a header kept for a producer) carries none, as Kafka writes it.
    for base, _last, horizon, count in after.batches:
        has_tombstone = any(r[2] is None and r[4] == base for r in after.records)
        if count == 0:
            assert horizon is None
        elif base in horizon_before:
            assert horizon == horizon_before[base]
        elif has_tombstone and base < cut:
            assert horizon == model.now + RETENTION_MS


# -- the strategies -------------------------------------------------------------------------

record = st.tuples(st.one_of(st.none(), st.integers(0, len(KEYS) - 1)), st.booleans())
# A batch of records, written by nobody (None) or by idempotent producer 0 or 1.
Write = tuple[list[tuple[int | None, bool]], int | None]
write = st.tuples(st.lists(record, min_size=1, max_size=4), st.one_of(st.none(), st.integers(0, 1)))
# Writes, each followed or not by a roll of the active segment.
writes = st.lists(st.tuples(write, st.booleans()), min_size=1, max_size=10)


@dataclass(frozen=True)
class Clean:
    advance_ms: int  # the clock moves by this much first
    hw_lag: int  # the high watermark is this far below the log end
    budget_keys: int | None  # the offset map holds about this many keys (None: 128 MiB)


cleans = st.builds(
    Clean,
    st.sampled_from([0, RETENTION_MS // 2, RETENTION_MS, 3 * RETENTION_MS]),
    st.sampled_from([0, 0, 1, 3]),
    st.one_of(st.none(), st.none(), st.integers(1, 4)),
)
rounds = st.lists(st.tuples(writes, cleans), min_size=1, max_size=6)


@SETTINGS
@given(rounds=rounds, inactive=st.sets(st.integers(0, 1)))
def test_a_cleaned_log_holds_the_latest_record_of_every_key(
    rounds: list[tuple[list[tuple[Write, bool]], Clean]], inactive: set[int]
) -> None:
    active = {0, 1} - inactive
    with scratch() as directory:
        model = Model(directory)
        (directory / f"{segment_name(0)}.log").write_bytes(b"")
        for round_writes, clean in rounds:
            for (records, producer), roll in round_writes:
                model.write(records, producer)
                model.now += 1
                if roll:
                    model.roll()
            model.now += clean.advance_ms
            before = read_log(directory)
            done = clean_round(
                model, hw_lag=clean.hw_lag, budget_keys=clean.budget_keys, active=active
            )
            if done is None:
                event("no clean: nothing cleanable")
                continue
            result, first_uncleanable = done
            check_after_clean(model, before, result, first_uncleanable, active)
            model.checkpoint = result.checkpoint
            names = {p.name for p in directory.iterdir()}
            assert all(n.endswith((".log", ".index", ".timeindex")) for n in names), names


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


class Crash(Exception):
    """The simulated crash: the process stops after a chosen step of the swap."""


@SETTINGS
@given(
    log=st.lists(
        st.tuples(st.lists(record, min_size=1, max_size=4), st.booleans()), min_size=2, max_size=30
    ),
    group=st.integers(0, 5),
    step=st.integers(0, 40),
)
def test_a_crash_at_any_step_of_the_swap_recovers_to_old_or_new(
    log: list[tuple[list[tuple[int | None, bool]], bool]], group: int, step: int
) -> None:
    with scratch() as root:
        original = root / "log"
        original.mkdir()
        model = Model(original)
        (original / f"{segment_name(0)}.log").write_bytes(b"")
        for records, roll in log:
            model.write(records, None)
            if roll:
                model.roll()
        model.roll()  # the last batches are cleanable too
        model.now += RETENTION_MS

        # A reference run on a copy: the directory after each group's commit.
        reference = root / "reference"
        shutil.copytree(original, reference)
        states = [snapshot(reference)]

        def record_state(cleaned: CleanedSegment) -> None:
            swap_in(reference, cleaned.old_bases, no_fsync)
            states.append(snapshot(reference))

        copy = Model(reference, model.active_base, model.next_offset, model.now)
        if clean_round(copy, hw_lag=0, budget_keys=None, active=set(), commit=record_state) is None:
            return
        crash_group = min(group, len(states) - 2)

        commits = 0

        def crash(cleaned: CleanedSegment) -> None:
            nonlocal commits
            steps = swap_steps(original, cleaned.old_bases, no_fsync)
            if commits < crash_group:
                for _name, action in steps:
                    action()
                commits += 1
                return
            for _name, action in steps[: min(step, len(steps))]:
                action()
            raise Crash

        try:
            clean_round(model, hw_lag=0, budget_keys=None, active=set(), commit=crash)
        except Crash:
            pass
        recover_swaps(original, no_fsync)
        recovered = snapshot(original)
        assert recovered in (states[crash_group], states[crash_group + 1])
        side = "old" if recovered == states[crash_group] else "new"
        event(f"crash: {len(states) - 1} groups, recovered to {side}")


# -- the light record walk agrees with the full decoder ------------------------------------

any_record = st.builds(
    NewRecord,
    st.one_of(st.none(), st.binary(max_size=300)),
    st.one_of(st.none(), st.binary(max_size=10_000)),
    st.integers(T0 - 10**9, T0 + 10**9),
    st.lists(
        st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=5))), max_size=3
    ).map(tuple),
)


@SETTINGS
@given(records=st.lists(any_record, min_size=1, max_size=6), base=st.integers(0, 2**40))
def test_record_keys_agrees_with_decode_batch(records: list[NewRecord], base: int) -> None:
    data = build_batch(records, base_offset=base)
    header, decoded = decode_batch(data)
    assert record_keys(data, 0, header) == [(r.offset, r.key, r.value is None) for r in decoded]


@SETTINGS
@given(records=st.lists(any_record, min_size=1, max_size=3), data=st.data())
def test_record_keys_of_damaged_records_raises_only_the_corruption_error(
    records: list[NewRecord], data: st.DataObject
) -> None:
    batch = bytearray(build_batch(records))
    header = read_header(batch)
    # Damage the records (the header stays readable); the CRC is not checked by the walk.
    position = data.draw(st.integers(61, len(batch) - 1))
    batch[position] = data.draw(st.integers(0, 255))
    try:
        record_keys(bytes(batch), 0, header)
    except CorruptRecordError:
        pass
