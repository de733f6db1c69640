"""Node-to-node calls made by a test: signed with the cluster secret read from a node's log
directory (``cluster.secret``), as the nodes sign theirs (``server/internal_auth.py``)."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from typing import Any

from scripts.node_process import NodeProcess
from server.internal_auth import NONCE_BYTES, InternalAuth

SECRET_FILE = "cluster.secret"


def cluster_secret(node: NodeProcess) -> str:
    return (node.log_dir / SECRET_FILE).read_text(encoding="utf-8").strip()


def body_bytes(body: Any) -> bytes:
    """A JSON body as the test sends it (raw bytes pass unchanged)."""
    if body is None:
        return b""
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def proof(
    node: NodeProcess,
    method: str,
    path: str,
    body: Any = None,
    signer_id: int = 1,
    secret: str | None = None,
    now_ms: int | None = None,
) -> dict[str, str]:
    """The proof headers of one call to ``node`` (``path`` with its query, as sent)."""
    auth = InternalAuth(cluster_secret(node) if secret is None else secret)
    stamp = int(time.time() * 1000) if now_ms is None else now_ms
    return auth.sign(
        signer_id,
        method,
        path,
        body_bytes(body),
        stamp,
        secrets.token_hex(NONCE_BYTES),
        target_id=node.node_id,
    )


def call(
    node: NodeProcess,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> tuple[int, bytes, str]:
    """One call with exactly these headers: (status, raw body, Content-Type)."""
    data = None if body is None else body_bytes(body)
    request = urllib.request.Request(
        node.url + path, data=data, method=method, headers=headers or {}
    )
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers.get("Content-Type", "")


def signed_call(
    node: NodeProcess, method: str, path: str, body: Any = None, signer_id: int = 1
) -> tuple[int, bytes, str]:
    """A call with a valid proof, as node ``signer_id`` would make it."""
    return call(node, method, path, body, proof(node, method, path, body, signer_id))
