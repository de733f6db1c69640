"""Round trips and "any bytes parse or raise the one error" for the checkpoint files, the
leader epoch cache against a brute-force model, and kraft-dump-log on arbitrary bytes."""

from __future__ import annotations

import io
import tempfile
from itertools import pairwise
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.batch import NewRecord, build_batch
from storage.checkpoints import (
    LeaderEpochCheckpointFile,
    OffsetCheckpointFile,
    PartitionMetadataFile,
)
from storage.dump_log import DumpOptions, run
from storage.epoch_cache import LeaderEpochCache
from storage.errors import CorruptCheckpointError

SETTINGS = settings(max_examples=150, deadline=None)

topics = st.from_regex(r"[a-zA-Z0-9._-]{1,30}", fullmatch=True)
offsets = st.integers(min_value=0, max_value=2**63 - 1)
partitions = st.integers(min_value=0, max_value=2**31 - 1)


@SETTINGS
@given(st.dictionaries(st.tuples(topics, partitions), offsets, max_size=20))
def test_offset_checkpoint_round_trips(entries: dict[tuple[str, int], int]) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = OffsetCheckpointFile(Path(d) / "cp")
        f.write(entries)
        assert f.read() == entries


@SETTINGS
@given(
    st.binary(max_size=300) | st.text(alphabet="0123456789 \n-abc:_", max_size=80).map(str.encode)
)
def test_any_bytes_read_as_a_checkpoint_or_raise_the_one_error(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "cp"
        path.write_bytes(data)
        for reader in (OffsetCheckpointFile, LeaderEpochCheckpointFile, PartitionMetadataFile):
            try:
                reader(path).read()
            except CorruptCheckpointError as e:
                assert e.path == str(path)


# -- the leader epoch cache against a model ------------------------------------------------------


def model_end_offset(entries: list[tuple[int, int]], epoch: int, leo: int) -> tuple[int, int]:
    """endOffsetFor spelled out from its definition."""
    if epoch == -1 or not entries:
        return -1, -1
    if epoch == entries[-1][0]:
        return epoch, leo
    higher = [e for e in entries if e[0] > epoch]
    if not higher:
        return -1, -1
    floor = [e for e in entries if e[0] <= epoch]
    return (floor[-1][0] if floor else epoch), higher[0][1]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("assign"), st.integers(0, 12), st.integers(0, 60)),
        st.tuples(st.just("truncate_from_end"), st.integers(-1, 60), st.just(0)),
        st.tuples(st.just("truncate_from_start"), st.integers(0, 60), st.just(0)),
        st.tuples(st.just("clear"), st.just(0), st.just(0)),
    ),
    max_size=25,
)


@SETTINGS
@given(operations, st.integers(-1, 14), st.integers(0, 100))
def test_epoch_cache_stays_monotonic_persists_and_answers_like_the_model(
    ops: list[tuple[str, int, int]], asked_epoch: int, leo: int
) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "leader-epoch-checkpoint"
        cache = LeaderEpochCache(path)
        for name, a, b in ops:
            if name == "assign":
                before = cache.latest_entry
                cache.assign(a, b)
                if before is not None and before[0] == a and before[1] <= b:
                    assert cache.latest_entry == before  # same epoch, later offset: no-op
                else:
                    assert cache.latest_entry == (a, b)
            elif name == "clear":
                cache.clear()
            else:
                getattr(cache, name)(a)
            entries = cache.entries
            assert all(x[0] < y[0] and x[1] < y[1] for x, y in pairwise(entries))
            if path.exists():
                assert LeaderEpochCache(path).entries == entries
        assert cache.end_offset_for(asked_epoch, leo) == model_end_offset(
            cache.entries, asked_epoch, leo
        )


# -- kraft-dump-log on any bytes ---------------------------------------------------------------

_VALID = build_batch([NewRecord(b"k", b"v", 1), NewRecord(None, b"w", 2)])


@SETTINGS
@given(
    st.binary(max_size=400)
    | st.tuples(st.integers(0, len(_VALID) - 1), st.integers(1, 255)).map(
        lambda t: _VALID[: t[0]] + bytes([_VALID[t[0]] ^ t[1]]) + _VALID[t[0] + 1 :] + _VALID
    )
    | st.integers(0, 2 * len(_VALID)).map(lambda n: (_VALID * 2)[:n])
)
def test_dump_log_reads_any_bytes_without_raising(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        log = Path(d) / "00000000000000000000.log"
        log.write_bytes(data)
        out, err = io.StringIO(), io.StringIO()
        code = run([str(log)], DumpOptions(print_data=True, deep=True), out, err)
        assert code in (0, 1)
        notes = ("Non-consecutive offsets", "  ")  # information, not a problem
        problems = [line for line in err.getvalue().splitlines() if not line.startswith(notes)]
        assert (code == 1) == bool(problems)
