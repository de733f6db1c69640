"""The requests issue 11 found by hand (its "Why" list), each with the answers that are
right for it; ``test_http_fuzz`` sends them by name before the fuzz, so they are tried in every
run whatever Hypothesis draws."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from tests.fuzz.routes import BODIES, CONFIG_TOPIC, MAIN_TOPIC, Case, Context
from tests.fuzz.wire import Request


@dataclass(frozen=True)
class Known:
    build: Callable[[Context], Case]
    # The statuses that are right (beyond the rules every answer keeps); "4xx": any of them;
    # "closed": a closed connection is right too.
    want: tuple[int | str, ...]
    # A further rule on the error body's message.
    message_must_not: str | None = None


def _get(target: str, route: str, odd_path_numbers: tuple[str, ...] = ()) -> Case:
    return Case(Request(b"GET", target.encode()), 0, route, odd_path_numbers=odd_path_numbers)


def _post(
    target: str,
    body: object,
    route: str,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    odd_numbers: tuple[str, ...] = (),
) -> Case:
    raw = json.dumps(body).encode()
    return Case(Request(b"POST", target.encode(), headers, raw), 0, route, odd_numbers)


def _replica_fetch_epoch(ctx: Context) -> Case:
    body = BODIES[("POST", "/v1/internal/replica-fetch")](ctx)
    body["replica_id"] = 99
    body["partitions"][0]["leader_epoch"] = 2_000_000_000
    return _post("/v1/internal/replica-fetch", body, "POST /v1/internal/replica-fetch")


_PRODUCE_PARTITION = "POST /v1/topics/{topic}/partitions/{partition}/records"
_RECORDS = {"records": [{"value": "v"}]}

KNOWN: dict[str, Known] = {
    "partition ² (%C2%B2) is not a number": Known(
        lambda ctx: _get(
            f"/v1/topics/{MAIN_TOPIC}/partitions/%C2%B2/records",
            route="GET /v1/topics/{topic}/partitions/{partition}/records",
            odd_path_numbers=("partition '²'",),
        ),
        (400,),
    ),
    "partition ١ (%D9%A1) is not partition 1": Known(
        lambda ctx: _get(
            f"/v1/topics/{MAIN_TOPIC}/partitions/%D9%A1/records",
            route="GET /v1/topics/{topic}/partitions/{partition}/records",
            odd_path_numbers=("partition '١'",),
        ),
        (400,),
    ),
    "partition ٣ sent as raw UTF-8": Known(
        lambda ctx: Case(
            Request(b"GET", f"/v1/topics/{MAIN_TOPIC}/partitions/٣/offsets".encode()),
            0,
            "GET /v1/topics/{topic}/partitions/{partition}/offsets",
            odd_path_numbers=("partition '٣'",),
        ),
        (400,),
    ),
    "a 22-digit broker id in an internal call": Known(
        lambda ctx: _post(
            "/v1/internal/brokers/9999999999999999999999/heartbeat",
            {"broker_epoch": 0},
            "POST /v1/internal/brokers/{broker}/heartbeat",
        ),
        (400, 401),
    ),
    "a replica fetch without proof naming leader epoch 2000000000": Known(
        _replica_fetch_epoch, (401,)
    ),
    "a 10,000-character URL": Known(
        lambda ctx: _get("/v1/topics/" + "a" * 10_000, route="GET /v1/topics/{topic}"),
        ("4xx",),
    ),
    "an 8,000-character topic name (under the line limit)": Known(
        lambda ctx: _get("/v1/topics/" + "x" * 8_000, route="GET /v1/topics/{topic}"),
        ("4xx",),
    ),
    "an 8,000-character internal path": Known(
        lambda ctx: _post("/v1/internal/brokers/" + "x" * 8_000, {}, "POST /v1/internal/brokers"),
        ("4xx",),
    ),
    "an unknown method": Known(
        lambda ctx: Case(Request(b"FOO", b"/v1/cluster"), 0, "GET /v1/cluster"), (400, 405, 501)
    ),
    "a header name with a space": Known(
        lambda ctx: Case(
            Request(b"GET", b"/v1/cluster", ((b"Bad Name", b"x"),)), 0, "GET /v1/cluster"
        ),
        (400,),
    ),
    "a header of control bytes": Known(
        lambda ctx: Case(
            Request(b"GET", b"/v1/cluster", ((b"\x01\x02", b"\x03"),)), 0, "GET /v1/cluster"
        ),
        (400,),
    ),
    "Content-Length: -5": Known(
        lambda ctx: _post(
            "/v1/topics",
            {"name": "x"},
            "POST /v1/topics",
            ((b"Content-Length", b"-5"),),
        ),
        (400,),
    ),
    "TLS bytes on the HTTP port": Known(
        lambda ctx: Case(
            Request(b"", b"", raw=b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 300),
            0,
            "raw",
        ),
        (400, "closed"),
    ),
    "a 30-digit JSON integer stays an integer in the message": Known(
        lambda ctx: _post(
            f"/v1/topics/{MAIN_TOPIC}/records",
            {"records": [{"value": "v", "partition": 10**30}]},
            "POST /v1/topics/{topic}/records",
        ),
        (400, 422),
        message_must_not="e+",
    ),
    "max.message.bytes above socket.request.max.bytes": Known(
        lambda ctx: Case(
            Request(
                b"PUT",
                f"/v1/topics/{CONFIG_TOPIC}/configs".encode(),
                (),
                b'{"configs": {"max.message.bytes": "2147483647"}}',
            ),
            0,
            "PUT /v1/topics/{topic}/configs",
        ),
        (400,),
    ),
    "Producer-Id: ²": Known(
        lambda ctx: _post(
            f"/v1/topics/{MAIN_TOPIC}/partitions/0/records",
            _RECORDS,
            _PRODUCE_PARTITION,
            ((b"Producer-Id", "²".encode()), (b"Producer-Epoch", b"0"), (b"Producer-Seq", b"0")),
            odd_numbers=("Producer-Id: '²'",),
        ),
        (400,),
    ),
    "Producer-Epoch: ١": Known(
        lambda ctx: _post(
            f"/v1/topics/{MAIN_TOPIC}/partitions/0/records",
            _RECORDS,
            _PRODUCE_PARTITION,
            ((b"Producer-Id", b"1"), (b"Producer-Epoch", "١".encode()), (b"Producer-Seq", b"0")),
            odd_numbers=("Producer-Epoch: '١'",),
        ),
        (400,),
    ),
    "timeout_ms=١ on a produce": Known(
        lambda ctx: _post(
            f"/v1/topics/{MAIN_TOPIC}/records?timeout_ms=%D9%A1",
            _RECORDS,
            "POST /v1/topics/{topic}/records",
            odd_numbers=("timeout_ms='١'",),
        ),
        (400,),
    ),
    "a 9 MiB body": Known(
        lambda ctx: Case(
            Request(
                b"POST",
                f"/v1/topics/{MAIN_TOPIC}/records".encode(),
                (),
                b'{"records":[{"value":"' + b"v" * (9 << 20) + b'"}]}',
            ),
            0,
            "POST /v1/topics/{topic}/records",
        ),
        (413, "closed"),
    ),
    "JSON nested 100,000 deep": Known(
        lambda ctx: Case(
            Request(b"POST", b"/v1/topics", (), b"[" * 100_000 + b"]" * 100_000),
            0,
            "POST /v1/topics",
        ),
        (400,),
    ),
    "a body that says it is gzip but is not": Known(
        lambda ctx: Case(
            Request(
                b"POST",
                f"/v1/topics/{MAIN_TOPIC}/records".encode(),
                ((b"Content-Encoding", b"gzip"),),
                b'{"records": [{"value": "v"}]}',
            ),
            0,
            "POST /v1/topics/{topic}/records",
        ),
        ("4xx",),
    ),
    "Expect: 100-continue on a produce (curl sends it for large bodies)": Known(
        lambda ctx: Case(
            Request(
                b"POST",
                f"/v1/topics/{MAIN_TOPIC}/records".encode(),
                ((b"Expect", b"100-continue"), (b"Content-Type", b"application/json")),
                b'{"records": [{"value": "v"}]}',
            ),
            0,
            "POST /v1/topics/{topic}/records",
        ),
        (200,),
    ),
    "Expect: 200-ok": Known(
        lambda ctx: Case(
            Request(b"GET", b"/v1/cluster", ((b"Expect", b"200-ok"),)), 0, "GET /v1/cluster"
        ),
        ("4xx",),
    ),
    "a partition given as true": Known(
        lambda ctx: _post(
            f"/v1/topics/{MAIN_TOPIC}/records",
            {"records": [{"value": "v", "partition": True}]},
            "POST /v1/topics/{topic}/records",
        ),
        (400, 422),
    ),
}
