"""Which file answers a console path, and the headers of every console answer
(server/http_console.py): pure, files in tmp_path only."""

from __future__ import annotations

import os
from html.parser import HTMLParser
from pathlib import Path

import pytest

from server.http_console import (
    CONSOLE_DIR,
    CONSOLE_FILE_BYTES_MAX,
    ConsoleFiles,
    console_file,
    console_headers,
    content_security_policy,
    resolve_inside,
)


@pytest.mark.parametrize(
    "tail",
    [
        "",
        "topics",
        "topics/weather",
        "topics/weather/messages",
        "topics/a%2Fb",  # a name the console percent-encoded
        "groups/g/",
        "replication",
        "disk",
        "no/such/page",
        "assetsx/y.js",  # not the assets directory
    ],
)
def test_a_page_path_is_answered_by_index_html(tail: str) -> None:
    assert console_file(tail) == "index.html"


@pytest.mark.parametrize(
    ("tail", "relative"),
    [
        ("assets/console.css", "assets/console.css"),
        ("assets/js/app.js", "assets/js/app.js"),
        ("assets/js/pages/overview.js", "assets/js/pages/overview.js"),
        ("assets/logo.SVG", "assets/logo.SVG"),
        ("assets/shot.png", "assets/shot.png"),
    ],
)
def test_an_asset_path_names_its_file(tail: str, relative: str) -> None:
    assert console_file(tail) == relative


@pytest.mark.parametrize(
    "tail",
    [
        "assets",
        "assets/",
        "assets/../index.html",
        "assets/js/../../../server.py",
        "..",
        "../etc/passwd",
        "topics/../../etc/passwd",
        "./index.html",
        "assets/./app.js",
        "assets//etc/passwd",  # an empty segment: an absolute path after the join
        "assets/.hidden.js",
        "assets/js\\..\\..\\x.js",
        "assets/app.js\x00.png",
        "assets/app.py",  # a type the console does not ship
        "assets/app",
        "assets/js/",
    ],
)
def test_traversal_and_odd_asset_names_are_refused(tail: str) -> None:
    assert console_file(tail) is None


def test_the_csp_allows_only_the_nodes_own_scripts_and_styles_and_the_cluster_for_connections() -> (
    None
):
    csp = content_security_policy(frozenset({"http://127.0.0.1:9094", "http://127.0.0.1:9092"}))
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives == {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "connect-src": "'self' http://127.0.0.1:9092 http://127.0.0.1:9094",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    assert "unsafe" not in csp


def test_every_console_answer_forbids_sniffing_referrers_framing_and_stale_copies() -> None:
    headers = console_headers(frozenset())
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["Content-Security-Policy"].count("connect-src 'self';") == 1


def _console(tmp_path: Path) -> Path:
    root = tmp_path / "console"
    (root / "assets" / "js").mkdir(parents=True)
    (root / "index.html").write_text("<!doctype html><title>console</title>")
    (root / "assets" / "js" / "app.js").write_text("export const a = 1;\n")
    (tmp_path / "secret.js").write_text("the key")
    return root


def test_a_symlink_out_of_the_console_directory_is_not_served(tmp_path: Path) -> None:
    root = _console(tmp_path)
    os.symlink(tmp_path / "secret.js", root / "assets" / "leak.js")
    os.symlink(tmp_path, root / "assets" / "up")
    assert resolve_inside(root, "assets/leak.js") is None
    assert resolve_inside(root, "assets/up/secret.js") is None
    assert ConsoleFiles(root).get("assets/leak.js") is None


def test_a_symlink_inside_the_console_directory_is_followed(tmp_path: Path) -> None:
    root = _console(tmp_path)
    os.symlink(root / "assets" / "js" / "app.js", root / "assets" / "main.js")
    found = ConsoleFiles(root).get("assets/main.js")
    assert found is not None and found.body == b"export const a = 1;\n"


def test_a_directory_or_a_missing_file_is_not_served(tmp_path: Path) -> None:
    root = _console(tmp_path)
    files = ConsoleFiles(root)
    assert files.get("assets/js") is None
    assert files.get("assets/js/none.js") is None


def test_a_file_has_its_type_and_an_etag_that_changes_with_it(tmp_path: Path) -> None:
    root = _console(tmp_path)
    files = ConsoleFiles(root)
    first = files.get("assets/js/app.js")
    assert first is not None
    assert first.content_type == "text/javascript; charset=utf-8"
    assert files.get("assets/js/app.js") is first  # unchanged: kept
    path = root / "assets" / "js" / "app.js"
    path.write_text("export const a = 22;\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = files.get("assets/js/app.js")
    assert second is not None and second.body == b"export const a = 22;\n"
    assert second.etag != first.etag
    index = files.get("index.html")
    assert index is not None and index.content_type == "text/html; charset=utf-8"


def test_a_file_deleted_is_no_longer_served(tmp_path: Path) -> None:
    root = _console(tmp_path)
    files = ConsoleFiles(root)
    assert files.get("assets/js/app.js") is not None
    (root / "assets" / "js" / "app.js").unlink()
    assert files.get("assets/js/app.js") is None


def test_a_file_too_large_to_be_the_consoles_is_not_read(tmp_path: Path) -> None:
    root = _console(tmp_path)
    with open(root / "assets" / "huge.png", "wb") as f:
        f.truncate(CONSOLE_FILE_BYTES_MAX + 1)
    assert ConsoleFiles(root).get("assets/huge.png") is None


class _Inline(HTMLParser):
    """What in an HTML page the console's CSP would block: inline scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script":
            self._in_script = True
            if "src" not in names:
                self.found.append("a <script> without src")
        if tag == "style":
            self.found.append("a <style> element")
        if "style" in names:
            self.found.append(f"a style attribute on <{tag}>")
        self.found.extend(f"{name} on <{tag}>" for name in names if name.startswith("on"))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append("script text inline")


def test_the_packaged_console_pages_hold_nothing_the_csp_blocks() -> None:
    pages = sorted(CONSOLE_DIR.rglob("*.html"))
    assert CONSOLE_DIR / "index.html" in pages
    for page in pages:
        parser = _Inline()
        parser.feed(page.read_text(encoding="utf-8"))
        assert not parser.found, f"{page.name}: {parser.found}"
