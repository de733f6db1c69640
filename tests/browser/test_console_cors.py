"""CORS and the browser-write rule in a real Chromium (server/http_cors.py): the console follows
a 307 to another node and reads the answer; a page of another origin can neither send the
console's header nor write with a plain cross-site form."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from scripts.node_process import Cluster, http
from tests.browser.conftest import open_page, wait_until

# Runs in the page: fetches each (method, path, body) in order, answers what the page saw.
_FETCH_ALL = """
const [requests, done] = [arguments[0], arguments[arguments.length - 1]];
(async () => {
  const seen = [];
  for (const [method, url, body, headers] of requests) {
    try {
      const init = {method, headers};
      if (body !== null) init.body = JSON.stringify(body);
      const r = await fetch(url, init);
      seen.push({status: r.status, redirected: r.redirected, url: r.url,
                 body: await r.json()});
    } catch (e) {
      seen.push({error: String(e)});
    }
  }
  return seen;
})().then(done, (e) => done([{error: String(e)}]));
"""

CONSOLE = {"X-Kraft-Console": "1", "Content-Type": "application/json"}


def _topic_with_leaders_everywhere(cluster: Cluster, name: str) -> dict[int, int]:
    """Creates ``name`` with a partition per node; answers partition -> leader."""
    node = cluster.nodes[0]
    status, body = node.http(
        "POST", "/v1/topics", {"name": name, "partitions": 3, "replication_factor": 3}
    )
    assert status == 201, body
    return {p["partition"]: p["leader"] for p in body["partitions"]}


def test_the_console_follows_a_307_to_another_node_and_reads_the_answer(
    cluster: Cluster, driver: Any
) -> None:
    leaders = _topic_with_leaders_everywhere(cluster, "cors-followed")
    first = cluster.nodes[0]
    open_page(driver, first.url, "/ui/")
    # Produce to each partition through the first node: a 307 where another node leads.
    requests = [
        [
            "POST",
            f"/v1/topics/cors-followed/partitions/{p}/records",
            {"records": [{"value": f"v{p}"}]},
            CONSOLE,
        ]
        for p in sorted(leaders)
    ] + [
        ["GET", f"/v1/topics/cors-followed/partitions/{p}/records?offset=earliest", None, CONSOLE]
        for p in sorted(leaders)
    ]

    def all_written() -> Any:
        seen = driver.execute_async_script(_FETCH_ALL, requests)
        return seen if all(s.get("status") == 200 for s in seen[:3]) else None

    # Replicas open a moment after the topic is created: retry until each write is taken.
    seen = wait_until(all_written)
    reads = seen[3:]
    for p, read in zip(sorted(leaders), reads, strict=True):
        leader = cluster.node(leaders[p])
        assert read.get("status") == 200, read
        assert read["redirected"] == (leader is not first), read
        assert read["url"].startswith(leader.url + "/"), read
        assert [r["value"] for r in read["body"]["records"]][-1] == f"v{p}"
    assert any(read["redirected"] for read in reads)


@pytest.mark.browser_errors("Failed to load resource", "CORS", "403")
def test_a_page_of_another_origin_cannot_send_the_consoles_header(
    cluster: Cluster, driver: Any
) -> None:
    node = cluster.nodes[0]
    driver.get("data:text/html,<title>elsewhere</title><p>another site</p>")
    body = {"name": "cors-elsewhere", "partitions": 1, "replication_factor": 1}
    seen = driver.execute_async_script(
        _FETCH_ALL, [["POST", node.url + "/v1/topics", body, CONSOLE]]
    )
    # The preflight is refused, so the browser never sends the request.
    assert "error" in seen[0], seen
    status, _ = node.http("GET", "/v1/topics/cors-elsewhere")
    assert status == 404


@pytest.mark.browser_errors("Failed to load resource", "403")
def test_a_cross_site_form_cannot_write_to_the_cluster(cluster: Cluster, driver: Any) -> None:
    node = cluster.nodes[0]
    # A form that posts {"name": "csrf-topic", "x": "="} as text/plain: JSON in a form's body.
    field = json.dumps({"name": "csrf-topic", "x": ""})[:-2]
    page = (
        f'<form id="f" method="post" enctype="text/plain" action="{node.url}/v1/topics">'
        f"<input name='{field}' value='\"}}'></form>"
    )
    driver.get("data:text/html," + urllib.parse.quote(page))
    driver.execute_script("document.getElementById('f').submit()")

    def refused() -> str:
        source: str = driver.page_source
        return source if "CLUSTER_AUTHORIZATION_FAILED" in source else ""

    # The browser shows the node's answer: the write rule's refusal (not a 415 for text/plain).
    assert "is refused" in wait_until(refused)
    status, _ = http("GET", node.url + "/v1/topics/csrf-topic")
    assert status == 404
