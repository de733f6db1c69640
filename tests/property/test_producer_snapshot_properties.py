"""Producer snapshot properties: entries round trip through Kafka's bytes; any bytes either
decode or raise the one corruption error; and a table loaded from a snapshot of a prefix of
the log, then fed the headers after it, decides as a table rebuilt from every header, for each
producer's epoch, next sequence and last batch (Kafka's snapshot keeps only the last batch, so
retries of older batches are out of scope)."""

from __future__ import annotations

import struct

import crc32c
from hypothesis import given, settings
from hypothesis import strategies as st

from server.producer_state import (
    APPEND,
    Decision,
    Duplicate,
    OutOfOrderSequence,
    ProducerStateTable,
    last_sequence_of,
    next_sequence,
)
from storage.batch import MIN_BATCH_LENGTH, BatchHeader
from storage.errors import CorruptSnapshotError
from storage.producer_snapshot import ProducerSnapshotEntry, decode, encode

SETTINGS = settings(max_examples=200, deadline=None)
PATH = "/data/t-0/00000000000000000042.snapshot"


@st.composite
def entries(draw: st.DrawFn) -> ProducerSnapshotEntry:
    if draw(st.booleans()):
        last_offset = draw(st.integers(0, 2**63 - 1))
        offset_delta = draw(st.integers(0, min(last_offset, 2**31 - 1)))
        last_sequence = draw(st.integers(0, 2**31 - 1))
    else:  # an entry that only carries an epoch
        last_offset, offset_delta, last_sequence = -1, 0, -1
    return ProducerSnapshotEntry(
        producer_id=draw(st.integers(0, 2**63 - 1)),
        producer_epoch=draw(st.integers(0, 2**15 - 1)),
        last_sequence=last_sequence,
        last_offset=last_offset,
        offset_delta=offset_delta,
        timestamp=draw(st.integers(-(2**63), 2**63 - 1)),
        coordinator_epoch=draw(st.integers(-1, 2**31 - 1)),
        current_txn_first_offset=draw(st.integers(-1, 2**63 - 1)),
    )


snapshots = st.lists(entries(), max_size=20, unique_by=lambda e: e.producer_id)


@SETTINGS
@given(snapshots)
def test_entries_round_trip(items: list[ProducerSnapshotEntry]) -> None:
    data = encode(items)
    assert len(data) == 10 + 46 * len(items)
    assert decode(data, PATH) == items


def _with_good_crc(body: bytes) -> bytes:
    """Version 1 and a CRC that matches: what is left to catch is the count and entries."""
    return struct.pack(">hI", 1, crc32c.crc32c(body)) + body


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    valid = encode(draw(snapshots))
    kind = draw(st.sampled_from(["flip", "cut", "extend", "body"]))
    if kind == "flip":
        data = bytearray(valid)
        i = draw(st.integers(0, len(data) - 1))
        data[i] ^= draw(st.integers(1, 255))
        return bytes(data)
    if kind == "cut":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "extend":
        return valid + draw(st.binary(min_size=1, max_size=60))
    count = draw(st.integers(-3, 4))
    return _with_good_crc(struct.pack(">i", count) + draw(st.binary(max_size=4 * 46)))


@SETTINGS
@given(st.binary(max_size=300) | damaged())
def test_any_bytes_decode_or_raise_the_one_error(data: bytes) -> None:
    try:
        items = decode(data, PATH)
    except CorruptSnapshotError as e:
        assert e.path == PATH
    else:
        assert encode(items) == data  # what decodes is exactly what we would write


# -- a loaded table against a rebuilt one ------------------------------------------------------

PRODUCERS = 4


def header(pid: int, epoch: int, seq: int, count: int, first: int, ts: int) -> BatchHeader:
    return BatchHeader(
        base_offset=first,
        batch_length=MIN_BATCH_LENGTH,
        partition_leader_epoch=0,
        magic=2,
        crc=0,
        attributes=0,
        last_offset_delta=count - 1,
        base_timestamp=ts,
        max_timestamp=ts,
        producer_id=pid,
        producer_epoch=epoch,
        base_sequence=seq,
        record_count=count,
    )


_requests = st.lists(
    st.tuples(
        st.integers(0, PRODUCERS - 1),
        st.sampled_from(["next", "next", "next", "bump", "gap", "new"]),
        st.integers(1, 3),
        st.integers(0, 1000),
    ),
    min_size=1,
    max_size=60,
)


def write_log(requests: list[tuple[int, str, int, int]], max_producers: int) -> list[BatchHeader]:
    """The headers a leader writes for these requests: each is checked by a live table and
    appended on APPEND, as the produce path does."""
    live = ProducerStateTable(max_producers=max_producers)
    headers: list[BatchHeader] = []
    offset = 0
    for pid, how, count, pick in requests:
        view = live.producer(pid)
        epoch = view.producer_epoch if view else 0
        expected = next_sequence(view.last_sequence) if view else 0
        if how == "bump":
            epoch, seq = epoch + 1, 0
        elif how == "gap":
            seq = expected + 1 + pick % 3
        elif how == "new":
            seq = pick % 4  # an evicted or forgotten producer may resume anywhere
        else:
            seq = expected
        if live.check(pid, epoch, seq, count) != APPEND:
            continue
        h = header(pid, epoch, seq, count, offset, 1700000000000 + pick)
        live.observe(h)
        headers.append(h)
        offset = h.next_offset
    return headers


def probes(table: ProducerStateTable, last: dict[int, BatchHeader]) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = []
    for pid in range(PRODUCERS + 2):
        view = table.producer(pid)
        epoch = view.producer_epoch if view else 0
        expected = next_sequence(view.last_sequence) if view else 0
        for e in {max(epoch - 1, 0), epoch, epoch + 1}:
            for seq in {0, 1, 5, expected, expected + 1}:
                out.append((pid, e, seq, 1))
        if pid in last:
            h = last[pid]
            out.append((pid, h.producer_epoch, h.base_sequence, h.record_count))
            out.append((pid, h.producer_epoch, last_sequence_of(h.base_sequence, 2), 1))
    return out


def agrees(
    loaded: Decision,
    rebuilt: Decision,
    last_offset: int | None,
    loaded_strict: bool,
    rebuilt_strict: bool,
) -> bool:
    """Equal; or one of the two differences the snapshot format allows:

    - a retry of a batch older than the producer's last one (``last_offset``): the rebuilt
      window still holds it, the snapshot kept only the last batch (out of scope, safe);
    - an unknown producer whose sequence the rebuilt table refuses because its history is
      complete, while the loaded table cannot claim so (a full snapshot may come from a
      table that evicted)."""
    if loaded == rebuilt:
        return True
    if isinstance(rebuilt, Duplicate) and isinstance(loaded, OutOfOrderSequence):
        return last_offset is not None and rebuilt.last_offset < last_offset
    return (
        rebuilt_strict
        and not loaded_strict
        and loaded == APPEND
        and isinstance(rebuilt, OutOfOrderSequence)
        and rebuilt.expected_sequence == 0
    )


@settings(max_examples=300, deadline=None)
@given(
    requests=_requests,
    max_producers=st.sampled_from([1, 2, 3, 1000]),
    cut=st.integers(0, 10**6),
    start=st.integers(0, 10**6),
)
def test_a_table_loaded_from_a_snapshot_of_a_prefix_decides_as_a_full_rebuild(
    requests: list[tuple[int, str, int, int]], max_producers: int, cut: int, start: int
) -> None:
    headers = write_log(requests, max_producers)
    # The snapshot at a batch boundary, the log start at another (retention).
    k = cut % (len(headers) + 1)
    snapshot_offset = headers[k - 1].next_offset if k else 0
    j = start % (len(headers) + 1) if start % 3 == 0 else 0
    log_start = headers[j - 1].next_offset if j else 0

    prefix = ProducerStateTable(max_producers=max_producers)
    prefix.rebuild(headers[:k])
    entries = decode(encode(prefix.snapshot_entries()), PATH)

    loaded = ProducerStateTable(max_producers=max_producers)
    loaded.load(entries, snapshot_offset, log_start)
    for h in headers:
        if h.base_offset >= max(snapshot_offset, log_start):
            loaded.observe(h)

    # What the node had in memory: every header observed, then the log start moved.
    rebuilt = ProducerStateTable(max_producers=max_producers)
    rebuilt.rebuild(headers, log_start)

    assert sorted(loaded.producer_ids()) == sorted(rebuilt.producer_ids())
    last = {h.producer_id: h for h in headers if rebuilt.producer(h.producer_id) is not None}
    for pid in loaded.producer_ids():
        a, b = loaded.producer(pid), rebuilt.producer(pid)
        assert a is not None and b is not None
        assert (a.producer_epoch, a.batches[-1]) == (b.producer_epoch, b.batches[-1])
    assert loaded.snapshot_entries() == rebuilt.snapshot_entries()
    for probe in probes(rebuilt, last):
        view = rebuilt.producer(probe[0])
        assert agrees(
            loaded.check(*probe),
            rebuilt.check(*probe),
            view.batches[-1].last_offset if view else None,
            loaded.history_complete,
            rebuilt.history_complete,
        ), probe
