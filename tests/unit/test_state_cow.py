"""Copy-on-write metadata (kraft/cow.py and its use in kraft/state.py): a fork is a snapshot
whoever writes next; an entry copies only the shards it writes; a state applies entries exactly
as it did when every entry copied every dictionary; and iteration order is the same in every
process."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from kraft.cow import SHARD_COUNT, CowMap, CowSet, shard_of
from kraft.errors import IllegalRecordError
from kraft.records import PartitionRecord, RegisterBrokerRecord, TopicRecord
from kraft.state import MetadataState
from storage.ids import random_uuid
from tests.unit.test_state_index import Scripter

ROOT = Path(__file__).resolve().parents[2]


def random_key(rng: random.Random) -> object:
    roll = rng.random()
    if roll < 0.4:
        return f"k{rng.randint(0, 60)}"
    if roll < 0.7:
        return rng.randint(-5, 200)
    return (f"t{rng.randint(0, 10)}", rng.randint(0, 5))


@pytest.mark.parametrize("seed", range(10))
def test_a_cow_map_equals_a_dict_through_random_writes_and_forks(seed: int) -> None:
    """Every fork keeps what its dict twin holds, whatever is written to the others."""
    rng = random.Random(seed)
    pairs: list[tuple[CowMap[object, int], dict[object, int]]] = [(CowMap(), {})]
    for step in range(2000):
        cow, model = rng.choice(pairs)
        key = random_key(rng)
        roll = rng.random()
        if roll < 0.45:
            cow[key] = model[key] = step
        elif roll < 0.6:
            if key in model:
                del cow[key]
                del model[key]
            else:
                with pytest.raises(KeyError):
                    del cow[key]
        elif roll < 0.75:
            assert cow.pop(key, -1) == model.pop(key, -1)
        elif roll < 0.8:
            if key in model:
                assert cow.pop(key) == model.pop(key)
            else:
                with pytest.raises(KeyError):
                    cow.pop(key)
        elif roll < 0.85 and len(pairs) < 40:
            pairs.append((cow.fork(), dict(model)))
        for cow, model in pairs:
            assert len(cow) == len(model)
            assert (key in cow) == (key in model)
            assert cow.get(key) == model.get(key)
        if step % 100 == 0:
            for cow, model in pairs:
                assert dict(cow) == model == dict(cow.items())
                assert sorted(map(repr, cow)) == sorted(map(repr, model))
                assert sorted(cow.values()) == sorted(model.values())
                assert len(cow.items()) == len(cow.values()) == len(model)
    assert len(pairs) > 10, "the script forked"


def test_a_cow_set_fork_is_a_snapshot() -> None:
    first: CowSet[tuple[str, int]] = CowSet([("a", 0), ("b", 1)])
    second = first.fork()
    second.add(("c", 2))
    first.discard(("a", 0))
    first.discard(("absent", 9))
    assert sorted(first) == [("b", 1)] and len(first) == 1
    assert sorted(second) == [("a", 0), ("b", 1), ("c", 2)] and ("a", 0) in second


def test_writing_a_key_of_another_type_is_a_programmer_error_but_reading_finds_nothing() -> None:
    cow: CowMap[object, int] = CowMap()
    cow["a"] = 1
    with pytest.raises(TypeError, match="str, int or a tuple"):
        cow[1.5] = 1
    # As a dict: a name from a request that is not a string (None, a bool) is simply unknown.
    for key in (None, True, 1.5):
        assert key not in cow and cow.get(key) is None and cow.pop(key, 7) == 7
        with pytest.raises(KeyError):
            cow[key]
        with pytest.raises(KeyError):
            del cow[key]
    assert dict(cow) == {"a": 1}


def test_an_entry_copies_only_the_shards_it_writes() -> None:
    """Creating a topic in a state of 2,000 copies one shard of each map it writes, not the
    maps: the rest stay shared with the earlier state (the cost does not grow with size)."""
    state = MetadataState()
    state.apply_entry(1, [RegisterBrokerRecord(1, "i", 0, "http://h:1", "h:2", False)])
    for index in range(2, 2002):
        topic_id = random_uuid()
        state.apply_entry(
            index,
            [TopicRecord(f"t{index}", topic_id), PartitionRecord(topic_id, 0, (1,), (1,), 1, 0, 0)],
        )
    before = state.copy()
    topic_id = random_uuid()
    state.apply_entry(2002, [TopicRecord("new", topic_id)])
    for name in ("_topics", "_topic_names"):
        old_shards = getattr(before, name)._shards
        new_shards = getattr(state, name)._shards
        copied = [i for i in range(SHARD_COUNT) if old_shards[i] is not new_shards[i]]
        assert len(copied) == 1, (name, copied)
    assert "new" not in before.topics and len(before.topics) == 2000
    assert state.topics["new"].topic_id == topic_id and len(state.topics) == 2001


class FullCopyState(MetadataState):
    """The metadata state as it was: every entry's draft copies every dictionary whole."""

    def _draft(self) -> MetadataState:
        draft = super()._draft()
        draft._topics = CowMap(self._topics)
        draft._topic_names = CowMap(self._topic_names)
        draft._acls = CowMap(self._acls)
        draft._leaderless = CowSet(self._leaderless)
        draft._led_elsewhere = CowSet(self._led_elsewhere)
        return draft


@pytest.mark.parametrize("seed", range(8))
def test_random_entries_apply_as_with_whole_copies(seed: int) -> None:
    """Same entries, legal or refused: the copy-on-write state accepts and refuses what the
    whole-copy state does, ends equal after every entry, and every copy taken on the way still
    encodes what it encoded when taken."""
    rng = random.Random(seed)
    script = Scripter(rng)
    state, reference = MetadataState(), FullCopyState()
    copies: list[tuple[MetadataState, bytes]] = []
    refused = 0
    for index in range(1, 400):
        records = script.entry(state)
        outcomes = []
        for target in (state, reference):
            try:
                target.apply_entry(index, records)
                outcomes.append("applied")
            except IllegalRecordError as e:
                outcomes.append(str(e))
        assert outcomes[0] == outcomes[1]
        refused += outcomes[0] != "applied"
        assert state.to_snapshot() == reference.to_snapshot()
        assert list(state.topics) == list(reference.topics)
        assert state.leaderless() == reference.leaderless()
        assert state.led_elsewhere() == reference.led_elsewhere()
        if rng.random() < 0.2:
            copy = state.copy()
            copies.append((copy, copy.to_snapshot()))
    assert refused > 0
    for copy, encoded in copies:
        assert copy.to_snapshot() == encoded, "a later entry changed an earlier copy"


ORDER_SCRIPT = """
from kraft.records import RegisterBrokerRecord, TopicRecord
from kraft.state import MetadataState
from storage.ids import uuid_to_string
state = MetadataState()
state.apply_entry(1, [RegisterBrokerRecord(1, "i", 0, "http://h:1", "h:2", False)])
for n in range(300):
    topic_id = uuid_to_string(bytes([1, n % 256, n // 256]) + bytes(13))
    state.apply_entry(n + 2, [TopicRecord(f"topic-{n}", topic_id)])
print(",".join(state.topics))
"""


def test_iteration_order_is_the_same_in_every_process() -> None:
    """Python salts str hashes per process; the shards come from CRC-32, so two processes
    with different salts list the topics in one order (and not in insertion order)."""
    orders = []
    for salt in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": salt, "PYTHONPATH": str(ROOT)}
        out = subprocess.run(
            [sys.executable, "-c", ORDER_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        orders.append(out.stdout.strip().split(","))
    assert orders[0] == orders[1]
    assert sorted(orders[0]) == sorted(f"topic-{n}" for n in range(300))
    assert orders[0] != [f"topic-{n}" for n in range(300)]
    assert shard_of("topic-0") == shard_of("topic-0") < SHARD_COUNT
