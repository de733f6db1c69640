"""docs/api.md against the code, so the API page cannot drift.

The routes are the node's own: the router ``server.http_api.make_app`` builds (with a stand-in
node: only the routing table is read, no server starts), so a route added anywhere in the app
shows up here. Each must have a section (``### `METHOD /path` ``) and a row in the endpoint
index with the ACL ``server.http_security.RULES`` gives it; every section must be a route. The
error table must hold every error kind of ``client.protocol`` with its code, status and name,
and nothing else but the statuses the listener maps by itself (``kind_for_status``).

Pure: no sockets, the doc is read as text.
"""

from __future__ import annotations

import re
from pathlib import Path
from unittest import mock

from aiohttp import web

from client.protocol import ERROR_KINDS
from server.config import NodeConfig
from server.http_api import make_app
from server.http_security import RULES, Rule
from server.http_util import kind_for_status
from server.internal_auth import InternalAuth

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
TEXT = DOC.read_text(encoding="utf-8")

_SECTION = re.compile(r"^### `([A-Z]+) (/\S*)`$", re.MULTILINE)
_INDEX_ROW = re.compile(r"^\| `([A-Z]+) (/\S*)` \|([^|]*)\|([^|]*)\|$", re.MULTILINE)
_ERROR_ROW = re.compile(r"^\| `(\d{5})` \| (\d{3}) \| ([A-Z_]+) \|", re.MULTILINE)


def _routes() -> set[tuple[str, str]]:
    """(method, path template) of every route the node's app serves (HEAD rides with GET)."""
    config = NodeConfig.from_properties(
        {
            "node.id": "1",
            "controller.quorum.voters": "1@127.0.0.1:9093",
            "listeners": "HTTP://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093",
        }
    )
    node = mock.MagicMock()
    node.config = config
    node.node_id = 1
    node.internal_auth = InternalAuth("a-test-secret")
    app = make_app(node)
    assert isinstance(app, web.Application)
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


ROUTES = _routes()


def _shown(routes: set[tuple[str, str]]) -> str:
    return ", ".join(f"{method} {path}" for method, path in sorted(routes))


def test_the_route_list_is_the_apps() -> None:
    """A guard for the tests below: the stand-in node gave the whole router."""
    assert ("GET", "/v1/cluster") in ROUTES
    assert ("POST", "/v1/internal/replica-fetch") in ROUTES
    assert len(ROUTES) >= 30


def test_every_route_the_node_serves_has_a_section_in_the_api_doc() -> None:
    sections = set(_SECTION.findall(TEXT))
    missing = ROUTES - sections
    assert not missing, f"docs/api.md has no '### `METHOD /path`' section for: {_shown(missing)}"


def test_every_section_of_the_api_doc_is_a_route_the_node_serves() -> None:
    sections = _SECTION.findall(TEXT)
    unknown = set(sections) - ROUTES
    assert not unknown, f"docs/api.md documents routes the node does not serve: {_shown(unknown)}"
    twice = {s for s in sections if sections.count(s) > 1}
    assert not twice, f"docs/api.md has two sections for: {_shown(twice)}"


def _acl_words(rule: Rule) -> str:
    """How the endpoint index says what a rule of server/http_security.py asks for."""
    resource = rule.resource_type.lower()
    words = {
        "open": "none",
        "internal": "the cluster secret",
        "list": f"{rule.operation} on each {resource}",
        "create_topic": "CREATE on the cluster or the topic",
        "idempotent": "IDEMPOTENT_WRITE on the cluster, or WRITE on any topic",
        "acl": f"{rule.operation} on the {resource}",
    }
    assert rule.kind in words, f"rule kind {rule.kind!r}: teach this test how the doc says it"
    return words[rule.kind]


def test_the_endpoint_index_lists_every_route_once_with_its_acl() -> None:
    rows = _INDEX_ROW.findall(TEXT)
    listed = [(method, path) for method, path, _what, _acl in rows]
    missing = ROUTES - set(listed)
    unknown = set(listed) - ROUTES
    twice = {r for r in listed if listed.count(r) > 1}
    assert not missing, f"docs/api.md's endpoint index has no row for: {_shown(missing)}"
    assert not unknown, f"docs/api.md's endpoint index lists routes not served: {_shown(unknown)}"
    assert not twice, f"docs/api.md's endpoint index lists twice: {_shown(twice)}"
    wrong = []
    for method, path, _what, acl in rows:
        rule = RULES.get((method, path))
        if rule is None:
            continue  # a route without a rule: test_acl_plans's test says so
        want = _acl_words(rule)
        if not acl.strip().startswith(want):
            wrong.append(f"{method} {path}: says {acl.strip()!r}, the rule is {want!r}")
    assert not wrong, "docs/api.md's endpoint index has ACLs the code does not:\n" + "\n".join(
        wrong
    )


def test_the_error_table_has_every_error_kind_with_its_code_status_and_name() -> None:
    rows = {int(code): (int(status), name) for code, status, name in _ERROR_ROW.findall(TEXT)}
    missing = [
        f"{kind.code} {kind.name}"
        for kind in ERROR_KINDS.values()
        if rows.get(kind.code) != (kind.status, kind.name)
    ]
    assert not missing, (
        "docs/api.md's error table lacks (or has another status or name for): " + ", ".join(missing)
    )


def test_every_code_in_the_error_table_is_one_the_node_can_answer() -> None:
    unknown = []
    for code, status, name in _ERROR_ROW.findall(TEXT):
        if int(code) in ERROR_KINDS:
            continue
        # Not an error kind of the contract: it must be one the listener makes of a status.
        kind = kind_for_status(int(status))
        if (kind.code, kind.name) != (int(code), name) or int(code) // 100 != int(status):
            unknown.append(f"{code} {status} {name}")
    assert not unknown, "docs/api.md's error table has codes the node never sends: " + ", ".join(
        unknown
    )
