"""The web console's files, served by every node at ``/ui/`` (docs/api.md, "The console").

``server/console/`` (package data) holds ``index.html`` and ``assets/``; the console is a
client of the public ``/v1`` API and holds no data itself, so these routes are open also with
SASL on (their RULES entries are of kind ``open``)::

    GET /             302 to /ui/
    GET /ui           301 to /ui/
    GET /ui/          index.html
    GET /ui/assets/P  the file assets/P (404 JSON when there is none)
    GET /ui/P         index.html for any other P, so a bookmarked page opens (the console's
                      router reads the path)

Every answer carries :func:`console_headers`: a Content-Security-Policy that allows scripts,
styles and connections from the node's own origin only (connections also to each registered
broker's origin, where a 307 may take the console), nothing inline, no framing; plus nosniff,
no-referrer and ``Cache-Control: no-cache`` with an ETag, so a browser revalidates (a 304)
and a node upgrade never leaves it running old scripts.

Path rules (:func:`console_file`): an asset path is made of plain names (no empty, ``.`` or
``..`` segment, none starting with a dot, no backslash or NUL) with a known extension; the
file it names must resolve, symlinks followed, inside the console directory. Files are read
when first asked for and kept while their size and mtime stay the same: a request resolves
the path and stats the file (about 40 us, measured on a busy 2-core machine; a page load asks
for about ten small files), so an upgraded file is served at once and none is read twice.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from client.protocol import NOT_FOUND, ApiError
from server.http_cors import cluster_origins
from server.http_util import error_response, quoted

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
INDEX = "index.html"
ASSETS = "assets"

# The types the console ships; a file of another type is not served (with nosniff, a browser
# would refuse to run or style from one anyway).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
}
# A console file is a few kilobytes; anything this large is not one of ours, and it is not
# read into memory.
CONSOLE_FILE_BYTES_MAX = 4 * 1024 * 1024


def content_security_policy(origins: frozenset[str]) -> str:
    """The CSP of every console answer: only the node's own scripts and styles, nothing inline,
    connections to itself and to ``origins`` (the cluster's broker origins), no framing."""
    connect = " ".join(["'self'", *sorted(origins)])
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def console_headers(origins: frozenset[str]) -> dict[str, str]:
    """The headers of every ``/ui`` answer (see the module doc)."""
    return {
        "Content-Security-Policy": content_security_policy(origins),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-cache",
    }


def _plain_name(segment: str) -> bool:
    return (
        bool(segment)
        and not segment.startswith(".")
        and "\\" not in segment
        and ("\x00" not in segment)
    )


def console_file(tail: str) -> str | None:
    """The file, relative to the console directory, that answers ``/ui/<tail>`` (``tail``
    already percent-decoded): ``index.html`` for a page, ``assets/...`` for an asset, or None
    when the path is refused (a ``.``/``..`` segment anywhere, a bad asset name, an asset of
    an unknown type)."""
    segments = tail.split("/")
    if any(s in (".", "..") or "\x00" in s for s in segments):
        return None
    if segments[0] != ASSETS:
        return INDEX
    names = segments[1:]
    if not names or not all(_plain_name(name) for name in names):
        return None
    if os.path.splitext(names[-1])[1].lower() not in CONTENT_TYPES:
        return None
    return "/".join(segments)


def resolve_inside(directory: Path, relative: str) -> Path | None:
    """``directory/relative`` with symlinks resolved, or None when that lands outside
    ``directory`` or is not a regular file."""
    root = directory.resolve()
    try:
        target = (root / relative).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return target


@dataclass(frozen=True)
class ConsoleFile:
    """One file's bytes as served, and what says whether it changed."""

    body: bytes
    content_type: str
    etag: str
    mtime_ns: int
    size: int


class ConsoleFiles:
    """The console directory's files, read when first asked for and again when changed."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._files: dict[str, ConsoleFile] = {}

    def get(self, relative: str) -> ConsoleFile | None:
        """The file at ``relative`` (a :func:`console_file` answer), or None when there is none
        inside the directory or it is too large to be one of the console's."""
        path = resolve_inside(self.directory, relative)
        if path is None:
            self._files.pop(relative, None)
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        known = self._files.get(relative)
        if known is not None and (known.mtime_ns, known.size) == (stat.st_mtime_ns, stat.st_size):
            return known
        if stat.st_size > CONSOLE_FILE_BYTES_MAX:
            return None
        try:
            body = path.read_bytes()
        except OSError:
            return None
        # The name asked for chose the type (console_file checked it), not a symlink's target.
        content_type = CONTENT_TYPES[os.path.splitext(relative)[1].lower()]
        digest = hashlib.sha256(body).hexdigest()[:32]
        loaded = ConsoleFile(body, content_type, f'"{digest}"', stat.st_mtime_ns, stat.st_size)
        self._files[relative] = loaded
        return loaded


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _console_handlers(files: ConsoleFiles) -> tuple[Handler, Handler, Handler]:
    async def serve(request: web.Request) -> web.StreamResponse:
        headers = console_headers(cluster_origins(request))
        tail = request.match_info.get("path", "")
        relative = console_file(tail)
        found = files.get(relative) if relative is not None else None
        if found is None:
            what = "page" if relative == INDEX else "file"
            response = error_response(
                ApiError(NOT_FOUND, f"no such console {what}: {quoted(request.path)}")
            )
            response.headers.update(headers)
            return response
        headers["ETag"] = found.etag
        if _etag_matches(request.headers.get("If-None-Match"), found.etag):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = found.content_type
        return web.Response(body=found.body, headers=headers)

    async def root(request: web.Request) -> web.StreamResponse:
        headers = console_headers(cluster_origins(request))
        return web.Response(status=302, headers={**headers, "Location": "/ui/"})

    async def ui(request: web.Request) -> web.StreamResponse:
        headers = console_headers(cluster_origins(request))
        return web.Response(status=301, headers={**headers, "Location": "/ui/"})

    return serve, root, ui


def add_routes(router: web.UrlDispatcher, directory: Path = CONSOLE_DIR) -> None:
    """The console's routes (see the module doc), serving the files of ``directory``."""
    serve, root, ui = _console_handlers(ConsoleFiles(directory))
    router.add_get("/", root)
    router.add_get("/ui", ui)
    router.add_get("/ui/", serve)
    router.add_get("/ui/{path:.*}", serve)
