"""What one node's leader does with binary record batches (application/vnd.kafka.batch).

    .venv/bin/python scripts/bench_leader_batches.py [--records 300000] [--batch 1000] [--size 100]
        [--max-bytes 1048576] [--runs 3]

Starts one node (replication factor 1, so the figures are the leader's own work: no follower,
no ISR wait), then:

- produce: ``--records`` records of ``--size`` bytes in batches of ``--batch``, one binary
  produce per batch, acks=1, one request at a time over one connection. The batches are built
  before the clock starts (each one distinct), so the figure is the node's check, stamp and
  append, plus HTTP;
- fetch: ``--runs`` times, the whole partition from offset 0 with binary fetches of
  ``--max-bytes``, one at a time over one connection; MB/s and records/s served.

Prints one line per figure. The machine's other load shows in the figures: run it on a quiet
machine and compare runs of the same checkout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from client.protocol import BATCH_MEDIA_TYPE, NEXT_OFFSET_HEADER  # noqa: E402
from scripts.node_process import NodeProcess, http  # noqa: E402
from storage.batch import NewRecord, build_batch, iter_batches  # noqa: E402

TOPIC = "bench-batches"


def build(records: int, batch: int, size: int) -> list[bytes]:
    now = int(time.time() * 1000)
    value = os.urandom(size)
    batches = []
    for start in range(0, records, batch):
        count = min(batch, records - start)
        # Distinct bytes per batch: the start index in the first value.
        first = start.to_bytes(8, "big") + value[8:]
        rows = [NewRecord(None, first if i == 0 else value, now + i) for i in range(count)]
        batches.append(build_batch(rows))
    return batches


async def produce(url: str, batches: list[bytes]) -> float:
    target = f"{url}/v1/topics/{TOPIC}/partitions/0/records?acks=1"
    headers = {"Content-Type": BATCH_MEDIA_TYPE}
    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        for data in batches:
            async with session.post(target, data=data, headers=headers) as response:
                body = await response.read()
                assert response.status == 200, body
        return time.perf_counter() - start


async def fetch_all(url: str, records: int, max_bytes: int) -> tuple[float, int, int]:
    target = f"{url}/v1/topics/{TOPIC}/partitions/0/records"
    headers = {"Accept": BATCH_MEDIA_TYPE}
    offset = total_bytes = seen = 0
    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        while offset < records:
            params = {"offset": str(offset), "max_bytes": str(max_bytes)}
            async with session.get(target, params=params, headers=headers) as response:
                body = await response.read()
                assert response.status == 200, body
                offset = int(response.headers[NEXT_OFFSET_HEADER])
            total_bytes += len(body)
            # Counted from the headers only (the client's decoding is not the node's work).
            seen += sum(h.record_count for _pos, h in iter_batches(body, verify=False))
        return time.perf_counter() - start, total_bytes, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--max-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    batches = build(args.records, args.batch, args.size)
    with tempfile.TemporaryDirectory(prefix="bench-batches-") as directory:
        node = NodeProcess(Path(directory) / "node")
        node.format()
        node.start()
        try:
            status, body = http(
                "POST", f"{node.url}/v1/topics", {"name": TOPIC, "replication_factor": 1}
            )
            assert status == 201, body
            elapsed = asyncio.run(produce(node.url, batches))
            megabytes = sum(len(b) for b in batches) / 1e6
            print(
                f"produce: {args.records / elapsed:,.0f} records/s, {megabytes / elapsed:.1f} MB/s "
                f"({len(batches)} batches of {args.batch} x {args.size} B, acks=1, one at a time)"
            )
            for _ in range(args.runs):
                elapsed, size, seen = asyncio.run(fetch_all(node.url, args.records, args.max_bytes))
                assert seen >= args.records, (seen, args.records)
                print(
                    f"fetch: {seen / elapsed:,.0f} records/s, {size / 1e6 / elapsed:.1f} MB/s "
                    f"(max_bytes {args.max_bytes}, one fetch at a time)"
                )
        finally:
            node.stop()


if __name__ == "__main__":
    main()
