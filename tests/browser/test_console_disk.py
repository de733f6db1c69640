"""The disk view in a real browser against a real three-node cluster: a partition's files at its
leader with their sizes on disk; a segment's text is kraft-dump-log's output for the same file
(also with payloads, and again from a bookmark); a bad file name shows the server's 404."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from scripts.node_process import Cluster, NodeProcess, http, run_tool
from tests.browser.conftest import loaded, open_page, screenshot, wait_until

TOPIC = "ledger"
SEGMENT = "00000000000000000000.log"


def leader_of(node: NodeProcess) -> int:
    def leader() -> int | None:
        status, answer = node.http("GET", f"/v1/topics/{TOPIC}")
        return int(answer["partitions"][0]["leader"]) if status == 200 else None

    found = wait_until(leader)
    assert found is not None
    return found


def page_text(driver: WebDriver) -> str:
    """The <pre id=file-text> as the page holds it (textContent keeps every space)."""
    found = driver.find_elements(By.CSS_SELECTOR, '#file-text[data-loaded="true"]')
    return (found[0].get_attribute("textContent") or "") if found else ""


def dump_log(path: Path, *flags: str) -> str:
    out = run_tool("storage.dump_log", "--files", str(path), *flags)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_a_partitions_files_and_a_segment_as_kraft_dump_log_prints_it(
    cluster: Cluster, driver: WebDriver
) -> None:
    first = cluster.nodes[0]
    status, answer = first.http(
        "POST", "/v1/topics", {"name": TOPIC, "partitions": 1, "replication_factor": 3}
    )
    assert status == 201, answer
    leader = cluster.node(leader_of(first))
    status, answer = leader.http(
        "POST",
        f"/v1/topics/{TOPIC}/partitions/0/records",
        {"records": [{"key": f"k{i}", "value": {"entry": i, "amount": i * 10}} for i in range(25)]},
    )
    assert status == 200, answer
    directory = leader.log_dir / f"{TOPIC}-0"

    # The browser on another node: the listing and the text come from the leader (307).
    other = next(n for n in cluster.nodes if n is not leader)
    open_page(driver, other.url, f"/ui/disk?broker={leader.node_id}&topic={TOPIC}&partition=0")
    loaded(driver, "disk")
    wait_until(lambda: driver.find_elements(By.ID, f"file-row-{SEGMENT}"))
    for name in (SEGMENT, "partition.metadata", "leader-epoch-checkpoint"):
        size = driver.find_element(By.CSS_SELECTOR, f'[data-testid="file-size-{name}"] span')
        assert size.get_attribute("title") == f"{(directory / name).stat().st_size} bytes"
    assert driver.find_elements(By.ID, "file-row-meta.properties")  # the log dir's own

    driver.find_element(By.ID, f"file-row-{SEGMENT}").find_element(By.LINK_TEXT, SEGMENT).click()
    wait_until(lambda: page_text(driver))
    assert f"file={SEGMENT}" in driver.current_url
    assert page_text(driver) == dump_log(directory / SEGMENT)

    driver.find_element(By.ID, "file-print-data").click()
    wait_until(lambda: "print_data=true" in driver.current_url and page_text(driver))
    with_payloads = dump_log(directory / SEGMENT, "--print-data-log")
    assert "payload:" in with_payloads
    assert page_text(driver) == with_payloads
    driver.execute_script("document.getElementById('disk-files').scrollIntoView()")
    screenshot(driver, "disk")

    # A bookmark of the page opens the same file with the same options.
    bookmark = "/" + driver.current_url.split("/", 3)[3]
    open_page(driver, first.url, bookmark)
    wait_until(lambda: page_text(driver))
    assert page_text(driver) == with_payloads


@pytest.mark.browser_errors("Failed to load resource: the server responded with a status of 404")
def test_a_bad_file_name_shows_the_servers_404(cluster: Cluster, driver: WebDriver) -> None:
    node = cluster.nodes[0]
    leader = leader_of(node)
    # ("..", a dot segment, never leaves the browser as a name: its URL parser drops it.)
    for bad in ("nope.log", "../meta.properties", "partition.metadata/x"):
        path = f"/v1/brokers/{leader}/partitions/{TOPIC}/0/files/{quote(bad, safe='')}"
        status, answer = http("GET", cluster.node(leader).url + path)
        assert status == 404, (bad, status, answer)
        open_page(
            driver,
            node.url,
            f"/ui/disk?broker={leader}&topic={TOPIC}&partition=0&file={quote(bad, safe='')}",
        )
        error = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#file-status .error"))
        assert answer["message"] in error[0].text
        assert not driver.find_elements(By.ID, "file-text")
        # The listing above still works.
        assert driver.find_elements(By.ID, f"file-row-{SEGMENT}")
