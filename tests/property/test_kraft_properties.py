"""Metadata records and state: round trips, any-bytes-parse-or-raise, invariants under scripts."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from kraft.errors import IllegalRecordError, MetadataRecordError, MetadataSnapshotError
from kraft.records import (
    NO_LEADER,
    ConfigRecord,
    FenceBrokerRecord,
    LeaderChangeRecord,
    MetadataRecord,
    NoOpRecord,
    PartitionChangeRecord,
    PartitionRecord,
    ProducerIdsRecord,
    RegisterBrokerRecord,
    RemoveTopicRecord,
    TopicRecord,
    UnfenceBrokerRecord,
    decode,
    encode,
)
from kraft.state import MetadataState

SETTINGS = settings(max_examples=150, deadline=None)
TOPIC_IDS = ["x5Ujx2PtQ1C2rkC8-XNMZA", "Q2rkC8-XNMZAx5Ujx2PtQA"]

broker_ids = st.integers(0, 4)
epochs = st.integers(0, 3)
topic_ids = st.sampled_from(TOPIC_IDS)
partitions = st.integers(0, 2)


@st.composite
def partition_records(draw: st.DrawFn) -> PartitionRecord:
    replicas = draw(st.lists(broker_ids, min_size=1, max_size=4, unique=True))
    isr = draw(st.lists(st.sampled_from(replicas), unique=True))
    leader = draw(st.sampled_from([-1, *isr]))
    return PartitionRecord(
        draw(topic_ids), draw(partitions), tuple(replicas), tuple(isr), leader, 0, 0
    )


@st.composite
def partition_changes(draw: st.DrawFn) -> PartitionChangeRecord:
    # Biased toward the preamble's replicas (0, 1, 2) so that many changes are legal.
    leader = draw(st.none() | st.integers(-1, 2) | st.integers(-1, 4))
    isr = draw(st.none() | st.lists(st.integers(0, 2), max_size=3, unique=True).map(tuple))
    replicas = draw(
        st.none()
        | st.none()
        | st.none()
        | st.lists(broker_ids, min_size=1, max_size=4, unique=True).map(tuple)
    )
    if leader is None and isr is None and replicas is None:
        leader = -1
    return PartitionChangeRecord(draw(topic_ids), draw(partitions), leader, isr, replicas)


records: st.SearchStrategy[MetadataRecord] = st.one_of(
    st.builds(
        RegisterBrokerRecord,
        broker_ids,
        st.sampled_from(["a", "b"]),
        epochs,
        st.just("http://127.0.0.1:1"),
        st.just("127.0.0.1:2"),
        st.booleans(),
    ),
    st.builds(FenceBrokerRecord, broker_ids, epochs),
    st.builds(UnfenceBrokerRecord, broker_ids, epochs),
    st.builds(TopicRecord, st.sampled_from(["news", "logs"]), topic_ids),
    partition_records(),
    partition_changes(),
    st.builds(RemoveTopicRecord, topic_ids),
    st.builds(
        ConfigRecord,
        st.just("topic"),
        st.sampled_from(["news", "logs"]),
        st.sampled_from(["retention.ms", "segment.bytes"]),
        st.none() | st.sampled_from(["1", ""]),
    ),
    st.builds(ProducerIdsRecord, broker_ids, epochs, st.integers(0, 5000)),
    st.builds(LeaderChangeRecord, broker_ids),
    st.just(NoOpRecord()),
)


@SETTINGS
@given(st.lists(records, min_size=1, max_size=20))
def test_any_valid_records_round_trip(items: list[MetadataRecord]) -> None:
    assert decode(encode(items)) == items


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_the_one_error(data: bytes) -> None:
    try:
        result = decode(data)
    except MetadataRecordError:
        return
    assert all(isinstance(r, MetadataRecord) for r in result)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 300)
    | st.floats(allow_nan=False)
    | st.sampled_from(["topic", "partition", "news", TOPIC_IDS[0], "h:1", "http://h:1"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "type",
                    "v",
                    "name",
                    "topic_id",
                    "partition",
                    "replicas",
                    "isr",
                    "leader",
                    "leader_epoch",
                    "partition_epoch",
                    "records",
                    "x",
                ]
            ),
            inner,
            max_size=8,
        )
    ),
    max_leaves=20,
)


@SETTINGS
@given(json_values)
def test_any_json_decodes_or_raises_the_one_error(value: object) -> None:
    for data in (orjson.dumps(value), orjson.dumps({"v": 1, "records": [value]})):
        try:
            decode(data)
        except MetadataRecordError:
            pass


def check_invariants(state: MetadataState) -> None:
    for topic in state.topics.values():
        assert state.topic_by_id(topic.topic_id) is topic
        assert sorted(topic.partitions) == list(range(len(topic.partitions)))
        for p in topic.partitions.values():
            assert set(p.isr) <= set(p.replicas)
            assert p.leader == -1 or p.leader in p.isr
            assert all(b in state.brokers for b in p.replicas)


# Brokers and a topic to start from, so that random partition records often apply.
PREAMBLE: list[MetadataRecord] = [
    *(RegisterBrokerRecord(b, "a", 0, "http://h:1", "h:2", False) for b in range(5)),
    TopicRecord("news", TOPIC_IDS[0]),
    PartitionRecord(TOPIC_IDS[0], 0, (0, 1, 2), (0, 1, 2), 0, 0, 0),
]


def run_script(script: list[MetadataRecord]) -> int:
    """Apply PREAMBLE + script one record per entry, checking the rules; count the applied."""
    state = MetadataState()
    applied = 0
    for index, record in enumerate([*PREAMBLE, *script], start=1):
        before = state.copy()
        old = {(t.topic_id, n): p for t in state.topics.values() for n, p in t.partitions.items()}
        try:
            state.apply_entry(index, [record])
        except IllegalRecordError:
            assert state == before  # an illegal record changes nothing
            continue
        applied += 1
        check_invariants(state)
        for t in state.topics.values():
            for n, p in t.partitions.items():
                prior = old.get((t.topic_id, n))
                if prior is not None:  # epochs only grow, by one per change
                    assert p.leader_epoch - prior.leader_epoch in (0, 1)
                    assert p.partition_epoch - prior.partition_epoch in (0, 1)
                    # The leader epoch moves on with a new leader, or when the replicas
                    # lose one while a leader stays (Kafka's bump for a reassignment).
                    dropped = p.leader != NO_LEADER and not set(prior.replicas) <= set(p.replicas)
                    bumps = p.leader != prior.leader or dropped
                    assert bumps == (p.leader_epoch > prior.leader_epoch)
    restored = MetadataState.from_snapshot(state.to_snapshot())
    assert restored.digest() == state.digest()
    return applied - len(PREAMBLE)


@SETTINGS
@given(st.lists(records, max_size=60))
def test_random_scripts_keep_the_invariants_and_snapshot_round_trips(
    script: list[MetadataRecord],
) -> None:
    run_script(script)


@SETTINGS
@given(
    st.lists(
        partition_changes().map(
            lambda r: PartitionChangeRecord(TOPIC_IDS[0], 0, r.leader, r.isr, r.replicas)
        ),
        max_size=40,
    )
)
def test_random_partition_changes_keep_the_invariants(script: list[MetadataRecord]) -> None:
    run_script(script)


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_load_as_a_snapshot_or_raise_the_one_error(data: bytes) -> None:
    try:
        MetadataState.from_snapshot(data)
    except MetadataSnapshotError:
        pass
