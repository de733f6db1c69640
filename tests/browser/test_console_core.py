"""The console's core pages in a real browser against a real three-node cluster: the overview
shows the brokers and the controller; a topic created in the console is listed by
kraft-topics; the topic page shows each partition's leader, ISR and high watermark, alters
configs and adds partitions; an unknown topic shows the server's message; pages fit a phone's
width; a topic is deleted after a confirmation."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from scripts.node_process import Cluster, NodeProcess, http
from tests.browser.conftest import kraft_tool, loaded, open_page, screenshot, wait_until


def api(node: NodeProcess, method: str, path: str, body: Any = None) -> Any:
    status, answer = node.http(method, path, body)
    assert 200 <= status < 300, (method, path, status, answer)
    return answer


def by_testid(driver: Any, name: str) -> Any:
    found = driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{name}"]')
    return found[0] if found else None


def wait_testid(driver: Any, name: str) -> Any:
    """Waits for the element of data-testid ``name`` and answers it."""
    return wait_until(lambda: by_testid(driver, name))


def wait_text(driver: Any, name: str, expected: str) -> None:
    """Waits until the element of data-testid ``name`` shows exactly ``expected``."""

    def shows() -> bool:
        element = by_testid(driver, name)
        return element is not None and element.text == expected

    wait_until(shows)


def topics_listed(node: NodeProcess) -> list[str]:
    out = subprocess.run(
        [kraft_tool("kraft-topics"), "--bootstrap-server", node.bootstrap, "--list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_overview_shows_three_brokers_alive_and_the_controller(
    cluster: Cluster, driver: Any
) -> None:
    node = cluster.nodes[1]
    open_page(driver, node.url, "/ui/")
    loaded(driver, "overview")
    expected = api(node, "GET", "/v1/cluster")
    for broker in expected["brokers"]:
        row = wait_testid(driver, f"broker-row-{broker['id']}")
        assert row.get_attribute("data-alive") == "true"
    wait_text(driver, "controller-id", str(expected["controller_id"]))
    assert by_testid(driver, "cluster-id").text == expected["cluster_id"]
    for voter in (1, 2, 3):
        assert wait_testid(driver, f"voter-row-{voter}")
    assert by_testid(driver, "count-offline").text == "0"
    assert driver.find_element(By.ID, "node-id").text == "node 2"
    screenshot(driver, "overview")


def test_a_topic_created_in_the_console_is_listed_by_kraft_topics(
    cluster: Cluster, driver: Any
) -> None:
    node = cluster.nodes[0]
    open_page(driver, node.url, "/ui/topics")
    loaded(driver, "topics")
    form = driver.find_element(By.ID, "create-topic-form")
    form.find_element(By.ID, "create-topic-name").send_keys("weather")
    form.find_element(By.ID, "create-topic-partitions").send_keys("3")
    form.find_element(By.ID, "create-topic-rf").send_keys("3")
    form.find_element(By.ID, "create-topic-configs").send_keys("retention.ms=86400000")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(lambda: by_testid(driver, "create-topic-result"))
    assert "weather" in topics_listed(cluster.nodes[2])
    row = wait_until(lambda: by_testid(driver, "topic-row-weather"))
    wait_until(lambda: row.find_elements(By.CSS_SELECTOR, "td")[1].text == "3")
    overrides = api(node, "GET", "/v1/topics/weather/configs")["overrides"]
    assert overrides == {"retention.ms": "86400000"}
    screenshot(driver, "topics")


@pytest.mark.browser_errors("409")
def test_creating_an_existing_topic_shows_the_servers_message(
    cluster: Cluster, driver: Any
) -> None:
    node = cluster.nodes[0]
    api(node, "POST", "/v1/topics", {"name": "twice", "partitions": 1})
    open_page(driver, node.url, "/ui/topics")
    loaded(driver, "topics")
    form = driver.find_element(By.ID, "create-topic-form")
    form.find_element(By.ID, "create-topic-name").send_keys("twice")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#page-topics .error"))
    assert "Topic 'twice' already exists." in error[0].text
    assert "TOPIC_ALREADY_EXISTS" in error[0].text
    # The page keeps working: the list is still live.
    assert wait_until(lambda: by_testid(driver, "topic-row-twice"))


def test_the_topic_page_shows_leaders_isr_and_high_watermarks(
    cluster: Cluster, driver: Any
) -> None:
    node = cluster.nodes[0]
    api(node, "POST", "/v1/topics", {"name": "prices", "partitions": 3, "replication_factor": 3})
    api(node, "POST", "/v1/topics/prices/records", {"records": [{"value": "a", "partition": 1}]})
    described = api(node, "GET", "/v1/topics/prices")
    open_page(driver, cluster.nodes[2].url, "/ui/topics/prices")
    loaded(driver, "topic")
    for p in described["partitions"]:
        i = p["partition"]
        wait_text(driver, f"leader-{i}", str(p["leader"]))
        isr = by_testid(driver, f"isr-{i}").text
        assert sorted(int(b) for b in isr.split(", ")) == sorted(p["isr"])
    wait_text(driver, "hw-1", "1")
    # A record produced now shows without a reload.
    api(node, "POST", "/v1/topics/prices/records", {"records": [{"value": "b", "partition": 1}]})
    wait_text(driver, "hw-1", "2")
    row = wait_until(lambda: by_testid(driver, "config-row-retention.ms"))
    assert row.get_attribute("data-source") == "DEFAULT_CONFIG"
    screenshot(driver, "topic")


def test_the_topic_page_alters_configs_and_adds_partitions(cluster: Cluster, driver: Any) -> None:
    node = cluster.nodes[1]
    api(node, "POST", "/v1/topics", {"name": "growing", "partitions": 1})
    open_page(driver, node.url, "/ui/topics/growing")
    loaded(driver, "topic")
    form = wait_until(lambda: driver.find_element(By.ID, "alter-configs-form"))
    form.find_element(By.ID, "alter-configs-set").send_keys("retention.ms=3600000")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(
        lambda: (
            by_testid(driver, "config-row-retention.ms").get_attribute("data-source")
            == "DYNAMIC_TOPIC_CONFIG"
        )
    )
    assert api(node, "GET", "/v1/topics/growing/configs")["overrides"] == {
        "retention.ms": "3600000"
    }
    form = driver.find_element(By.ID, "alter-configs-form")
    form.find_element(By.ID, "alter-configs-remove").send_keys("retention.ms")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_until(
        lambda: (
            by_testid(driver, "config-row-retention.ms").get_attribute("data-source")
            != "DYNAMIC_TOPIC_CONFIG"
        )
    )
    assert api(node, "GET", "/v1/topics/growing/configs")["overrides"] == {}

    form = driver.find_element(By.ID, "add-partitions-form")
    form.find_element(By.ID, "add-partitions-count").send_keys("3")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert wait_until(lambda: by_testid(driver, "partition-row-2"))
    assert api(node, "GET", "/v1/topics/growing")["partition_count"] == 3


@pytest.mark.browser_errors("400")
def test_a_bad_config_shows_the_servers_message(cluster: Cluster, driver: Any) -> None:
    node = cluster.nodes[2]
    api(node, "POST", "/v1/topics", {"name": "strict-configs", "partitions": 1})
    open_page(driver, node.url, "/ui/topics/strict-configs")
    loaded(driver, "topic")
    form = wait_until(lambda: driver.find_element(By.ID, "alter-configs-form"))
    form.find_element(By.ID, "alter-configs-set").send_keys("retention.mss=1")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    error = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#page-topic .error"))
    assert "unknown topic config 'retention.mss'" in error[0].text
    assert api(node, "GET", "/v1/topics/strict-configs/configs")["overrides"] == {}


@pytest.mark.browser_errors("404")
def test_an_unknown_topic_shows_the_servers_message(cluster: Cluster, driver: Any) -> None:
    node = cluster.nodes[0]
    open_page(driver, node.url, "/ui/topics/nope")
    loaded(driver, "topic")
    error = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#page-topic .error"))
    assert "Topic 'nope' does not exist." in error[0].text
    # The rest of the console still works.
    driver.find_element(By.CSS_SELECTOR, '#nav a[data-nav="topics"]').click()
    loaded(driver, "topics")


def test_a_topic_is_deleted_after_a_confirmation(cluster: Cluster, driver: Any) -> None:
    node = cluster.nodes[0]
    api(node, "POST", "/v1/topics", {"name": "doomed", "partitions": 1})
    open_page(driver, node.url, "/ui/topics/doomed")
    loaded(driver, "topic")
    wait_until(lambda: driver.find_element(By.ID, "delete-topic")).click()
    wait_until(lambda: driver.find_element(By.ID, "confirm-cancel")).click()
    assert "doomed" in topics_listed(node)
    driver.find_element(By.ID, "delete-topic").click()
    wait_until(lambda: driver.find_element(By.ID, "confirm-ok")).click()
    loaded(driver, "topics")
    wait_until(lambda: "doomed" not in topics_listed(node))
    wait_until(lambda: by_testid(driver, "topic-row-doomed") is None)


def test_pages_fit_a_phones_width(cluster: Cluster, driver: Any) -> None:
    node = cluster.nodes[0]
    api(node, "POST", "/v1/topics", {"name": "narrow", "partitions": 2})
    # Headless Chromium's window is at least 500 px wide: a phone's 375 px viewport is
    # emulated, as the browser's device mode does.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 800, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        for path, page in (
            ("/ui/", "overview"),
            ("/ui/topics", "topics"),
            ("/ui/topics/narrow", "topic"),
            ("/ui/topics/narrow/messages", "messages"),
        ):
            open_page(driver, node.url, path)
            loaded(driver, page)
            width = driver.execute_script("return [document.body.scrollWidth, window.innerWidth]")
            assert width[1] == 375 and width[0] <= width[1], (path, width)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_page_opened_at_another_name_of_the_node_moves_to_its_advertised_origin(
    cluster: Cluster, driver: Any
) -> None:
    node = cluster.nodes[0]
    assert node.url.startswith("http://127.0.0.1:")
    driver.get(node.url.replace("127.0.0.1", "localhost") + "/ui/topics?x=1")
    wait_until(lambda: driver.current_url == node.url + "/ui/topics?x=1")
    loaded(driver, "topics")


def test_an_unknown_console_path_shows_not_found_and_the_nav_still_works(
    cluster: Cluster, driver: Any
) -> None:
    node = cluster.nodes[0]
    open_page(driver, node.url, "/ui/nowhere/at/all")
    page = loaded(driver, "notfound")
    assert "/ui/nowhere/at/all" in page.text
    driver.find_element(By.CSS_SELECTOR, '#nav a[data-nav="overview"]').click()
    loaded(driver, "overview")
    assert driver.current_url == node.url + "/ui/"


def test_the_topics_list_shows_records_and_the_groups_reading_with_their_lag(
    cluster: Cluster, driver: Any
) -> None:
    node = cluster.nodes[1]
    api(node, "POST", "/v1/topics", {"name": "read", "partitions": 1, "replication_factor": 3})
    for value in ("a", "b", "c"):
        # Right after the create the leader may not have opened its replica yet: 503, retry.
        body = {"value": value, "partition": 0}
        wait_until(lambda: node.http("POST", "/v1/topics/read/records", body)[0] == 200)  # noqa: B023
    commit = {"offsets": [{"topic": "read", "partition": 0, "offset": 1}]}
    status, answer = node.http("POST", "/v1/groups/readers/offsets", commit)
    if status == 307:  # another node coordinates the group
        status, answer = http("POST", answer["leader_url"] + "/v1/groups/readers/offsets", commit)
    assert status == 200, (status, answer)
    open_page(driver, node.url, "/ui/topics")
    loaded(driver, "topics")
    wait_text(driver, "records-read", "3")
    row = wait_testid(driver, "topic-row-read")
    wait_until(lambda: "readers (lag 2)" in row.text)
    group_link = row.find_element(By.LINK_TEXT, "readers")
    assert group_link.get_attribute("href") == node.url + "/ui/groups/readers"
