"""The browser tier's harness: a real three-node cluster and Debian's headless Chromium.

Each test module gets its own cluster (``cluster``, started once for the module, stopped by
pid at its end) and its own browser (``driver``, a headless Chromium through chromedriver with
the browser's console log kept). Helpers: :func:`open_page` opens a console path on a node,
:func:`wait_until` polls a condition with a generous deadline, :func:`screenshot` writes
``docs/console/<name>.png``.

Every test is checked for the browser's SEVERE log entries (a JavaScript error, a
Content-Security-Policy violation, a failed request): one fails the test, unless the test
declares it expected, either with the marker ``@pytest.mark.browser_errors("substring", ...)``
or by calling the ``allow_browser_errors("substring", ...)`` fixture (for example for the 4xx
a test provokes, which Chromium logs as a failed resource load).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from scripts.node_process import Cluster, free_ports

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
WINDOW = (1280, 900)
DEADLINE_S = 60.0
POLL_S = 0.1

# Node settings that make the lab fast without changing what it shows: groups and brokers
# heartbeat often, so a member or a killed node is seen in about a second.
FAST_NODE_SETTINGS: dict[str, Any] = {
    "min.insync.replicas": "2",
    "log.cleaner.backoff.ms": "200",
    "group.consumer.heartbeat.interval.ms": "500",
}

T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "browser_errors(*substrings): SEVERE browser log entries containing one of these are "
        "expected (e.g. the 4xx the test provokes)",
    )


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"the browser tests need Debian's chromium and chromium-driver ({', '.join(missing)} "
            "missing): scripts/setup installs them",
            pytrace=False,
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail(
            "the browser tests need selenium (the test extras): scripts/setup installs it",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A started three-node cluster shared by a module's tests (``FAST_NODE_SETTINGS``),
    stopped by pid at the module's end."""
    handle = Cluster.create(tmp_path_factory.mktemp("cluster"), **FAST_NODE_SETTINGS)
    try:
        handle.start()
        yield handle
    finally:
        handle.stop()


def new_driver(width: int = WINDOW[0], height: int = WINDOW[1]) -> Any:
    """A headless Chromium WebDriver with its console log kept (``driver.get_log("browser")``)."""
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # chromedriver's port from free_ports, as a node's: Selenium's own pick is a bind(0) port,
    # which the kernel may give an outgoing connection before chromedriver binds it.
    (port,) = free_ports(1)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER), port=port), options=options)
    driver.set_page_load_timeout(DEADLINE_S)
    driver.set_script_timeout(DEADLINE_S)
    return driver


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    """A module's browser, quit at the module's end (which also ends chromedriver)."""
    handle = new_driver()
    try:
        yield handle
    finally:
        handle.quit()


@pytest.fixture
def allow_browser_errors() -> Iterator[Callable[..., None]]:
    """Call it with substrings of SEVERE browser log entries this test expects."""
    allowed: list[str] = []

    def allow(*substrings: str) -> None:
        allowed.extend(substrings)

    allow.allowed = allowed  # type: ignore[attr-defined]
    yield allow


@pytest.fixture(autouse=True)
def no_severe_browser_log(
    request: pytest.FixtureRequest, allow_browser_errors: Callable[..., None]
) -> Iterator[None]:
    """Fails a test that leaves a SEVERE entry in the browser's log it did not declare."""
    if "driver" not in request.fixturenames:
        yield
        return
    driver = request.getfixturevalue("driver")
    driver.get_log("browser")  # drops what earlier tests left
    yield
    allowed: list[str] = list(allow_browser_errors.allowed)  # type: ignore[attr-defined]
    for marker in request.node.iter_markers("browser_errors"):
        allowed.extend(str(a) for a in marker.args)
    severe = [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE"
        and not any(substring in entry["message"] for substring in allowed)
    ]
    assert not severe, "the browser logged errors:\n" + "\n".join(severe)


def wait_until(fn: Callable[[], T], timeout: float = DEADLINE_S) -> T:
    """Polls ``fn()`` until it answers something truthy and returns that; a stale element or
    a missing one counts as not yet. Fails with the last answer or error after ``timeout``."""
    from selenium.common.exceptions import (
        NoSuchElementException,
        StaleElementReferenceException,
    )

    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = fn()
            if result:
                return result
            last = result
        except (StaleElementReferenceException, NoSuchElementException) as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout} s; last: {last!r}")
        time.sleep(POLL_S)


def open_page(driver: Any, base_url: str, path: str) -> None:
    """Opens ``base_url + path`` (a node's URL and a console path) and waits until the
    console's script has started (its navigation is in the header)."""
    from selenium.webdriver.common.by import By

    driver.get(base_url.rstrip("/") + path)
    wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "#nav a"))


def loaded(driver: Any, page: str) -> Any:
    """Waits until ``#page-<page>`` says it shows its first data; answers that element."""
    from selenium.webdriver.common.by import By

    return wait_until(
        lambda: driver.find_elements(By.CSS_SELECTOR, f'#page-{page}[data-loaded="true"]')
    )[0]


def screenshot(driver: Any, name: str) -> Path:
    """Saves the window as ``docs/console/<name>.png`` (at 1280x900) and answers the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.set_window_size(*WINDOW)
    driver.save_screenshot(str(path))
    return path


def kraft_tool(name: str) -> str:
    """The path of one of the project's command-line tools in the venv (``kraft-topics``)."""
    venv_bin = Path(__file__).resolve().parents[2] / ".venv" / "bin"
    found = venv_bin / name
    if found.exists():
        return str(found)
    which = shutil.which(name)
    assert which, f"{name} is not installed: scripts/setup installs the project"
    return which
