"""Replication throttles: Kafka's rate measurement, its config checks, and the broker plan."""

from __future__ import annotations

import pytest

from client.protocol import INVALID_CONFIG, INVALID_REQUEST, NOT_FOUND, ApiError
from kraft.records import ConfigRecord, RegisterBrokerRecord
from kraft.state import MetadataState
from server.http_configs import broker_config_entries, plan_alter_broker_configs
from server.replication_quota import (
    FOLLOWER_RATE,
    FOLLOWER_REPLICAS,
    LEADER_RATE,
    LEADER_REPLICAS,
    LONG_MAX,
    ReplicationQuota,
    ReplicationQuotas,
    SampledRate,
    broker_rate,
    normal_replica_list,
    rate_problem,
    replica_list_problem,
    throttled_partitions,
)
from server.topic_configs import normalize_configs

# -- the rate (Kafka's SimpleRate over 11 one-second samples) -------------------------------------


def test_the_rate_counts_at_least_one_window_of_elapsed_time() -> None:
    rate = SampledRate()
    rate.record(500, 0)
    assert rate.measure(0) == 500.0  # 500 bytes over the one-window minimum
    assert rate.measure(250) == 500.0
    assert rate.measure(2_000) == 250.0  # then over the time since the oldest sample began


def test_the_rate_forgets_samples_older_than_the_samples_it_keeps() -> None:
    rate = SampledRate()
    for second in range(5):
        rate.record(1_000, second * 1_000)
    assert rate.measure(5_000) == pytest.approx(1_000.0)
    # Eleven windows after its last event a sample no longer counts.
    assert rate.measure(4_000 + 11_000) == 0.0


def test_the_rate_keeps_the_last_samples_of_a_steady_stream() -> None:
    rate = SampledRate()
    for tick in range(0, 60_000, 100):  # 100 bytes every 100 ms: 1,000 bytes/s for a minute
        rate.record(100, tick)
    assert rate.measure(60_000) == pytest.approx(1_000.0, rel=0.1)


def test_a_quota_is_exceeded_only_above_its_bound() -> None:
    quota = ReplicationQuota()
    quota.record(10_000_000, 0)
    assert not quota.exceeded(0), "no bound: never exceeded"
    quota.set_bound(1_000)
    assert quota.exceeded(0)
    bounded = ReplicationQuota()
    bounded.set_bound(1_000)
    bounded.record(1_000, 0)
    assert not bounded.exceeded(0), "at the bound is not above it"
    bounded.record(1, 10)
    assert bounded.exceeded(10)


def test_an_exceeded_quota_lets_traffic_through_again_once_the_rate_decays() -> None:
    """Nothing is held for ever: the rate falls below the bound as time passes."""
    quota = ReplicationQuota()
    quota.set_bound(1_000)
    quota.record(5_000, 0)
    assert quota.exceeded(1_000)
    assert quota.exceeded(4_000)  # 5,000 bytes over 4 s
    assert not quota.exceeded(5_000)  # 5,000 bytes over 5 s is the bound
    assert quota.bytes_total == 5_000


def test_a_leader_reads_one_window_of_the_bound_for_a_throttled_follower() -> None:
    quota = ReplicationQuota()
    assert quota.read_cap(4 << 20) == 4 << 20, "no bound: the fetch's own budget"
    quota.set_bound(200_000)
    assert quota.read_cap(4 << 20) == 200_000
    assert quota.read_cap(1_000) == 1_000
    quota.set_bound(0)
    assert quota.read_cap(4 << 20) == 1, "a batch at least: the log reads one whatever the cap"


def test_a_quota_is_inactive_until_a_topic_throttles_a_partition_here() -> None:
    quota = ReplicationQuota()
    assert not quota.active
    quota.set_topic("t", frozenset({0, 2}))
    assert quota.active
    assert quota.is_throttled("t", 0) and not quota.is_throttled("t", 1)
    assert not quota.is_throttled("u", 0)
    quota.set_topic("u", None)
    assert quota.is_throttled("u", 7)
    quota.set_topic("t", frozenset())
    quota.set_topic("u", frozenset())
    assert not quota.active and quota.topics() == {}


# -- the configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "*", " * ", "0:1", "0:1,0:2,1:3", "0:1, 1:2", "0:1,"])
def test_kafkas_throttled_replica_lists_are_accepted(value: str) -> None:
    assert replica_list_problem(LEADER_REPLICAS, value) is None


@pytest.mark.parametrize("value", ["0:a", "0", "*,0:1", "0:1:2", "a", "[0:1]", "-1:2", "0 :1"])
def test_other_throttled_replica_lists_are_refused_in_kafkas_words(value: str) -> None:
    problem = replica_list_problem(FOLLOWER_REPLICAS, value)
    assert problem is not None
    assert problem.startswith("Invalid value [")
    assert problem.endswith(
        "for configuration follower.replication.throttled.replicas: "
        "follower.replication.throttled.replicas must be the literal '*' or a list of replicas "
        "in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
    )


def test_a_throttled_replica_list_is_stored_without_spaces_or_empty_items() -> None:
    assert normal_replica_list(" 0:1 , 1:2,") == "0:1,1:2"
    assert normal_replica_list(" * ") == "*"
    assert normalize_configs({LEADER_REPLICAS: "0:1, 0:2"}) == {LEADER_REPLICAS: "0:1,0:2"}
    with pytest.raises(ApiError) as error:
        normalize_configs({LEADER_REPLICAS: "0:x"})
    assert error.value.kind is INVALID_CONFIG
    assert "must be the literal '*'" in error.value.message


def test_a_broker_throttles_the_partitions_its_id_is_paired_with() -> None:
    assert throttled_partitions("0:1,0:2,1:3,2:1", 1) == frozenset({0, 2})
    assert throttled_partitions("0:1,0:2", 3) == frozenset()
    assert throttled_partitions("*", 3) is None
    assert throttled_partitions("", 3) == frozenset()


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("abc", "Invalid value abc for configuration X: Not a number of type LONG"),
        ("1.5", "Invalid value 1.5 for configuration X: Not a number of type LONG"),
        ("9223372036854775808", "Not a number of type LONG"),
        ("-1", "Invalid value -1 for configuration X: Value must be at least 0"),
    ],
)
def test_a_bad_rate_is_refused_in_kafkas_words(value: str, problem: str) -> None:
    found = rate_problem("X", value)
    assert found is not None and problem in found


def test_a_brokers_own_rate_comes_before_the_cluster_default() -> None:
    assert broker_rate(LEADER_RATE, {}, {}) == LONG_MAX
    assert broker_rate(LEADER_RATE, {}, {LEADER_RATE: "5"}) == 5
    assert broker_rate(LEADER_RATE, {LEADER_RATE: "7"}, {LEADER_RATE: "5"}) == 7
    assert broker_rate(FOLLOWER_RATE, {LEADER_RATE: "7"}, {}) == LONG_MAX


def test_the_quotas_follow_the_metadata_of_this_broker() -> None:
    quotas = ReplicationQuotas(broker_id=2)
    quotas.reload(
        {"t": {LEADER_REPLICAS: "0:1,1:2", FOLLOWER_REPLICAS: "*"}, "u": {"retention.ms": "5"}},
        {"2": {LEADER_RATE: "1000"}, "": {FOLLOWER_RATE: "500"}, "1": {FOLLOWER_RATE: "9"}},
    )
    assert quotas.leader.topics() == {"t": frozenset({1})}
    assert quotas.follower.topics() == {"t": None}
    assert (quotas.leader.bound, quotas.follower.bound) == (1000, 500)
    quotas.update_topic("t", None)  # the topic is gone
    assert not quotas.leader.active and not quotas.follower.active
    quotas.update_rates({})
    assert quotas.leader.bound == quotas.follower.bound == LONG_MAX


# -- PUT /v1/brokers/{b}/configs: the plan -------------------------------------------------------


def _state(*brokers: int) -> MetadataState:
    state = MetadataState()
    for broker in brokers:
        state.apply(
            RegisterBrokerRecord(
                broker, f"inc{broker}", 1, f"http://127.0.0.1:{9000 + broker}", "127.0.0.1:1"
            )
        )
    return state


def test_the_throttle_rates_are_set_and_removed_as_broker_config_records() -> None:
    state = _state(1, 2)
    records = plan_alter_broker_configs(state, 1, {LEADER_RATE: "1000", FOLLOWER_RATE: 2000})
    assert records == [
        ConfigRecord("broker", "1", FOLLOWER_RATE, "2000"),
        ConfigRecord("broker", "1", LEADER_RATE, "1000"),
    ]
    for record in records:
        state.apply(record)
    assert plan_alter_broker_configs(state, 1, {LEADER_RATE: None}) == [
        ConfigRecord("broker", "1", LEADER_RATE, None)
    ]
    assert plan_alter_broker_configs(state, 2, {LEADER_RATE: None}) == [], "not set: nothing"


@pytest.mark.parametrize(
    ("configs", "kind", "message"),
    [
        ({}, INVALID_REQUEST, 'give "configs"'),
        ([], INVALID_REQUEST, 'give "configs"'),
        ({LEADER_RATE: "fast"}, INVALID_CONFIG, "Not a number of type LONG"),
        ({LEADER_RATE: -5}, INVALID_CONFIG, "Value must be at least 0"),
        ({LEADER_RATE: True}, INVALID_CONFIG, "must be a string or an integer"),
        ({LEADER_RATE: 1.5}, INVALID_CONFIG, "must be a string or an integer"),
        ({"no.such.config": "1"}, INVALID_CONFIG, "Unknown config name: no.such.config"),
        (
            {"log.dirs": "/x", LEADER_RATE: "5"},
            INVALID_CONFIG,
            "Cannot update these configs dynamically: Set(log.dirs)",
        ),
        ({LEADER_REPLICAS: "*"}, INVALID_CONFIG, "Unknown config name"),
    ],
)
def test_a_bad_broker_config_request_is_refused_whole(
    configs: object, kind: object, message: str
) -> None:
    with pytest.raises(ApiError) as error:
        plan_alter_broker_configs(_state(1), 1, configs)
    assert error.value.kind is kind
    assert message in error.value.message


def test_an_unregistered_broker_has_no_configs_to_alter() -> None:
    with pytest.raises(ApiError) as error:
        plan_alter_broker_configs(_state(1), 7, {LEADER_RATE: "5"})
    assert error.value.kind is NOT_FOUND
    assert error.value.message == "broker 7 is not registered in the cluster"


def test_a_brokers_description_shows_the_dynamic_rates() -> None:
    from server.config import NodeConfig

    config = NodeConfig.from_properties(
        {
            "node.id": "1",
            "controller.quorum.voters": "1@127.0.0.1:9093",
            "listeners": "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
        }
    )
    entries = {e["name"]: e for e in broker_config_entries(config, {LEADER_RATE: "1000"}, {})}
    assert entries[LEADER_RATE]["source"] == "DYNAMIC_BROKER_CONFIG"
    assert entries[LEADER_RATE]["value"] == "1000"
    assert not entries[LEADER_RATE]["read_only"]
    assert entries[FOLLOWER_RATE]["source"] == "DEFAULT_CONFIG"
    assert entries[FOLLOWER_RATE]["value"] == str(LONG_MAX)
    assert entries["log.dirs"]["read_only"]
    assert LEADER_REPLICAS not in entries, "a topic config only"
