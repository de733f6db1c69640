"""The metadata cache without a network: answers parsed, leaders learnt from 307s, nodes
ordered so a dead bootstrap node does not stop a client that knows the cluster."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from client.client import TransportError
from client.metadata import (
    Metadata,
    Redirect,
    parse_brokers,
    parse_topic,
    redirect_leader,
)
from client.protocol import UNKNOWN_SERVER_ERROR, ApiError
from client.transport import Answer, NodeUnreachable, Transport

TOPIC_PARTITIONS: list[dict[str, Any]] = [
    {"partition": 1, "leader": 2, "leader_epoch": 4, "replicas": [2, 3], "isr": [2]},
    {"partition": 0, "leader": None, "leader_epoch": 3, "replicas": [1, 2], "isr": []},
]
TOPIC: dict[str, Any] = {"name": "news", "topic_id": "abc", "partitions": TOPIC_PARTITIONS}
CLUSTER = {
    "cluster_id": "c",
    "controller_id": 1,
    "brokers": [
        {"id": 1, "url": "http://127.0.0.1:9092", "fenced": False, "alive": True},
        {"id": 2, "url": "http://127.0.0.1:9094/", "fenced": False, "alive": True},
        {"id": 3, "url": "http://127.0.0.1:9096", "fenced": True, "alive": False},
        {"id": 4},
    ],
}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeTransport(Transport):
    """Answers GETs from a table by URL; a URL in ``dead`` cannot be reached."""

    def __init__(self, answers: dict[str, Any]) -> None:
        super().__init__()
        self.answers = answers
        self.dead: set[str] = set()
        self.asked: list[str] = []

    async def exchange(self, method: str, url: str, **kwargs: Any) -> Answer:
        self.asked.append(url)
        base = url.split("/v1/")[0]
        if base in self.dead:
            raise NodeUnreachable(f"Could not connect to {base}")
        path = "/v1/" + url.split("/v1/", 1)[1]
        body = self.answers.get(path)
        if body is None:
            return Answer(404, {}, b'{"error_code":40401,"error":"UNKNOWN_TOPIC_OR_PARTITION"}')
        return Answer(200, {}, orjson.dumps(body))


def metadata(transport: Transport, bootstrap: str = "127.0.0.1:9092") -> Metadata:
    return Metadata(transport, bootstrap, max_age_ms=60_000, clock=Clock())


def test_a_topic_answer_becomes_partitions_in_order_with_null_leaders() -> None:
    topic = parse_topic(TOPIC, "news", 5.0)
    assert [p.partition for p in topic.partitions] == [0, 1]
    assert topic.partitions[0].leader is None and topic.partitions[1].leader == 2
    assert topic.partitions[1].isr == (2,) and topic.available() == [1]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"partitions": [{"partition": 1, "leader": 1}]},
        {"partitions": [{"partition": "0", "leader": 1}]},
        {"partitions": [{"partition": 0, "leader": 1, "replicas": "1"}]},
    ],
)
def test_a_topic_answer_of_another_shape_is_an_error_naming_it(body: Any) -> None:
    with pytest.raises(ApiError) as info:
        parse_topic(body, "news", 0.0)
    assert info.value.kind is UNKNOWN_SERVER_ERROR and "news" in info.value.message


def test_brokers_without_an_id_or_url_are_left_out_and_urls_lose_their_slash() -> None:
    brokers = parse_brokers(CLUSTER)
    assert sorted(brokers) == [1, 2, 3]
    assert brokers[2].url == "http://127.0.0.1:9094" and brokers[3].fenced


def test_a_307_names_the_leader_by_location_or_body_with_its_id_and_epoch() -> None:
    answer = Answer(
        307,
        {
            "Location": "http://127.0.0.1:9094/v1/topics/news/partitions/0/records?acks=all",
            "X-Leader-Id": "2",
            "X-Leader-Epoch": "7",
        },
        b"{}",
    )
    assert redirect_leader(answer) == Redirect("http://127.0.0.1:9094", 2, 7)
    body = orjson.dumps({"leader_url": "http://127.0.0.1:9096", "leader_id": 3, "leader_epoch": 8})
    assert redirect_leader(Answer(307, {}, body)) == Redirect("http://127.0.0.1:9096", 3, 8)
    assert redirect_leader(Answer(307, {}, b"not json")) is None


def test_a_307_moves_the_partition_at_once_and_an_older_read_does_not_undo_it() -> None:
    transport = FakeTransport({"/v1/topics/news": TOPIC, "/v1/cluster": CLUSTER})
    cache = metadata(transport)
    asyncio.run(cache.topic("news"))
    assert cache.leader_url("news", 1) == "http://127.0.0.1:9094"
    cache.leader_moved("news", 1, Redirect("http://127.0.0.1:9092", 1, 5))
    assert cache.leader_url("news", 1) == "http://127.0.0.1:9092"
    asyncio.run(cache.topic("news"))  # stale now: read again, but it shows epoch 4
    assert cache.leader_url("news", 1) == "http://127.0.0.1:9092"
    partitions: list[dict[str, Any]] = [dict(p) for p in TOPIC_PARTITIONS]
    partitions[0].update(leader=1, leader_epoch=5)
    transport.answers["/v1/topics/news"] = {**TOPIC, "partitions": partitions}
    asyncio.run(cache.refresh_topic("news"))
    assert cache.leader_url("news", 1) == "http://127.0.0.1:9092"
    assert ("news", 1) not in cache._moved  # the read confirmed it


def test_a_partition_without_a_leader_has_no_url() -> None:
    cache = metadata(FakeTransport({"/v1/topics/news": TOPIC, "/v1/cluster": CLUSTER}))
    asyncio.run(cache.topic("news"))
    assert cache.leader_url("news", 0) is None
    assert cache.leader_url("news", 9) is None and cache.leader_url("other", 0) is None


def test_metadata_is_read_from_any_known_node_when_the_bootstrap_node_is_dead() -> None:
    transport = FakeTransport({"/v1/topics/news": TOPIC, "/v1/cluster": CLUSTER})
    cache = metadata(transport)
    asyncio.run(cache.topic("news"))
    transport.dead.add("http://127.0.0.1:9092")
    cache.invalidate("news")
    transport.asked.clear()
    asyncio.run(cache.topic("news"))
    assert transport.asked[0].startswith("http://127.0.0.1:9092")
    assert transport.asked[1].startswith("http://127.0.0.1:9094")
    # The dead node now goes last (the fenced broker before it).
    assert cache.nodes() == [
        "http://127.0.0.1:9094",
        "http://127.0.0.1:9096",
        "http://127.0.0.1:9092",
    ]


def test_no_node_answering_is_a_transport_error_naming_each() -> None:
    transport = FakeTransport({})
    transport.dead.update({"http://127.0.0.1:9092", "http://127.0.0.1:9094"})
    cache = metadata(transport, "127.0.0.1:9092,127.0.0.1:9094")
    with pytest.raises(TransportError) as info:
        asyncio.run(cache.topic("news"))
    assert "9092" in str(info.value) and "9094" in str(info.value)


def test_a_missing_topic_is_unknown_topic_and_is_asked_for_with_auto_create() -> None:
    transport = FakeTransport({"/v1/cluster": CLUSTER})
    cache = metadata(transport)
    with pytest.raises(ApiError) as info:
        asyncio.run(cache.topic("gone", auto_create=True))
    assert info.value.name == "UNKNOWN_TOPIC_OR_PARTITION"
    assert transport.asked == ["http://127.0.0.1:9092/v1/topics/gone?auto_create=true"]


def test_a_fresh_topic_is_served_from_the_cache_until_it_is_stale_or_old() -> None:
    transport = FakeTransport({"/v1/topics/news": TOPIC, "/v1/cluster": CLUSTER})
    clock = Clock()
    cache = Metadata(transport, "127.0.0.1:9092", max_age_ms=60_000, clock=clock)
    asyncio.run(cache.topic("news"))
    asked = len(transport.asked)
    asyncio.run(cache.topic("news"))
    assert len(transport.asked) == asked
    clock.now += 61
    asyncio.run(cache.topic("news"))
    assert len(transport.asked) == asked + 1
    cache.node_failed("http://127.0.0.1:9094")  # leads partition 1: the topic is stale
    asyncio.run(cache.topic("news"))
    assert transport.asked[-1].endswith("/v1/cluster")
    assert any(url.endswith("/v1/topics/news") for url in transport.asked[asked + 1 :])


def test_concurrent_readers_of_a_stale_topic_share_one_request() -> None:
    transport = FakeTransport({"/v1/topics/news": TOPIC, "/v1/cluster": CLUSTER})
    cache = metadata(transport)

    async def many() -> None:
        await asyncio.gather(*(cache.refresh_topic("news") for _ in range(10)))

    asyncio.run(many())
    assert sum(url.endswith("/v1/topics/news") for url in transport.asked) == 1


def test_without_the_right_to_describe_the_cluster_leaders_urls_come_from_307s() -> None:
    class Denied(FakeTransport):
        async def exchange(self, method: str, url: str, **kwargs: Any) -> Answer:
            if url.endswith("/v1/cluster"):
                self.asked.append(url)
                body = b'{"error_code":40304,"error":"CLUSTER_AUTHORIZATION_FAILED"}'
                return Answer(403, {}, body)
            return await super().exchange(method, url, **kwargs)

    transport = Denied({"/v1/topics/news": TOPIC})
    cache = metadata(transport)
    asyncio.run(cache.topic("news"))
    assert cache.brokers_denied and cache.brokers == {}
    # Any node first: its 307 names the leader.
    assert cache.leader_url("news", 1) == "http://127.0.0.1:9092"
    cache.leader_moved("news", 1, Redirect("http://127.0.0.1:9094", 2, 4))
    asyncio.run(cache.topic("news"))  # the same leader epoch: the 307's URL stays
    assert cache.leader_url("news", 1) == "http://127.0.0.1:9094"
    assert sum(url.endswith("/v1/cluster") for url in transport.asked) == 1
