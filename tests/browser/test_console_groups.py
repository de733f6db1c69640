"""The console's groups pages in a real browser against a real three-node cluster: a group made
by the real tools shows in the list; its lag on the group page equals kraft-consumer-groups
--describe; a reset to earliest shows the new offsets in a dry run, commits them on execute
(the tool then shows them), is refused with the server's message while a member is active;
bad input shows an error and changes nothing; a group is deleted after a confirmation."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import quote

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select

from client.tools.group_lines import LineError, parse_datetime_ms, parse_duration_ms
from scripts.node_process import Cluster, NodeProcess, http, run_tool
from tests.browser.conftest import loaded, open_page, screenshot, wait_until

TOPIC = "orders"
PARTITIONS = 3
RECORDS_PER_PARTITION = 10
LATE_PER_PARTITION = 5
GROUP = "shop"
# How Chromium logs a 404 answer (SEVERE): the tests that provoke one declare it.
NOT_FOUND_LOG = "Failed to load resource: the server responded with a status of 404"
READ = 12  # what the group's consumer prints before it stops


def follow(node: NodeProcess, method: str, path: str, body: Any = None) -> Any:
    """A 2xx answer, following 307s (coordinator, leader) and waiting out 503s (a minute)."""

    def attempt() -> Any:
        url = node.url + path
        for _ in range(5):
            status, answer = http(method, url, body)
            if status == 307:
                url = answer["leader_url"].rstrip("/") + path
                continue
            if status == 503:
                return None
            assert 200 <= status < 300, (status, answer)
            return answer if answer is not None else True
        return None

    return wait_until(attempt, timeout=60)


def groups_tool(node: NodeProcess, *args: str) -> str:
    out = run_tool("client.tools.consumer_groups", "--bootstrap-server", node.bootstrap, *args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def describe_rows(node: NodeProcess, group: str) -> dict[int, dict[str, str]]:
    """kraft-consumer-groups --describe's rows of TOPIC by partition (the partitions with a
    committed offset or an owner), each cell by its column's name, as printed."""
    lines = groups_tool(node, "--describe", "--group", group).splitlines()
    header = lines[1].split()
    rows = {}
    for line in lines[2:]:
        cells = dict(zip(header, line.split(), strict=False))
        if cells.get("TOPIC") == TOPIC:
            rows[int(cells["PARTITION"])] = cells
    return rows


def shows(driver: WebDriver, testid: str, want: str) -> Callable[[], bool]:
    """A condition for wait_until: the figure ``testid`` reads ``want``."""
    return lambda: figure(driver, testid) == want


def offsets_of(rows: dict[int, dict[str, str]]) -> dict[int, str]:
    return {p: cells["CURRENT-OFFSET"] for p, cells in rows.items()}


def figure(driver: WebDriver, testid: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')
    return found[0].text.replace(",", "") if found else ""


@pytest.fixture(scope="module")
def shop(cluster: Cluster) -> None:
    """TOPIC and GROUP, made once for the module's tests."""
    setup_group(cluster)


# Every test starts from the module's group (the tests run in order and build on each other:
# the reset tests move its offsets).
pytestmark = pytest.mark.usefixtures("shop")


def setup_group(cluster: Cluster) -> None:
    """TOPIC with RECORDS_PER_PARTITION records in each partition, GROUP that read READ of them
    with kraft-console-consumer (which leaves the group when it stops), then LATE_PER_PARTITION
    more records in each partition."""
    node = cluster.nodes[0]
    status, answer = node.http(
        "POST", "/v1/topics", {"name": TOPIC, "partitions": PARTITIONS, "replication_factor": 3}
    )
    assert status == 201, answer
    for p in range(PARTITIONS):
        records = [{"value": f"order-{p}-{i}"} for i in range(RECORDS_PER_PARTITION)]
        follow(node, "POST", f"/v1/topics/{TOPIC}/partitions/{p}/records", {"records": records})
    out = run_tool(
        "client.tools.console_consumer",
        "--bootstrap-server",
        node.bootstrap,
        "--topic",
        TOPIC,
        "--group",
        GROUP,
        "--from-beginning",
        "--max-messages",
        str(READ),
    )
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.splitlines()) == READ
    # The consumer may have committed past what it printed (it fetches ahead); records written
    # after it stopped are lag for sure.
    for p in range(PARTITIONS):
        records = [{"value": f"late-{p}-{i}"} for i in range(LATE_PER_PARTITION)]
        follow(node, "POST", f"/v1/topics/{TOPIC}/partitions/{p}/records", {"records": records})


def test_a_group_made_by_the_tools_is_listed_with_its_lag(
    cluster: Cluster, driver: WebDriver
) -> None:
    rows = describe_rows(cluster.nodes[0], GROUP)
    total_lag = sum(int(r["LAG"]) for r in rows.values())
    assert total_lag >= LATE_PER_PARTITION * len(rows)

    open_page(driver, cluster.nodes[1].url, "/ui/groups")
    loaded(driver, "groups")
    wait_until(lambda: driver.find_elements(By.ID, f"group-row-{GROUP}"))
    wait_until(lambda: figure(driver, f"lag-{GROUP}") == str(total_lag))
    row = driver.find_element(By.ID, f"group-row-{GROUP}")
    assert "Empty" in row.text  # the consumer left when it stopped
    screenshot(driver, "groups")

    row.find_element(By.LINK_TEXT, GROUP).click()
    loaded(driver, "group")
    assert driver.current_url.endswith(f"/ui/groups/{GROUP}")


def test_the_group_pages_lag_is_the_tools(cluster: Cluster, driver: WebDriver) -> None:
    node = cluster.nodes[2]
    open_page(driver, node.url, f"/ui/groups/{quote(GROUP, safe='')}")
    loaded(driver, "group")
    rows = describe_rows(node, GROUP)
    assert rows
    for p, cells in rows.items():
        wait_until(shows(driver, f"lag-{TOPIC}-{p}", cells["LAG"]))
        assert figure(driver, f"committed-{TOPIC}-{p}") == cells["CURRENT-OFFSET"]
        assert figure(driver, f"log-end-{TOPIC}-{p}") == cells["LOG-END-OFFSET"]
        link = driver.find_element(By.ID, f"offset-row-{TOPIC}-{p}").find_element(
            By.LINK_TEXT, "messages from here"
        )
        assert str(link.get_attribute("href")).endswith(
            f"/ui/topics/{TOPIC}/messages?partition={p}&group={GROUP}"
        )
    assert figure(driver, "group-state") == "Empty"
    screenshot(driver, "group")


def choose(driver: WebDriver, select_id: str, value: str) -> None:
    Select(driver.find_element(By.ID, select_id)).select_by_value(value)


def dry_run(driver: WebDriver) -> None:
    driver.find_element(By.ID, "reset-dry-run").click()
    wait_until(
        lambda: driver.find_elements(By.CSS_SELECTOR, "#reset-preview table, #reset-status .error")
    )


def test_bad_input_shows_an_error_and_changes_nothing(cluster: Cluster, driver: WebDriver) -> None:
    node = cluster.nodes[0]
    before = describe_rows(node, GROUP)
    open_page(driver, node.url, f"/ui/groups/{GROUP}")
    loaded(driver, "group")
    choose(driver, "reset-scenario", "shift-by")
    driver.find_element(By.ID, "reset-value").send_keys("abc")
    dry_run(driver)
    error = driver.find_element(By.CSS_SELECTOR, "#reset-status .error")
    assert "'abc' is not a whole number" in error.text
    assert not driver.find_element(By.ID, "reset-execute").is_displayed()

    # A partition the topic does not have is refused before anything is asked or written.
    choose(driver, "reset-scenario", "to-earliest")
    choose(driver, "reset-scope", TOPIC)
    driver.find_element(By.ID, "reset-partitions").send_keys("7")
    dry_run(driver)
    error = driver.find_element(By.CSS_SELECTOR, "#reset-status .error")
    assert f"Topic '{TOPIC}' has no partition 7" in error.text
    assert not driver.find_element(By.ID, "reset-execute").is_displayed()
    assert describe_rows(node, GROUP) == before


def test_reset_to_earliest_dry_run_then_execute(cluster: Cluster, driver: WebDriver) -> None:
    node = cluster.nodes[1]
    before = describe_rows(node, GROUP)
    assert any(cells["CURRENT-OFFSET"] not in ("0", "-") for cells in before.values())
    open_page(driver, node.url, f"/ui/groups/{GROUP}")
    loaded(driver, "group")
    choose(driver, "reset-scope", TOPIC)
    choose(driver, "reset-scenario", "to-earliest")
    dry_run(driver)
    for p in range(PARTITIONS):
        current = before[p]["CURRENT-OFFSET"] if p in before else "-"
        assert figure(driver, f"reset-current-{TOPIC}-{p}") in (
            current,
            "–" if current == "-" else current,
        )
        assert figure(driver, f"reset-new-{TOPIC}-{p}") == "0"
    # A dry run writes nothing.
    assert describe_rows(node, GROUP) == before

    driver.find_element(By.ID, "reset-execute").click()
    wait_until(lambda: driver.find_elements(By.ID, "reset-done"))
    after = describe_rows(node, GROUP)
    # Every partition of the topic, also one the group had no offset on (as the tool does).
    assert offsets_of(after) == dict.fromkeys(range(PARTITIONS), "0")
    # The live table follows without a reload.
    for p, cells in after.items():
        wait_until(shows(driver, f"lag-{TOPIC}-{p}", cells["LAG"]))


def test_to_offset_is_filled_with_the_current_offsets(cluster: Cluster, driver: WebDriver) -> None:
    node = cluster.nodes[2]
    follow(
        node,
        "POST",
        f"/v1/groups/{GROUP}/offsets",
        {"offsets": [{"topic": TOPIC, "partition": p, "offset": p + 1} for p in range(PARTITIONS)]},
    )
    open_page(driver, node.url, f"/ui/groups/{GROUP}")
    loaded(driver, "group")
    wait_until(lambda: figure(driver, f"committed-{TOPIC}-{PARTITIONS - 1}") == str(PARTITIONS))
    choose(driver, "reset-scenario", "to-offset")
    for p in range(PARTITIONS):
        field = wait_until(partial(driver.find_elements, By.ID, f"reset-offset-{TOPIC}-{p}"))[0]
        assert field.get_attribute("value") == str(p + 1)
    # One partition moved by hand, beyond the log end: clamped as the tool clamps it.
    end = describe_rows(node, GROUP)[0]["LOG-END-OFFSET"]
    field = driver.find_element(By.ID, f"reset-offset-{TOPIC}-0")
    field.clear()
    field.send_keys("999999")
    dry_run(driver)
    assert figure(driver, f"reset-new-{TOPIC}-0") == end
    assert figure(driver, f"reset-new-{TOPIC}-1") == "2"
    warning = driver.find_element(By.CSS_SELECTOR, "#reset-preview .reset-warning").text
    assert f"New offset (999999) is higher than latest offset for topic partition {TOPIC}-0" in (
        warning
    )
    driver.find_element(By.ID, "reset-execute").click()
    wait_until(lambda: driver.find_elements(By.ID, "reset-done"))
    assert offsets_of(describe_rows(node, GROUP)) == {0: end, 1: "2", 2: "3"}


@pytest.mark.browser_errors(f"/v1/groups/{GROUP}/offsets - {NOT_FOUND_LOG}")
def test_a_reset_while_a_member_is_active_shows_the_servers_refusal(
    cluster: Cluster, driver: WebDriver
) -> None:
    node = cluster.nodes[0]
    before = describe_rows(node, GROUP)
    joined = follow(
        node,
        "POST",
        f"/v1/groups/{GROUP}/heartbeat",
        {"member_epoch": 0, "topics": [TOPIC], "client_id": "browser-test"},
    )
    try:
        open_page(driver, node.url, f"/ui/groups/{GROUP}")
        loaded(driver, "group")
        wait_until(lambda: figure(driver, "group-members") == "1")
        choose(driver, "reset-scenario", "to-latest")
        dry_run(driver)
        notice = driver.find_element(By.CSS_SELECTOR, "#reset-preview .notice").text
        assert f"Assignments can only be reset if the group '{GROUP}' is inactive" in notice
        driver.find_element(By.ID, "reset-execute").click()
        error = wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#reset-status .error"))[0]
        assert "UNKNOWN_MEMBER_ID" in error.text
        assert offsets_of(describe_rows(node, GROUP)) == offsets_of(before)
    finally:
        follow(
            node,
            "POST",
            f"/v1/groups/{GROUP}/heartbeat",
            {"member_id": joined["member_id"], "member_epoch": -1},
        )


DOOMED = "to be deleted"


# The group page's live read may meet the group gone before the page moves to the list.
@pytest.mark.browser_errors(f"/v1/groups/{quote(DOOMED, safe='')} - {NOT_FOUND_LOG}")
def test_delete_after_confirmation(cluster: Cluster, driver: WebDriver) -> None:
    node = cluster.nodes[1]
    doomed = DOOMED
    follow(
        node,
        "POST",
        f"/v1/groups/{quote(doomed, safe='')}/offsets",
        {"offsets": [{"topic": TOPIC, "partition": 0, "offset": 1}]},
    )
    open_page(driver, node.url, f"/ui/groups/{quote(doomed, safe='')}")
    loaded(driver, "group")
    wait_until(lambda: figure(driver, f"committed-{TOPIC}-0") == "1")
    driver.find_element(By.ID, "delete-group").click()
    driver.find_element(By.ID, "confirm-cancel").click()
    assert doomed in groups_tool(node, "--list").splitlines()

    driver.find_element(By.ID, "delete-group").click()
    driver.find_element(By.ID, "confirm-ok").click()
    wait_until(lambda: driver.current_url.endswith("/ui/groups"))
    wait_until(lambda: driver.find_elements(By.ID, f"group-row-{GROUP}"))
    assert not driver.find_elements(By.ID, f"group-row-{doomed}")
    assert doomed not in groups_tool(node, "--list").splitlines()


def test_the_groups_replication_and_disk_pages_fit_a_phones_width(
    cluster: Cluster, driver: WebDriver
) -> None:
    node = cluster.nodes[0]
    segment = "00000000000000000000.log"
    # Headless Chromium's window is at least 500 px wide: a phone's viewport is emulated.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 375, "height": 800, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        for path, page in (
            ("/ui/groups", "groups"),
            (f"/ui/groups/{GROUP}", "group"),
            (f"/ui/disk?broker=1&topic={TOPIC}&partition=0&file={segment}", "disk"),
            (f"/ui/replication?topic={TOPIC}", "replication"),
        ):
            open_page(driver, node.url, path)
            loaded(driver, page)
            if page == "disk":
                wait_until(partial(driver.find_elements, By.ID, "file-text"))
            width = driver.execute_script("return [document.body.scrollWidth, window.innerWidth]")
            assert width[1] == 375 and width[0] <= width[1], (path, width)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.mark.browser_errors(f"/v1/groups/nobody - {NOT_FOUND_LOG}")
def test_an_unknown_group_shows_the_servers_message(cluster: Cluster, driver: WebDriver) -> None:
    node = cluster.nodes[2]
    status, answer = node.http("GET", "/v1/groups/nobody")
    if status == 307:
        status, answer = http("GET", answer["leader_url"].rstrip("/") + "/v1/groups/nobody")
    assert status == 404, answer
    open_page(driver, node.url, "/ui/groups/nobody")
    loaded(driver, "group")
    error = wait_until(partial(driver.find_elements, By.CSS_SELECTOR, "#page-group .error"))[0]
    assert "GROUP_ID_NOT_FOUND" in error.text
    assert answer["message"] in error.text


DATETIMES = [
    "2026-01-01T00:00:00.000",
    "2026-01-01T12:34:56.789Z",
    "2026-06-30T23:59:59.999+02",
    "2026-06-30T23:59:59.999-0530",
    "2026-06-30T23:59:59.999+05:30",
    "2026-02-31T00:00:00.000",
    "2026-01-01",
    "2026-01-01T00:00:00",
]
DURATIONS = ["PT1H", "P1DT2H3M4.5S", "-PT10M", "PT-1.5S", "pt90s", "P", "PT", "1H", "P2D"]


def test_the_reset_forms_dates_and_durations_read_as_the_tools(
    cluster: Cluster, driver: WebDriver
) -> None:
    """The console parses --to-datetime and --by-duration values in the page: each value is
    read as kraft-consumer-groups reads it (the same milliseconds, or refused with its words)."""

    def tool_reading(parse: Callable[[str], int], text: str) -> list[Any]:
        try:
            return ["ok", parse(text)]
        except LineError as exc:
            return ["error", str(exc)]

    open_page(driver, cluster.nodes[0].url, "/ui/groups")
    loaded(driver, "groups")
    readings = driver.execute_async_script(
        """
        const [datetimes, durations, done] = arguments;
        import("/ui/assets/js/pages/group_reset.js").then((m) => {
          const read = (parse, text) => {
            try { return ["ok", parse(text)]; } catch (e) { return ["error", e.message]; }
          };
          done({
            datetimes: datetimes.map((t) => read(m.parseDatetimeMs, t)),
            durations: durations.map((t) => read(m.parseDurationMs, t)),
          });
        });
        """,
        DATETIMES,
        DURATIONS,
    )
    assert readings["datetimes"] == [tool_reading(parse_datetime_ms, t) for t in DATETIMES]
    assert readings["durations"] == [tool_reading(parse_duration_ms, t) for t in DURATIONS]
