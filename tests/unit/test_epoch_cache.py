"""LeaderEpochCache follows Kafka's LeaderEpochFileCache rules, and persists them."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from storage.checkpoints import LeaderEpochCheckpointFile
from storage.epoch_cache import LeaderEpochCache
from storage.errors import CorruptCheckpointError


def cache_with(*entries: tuple[int, int]) -> LeaderEpochCache:
    cache = LeaderEpochCache(None)
    for epoch, start in entries:
        cache.assign(epoch, start)
    return cache


# -- assign ------------------------------------------------------------------------------------


def test_assign_appends_a_higher_epoch() -> None:
    cache = cache_with((0, 0), (2, 10), (5, 40))
    assert cache.entries == [(0, 0), (2, 10), (5, 40)]
    assert cache.latest_epoch == 5


def test_empty_cache_has_no_latest_epoch() -> None:
    cache = LeaderEpochCache(None)
    assert cache.entries == []
    assert cache.latest_epoch is None
    assert len(cache) == 0


def test_assign_of_the_latest_epoch_at_a_later_offset_is_a_no_op() -> None:
    cache = cache_with((3, 10))
    cache.assign(3, 10)
    cache.assign(3, 25)
    assert cache.entries == [(3, 10)]


def test_assign_of_the_latest_epoch_at_an_earlier_offset_moves_its_start_back() -> None:
    cache = cache_with((1, 0), (3, 10))
    cache.assign(3, 7)
    assert cache.entries == [(1, 0), (3, 7)]


def test_assign_of_a_lower_epoch_drops_the_entries_it_conflicts_with() -> None:
    cache = cache_with((1, 0), (3, 10), (5, 20))
    cache.assign(4, 15)
    assert cache.entries == [(1, 0), (3, 10), (4, 15)]


def test_assign_at_an_offset_below_later_entries_drops_them() -> None:
    cache = cache_with((1, 0), (3, 10), (5, 20))
    cache.assign(6, 10)
    assert cache.entries == [(1, 0), (6, 10)]


def test_entries_stay_strictly_ascending_in_epoch_and_offset() -> None:
    cache = LeaderEpochCache(None)
    for epoch, start in [(2, 5), (7, 9), (4, 30), (4, 3), (9, 3), (1, 50), (8, 60)]:
        cache.assign(epoch, start)
        entries = cache.entries
        assert all(a[0] < b[0] and a[1] < b[1] for a, b in pairwise(entries))
        assert entries[-1] == (epoch, start)


def test_assign_refuses_negative_epoch_or_offset() -> None:
    cache = LeaderEpochCache(None)
    with pytest.raises(ValueError):
        cache.assign(-1, 0)
    with pytest.raises(ValueError):
        cache.assign(0, -1)
    assert cache.entries == []


def test_entries_is_a_copy() -> None:
    cache = cache_with((0, 0))
    cache.entries.append((9, 9))
    assert cache.entries == [(0, 0)]


# -- end_offset_for ----------------------------------------------------------------------------


def test_end_offset_for_the_latest_epoch_is_the_log_end_offset() -> None:
    cache = cache_with((0, 0), (2, 10))
    assert cache.end_offset_for(2, 42) == (2, 42)


def test_end_offset_for_an_earlier_epoch_is_the_next_epochs_start() -> None:
    cache = cache_with((0, 0), (2, 10), (5, 40))
    assert cache.end_offset_for(0, 99) == (0, 10)
    assert cache.end_offset_for(2, 99) == (2, 40)


def test_end_offset_for_an_unknown_epoch_answers_with_the_largest_epoch_below_it() -> None:
    cache = cache_with((0, 0), (2, 10), (5, 40))
    assert cache.end_offset_for(1, 99) == (0, 10)
    assert cache.end_offset_for(3, 99) == (2, 40)
    assert cache.end_offset_for(4, 99) == (2, 40)


def test_end_offset_for_an_epoch_below_the_first_is_the_first_start_offset() -> None:
    # Kafka 2.0+ (KIP-279): the data of older epochs is gone; the follower restarts at the
    # leader's first known offset.
    cache = cache_with((3, 100), (5, 140))
    assert cache.end_offset_for(1, 999) == (1, 100)


def test_end_offset_for_an_epoch_above_the_latest_is_undefined() -> None:
    cache = cache_with((0, 0), (2, 10))
    assert cache.end_offset_for(7, 42) == (-1, -1)


def test_end_offset_for_on_an_empty_cache_is_undefined() -> None:
    assert LeaderEpochCache(None).end_offset_for(0, 0) == (-1, -1)


def test_end_offset_for_the_undefined_epoch_is_undefined() -> None:
    assert cache_with((0, 0)).end_offset_for(-1, 5) == (-1, -1)


# -- truncation --------------------------------------------------------------------------------


def test_truncate_from_end_drops_entries_starting_at_or_after_the_offset() -> None:
    cache = cache_with((0, 0), (2, 10), (5, 40))
    cache.truncate_from_end(40)
    assert cache.entries == [(0, 0), (2, 10)]
    cache.truncate_from_end(11)
    assert cache.entries == [(0, 0), (2, 10)]
    cache.truncate_from_end(5)
    assert cache.entries == [(0, 0)]
    cache.truncate_from_end(0)
    assert cache.entries == []


def test_truncate_from_end_ignores_a_negative_offset() -> None:
    cache = cache_with((0, 0))
    cache.truncate_from_end(-1)
    assert cache.entries == [(0, 0)]


def test_truncate_from_start_moves_the_covering_epoch_to_the_new_start() -> None:
    cache = cache_with((0, 0), (2, 10), (5, 40))
    cache.truncate_from_start(15)
    assert cache.entries == [(2, 15), (5, 40)]


def test_truncate_from_start_keeps_an_entry_starting_exactly_there() -> None:
    cache = cache_with((0, 0), (2, 10), (5, 40))
    cache.truncate_from_start(40)
    assert cache.entries == [(5, 40)]


def test_truncate_from_start_below_the_first_entry_changes_nothing() -> None:
    cache = cache_with((2, 10), (5, 40))
    cache.truncate_from_start(3)
    assert cache.entries == [(2, 10), (5, 40)]


def test_truncate_from_start_past_the_last_entry_keeps_only_the_latest_epoch() -> None:
    cache = cache_with((2, 10), (5, 40))
    cache.truncate_from_start(100)
    assert cache.entries == [(5, 100)]


def test_clear_drops_everything() -> None:
    cache = cache_with((2, 10), (5, 40))
    cache.clear()
    assert cache.entries == []
    assert cache.latest_epoch is None


# -- persistence -------------------------------------------------------------------------------


def test_changes_are_persisted_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    cache = LeaderEpochCache(path)
    assert not path.exists()  # nothing written until something changes
    cache.assign(0, 0)
    cache.assign(3, 17)
    assert path.read_text() == "0\n2\n0 0\n3 17\n"
    assert LeaderEpochCache(path).entries == [(0, 0), (3, 17)]

    cache.truncate_from_end(17)
    assert LeaderEpochCache(path).entries == [(0, 0)]
    cache.assign(4, 9)
    cache.truncate_from_start(5)
    assert LeaderEpochCache(path).entries == [(0, 5), (4, 9)]
    cache.clear()
    assert path.read_text() == "0\n0\n"
    assert LeaderEpochCache(path).entries == []


def test_a_no_op_assign_does_not_rewrite_the_file(tmp_path: Path) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    cache = LeaderEpochCache(path)
    cache.assign(1, 0)
    path.write_text("0\n1\n1 0\n")  # same content; a rewrite would not be visible otherwise
    before = path.stat().st_ino
    cache.assign(1, 5)
    assert path.stat().st_ino == before


def test_loading_a_non_monotonic_file_keeps_what_assign_would_keep(tmp_path: Path) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    path.write_text("0\n3\n1 0\n4 20\n3 10\n")
    assert LeaderEpochCache(path).entries == [(1, 0), (3, 10)]


def test_loading_a_corrupt_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    path.write_text("0\n1\nfive 0\n")
    with pytest.raises(CorruptCheckpointError) as info:
        LeaderEpochCache(path)
    assert str(path) in str(info.value)
    assert info.value.line == 3


def test_in_memory_cache_writes_no_file(tmp_path: Path) -> None:
    cache = LeaderEpochCache(None)
    cache.assign(1, 0)
    assert list(tmp_path.iterdir()) == []


def test_the_file_written_is_a_leader_epoch_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "leader-epoch-checkpoint"
    cache_file = LeaderEpochCache(path)
    cache_file.assign(2, 0)
    cache_file.assign(7, 1000)
    assert LeaderEpochCheckpointFile(path).read() == [(2, 0), (7, 1000)]
