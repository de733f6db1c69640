#!/usr/bin/env python3
"""Benchmark of the web console (issue 15, "Light"). Prints figures, asserts nothing.

A three-node cluster (real node processes on free 127.0.0.1 ports, a temp dir), one topic of
``--partitions`` partitions (1,000) with replication factor ``--rf`` (3), and Debian's headless
Chromium driven by chromedriver. For each page it prints, over ``--runs`` (5) loads:

- the load time: from the navigation's start (the browser's ``performance.now()`` origin) to
  the page showing its first data (``data-loaded="true"`` on the page's root, and for the topic
  page every partition's row), measured inside the browser so WebDriver's own round trips do
  not count;
- the API requests the open page makes per second over ``--watch-s`` (10) seconds (the
  issue's limit is one a second, or a stream).

It also prints how long the API answers the topic page's one request take from Python
(``GET /v1/topics/{topic}/replicas``, which asks every broker), so a slow page can be told
apart from a slow answer, and the live tail's delay: with the messages page of a one-partition
topic open and live tail on, ``--tail-records`` (10) records produced one at a time over HTTP,
each timed from the produce call's start to its row on screen (the acks=all produce included;
WebDriver's polling adds a few milliseconds).

Usage: .venv/bin/python scripts/bench_console.py [--partitions 1000] [--rf 3] [--runs 5]
       [--watch-s 10] [--tail-records 10] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.node_process import Cluster  # noqa: E402

TOPIC = "wide"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Resolves with performance.now() once the page's root says it has shown its data and, when
# `rows` is given, that many partition rows exist; polls once per animation frame.
WAIT_LOADED_JS = """
const [root, rowSelector, rows, done] = arguments;
function ready() {
  const page = document.querySelector(root + '[data-loaded="true"]');
  if (!page) return false;
  return rows === 0 || document.querySelectorAll(rowSelector).length >= rows;
}
(function poll() { if (ready()) done(performance.now()); else requestAnimationFrame(poll); })();
"""
ROW_SELECTOR = '[data-testid^="partition-row-"], [id^="partition-row-"]'
WAIT_ROW_JS = """
const [selector, done] = arguments;
(function poll() {
  if (document.querySelector(selector)) done(true); else requestAnimationFrame(poll);
})();
"""
API_ENTRIES_JS = """
return performance.getEntriesByType('resource')
  .filter(e => new URL(e.name).pathname.startsWith('/v1/')).length;
"""


def driver() -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,900")
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    d.set_script_timeout(120)
    # performance's resource buffer holds 250 entries by default: a long watch needs more.
    return d


def load_ms(d: Any, url: str, root: str, rows: int) -> float:
    d.get("about:blank")
    d.get(url)
    return float(d.execute_async_script(WAIT_LOADED_JS, root, ROW_SELECTOR, rows))


def requests_per_s(d: Any, watch_s: float) -> float:
    d.execute_script("performance.setResourceTimingBufferSize(100000)")
    before = int(d.execute_script(API_ENTRIES_JS))
    time.sleep(watch_s)
    after = int(d.execute_script(API_ENTRIES_JS))
    return (after - before) / watch_s


def api_ms(cluster: Cluster, path: str, runs: int) -> list[float]:
    node = cluster.nodes[0]
    took = []
    for _ in range(runs):
        start = time.monotonic()
        status, _ = node.http("GET", path, timeout=60)
        took.append((time.monotonic() - start) * 1000)
        if status != 200:
            raise SystemExit(f"GET {path}: HTTP {status}")
    return took


def live_tail_ms(cluster: Cluster, d: Any, records: int) -> list[float]:
    """Produce-call start to row shown, per record, on the messages page with live tail on."""
    node = cluster.nodes[0]
    status, body = node.http("POST", "/v1/topics", {"name": "tail", "partitions": 1}, timeout=60)
    if status != 201:
        raise SystemExit(f"create tail: HTTP {status} {body}")
    # Produce at the partition's leader (another node would answer 307), once its replica is open.
    leader = cluster.node(int(body["partitions"][0]["leader"]))
    path = "/v1/topics/tail/partitions/0/records"
    deadline = time.monotonic() + 60
    while leader.http("POST", path, {"records": [{"value": "first"}]}, timeout=30)[0] != 200:
        if time.monotonic() > deadline:
            raise SystemExit("the tail topic's leader did not take a record within 60 s")
        time.sleep(0.2)
    d.get(node.url + "/ui/topics/tail/messages?partition=0&offset=latest")
    d.execute_async_script(WAIT_LOADED_JS, "#page-messages", ROW_SELECTOR, 0)
    d.find_element("id", "live-tail").click()
    time.sleep(2)  # the stream opens (a 307 to the leader first)
    took = []
    for _ in range(records):
        start = time.monotonic()
        status, body = leader.http("POST", path, {"records": [{"value": "tick"}]}, timeout=30)
        if status != 200:
            raise SystemExit(f"produce: HTTP {status} {body}")
        offset = body["offsets"][0]["offset"]
        d.execute_async_script(WAIT_ROW_JS, f'[data-testid="message-row-0-{offset}"]')
        took.append((time.monotonic() - start) * 1000)
    return took


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):7.1f}  min {min(values):7.1f}  max {max(values):7.1f}"
    )


def wait_open(cluster: Cluster, partitions: int, deadline_s: float = 600.0) -> float:
    """Seconds until every replica of the topic reports its figures (all opened)."""
    start = time.monotonic()
    while time.monotonic() - start < deadline_s:
        status, body = cluster.nodes[0].http("GET", f"/v1/topics/{TOPIC}/replicas", timeout=60)
        if status == 200:
            states = [s for p in body["partitions"] for s in p["replica_states"]]
            if len(body["partitions"]) == partitions and all(
                s["log_end_offset"] is not None for s in states
            ):
                return time.monotonic() - start
        time.sleep(1)
    raise SystemExit(f"the topic's replicas did not all open within {deadline_s:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--rf", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--watch-s", type=float, default=10.0)
    parser.add_argument("--tail-records", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the cluster's directory")
    args = parser.parse_args()

    directory = args.dir or Path(tempfile.mkdtemp(prefix="bench-console-"))
    cluster = Cluster.create(directory)
    cluster.start()
    d = None
    try:
        status, body = cluster.nodes[0].http(
            "POST",
            "/v1/topics",
            {"name": TOPIC, "partitions": args.partitions, "replication_factor": args.rf},
            timeout=120,
        )
        if status != 201:
            raise SystemExit(f"create {TOPIC}: HTTP {status} {body}")
        opened = wait_open(cluster, args.partitions)
        print(f"cluster: 3 nodes, topic {TOPIC}: {args.partitions} partitions, RF {args.rf}")
        print(f"  every replica open after {opened:.1f} s")
        replicas = api_ms(cluster, f"/v1/topics/{TOPIC}/replicas", args.runs)
        print(f"GET /v1/topics/{TOPIC}/replicas, ms:           {summary(replicas)}")
        detail = api_ms(cluster, "/v1/topics?detail=true", args.runs)
        print(f"GET /v1/topics?detail=true, ms:              {summary(detail)}")

        d = driver()
        base = cluster.nodes[0].url
        pages = [
            ("overview", "/ui/", "#page-overview", 0),
            ("topics", "/ui/topics", "#page-topics", 0),
            (
                f"topic ({args.partitions} partitions)",
                f"/ui/topics/{TOPIC}",
                "#page-topic",
                args.partitions,
            ),
            ("replication", f"/ui/replication?topic={TOPIC}", "#page-replication", 0),
        ]
        print(f"page load in Chromium (navigation start to data shown), {args.runs} runs, ms:")
        for name, path, root, rows in pages:
            times = [load_ms(d, base + path, root, rows) for _ in range(args.runs)]
            rate = requests_per_s(d, args.watch_s)
            print(f"  {name:30} {summary(times)}   API requests/s while open: {rate:.2f}")
        tail = live_tail_ms(cluster, d, args.tail_records)
        print(f"live tail, produce call to row shown, ms: {summary(tail)}")
    finally:
        if d is not None:
            d.quit()
        cluster.stop()
        if not args.keep and args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
