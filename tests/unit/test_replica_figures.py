"""The internal replicas call's path: its ``topics`` parameter stays short enough for any
request line, and is left out when every topic is wanted."""

from __future__ import annotations

from urllib.parse import unquote

from server.replica_figures import TOPICS_QUERY_CHARS_MAX, replicas_path

KNOWN = ["audit", "news", "payments"]


def test_every_topic_is_asked_without_a_topics_parameter() -> None:
    assert replicas_path(2, None, KNOWN) == "/v1/brokers/2/replicas"
    assert replicas_path(2, frozenset(KNOWN), KNOWN) == "/v1/brokers/2/replicas"
    # Names no longer known (a topic deleted meanwhile) change nothing.
    assert replicas_path(2, frozenset([*KNOWN, "gone"]), KNOWN) == "/v1/brokers/2/replicas"


def test_some_topics_are_named_sorted_and_quoted() -> None:
    path = replicas_path(3, frozenset(["payments", "news"]), KNOWN)
    assert path == "/v1/brokers/3/replicas?topics=news,payments"
    odd = replicas_path(3, frozenset(["a b"]), ["a b", "c"])
    assert odd == "/v1/brokers/3/replicas?topics=a%20b"


def test_hundreds_of_topics_are_not_put_in_the_request_line() -> None:
    known = [f"orders-region-{i:04d}" for i in range(1000)]
    wanted = frozenset(known[:800])  # not all of them, but far too many to name
    assert replicas_path(1, wanted, known) == "/v1/brokers/1/replicas"


def test_a_list_just_within_the_bound_is_still_sent() -> None:
    known = [f"t{i:05d}" for i in range(1000)]
    # Each name is 6 characters and a comma: as many as fit in the bound.
    count = (TOPICS_QUERY_CHARS_MAX + 1) // 7
    path = replicas_path(1, frozenset(known[:count]), known)
    query = path.split("?topics=", 1)[1]
    assert len(query) <= TOPICS_QUERY_CHARS_MAX
    assert unquote(query).split(",") == known[:count]
    assert replicas_path(1, frozenset(known[: count + 1]), known) == "/v1/brokers/1/replicas"
