"""The group coordinator's pure core: assignors, KIP-848 membership, offsets (no sockets)."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from client.protocol import (
    FENCED_MEMBER_EPOCH,
    GROUP_ID_NOT_FOUND,
    INVALID_REQUEST,
    NON_EMPTY_GROUP,
    STALE_MEMBER_EPOCH,
    UNKNOWN_MEMBER_ID,
    UNKNOWN_PARTITION,
    UNKNOWN_TOPIC,
    UNSUPPORTED_ASSIGNOR,
    ApiError,
)
from server.config import GroupSettings
from server.groups.assignors import assign_range, assign_uniform
from server.groups.runtime import java_string_hash, partition_for_group
from server.groups.shard import CommitOffset, GroupShard, Heartbeat, Planned, Topics
from storage.group_records import decode, encode_key, encode_value

TOPIC_A = "AQIDBAUGBwgJCgsMDQ4PEA"
TOPIC_B = "BBBBBBBBBBBBBBBBBBBBBA"
TOPICS = Topics({"a": (TOPIC_A, 4), "b": (TOPIC_B, 3)})


# -- Kafka's rule for a group's partition ----------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "java_hash", "partition"),
    # Printed by Java 21: s.hashCode() and Utils.abs(h) % 50.
    [
        ("my-group", -1906497762, 12),
        ("console-consumer-12345", 158455506, 6),
        ("polygenelubricants", -(2**31), 0),  # hashCode is Integer.MIN_VALUE; Utils.abs gives 0
        ("grüppe", -1233264812, 12),
        ("日本", 835047, 47),
        ("g1", 3242, 42),
    ],
)
def test_group_partition_is_kafkas_abs_of_java_hashcode_modulo(
    group: str, java_hash: int, partition: int
) -> None:
    assert java_string_hash(group) == java_hash
    assert partition_for_group(group, 50) == partition


# -- assignors -----------------------------------------------------------------------------------


def test_range_gives_consecutive_ranges_per_topic_first_members_get_the_extra() -> None:
    # Kafka's example: two members, two topics of three partitions each.
    result = assign_range({"m1": {"t0", "t1"}, "m2": {"t0", "t1"}}, {"t0": 3, "t1": 3})
    assert result == {"m1": {"t0": (0, 1), "t1": (0, 1)}, "m2": {"t0": (2,), "t1": (2,)}}


def test_range_only_assigns_a_topic_to_its_subscribers() -> None:
    result = assign_range({"m1": {"t0"}, "m2": {"t0", "t1"}}, {"t0": 2, "t1": 2, "t2": 5})
    assert result == {"m1": {"t0": (0,)}, "m2": {"t0": (1,), "t1": (0, 1)}}


def _counts(result: dict[str, dict[str, tuple[int, ...]]]) -> dict[str, int]:
    return {m: sum(len(ps) for ps in topics.values()) for m, topics in result.items()}


def _owned(result: dict[str, dict[str, tuple[int, ...]]]) -> dict[tuple[str, int], str]:
    return {(t, p): m for m, topics in result.items() for t, ps in topics.items() for p in ps}


def test_uniform_is_balanced_and_sticky_when_a_member_joins() -> None:
    subs = {"m1": {"t"}, "m2": {"t"}}
    before = assign_uniform(subs, {"t": 6}, {})
    assert _counts(before) == {"m1": 3, "m2": 3}
    previous = {m: {t: set(ps) for t, ps in topics.items()} for m, topics in before.items()}
    after = assign_uniform({**subs, "m3": {"t"}}, {"t": 6}, previous)
    assert _counts(after) == {"m1": 2, "m2": 2, "m3": 2}
    moved = {tp for tp, m in _owned(after).items() if _owned(before)[tp] != m}
    assert {_owned(after)[tp] for tp in moved} == {"m3"}  # only what the new member gets moves


def test_uniform_respects_subscriptions_and_covers_every_partition() -> None:
    rng = random.Random(7)
    for _ in range(200):
        topics = {f"t{i}": rng.randint(0, 6) for i in range(rng.randint(1, 4))}
        subs = {
            f"m{i}": set(rng.sample(sorted(topics), rng.randint(1, len(topics))))
            for i in range(rng.randint(1, 5))
        }
        result = assign_uniform(subs, topics, {})
        owned = _owned(result)
        wanted = {(t, p) for s in subs.values() for t in s for p in range(topics[t])}
        assert set(owned) == wanted
        for (t, _), m in owned.items():
            assert t in subs[m]
        # No member owns two more than another member that could take one of its partitions.
        counts = _counts(result)
        for (t, _), m in owned.items():
            for other in subs:
                if t in subs[other]:
                    assert counts[m] <= counts[other] + 1


# -- membership ----------------------------------------------------------------------------------


class Coordinator:
    """A shard driven as the runtime drives it, keeping every record written (the log)."""

    def __init__(self, **settings: Any) -> None:
        self.settings = GroupSettings(**settings)
        ids = (f"member-{i}" for i in itertools.count(1))
        self.shard = GroupShard(self.settings, lambda: next(ids))
        self.log: list[tuple[bytes, bytes | None]] = []
        self.now_ms = 0

    def write(self, planned: Planned) -> Any:
        # Through the bytes, as the log holds them.
        self.log += [(encode_key(k), encode_value(v)) for k, v in planned.records]
        self.shard.apply(planned)
        return planned.answer

    def heartbeat(self, group: str = "g", **fields: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.write(
            self.shard.plan_heartbeat(group, Heartbeat(**fields), TOPICS, self.now_ms)
        )
        return answer

    def join(self, topics: tuple[str, ...] = ("a",), **fields: Any) -> dict[str, Any]:
        return self.heartbeat(member_id=None, member_epoch=0, topics=topics, **fields)

    def beat(
        self, answer: dict[str, Any], owned: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """A heartbeat of a member that owns what it was last given (or ``owned``)."""
        owned = answer["assignment"] if owned is None else owned
        return self.heartbeat(
            member_id=answer["member_id"],
            member_epoch=answer["member_epoch"],
            owned=tuple((o["topic"], o["partition"]) for o in owned),
        )

    def replayed(self) -> GroupShard:
        """A new coordinator's shard: the log replayed."""
        shard = GroupShard(self.settings, lambda: "unused")
        for key, value in self.log:
            decoded = decode(key, value)
            assert decoded is not None
            shard.replay(*decoded)
        return shard


def _parts(answer: dict[str, Any]) -> set[tuple[str, int]]:
    return {(o["topic"], o["partition"]) for o in answer["assignment"]}


def test_first_member_gets_every_partition_at_epoch_one() -> None:
    c = Coordinator()
    a = c.join()
    assert a["member_id"] == "member-1" and a["member_epoch"] == 1
    assert _parts(a) == {("a", p) for p in range(4)}
    assert c.shard.groups["g"].state == "Stable"


def test_a_partition_moves_only_after_its_owner_gave_it_up() -> None:
    c = Coordinator()
    a = c.join()
    b = c.join()
    assert b["assignment"] == []  # everything is still a's
    a = c.beat(a)
    assert len(_parts(a)) == 2 and a["member_epoch"] == 1  # told to give two up
    b = c.beat(b)
    assert b["assignment"] == []  # a has not given them up yet
    assert c.shard.groups["g"].state == "Reconciling"
    a = c.beat(a)  # owns only its two now
    assert a["member_epoch"] == 2
    b = c.beat(b)
    assert _parts(b) == {("a", p) for p in range(4)} - _parts(a)
    assert c.shard.groups["g"].state == "Stable"


def test_a_member_whose_partitions_do_not_move_keeps_them_throughout() -> None:
    c = Coordinator()
    a = c.join()
    b = c.join()
    a = c.beat(a)
    a = c.beat(a)
    b = c.beat(b)
    kept_a, kept_b = _parts(a), _parts(b)
    third = c.join()
    # Each old member gives up at most what the newcomer takes, and keeps the rest.
    a, b = c.beat(a), c.beat(b)
    assert _parts(a) <= kept_a and _parts(b) <= kept_b
    a, b = c.beat(a), c.beat(b)
    third = c.beat(third)
    assert len(_parts(third)) == 1
    assert _parts(a) | _parts(b) | _parts(third) == {("a", p) for p in range(4)}


def test_leave_frees_partitions_for_the_others() -> None:
    c = Coordinator()
    a = c.join()
    b = c.join()
    a = c.beat(c.beat(a))
    b = c.beat(b)
    left = c.heartbeat(member_id=b["member_id"], member_epoch=-1)
    assert left["member_epoch"] == -1 and left["assignment"] == []
    a = c.beat(a)
    assert _parts(a) == {("a", p) for p in range(4)}


def test_expired_session_removes_the_member() -> None:
    c = Coordinator(session_timeout_ms=10_000, min_session_timeout_ms=6000)
    a = c.join()
    b = c.join(session_timeout_ms=6000)
    c.now_ms = 7000
    a = c.beat(a)  # a stays alive
    assert c.shard.late_members("g", c.now_ms) == [b["member_id"]]
    planned = c.shard.plan_expiry("g", c.now_ms)
    assert planned is not None
    c.write(planned)
    with pytest.raises(ApiError) as e:
        c.beat(b)
    assert e.value.kind == UNKNOWN_MEMBER_ID


def test_member_that_never_revokes_is_removed_after_its_rebalance_timeout() -> None:
    c = Coordinator()
    a = c.join(rebalance_timeout_ms=1000)
    c.join()
    a = c.beat(a)  # must now give up two
    c.now_ms = 1001
    assert c.shard.late_members("g", c.now_ms) == [a["member_id"]]


def test_wrong_epoch_is_fenced_and_unknown_member_is_refused() -> None:
    c = Coordinator()
    a = c.join()
    with pytest.raises(ApiError) as e:
        c.heartbeat(member_id=a["member_id"], member_epoch=7)
    assert e.value.kind == FENCED_MEMBER_EPOCH
    with pytest.raises(ApiError) as e:
        c.heartbeat(member_id="nobody", member_epoch=1)
    assert e.value.kind == UNKNOWN_MEMBER_ID
    with pytest.raises(ApiError) as e:
        c.join(assignor="sticky")
    assert e.value.kind == UNSUPPORTED_ASSIGNOR
    with pytest.raises(ApiError) as e:
        c.join(session_timeout_ms=10)
    assert e.value.kind == INVALID_REQUEST


def test_range_assignor_when_members_ask_for_it() -> None:
    c = Coordinator()
    a = c.join(topics=("a", "b"), assignor="range")
    b = c.join(topics=("a", "b"), assignor="range")
    a = c.beat(c.beat(a))
    b = c.beat(b)
    assert c.shard.describe("g", TOPICS)["assignor"] == "range"
    # member-1 sorts first: partitions 0-1 of a, 0-1 of b; member-2: 2-3 of a, 2 of b.
    assert _parts(a) == {("a", 0), ("a", 1), ("b", 0), ("b", 1)}
    assert _parts(b) == {("a", 2), ("a", 3), ("b", 2)}


def test_subscription_change_recomputes_the_target() -> None:
    c = Coordinator()
    a = c.join(topics=("a",))
    a = c.heartbeat(member_id=a["member_id"], member_epoch=1, topics=("b",), owned=(("a", 0),))
    a = c.beat(a, owned=[])
    assert _parts(a) == {("b", p) for p in range(3)}


# -- offsets and admin ---------------------------------------------------------------------------


def test_commit_checks_the_member_epoch_and_topics() -> None:
    c = Coordinator()
    a = c.join()
    good = [CommitOffset("a", 0, 10)]
    with pytest.raises(ApiError) as e:  # a group with members takes commits from members only
        c.shard.plan_commit("g", None, None, good, TOPICS, 1)
    assert e.value.kind == UNKNOWN_MEMBER_ID
    with pytest.raises(ApiError) as e:
        c.shard.plan_commit("g", a["member_id"], 0, good, TOPICS, 1)
    assert e.value.kind == STALE_MEMBER_EPOCH
    with pytest.raises(ApiError) as e:
        c.shard.plan_commit("g", a["member_id"], 5, good, TOPICS, 1)
    assert e.value.kind == FENCED_MEMBER_EPOCH
    with pytest.raises(ApiError) as e:
        c.shard.plan_commit("g", a["member_id"], 1, [CommitOffset("zz", 0, 1)], TOPICS, 1)
    assert e.value.kind == UNKNOWN_TOPIC
    with pytest.raises(ApiError) as e:
        c.shard.plan_commit("g", a["member_id"], 1, [CommitOffset("a", 4, 1)], TOPICS, 1)
    assert e.value.kind == UNKNOWN_PARTITION
    c.write(c.shard.plan_commit("g", a["member_id"], 1, good, TOPICS, 1234))
    assert c.shard.committed("g") == [
        {"topic": "a", "partition": 0, "offset": 10, "metadata": "", "commit_timestamp": 1234}
    ]


def test_delete_refuses_a_group_with_members_and_removes_everything_of_an_empty_one() -> None:
    c = Coordinator()
    a = c.join()
    c.write(c.shard.plan_commit("g", a["member_id"], 1, [CommitOffset("a", 1, 3)], TOPICS, 1))
    with pytest.raises(ApiError) as e:
        c.shard.plan_delete("g")
    assert e.value.kind == NON_EMPTY_GROUP
    c.heartbeat(member_id=a["member_id"], member_epoch=-1)
    c.write(c.shard.plan_delete("g"))
    assert not c.shard.exists("g")
    assert not c.replayed().exists("g")
    with pytest.raises(ApiError) as e:
        c.shard.describe("g", TOPICS)
    assert e.value.kind == GROUP_ID_NOT_FOUND


def test_a_new_coordinator_replaying_the_log_has_the_same_groups() -> None:
    c = Coordinator()
    a = c.join(client_id="one")
    b = c.join(topics=("a", "b"), session_timeout_ms=7000)
    a = c.beat(c.beat(a))
    b = c.beat(b)
    c.write(
        c.shard.plan_commit(
            "g", b["member_id"], b["member_epoch"], [CommitOffset("b", 2, 9, "m")], TOPICS, 5
        )
    )
    replayed = c.replayed()
    assert replayed.describe("g", TOPICS) == c.shard.describe("g", TOPICS)
    assert replayed.committed("g") == c.shard.committed("g")


def test_random_heartbeats_never_give_one_partition_to_two_members() -> None:
    """Whatever order members join, beat, lose answers and leave in, a partition is never
    assigned to two members at once, and the log replays to the same state."""
    rng = random.Random(12)
    for _ in range(30):
        c = Coordinator()
        members: dict[str, dict[str, Any]] = {}
        for _ in range(60):
            op = rng.random()
            if op < 0.2 or not members:
                answer = c.join(topics=tuple(rng.sample(["a", "b"], rng.randint(1, 2))))
                members[answer["member_id"]] = answer
            elif op < 0.3:
                mid = rng.choice(sorted(members))
                c.heartbeat(member_id=mid, member_epoch=-1)
                del members[mid]
            else:
                mid = rng.choice(sorted(members))
                try:
                    answer = c.beat(members[mid])
                except ApiError as e:
                    # Two answers lost in a row: fenced; it gives everything up and rejoins.
                    assert e.kind == FENCED_MEMBER_EPOCH
                    answer = c.heartbeat(member_id=mid, member_epoch=0, topics=("a", "b"))
                if rng.random() < 0.8:  # else the answer is lost: the member keeps the old one
                    members[mid] = answer
            owners: dict[tuple[str, int], str] = {}
            group = c.shard.groups.get("g")
            for mid, current in group.current.items() if group else []:
                for topic_id, ps in current.assigned + current.pending_revocation:
                    for p in ps:
                        assert (topic_id, p) not in owners, (mid, owners[(topic_id, p)])
                        owners[(topic_id, p)] = mid
        assert (
            c.replayed().describe("g", TOPICS)["members"]
            == c.shard.describe("g", TOPICS)["members"]
        )
