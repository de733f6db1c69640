"""A Toxiproxy server for the chaos tier, and every inter-node link of a cluster behind it.

The server is the binary ``scripts/setup`` builds into ``.venv/toxiproxy/bin`` (v2.12.0). It is
driven with toxiproxy-python 0.1.1, the client the product owner chose, around its gaps
(docs/design.md, "Known traps"): host and port are class-level (``update_api_consumer``), proxies
listen on ``127.0.0.1:`` addresses, and as only 400/404/409 raise, every answer's status is
checked here.

Links (docs/design.md): pysyncobj opens one TCP connection per pair of nodes, dialled by the node
with the lexically larger ``host:port``, so each pair gets one proxy in front of the smaller
one (``raft-a-b``) and the dialler's ``peer.<id>.controller.dial`` points at it. Internal HTTP
is dialled by whoever sends, so each ordered pair gets its own proxy (``http-src-dst``) and
``src``'s ``peer.<dst>.http.dial`` points at it. Clients talk to the nodes directly.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toxiproxy.api import APIConsumer
from toxiproxy.server import Toxiproxy

from scripts.node_process import ROOT, Cluster, free_ports

VERSION = "v2.12.0"
BINARY = ROOT / ".venv" / "toxiproxy" / "bin" / f"toxiproxy-server-{VERSION}"
BUILD_LOG = ROOT / ".venv" / "toxiproxy" / "build.log"
START_DEADLINE_S = 20.0


class ToxiproxyMissing(AssertionError):
    """The server was not built: the message carries the build's error."""


@dataclass
class ToxiproxyServer:
    """One ``toxiproxy-server`` process on a free 127.0.0.1 port; stopped by its pid."""

    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if not BINARY.exists():
            build = BUILD_LOG.read_text(errors="replace") if BUILD_LOG.exists() else "(no log)"
            raise ToxiproxyMissing(
                f"{BINARY} is missing: scripts/setup could not build Toxiproxy {VERSION}:\n{build}"
            )
        (self.port,) = free_ports(1)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(BINARY), "-host", "127.0.0.1", "-port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        Toxiproxy().update_api_consumer("127.0.0.1", self.port)
        deadline = time.monotonic() + START_DEADLINE_S
        while not Toxiproxy().running():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"toxiproxy-server did not start: {self.log_path}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _checked(response: Any) -> Any:
    # toxiproxy-python raises on 400/404/409 only; a 500 would pass silently.
    if response.status_code >= 300:
        raise AssertionError(f"toxiproxy: {response.status_code} {response.text}")
    return response


def reset() -> None:
    """Heals every link: all proxies enabled, every toxic removed."""
    _checked(APIConsumer.post("/reset"))


def set_enabled(names: list[str], enabled: bool) -> None:
    for name in names:
        _checked(APIConsumer.post(f"/proxies/{name}", json={"enabled": enabled}))


def add_toxic(names: list[str], kind: str, **attributes: int) -> None:
    """The toxic on both streams of each proxy (a link is cut or slowed both ways)."""
    for name in names:
        for stream in ("upstream", "downstream"):
            body = {
                "name": f"{kind}-{stream}",
                "type": kind,
                "stream": stream,
                "toxicity": 1.0,
                "attributes": attributes,
            }
            _checked(APIConsumer.post(f"/proxies/{name}/toxics", json=body))


def raft_address(cluster: Cluster, node_id: int) -> str:
    return f"127.0.0.1:{cluster.node(node_id).raft_port}"


@dataclass
class Links:
    """The proxies of one cluster: ``raft[(a, b)]`` with a < b, ``http[(src, dst)]``."""

    raft: dict[tuple[int, int], str] = field(default_factory=dict)
    http: dict[tuple[int, int], str] = field(default_factory=dict)

    @classmethod
    def create(cls, cluster: Cluster, prefix: str) -> Links:
        """Creates the proxies and points each formatted (not started) node's dials at them."""
        links = cls()
        extra: dict[int, list[str]] = {n.node_id: [] for n in cluster.nodes}
        ids = [n.node_id for n in cluster.nodes]
        server = Toxiproxy()
        for a in ids:
            for b in ids:
                if a < b:
                    # The larger address dials the smaller one: the proxy fronts the smaller.
                    dialled, dialler = sorted((a, b), key=lambda i: raft_address(cluster, i))
                    name = f"{prefix}-raft-{a}-{b}"
                    proxy = server.create(
                        upstream=raft_address(cluster, dialled), name=name, listen="127.0.0.1:0"
                    )
                    links.raft[a, b] = name
                    extra[dialler].append(f"peer.{dialled}.controller.dial={proxy.listen}")
                if a != b:
                    name = f"{prefix}-http-{a}-{b}"
                    proxy = server.create(
                        upstream=f"127.0.0.1:{cluster.node(b).http_port}",
                        name=name,
                        listen="127.0.0.1:0",
                    )
                    links.http[a, b] = name
                    extra[a].append(f"peer.{b}.http.dial={proxy.listen}")
        for node in cluster.nodes:
            with open(node.properties, "a") as f:
                f.write("".join(line + "\n" for line in extra[node.node_id]))
        return links

    def all(self) -> list[str]:
        return [*self.raft.values(), *self.http.values()]

    def of(self, node_id: int, raft: bool = True, http: bool = True) -> list[str]:
        """Every proxy carrying a link of ``node_id`` (both directions of its HTTP)."""
        out = []
        if raft:
            out += [name for pair, name in self.raft.items() if node_id in pair]
        if http:
            out += [name for pair, name in self.http.items() if node_id in pair]
        return out

    def between(self, a: int, b: int) -> list[str]:
        return [self.raft[min(a, b), max(a, b)], self.http[a, b], self.http[b, a]]

    def destroy(self) -> None:
        for name in self.all():
            APIConsumer.delete(f"/proxies/{name}")
