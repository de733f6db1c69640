"""The cluster's origins and the browser-write rule (server/http_cors.py): pure, no sockets."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from kraft.state import BrokerState
from server.http_cors import (
    ClusterOrigins,
    is_cluster_origin,
    normal_origin,
    origins_of,
    site_refusal,
    write_refusal,
)

CLUSTER = origins_of(["http://127.0.0.1:9092", "http://127.0.0.1:9094", "https://Node-3.Example"])


@pytest.mark.parametrize(
    ("text", "origin"),
    [
        ("http://127.0.0.1:9092", "http://127.0.0.1:9092"),
        ("http://127.0.0.1:9092/", "http://127.0.0.1:9092"),
        ("HTTP://LocalHost:9092", "http://localhost:9092"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
        ("https://example.com:8443/a/b?c=d#e", "https://example.com:8443"),
        ("http://[::1]:9092", "http://[::1]:9092"),
        ("http://[FE80::1]", "http://[fe80::1]:80"),
        (" http://127.0.0.1:9092 ", "http://127.0.0.1:9092"),
    ],
)
def test_an_origin_is_lower_case_scheme_and_host_with_an_explicit_port(
    text: str, origin: str
) -> None:
    assert normal_origin(text) == origin


@pytest.mark.parametrize(
    "text",
    [
        "",
        "null",
        "file:///etc/passwd",
        "ftp://127.0.0.1:21",
        "127.0.0.1:9092",
        "http://",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:port",
        "http://user:pw@127.0.0.1:9092",
        "http://127.0.0.1:9092\r\nX-Evil: 1",
        "http://127.0.0.1 :9092",
        "http://[::1",
    ],
)
def test_what_names_no_http_origin_is_none(text: str) -> None:
    assert normal_origin(text) is None


def test_the_cluster_origins_skip_urls_that_name_none() -> None:
    assert origins_of(["http://a:1", "not a url", "https://B:2/"]) == {"http://a:1", "https://b:2"}


@pytest.mark.parametrize(
    "origin",
    [
        "http://127.0.0.1:9092",
        "http://127.0.0.1:9094",
        "https://node-3.example",
        "HTTPS://NODE-3.EXAMPLE:443",
    ],
)
def test_a_browser_on_a_brokers_origin_is_the_clusters(origin: str) -> None:
    assert is_cluster_origin(origin, CLUSTER)


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "http://127.0.0.1:9093",  # the same host, another port: another origin
        "https://127.0.0.1:9092",  # another scheme
        "http://localhost:9092",  # the node answers there, but does not advertise it
        "http://127.0.0.1.evil.example:9092",
        "null",  # a sandboxed frame, a file:// page, a tainted redirect
    ],
)
def test_any_other_origin_is_not_the_clusters(origin: str) -> None:
    assert not is_cluster_origin(origin, CLUSTER)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_reads_are_never_refused_by_the_write_rule(method: str) -> None:
    assert write_refusal(method, "http://evil.example", None, CLUSTER) is None


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_a_write_without_an_origin_is_not_a_browsers(method: str) -> None:
    assert write_refusal(method, None, None, CLUSTER) is None


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_a_browser_write_from_another_origin_is_refused_naming_it(method: str) -> None:
    why = write_refusal(method, "http://evil.example", "1", CLUSTER)
    assert why is not None
    assert "'http://evil.example'" in why and method in why


@pytest.mark.parametrize("console", [None, "", "0", "true", "1 "])
def test_a_browser_write_from_the_cluster_needs_the_console_header(console: str | None) -> None:
    why = write_refusal("POST", "http://127.0.0.1:9092", console, CLUSTER)
    assert why is not None and "X-Kraft-Console: 1" in why


def test_a_browser_write_from_the_cluster_with_the_console_header_goes_on() -> None:
    assert write_refusal("DELETE", "http://127.0.0.1:9094", "1", CLUSTER) is None


def _broker(broker_id: int, url: str) -> BrokerState:
    return BrokerState(broker_id, "inc", 1, url, "127.0.0.1:1", fenced=False)


class _Quorum:
    def __init__(self) -> None:
        self.index = 5
        self.brokers = {1: _broker(1, "http://127.0.0.1:9092")}
        self.snapshots = 0

    def snapshot_state(self) -> Any:
        self.snapshots += 1
        return SimpleNamespace(applied_index=self.index, brokers=dict(self.brokers), controllers={})


def test_the_cluster_origins_are_the_brokers_and_the_nodes_own_rebuilt_on_new_metadata() -> None:
    quorum = _Quorum()
    node: Any = SimpleNamespace(
        quorum=quorum, config=SimpleNamespace(advertised_http_url="http://127.0.0.1:9096")
    )
    origins = ClusterOrigins()
    assert origins.current(node) == {"http://127.0.0.1:9092", "http://127.0.0.1:9096"}
    quorum.brokers[2] = _broker(2, "http://127.0.0.1:9094")
    # The same applied index: the set built before (a broker registers in a new entry).
    assert "http://127.0.0.1:9094" not in origins.current(node)
    quorum.index = 6
    assert origins.current(node) == {
        "http://127.0.0.1:9092",
        "http://127.0.0.1:9094",
        "http://127.0.0.1:9096",
    }


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_an_api_request_a_browser_sends_for_another_site_needs_a_cluster_origin(site: str) -> None:
    # An <img src> elsewhere: no Origin on a GET, and auto_create=true would create the topic.
    refusal = site_refusal("/v1/topics/x", site, None, CLUSTER)
    assert refusal is not None and f"Sec-Fetch-Site: {site}" in refusal
    assert site_refusal("/v1/topics", site, "http://evil.example", CLUSTER) is not None
    # The console's own call, taken to another node by a 307, carries its cluster Origin.
    assert site_refusal("/v1/topics", site, "http://127.0.0.1:9094", CLUSTER) is None


@pytest.mark.parametrize("site", [None, "same-origin", "none"])
def test_same_origin_typed_and_non_browser_requests_pass_the_site_rule(site: str | None) -> None:
    assert site_refusal("/v1/topics/x", site, None, CLUSTER) is None


def test_the_site_rule_leaves_the_consoles_files_alone() -> None:
    # A link from another site to the console opens it; only the API is guarded.
    assert site_refusal("/ui/topics", "cross-site", None, CLUSTER) is None


@pytest.mark.parametrize("text", ["http://a;b:9092", "http://a'b:9092", "http://a%20b:9092"])
def test_a_host_with_characters_no_host_name_has_is_no_origin(text: str) -> None:
    assert normal_origin(text) is None
