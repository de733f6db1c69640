"""Fuzzing binary record batches (application/vnd.kafka.batch) on a live three-node cluster.

Produce: a valid batch of drawn records, then mutated (bytes overwritten, the body cut or
extended, header fields changed, the CRC made to match again or not), posted to a partition
of the main topic through any node. Its answer keeps the tier's rules (``checks.py``), and
more: the node's verdict is the checker's (``storage.batch_check``) run here on the same
bytes, so a body the checker refuses gets a 4xx, never a 500 and never a 200, and a body it
takes is stored (200, or a 307 to the leader). Fetch: binary fetches with drawn queries get
clean answers, and a 200 is whole batches with good CRCs and dense offsets.

After it all every partition of the main topic reads whole: the JSON fetch decodes every
record (a stored corrupt batch would be a KAFKA_STORAGE_ERROR), and the binary fetch's
batches decode with the storage reader, on every node that leads one.
"""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from client.protocol import BATCH_MEDIA_TYPE, NEXT_OFFSET_HEADER
from scripts.node_process import http
from storage.batch import (
    ATTRIBUTES_OFFSET,
    NewRecord,
    build_batch,
    crc32c,
    decode_batch,
    iter_batches,
)
from storage.batch_check import (
    InvalidBatchError,
    UnsupportedCompressionError,
    check_produce_batch,
)
from storage.errors import CorruptRecordError
from tests.fuzz.checks import check_or_record
from tests.fuzz.live import ANSWER_DEADLINE_S, Target, fuzz, ok
from tests.fuzz.routes import MAIN_PARTITIONS, MAIN_TOPIC, Case
from tests.fuzz.wire import Answer, Request, exchange

ROUTE = "/v1/topics/{topic}/partitions/{partition}/records"
NOW_MS = 1_700_000_000_000
# Header fields worth changing whole (offset in the batch, struct format).
_FIELDS = (
    (0, ">q"),  # base offset (the leader rewrites it)
    (8, ">i"),  # batch length
    (12, ">i"),  # partition leader epoch (rewritten too)
    (16, ">b"),  # magic
    (21, ">h"),  # attributes
    (23, ">i"),  # last offset delta
    (27, ">q"),  # base timestamp
    (35, ">q"),  # max timestamp
    (43, ">q"),  # producer id
    (51, ">h"),  # producer epoch
    (53, ">i"),  # base sequence
    (57, ">i"),  # record count
)
_INTS = st.one_of(
    st.sampled_from([-2, -1, 0, 1, 2, 3, 0x7F, 0x80, 0xFF, 1 << 15, 1 << 31, 1 << 62]),
    st.integers(-(1 << 63), (1 << 63) - 1),
)


def _records() -> st.SearchStrategy[list[NewRecord]]:
    data = st.one_of(st.none(), st.binary(max_size=200))
    header = st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=20)))
    record = st.builds(
        NewRecord,
        key=data,
        value=data,
        timestamp=st.integers(NOW_MS - 10_000, NOW_MS + 10_000),
        headers=st.lists(header, max_size=3).map(tuple),
    )
    return st.lists(record, min_size=1, max_size=20)


@st.composite
def mutated_batches(draw: st.DrawFn) -> bytes:
    data = bytearray(build_batch(draw(_records(), label="records")))
    for position, fmt in draw(
        st.lists(st.sampled_from(_FIELDS), max_size=2, unique=True), label="fields"
    ):
        value = draw(_INTS, label=f"field at {position}")
        size = struct.calcsize(fmt)
        value = (value + (1 << (8 * size - 1))) % (1 << (8 * size)) - (1 << (8 * size - 1))
        struct.pack_into(fmt, data, position, value)
    for _ in range(draw(st.sampled_from([0, 0, 1, 2, 4]), label="byte edits")):
        position = draw(st.integers(0, len(data) - 1), label="at")
        data[position] = draw(st.integers(0, 255), label="byte")
    cut = draw(st.one_of(st.just(0), st.integers(-8, 8)), label="cut (-) or extension (+)")
    if cut < 0:
        del data[cut:]
    else:
        data += bytes(cut)
    if len(data) > ATTRIBUTES_OFFSET and draw(st.booleans(), label="CRC made to match"):
        struct.pack_into(">I", data, 17, crc32c(bytes(data[ATTRIBUTES_OFFSET:])))
    return bytes(data)


_LEADERS: dict[int, int] = {}


def _node(target: Target, partition: int, node: int | None) -> int:
    """``node``, or (None) the index of the partition's leader, so that about half the
    requests reach the code past the redirect."""
    if node is not None:
        return node
    if not _LEADERS:
        described = ok(*http("GET", f"{target.nodes[0].url}/v1/topics/{MAIN_TOPIC}"), "describe")
        ids = [n.node_id for n in target.nodes]
        for p in described["partitions"]:
            _LEADERS[p["partition"]] = ids.index(p["leader"])
    return _LEADERS[partition]


_NODES = st.one_of(st.none(), st.integers(0, 2))


def _verdict(body: bytes) -> str:
    """What the checker says of ``body``: the error class the node must answer, or "ok"."""
    try:
        check_produce_batch(body)
    except (CorruptRecordError, UnsupportedCompressionError, InvalidBatchError) as e:
        return type(e).__name__
    return "ok"


@fuzz(600)
@given(
    body=mutated_batches(), partition=st.integers(0, MAIN_PARTITIONS - 1), node=st.integers(0, 2)
)
def test_a_mutated_batch_is_refused_with_a_4xx_or_stored_whole(
    target: Target, body: bytes, partition: int, node: int
) -> None:
    path = f"/v1/topics/{MAIN_TOPIC}/partitions/{partition}/records?acks=1".encode()
    request = Request(b"POST", path, ((b"Content-Type", BATCH_MEDIA_TYPE.encode()),), body)
    case = Case(request, node, f"POST {ROUTE}")
    outcome = exchange(target.port(node), request, ANSWER_DEADLINE_S)
    assert not target.dead(), "\n".join(target.dead())
    check_or_record(case, outcome)
    assert isinstance(outcome, Answer), f"{case!r}\n  -> {outcome.summary()}"
    verdict = _verdict(body)
    if verdict == "ok":
        # A valid batch is stored, or sent to the leader, or waits out an election; one with
        # a producer id may be out of sequence (409) or fenced (403) for the producer state.
        allowed = {200, 307, 503} | (
            {403, 409} if struct.unpack_from(">q", body, 43)[0] >= 0 else set()
        )
        assert outcome.status in allowed, f"{case!r} is valid\n  -> {outcome.summary()}"
    else:
        assert 400 <= outcome.status < 500, f"{case!r}: {verdict}\n  -> {outcome.summary()}"


_QUERY_VALUES = st.one_of(
    st.sampled_from(["0", "1", "5", "-1", "earliest", "latest", "99999", "", "x", "1e3", "١"]),
    st.integers(-5, 5000).map(str),
)


@fuzz(300)
@given(
    partition=st.integers(0, MAIN_PARTITIONS - 1),
    node=_NODES,
    query=st.dictionaries(
        st.sampled_from(["offset", "max_bytes", "format", "max_records"]), _QUERY_VALUES, max_size=3
    ),
    timeout=st.sampled_from([None, "0", "50", "200", "x"]),
    accept=st.sampled_from(
        [
            BATCH_MEDIA_TYPE,
            f"application/json, {BATCH_MEDIA_TYPE};q=0.9",
            f"{BATCH_MEDIA_TYPE.upper()}",
            "application/vnd.kafka.batch+json",
        ]
    ),
)
def test_a_binary_fetch_answers_whole_batches_or_a_clean_error(
    target: Target,
    partition: int,
    node: int | None,
    query: dict[str, str],
    timeout: str | None,
    accept: str,
) -> None:
    node = _node(target, partition, node)
    if timeout is not None:  # short: a poll past the high watermark waits this long
        query = {**query, "timeout_ms": timeout}
    text = "&".join(f"{k}={v}" for k, v in query.items())
    path = f"/v1/topics/{MAIN_TOPIC}/partitions/{partition}/records?{text}".encode()
    request = Request(b"GET", path, ((b"Accept", accept.encode()),))
    case = Case(request, node, f"GET {ROUTE}")
    outcome = exchange(target.port(node), request, ANSWER_DEADLINE_S)
    check_or_record(case, outcome)
    if not (isinstance(outcome, Answer) and outcome.status == 200):
        return
    if outcome.media_type != BATCH_MEDIA_TYPE:
        assert accept == "application/vnd.kafka.batch+json", outcome.summary()
        return
    assert not {"format", "max_records"} & set(query), f"{case!r}\n  -> {outcome.summary()}"
    next_offset = int(outcome.header(NEXT_OFFSET_HEADER) or "-1")
    expected = None
    for _position, header in iter_batches(outcome.body):  # CRCs checked
        assert expected is None or header.base_offset == expected, outcome.summary()
        expected = header.next_offset
    if expected is not None:
        assert next_offset == expected, outcome.summary()


def test_after_the_binary_fuzz_every_partition_reads_whole(target: Target) -> None:
    """No corrupt batch was stored: the JSON fetch decodes every record of every partition,
    and the binary fetch's bytes decode with the storage reader, offsets dense from 0."""
    first = target.nodes[0]
    for partition in range(MAIN_PARTITIONS):
        described = ok(*http("GET", f"{first.url}/v1/topics/{MAIN_TOPIC}"), "describe")
        leader_id = described["partitions"][partition]["leader"]
        index = next(i for i, n in enumerate(target.nodes) if n.node_id == leader_id)
        leader = target.nodes[index]
        base = f"{leader.url}/v1/topics/{MAIN_TOPIC}/partitions/{partition}/records"
        offset = 0
        while True:
            body = ok(*http("GET", f"{base}?offset={offset}&max_records=10000"), "JSON fetch")
            if not body["records"]:
                break
            offset = body["next_offset"]
        expected = 0
        while True:
            outcome = exchange(
                target.port(index),
                Request(
                    b"GET",
                    f"{base.split(leader.url)[1]}?offset={expected}".encode(),
                    ((b"Accept", BATCH_MEDIA_TYPE.encode()),),
                ),
                ANSWER_DEADLINE_S,
            )
            assert isinstance(outcome, Answer) and outcome.status == 200, outcome.summary()
            if not outcome.body:
                break
            position = 0
            while position < len(outcome.body):
                header, records = decode_batch(outcome.body, position)
                assert header.base_offset == expected
                assert [r.offset for r in records] == list(range(expected, header.next_offset))
                expected = header.next_offset
                position += header.size
        assert expected == offset, f"partition {partition}: binary {expected}, JSON {offset}"
