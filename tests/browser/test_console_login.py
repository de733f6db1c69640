"""The console on a cluster with users (SASL_PLAINTEXT), in a real browser: a request the
server refuses with 401 shows the console's own login form (never the browser's dialog); a
wrong password shows the server's message; the right one shows the page and the user; the
credentials are in no URL, cookie or browser storage; "log out" forgets them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from scripts.node_process import Cluster
from tests.browser.conftest import FAST_NODE_SETTINGS, loaded, open_page, wait_until

USER, PASSWORD = "alice", "s3cret-pw"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A three-node cluster whose HTTP listener asks for users (alice is the only one)."""
    handle = Cluster.create(
        tmp_path_factory.mktemp("sasl"),
        security="SASL_PLAINTEXT",
        users={USER: PASSWORD},
        **FAST_NODE_SETTINGS,
    )
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def log_in(driver: Any, user: str, password: str) -> None:
    form = wait_until(lambda: driver.find_elements(By.ID, "login-form"))[0]
    name = form.find_element(By.ID, "login-user")
    name.clear()
    name.send_keys(user)
    secret = form.find_element(By.ID, "login-password")
    secret.clear()
    secret.send_keys(password)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


# Each 401 is logged by Chromium as a failed resource load: they are the point of this test.
@pytest.mark.browser_errors("401")
def test_the_console_asks_for_credentials_and_keeps_them_in_memory_only(
    cluster: Cluster, driver: Any
) -> None:
    node = cluster.nodes[0]
    open_page(driver, node.url, "/ui/topics")
    log_in(driver, USER, "wrong")
    # The wrong pair is refused by the server, whose message the form shows.
    error = wait_until(
        lambda: [e for e in driver.find_elements(By.CSS_SELECTOR, "#login-form .error") if e.text]
    )
    status, answer = node.http("GET", "/v1/topics", auth=(USER, "wrong"))
    assert status == 401, (status, answer)
    assert answer["message"] in error[0].text
    log_in(driver, USER, PASSWORD)
    loaded(driver, "topics")
    assert not driver.find_elements(By.ID, "login-form")
    assert driver.find_element(By.ID, "user-name").text == USER

    stored = driver.execute_script(
        "return [document.cookie, localStorage.length, sessionStorage.length, location.href]"
    )
    assert stored[:3] == ["", 0, 0]
    assert PASSWORD not in stored[3]

    # Pages reached from here use the same credentials: no second form.
    driver.find_element(By.CSS_SELECTOR, '#nav a[data-nav="overview"]').click()
    loaded(driver, "overview")
    assert not driver.find_elements(By.ID, "login-form")

    # A fetch redirected to another node's leader (where Chrome drops Authorization) is sent
    # again there with the credentials: every partition's record shows.
    topic = {"name": "private", "partitions": 3, "replication_factor": 3}
    status, _ = node.http("POST", "/v1/topics", topic)
    assert status == 201
    for p in range(3):
        record = {"value": f"v{p}", "partition": p}
        # Right after the create a leader may not have opened its replica yet: 503, retry.
        wait_until(lambda: node.http("POST", "/v1/topics/private/records", record)[0] == 200)  # noqa: B023
    driver.get(node.url + "/ui/topics/private/messages")
    log_in(driver, USER, PASSWORD)
    loaded(driver, "messages")
    rows = ", ".join(f'[data-testid="message-row-{p}-0"]' for p in range(3))
    wait_until(lambda: len(driver.find_elements(By.CSS_SELECTOR, rows)) == 3)
    assert not driver.find_elements(By.CSS_SELECTOR, "#page-messages .error")

    driver.find_element(By.ID, "logout").click()
    wait_until(lambda: driver.find_elements(By.ID, "login-form"))
    assert not driver.find_elements(By.ID, "user-name")
    # A reload forgets them too: the form comes back.
    log_in(driver, USER, PASSWORD)
    loaded(driver, "messages")
    driver.refresh()
    wait_until(lambda: driver.find_elements(By.ID, "login-form"))
