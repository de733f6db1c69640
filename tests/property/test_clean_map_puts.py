"""The offset map's batch-at-once puts end where the puts one record at a time end.

:func:`storage.clean_map.map_batch` gives a batch's keys to :meth:`OffsetMap.put_all` in one
step when it can; these properties hold it to :meth:`OffsetMap.put` record by record (the
map's entries, its counted bytes, whether it became full and its latest offset), over budgets
from a few keys to plenty, repeated keys, keys of every length and batches mapped one after
another into the same map.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.batch import NewRecord, build_batch, read_header
from storage.clean_map import ENTRY_OVERHEAD_BYTES, OffsetMap, map_batch, walk_records

SETTINGS = settings(max_examples=300, deadline=None)
T0 = 1_700_000_000_000

keys = st.binary(min_size=0, max_size=3) | st.sampled_from([b"k" * 70, b"x" * 200])
# Now and then a record without a key (a topic made compacted after it was written).
batch_keys = st.lists(
    st.lists(keys | st.just(None), min_size=1, max_size=12), min_size=1, max_size=6
)


def reference_map_batch(offset_map: OffsetMap, batch: bytes, start_offset: int) -> tuple[int, bool]:
    """map_batch's rule with one put a record: (the batch's last offset, whether full)."""
    header = read_header(batch)
    walk = walk_records(batch, 0, header)
    if header.last_offset < start_offset:
        return header.last_offset, False
    force = offset_map.latest_offset < start_offset
    for offset, key in zip(walk.offsets, walk.keys, strict=True):
        if (
            key is not None
            and offset >= start_offset
            and not offset_map.put(key, offset, force=force)
        ):
            return header.last_offset, True
    offset_map.update_latest_offset(header.last_offset)
    return header.last_offset, False


def state(offset_map: OffsetMap, every_key: set[bytes]) -> tuple[object, ...]:
    return (
        {k: offset_map.get(k) for k in every_key},
        len(offset_map),
        offset_map.used_bytes,
        offset_map.latest_offset,
    )


@SETTINGS
@given(
    batches=batch_keys,
    budget_keys=st.integers(1, 40),
    start=st.integers(0, 5),
)
def test_mapping_batches_at_once_ends_as_mapping_them_record_by_record(
    batches: list[list[bytes | None]], budget_keys: int, start: int
) -> None:
    budget = budget_keys * (ENTRY_OVERHEAD_BYTES + 8)
    at_once, one_by_one = OffsetMap(budget), OffsetMap(budget)
    every_key = {k for batch in batches for k in batch if k is not None}
    base = 0
    for batch_keys_ in batches:
        batch = build_batch([NewRecord(k, b"v", T0) for k in batch_keys_], base_offset=base)
        _h, full = map_batch(at_once, batch, 0, start)
        _last, expected_full = reference_map_batch(one_by_one, batch, start)
        assert full == expected_full
        assert state(at_once, every_key) == state(one_by_one, every_key)
        if full:
            break
        base += len(batch_keys_)
