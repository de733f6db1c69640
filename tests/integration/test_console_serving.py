"""The web console served by real nodes, asked as a browser would (aiohttp calls with the
headers a browser sends): the /ui routes and their headers, path traversal, CORS preflights,
the browser-write rule, CORS on a followed 307 and on a stream, and the 401 the console gets
with SASL on."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from yarl import URL

from scripts.node_process import Cluster, NodeProcess, basic_authorization, wait_until
from tests.integration.conftest import running_cluster

pytestmark = pytest.mark.timeout(300)

EVIL = "http://evil.example"
CONSOLE = {"X-Kraft-Console": "1"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("console")) as handle:
        yield handle


@pytest.fixture(scope="module")
def sasl_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    handle = Cluster.create(
        tmp_path_factory.mktemp("console-sasl"),
        count=1,
        security="SASL_PLAINTEXT",
        users={"admin": "admin-secret"},
    )
    try:
        handle.start()
        yield handle.nodes[0]
    finally:
        handle.stop()


class Answer:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return orjson.loads(self.body)


def ask(
    method: str,
    url: str | URL,
    headers: dict[str, str] | None = None,
    json: Any = None,
) -> Answer:
    """One request, redirects not followed (a test follows them itself)."""

    async def go() -> Answer:
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(
                method, url, headers=headers, json=json, allow_redirects=False
            ) as response,
        ):
            return Answer(response.status, response.headers, await response.read())

    return asyncio.run(go())


def _csp_connect(headers: Any) -> set[str]:
    csp = headers["Content-Security-Policy"]
    directive = next(d.strip() for d in csp.split(";") if d.strip().startswith("connect-src"))
    return set(directive.split()[1:])


def _assert_console_headers(answer: Answer, cluster: Cluster) -> None:
    h = answer.headers
    assert "script-src 'self';" in h["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in h["Content-Security-Policy"]
    assert _csp_connect(h) == {"'self'", *(n.url for n in cluster.nodes)}
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "no-referrer"
    assert h["X-Frame-Options"] == "DENY"
    assert h["Cache-Control"] == "no-cache"


def test_the_root_and_ui_redirect_to_the_console(cluster: Cluster) -> None:
    url = cluster.nodes[0].url
    root = ask("GET", url + "/")
    assert (root.status, root.headers["Location"]) == (302, "/ui/")
    ui = ask("GET", url + "/ui")
    assert (ui.status, ui.headers["Location"]) == (301, "/ui/")
    _assert_console_headers(ui, cluster)


def test_ui_serves_index_html_with_the_csp_on_every_node(cluster: Cluster) -> None:
    index = (Path(__file__).resolve().parents[2] / "server/console/index.html").read_bytes()
    for node in cluster.nodes:
        answer = ask("GET", node.url + "/ui/")
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
        assert answer.body == index
        _assert_console_headers(answer, cluster)


def test_a_deep_link_serves_index_html_so_bookmarks_open(cluster: Cluster) -> None:
    url = cluster.nodes[1].url
    home = ask("GET", url + "/ui/")
    deep = ask("GET", url + "/ui/topics/x/messages?partition=1")
    assert deep.status == 200 and deep.body == home.body
    assert deep.headers["ETag"] == home.headers["ETag"]
    _assert_console_headers(deep, cluster)


def test_head_answers_like_get_without_a_body(cluster: Cluster) -> None:
    answer = ask("HEAD", cluster.nodes[0].url + "/ui/topics")
    assert answer.status == 200 and answer.body == b""
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    _assert_console_headers(answer, cluster)


def test_an_unchanged_file_is_a_304_to_a_browser_that_has_it(cluster: Cluster) -> None:
    url = cluster.nodes[0].url + "/ui/assets/js/app.js"
    first = ask("GET", url)
    again = ask("GET", url, {"If-None-Match": first.headers["ETag"]})
    assert (again.status, again.body) == (304, b"")
    _assert_console_headers(again, cluster)


@pytest.mark.parametrize(
    ("asset", "content_type"),
    [
        ("console.css", "text/css; charset=utf-8"),
        ("js/app.js", "text/javascript; charset=utf-8"),
        ("js/api.js", "text/javascript; charset=utf-8"),
    ],
)
def test_assets_have_their_types(cluster: Cluster, asset: str, content_type: str) -> None:
    answer = ask("GET", f"{cluster.nodes[0].url}/ui/assets/{asset}")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == content_type
    packaged = Path(__file__).resolve().parents[2] / "server/console/assets" / asset
    assert answer.body == packaged.read_bytes()
    _assert_console_headers(answer, cluster)


def test_a_missing_asset_is_a_json_404_with_the_console_headers(cluster: Cluster) -> None:
    answer = ask("GET", cluster.nodes[0].url + "/ui/assets/js/no-such.js")
    assert answer.status == 404
    assert answer.json()["error"] == "NOT_FOUND"
    _assert_console_headers(answer, cluster)


@pytest.mark.parametrize(
    "path",
    [
        "/ui/assets/../../http_api.py",
        "/ui/assets/%2e%2e/%2e%2e/http_api.py",
        "/ui/assets/%2E%2E/index.html",
        "/ui/assets/js/..%2f..%2f..%2fhttp_api.py",
        "/ui/assets/..%5c..%5chttp_api.py",
        "/ui/assets//etc/passwd",
        "/ui/assets/%2fetc/passwd",
        "/ui/../server/http_api.py",
        "/ui/assets/.hidden.js",
        "/ui/assets/js/app.js%00.png",
    ],
)
def test_path_traversal_is_refused(cluster: Cluster, path: str) -> None:
    answer = ask("GET", URL(cluster.nodes[0].url + path, encoded=True))
    assert answer.status in (400, 404), answer.body
    assert b"import" not in answer.body and b"root:" not in answer.body


def test_ui_takes_only_get_and_head(cluster: Cluster) -> None:
    answer = ask("POST", cluster.nodes[0].url + "/ui/", json={})
    assert answer.status == 405
    assert answer.json()["error"] == "METHOD_NOT_ALLOWED"


def test_a_preflight_from_a_node_origin_is_allowed(cluster: Cluster) -> None:
    first, second = cluster.nodes[0], cluster.nodes[1]
    answer = ask(
        "OPTIONS",
        first.url + "/v1/topics/news/partitions/0/records",
        {
            "Origin": second.url,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,x-kraft-console",
        },
    )
    assert answer.status == 204
    h = answer.headers
    assert h["Access-Control-Allow-Origin"] == second.url
    assert h["Vary"] == "Origin"
    assert h["Access-Control-Allow-Methods"] == "GET, HEAD, POST, PUT, DELETE"
    assert (
        h["Access-Control-Allow-Headers"] == "Authorization, Content-Type, X-Kraft-Console, Accept"
    )
    assert h["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in h
    assert "X-Leader-Id" in h["Access-Control-Expose-Headers"]


def test_a_preflight_from_another_origin_is_refused_naming_it(cluster: Cluster) -> None:
    answer = ask(
        "OPTIONS",
        cluster.nodes[0].url + "/v1/topics",
        {"Origin": EVIL, "Access-Control-Request-Method": "POST"},
    )
    assert answer.status == 403
    body = answer.json()
    assert body["error"] == "CLUSTER_AUTHORIZATION_FAILED"
    assert EVIL in body["message"]
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_options_without_an_origin_is_still_a_405(cluster: Cluster) -> None:
    answer = ask("OPTIONS", cluster.nodes[0].url + "/v1/topics")
    assert answer.status == 405


def _topics(url: str) -> list[str]:
    answer = ask("GET", url + "/v1/topics")
    assert answer.status == 200
    return [t["name"] for t in answer.json()["topics"]]


def test_a_browser_write_from_another_origin_is_refused_and_creates_nothing(
    cluster: Cluster,
) -> None:
    url = cluster.nodes[0].url
    answer = ask("POST", url + "/v1/topics", {"Origin": EVIL, **CONSOLE}, {"name": "evil"})
    assert answer.status == 403
    assert answer.json()["error"] == "CLUSTER_AUTHORIZATION_FAILED"
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert "evil" not in _topics(url)


def test_a_browser_write_from_a_node_origin_without_the_console_header_is_refused(
    cluster: Cluster,
) -> None:
    url = cluster.nodes[0].url
    answer = ask("POST", url + "/v1/topics", {"Origin": url}, {"name": "formed"})
    assert answer.status == 403
    assert "X-Kraft-Console: 1" in answer.json()["message"]
    # The console can read why.
    assert answer.headers["Access-Control-Allow-Origin"] == url
    assert "formed" not in _topics(url)


def test_a_browser_write_from_a_node_origin_with_the_console_header_is_done(
    cluster: Cluster,
) -> None:
    url, other = cluster.nodes[0].url, cluster.nodes[2].url
    body = {"name": "from-console", "partitions": 1, "replication_factor": 3}
    answer = ask("POST", url + "/v1/topics", {"Origin": other, **CONSOLE}, body)
    assert answer.status == 201, answer.body
    assert answer.headers["Access-Control-Allow-Origin"] == other
    assert "from-console" in _topics(url)


def test_a_get_a_browser_sends_for_another_site_is_refused_and_creates_nothing(
    cluster: Cluster,
) -> None:
    # <img src=".../v1/topics/drive-by?auto_create=true"> on another site: a GET without an
    # Origin that would create the topic.
    url = cluster.nodes[0].url
    target = url + "/v1/topics/drive-by?auto_create=true"
    answer = ask("GET", target, {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"})
    assert answer.status == 403, answer.body
    assert "Sec-Fetch-Site: cross-site" in answer.json()["message"]
    assert "drive-by" not in _topics(url)
    # The same GET typed in the address bar is the user's own request.
    answer = ask("GET", target, {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate"})
    assert answer.status == 200, answer.body
    assert "drive-by" in _topics(url)


def test_the_consoles_call_taken_to_another_node_passes_the_site_rule(cluster: Cluster) -> None:
    url, other = cluster.nodes[0].url, cluster.nodes[1].url
    headers = {"Origin": other, "Sec-Fetch-Site": "same-site", **CONSOLE}
    answer = ask("GET", url + "/v1/topics", headers)
    assert answer.status == 200, answer.body
    assert answer.headers["Access-Control-Allow-Origin"] == other


def _ready_topic(cluster: Cluster, name: str, replication_factor: int) -> NodeProcess:
    """Creates a one-partition topic and returns its leader once every node knows that leader
    and the leader serves a fetch: the create answers when the metadata is applied on the node
    asked, and the other nodes apply it and open their replicas a moment later."""
    body = {"name": name, "partitions": 1, "replication_factor": replication_factor}
    created = ask("POST", cluster.nodes[0].url + "/v1/topics", json=body)
    assert created.status == 201, created.body

    def leader_serving() -> NodeProcess | None:
        views = [ask("GET", f"{n.url}/v1/topics/{name}") for n in cluster.nodes]
        if any(v.status != 200 for v in views):
            return None
        leaders = {v.json()["partitions"][0]["leader"] for v in views}
        if len(leaders) != 1:
            return None
        leader_id = leaders.pop()
        leader = next((n for n in cluster.nodes if n.node_id == leader_id), None)
        if leader is None:
            return None
        read = ask("GET", f"{leader.url}/v1/topics/{name}/partitions/0/records?offset=earliest")
        return leader if read.status == 200 else None

    found: NodeProcess = wait_until(
        f"{name}: its leader known everywhere and serving", leader_serving
    )
    return found


def test_a_redirected_read_carries_the_cors_headers_at_the_leader(cluster: Cluster) -> None:
    leader = _ready_topic(cluster, "followed", 3)
    produced = ask(
        "POST", leader.url + "/v1/topics/followed/records", json={"records": [{"value": "one"}]}
    )
    assert produced.status == 200, produced.body
    follower = next(n for n in cluster.nodes if n is not leader)
    origin = follower.url
    path = "/v1/topics/followed/partitions/0/records?offset=earliest"
    moved = ask("GET", follower.url + path, {"Origin": origin, **CONSOLE})
    assert moved.status == 307
    assert moved.headers["Access-Control-Allow-Origin"] == origin
    assert moved.headers["X-Leader-Id"] == str(leader.node_id)
    at_leader = ask("GET", moved.headers["Location"], {"Origin": origin, **CONSOLE})
    assert at_leader.status == 200
    assert at_leader.headers["Access-Control-Allow-Origin"] == origin
    assert at_leader.headers["Vary"] == "Origin"
    assert "Kafka-High-Watermark" in at_leader.headers["Access-Control-Expose-Headers"]
    assert [r["value"] for r in at_leader.json()["records"]] == ["one"]


def test_a_stream_carries_the_cors_headers(cluster: Cluster) -> None:
    leader = _ready_topic(cluster, "streamed", 1)
    origin = next(n for n in cluster.nodes if n is not leader).url

    async def headers_of_stream() -> Any:
        timeout = aiohttp.ClientTimeout(total=30)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(
                leader.url + "/v1/topics/streamed/partitions/0/records",
                params={"offset": "earliest", "follow": "true"},
                headers={"Origin": origin, **CONSOLE},
            ) as response,
        ):
            assert response.status == 200
            assert response.content_type == "application/x-ndjson"
            return response.headers  # the stream is closed by leaving the block

    headers = asyncio.run(headers_of_stream())
    assert headers["Access-Control-Allow-Origin"] == origin
    assert headers["Vary"] == "Origin"


def test_a_client_without_an_origin_sees_no_cors_headers(cluster: Cluster) -> None:
    answer = ask("GET", cluster.nodes[0].url + "/v1/cluster")
    assert answer.status == 200
    assert "Access-Control-Allow-Origin" not in answer.headers
    assert "Vary" not in answer.headers


def test_with_sasl_the_console_is_served_without_credentials(sasl_node: NodeProcess) -> None:
    answer = ask("GET", sasl_node.url + "/ui/")
    assert answer.status == 200 and b"<html" in answer.body
    asset = ask("GET", sasl_node.url + "/ui/assets/js/app.js")
    assert asset.status == 200
    deep = ask("GET", sasl_node.url + "/ui/groups/g")
    assert deep.status == 200


def test_with_sasl_the_console_gets_a_401_without_www_authenticate(
    sasl_node: NodeProcess,
) -> None:
    origin = sasl_node.url
    answer = ask("GET", sasl_node.url + "/v1/cluster", {"Origin": origin, **CONSOLE})
    assert answer.status == 401
    assert answer.json()["error"] == "SASL_AUTHENTICATION_FAILED"
    assert "WWW-Authenticate" not in answer.headers
    assert answer.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize("with_origin", [False, True])
def test_with_sasl_other_clients_keep_www_authenticate(
    sasl_node: NodeProcess, with_origin: bool
) -> None:
    # The console's header decides, not the Origin: a browser's own fetch keeps the dialog.
    headers = {"Origin": sasl_node.url} if with_origin else {}
    answer = ask("GET", sasl_node.url + "/v1/cluster", headers)
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"] == 'Basic realm="kraft"'


def test_with_sasl_the_console_with_credentials_is_answered(sasl_node: NodeProcess) -> None:
    assert sasl_node.auth is not None
    answer = ask(
        "GET",
        sasl_node.url + "/v1/cluster",
        {"Origin": sasl_node.url, **CONSOLE, "Authorization": basic_authorization(*sasl_node.auth)},
    )
    assert answer.status == 200
    assert answer.json()["brokers"][0]["url"] == sasl_node.url


def test_with_sasl_a_preflight_needs_no_credentials(sasl_node: NodeProcess) -> None:
    # Browsers never send Authorization on a preflight: it must pass before authentication.
    answer = ask(
        "OPTIONS",
        sasl_node.url + "/v1/topics",
        {"Origin": sasl_node.url, "Access-Control-Request-Method": "POST"},
    )
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Origin"] == sasl_node.url
