"""The messages page in a real browser against a real three-node cluster: a record produced
over HTTP shows, and with live tail on a second one appears without a reload; a record
produced in the console is read by kraft-console-consumer; a deep link opens at its
partition and offset; a timestamp and a group's committed offsets are positions; bad input
(an offset that is not a number, a record over max.message.bytes) shows the server's message
and the page keeps working."""

from __future__ import annotations

import json
import subprocess
from typing import Any
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from scripts.node_process import Cluster, NodeProcess, http
from tests.browser.conftest import kraft_tool, loaded, open_page, screenshot, wait_until

TOPIC = "events"


def produce(node: NodeProcess, topic: str, record: dict[str, Any]) -> dict[str, Any]:
    """One record produced with a plain HTTP POST (as curl would); answers where it went."""
    status, answer = http("POST", f"{node.url}/v1/topics/{quote(topic)}/records", record)
    assert status == 200, (status, answer)
    offsets: dict[str, Any] = answer["offsets"][0]
    return offsets


def create(node: NodeProcess, topic: str, partitions: int, **configs: str) -> None:
    body: dict[str, Any] = {"name": topic, "partitions": partitions, "replication_factor": 3}
    if configs:
        body["configs"] = configs
    status, answer = http("POST", f"{node.url}/v1/topics", body)
    assert status == 201, (status, answer)


def row(driver: Any, partition: int, offset: int) -> Any:
    found = driver.find_elements(
        By.CSS_SELECTOR, f'[data-testid="message-row-{partition}-{offset}"]'
    )
    return found[0] if found else None


def errors(driver: Any) -> list[Any]:
    return [e for e in driver.find_elements(By.CSS_SELECTOR, "#page-messages .error") if e.text]


def test_a_produced_record_shows_and_live_tail_adds_the_next(cluster: Cluster, driver: Any) -> None:
    node = cluster.nodes[0]
    create(node, TOPIC, 3)
    first = produce(node, TOPIC, {"key": "oslo", "value": {"temp_c": 21}, "partition": 1})
    open_page(driver, cluster.nodes[1].url, f"/ui/topics/{TOPIC}/messages")
    loaded(driver, "messages")
    shown = wait_until(lambda: row(driver, 1, first["offset"]))
    assert "oslo" in shown.text
    assert '"temp_c": 21' in shown.text  # JSON pretty-printed

    # The streams start at the high watermark the page last read: a record produced before
    # they are open is still tailed.
    driver.find_element(By.ID, "live-tail").click()
    second = produce(
        node, TOPIC, {"key": "lima", "value": "warm", "partition": 1, "headers": {"src": "s7"}}
    )
    tailed = wait_until(lambda: row(driver, 1, second["offset"]), timeout=30)
    assert "warm" in tailed.text and "src: s7" in tailed.text
    screenshot(driver, "messages")
    driver.find_element(By.ID, "live-tail").click()


def test_a_record_produced_in_the_console_is_read_by_kraft_console_consumer(
    cluster: Cluster, driver: Any
) -> None:
    node = cluster.nodes[2]
    create(node, "made-here", 1)
    open_page(driver, node.url, "/ui/topics/made-here/messages")
    loaded(driver, "messages")
    form = driver.find_element(By.ID, "produce-form")
    form.find_element(By.ID, "produce-key").send_keys("k1")
    form.find_element(By.ID, "produce-value").send_keys("hello from the console")
    form.find_element(By.ID, "produce-headers").send_keys("origin=browser")
    Select(form.find_element(By.ID, "produce-partition")).select_by_value("0")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    result = wait_until(
        lambda: driver.find_elements(By.CSS_SELECTOR, '[data-testid="produce-result"]')
    )
    assert "partition 0 at offset 0" in result[0].text
    out = subprocess.run(
        [
            kraft_tool("kraft-console-consumer"),
            "--bootstrap-server",
            node.bootstrap,
            "--topic",
            "made-here",
            "--from-beginning",
            "--max-messages",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello from the console"


def test_a_deep_link_opens_at_its_partition_and_offset(cluster: Cluster, driver: Any) -> None:
    node = cluster.nodes[0]
    create(node, "deep", 2)
    for i in range(3):
        produce(node, "deep", {"value": f"p1-{i}", "partition": 1})
    produce(node, "deep", {"value": "p0-0", "partition": 0})
    open_page(driver, node.url, "/ui/topics/deep/messages?partition=1&offset=1")
    loaded(driver, "messages")
    wait_until(lambda: row(driver, 1, 2))
    assert row(driver, 1, 1) is not None
    assert row(driver, 1, 0) is None  # before the offset asked for
    assert row(driver, 0, 0) is None  # another partition
    assert Select(driver.find_element(By.ID, "seek-partition")).first_selected_option.text == (
        "partition 1"
    )
    assert driver.find_element(By.ID, "seek-offset").get_attribute("value") == "1"
    # Older pages back to the start of the partition, through the URL.
    driver.find_element(By.ID, "page-older").click()
    wait_until(lambda: "offset=0" in driver.current_url)
    assert wait_until(lambda: row(driver, 1, 0))


def test_a_timestamp_and_a_group_are_positions(cluster: Cluster, driver: Any) -> None:
    node = cluster.nodes[1]
    create(node, "timed", 1)
    produce(node, "timed", {"value": "old", "partition": 0, "timestamp": 1_000_000_000_000})
    produce(node, "timed", {"value": "new", "partition": 0, "timestamp": 2_000_000_000_000})
    open_page(driver, node.url, "/ui/topics/timed/messages?timestamp=1500000000000")
    loaded(driver, "messages")
    wait_until(lambda: row(driver, 0, 1))
    assert row(driver, 0, 0) is None

    # A group with a committed offset of 1: the page starts there.
    status, answer = http(
        "POST",
        f"{node.url}/v1/groups/readers/offsets",
        {"offsets": [{"topic": "timed", "partition": 0, "offset": 1}]},
    )
    if status == 307:
        status, answer = http(
            "POST",
            answer["leader_url"] + "/v1/groups/readers/offsets",
            {"offsets": [{"topic": "timed", "partition": 0, "offset": 1}]},
        )
    assert status == 200, (status, answer)
    open_page(driver, node.url, "/ui/topics/timed/messages?group=readers")
    loaded(driver, "messages")
    wait_until(lambda: row(driver, 0, 1))
    assert row(driver, 0, 0) is None
    # A group without an offset on the topic starts at the earliest, and says so.
    open_page(driver, node.url, "/ui/topics/timed/messages?group=nobody")
    loaded(driver, "messages")
    wait_until(lambda: row(driver, 0, 0))
    notices = driver.find_elements(By.CSS_SELECTOR, "#page-messages .notice")
    assert any("no committed offset" in n.text for n in notices)


@pytest.mark.browser_errors("400")
def test_an_offset_that_is_not_a_number_shows_the_servers_message(
    cluster: Cluster, driver: Any
) -> None:
    node = cluster.nodes[0]
    create(node, "typos", 1)
    produce(node, "typos", {"value": "x", "partition": 0})
    status, answer = http(
        "GET", f"{node.url}/v1/topics/typos/partitions/0/records?offset=abc&format=json"
    )
    if status == 307:
        status, answer = http(
            "GET", answer["leader_url"] + "/v1/topics/typos/partitions/0/records?offset=abc"
        )
    assert status == 400, (status, answer)
    open_page(driver, node.url, "/ui/topics/typos/messages?partition=0")
    loaded(driver, "messages")
    wait_until(lambda: row(driver, 0, 0))
    form = driver.find_element(By.ID, "seek-form")
    offset = form.find_element(By.ID, "seek-offset")
    offset.clear()
    offset.send_keys("abc")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = wait_until(lambda: errors(driver))
    assert answer["message"] in error[0].text
    assert "offset=abc" in driver.current_url
    # The page keeps working: a good offset shows the record again.
    offset = driver.find_element(By.ID, "seek-offset")
    offset.clear()
    offset.send_keys("0")
    driver.find_element(By.CSS_SELECTOR, "#seek-form button[type=submit]").click()
    wait_until(lambda: row(driver, 0, 0))
    assert not errors(driver)


@pytest.mark.browser_errors("413")
def test_a_record_over_max_message_bytes_shows_the_servers_message(
    cluster: Cluster, driver: Any
) -> None:
    node = cluster.nodes[1]
    create(node, "small", 1, **{"max.message.bytes": "100"})
    open_page(driver, node.url, "/ui/topics/small/messages")
    loaded(driver, "messages")
    form = driver.find_element(By.ID, "produce-form")
    form.find_element(By.ID, "produce-value").send_keys("x" * 200)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = wait_until(lambda: errors(driver))
    assert "RECORD_TOO_LARGE" in error[0].text
    assert "max.message.bytes of 100" in error[0].text
    status, answer = http("GET", f"{node.url}/v1/topics/small/partitions/0/offsets")
    if status == 307:
        status, answer = http("GET", answer["leader_url"] + "/v1/topics/small/partitions/0/offsets")
    assert (status, answer["latest"]) == (200, 0), answer  # nothing stored
    # A small record goes through after it.
    value = form.find_element(By.ID, "produce-value")
    value.clear()
    value.send_keys(json.dumps({"ok": True}))
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, '[data-testid="produce-result"]'))
