"""The client's record batches (client/batches.py) alone, no network: records/s built and read.

    .venv/bin/python scripts/bench_batches.py [--records 1000000] [--size 100] [--per-batch 1000]

Builds ``--records`` records of ``--size`` bytes in batches of ``--per-batch`` (no key, no
headers, as the perf tools send them), then reads them all back as a fetch answer of those
batches would be read (CRC checked, one ConsumerRecord each). Prints records/s and MB/s of
each; the best of three rounds, since the machine is shared.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from client.batches import CYTHON, NO_HEADERS, BatchReader, build  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--per-batch", type=int, default=1000)
    args = parser.parse_args()
    value = b"x" * args.size
    now = int(time.time() * 1000)
    pending = [(None, value, NO_HEADERS, now)] * args.per_batch
    batches = args.records // args.per_batch
    total = batches * args.per_batch
    best_build = best_read = float("inf")
    body = b""
    for _round in range(3):
        started = time.perf_counter()
        built = [build(pending, 1000, 0, i * args.per_batch) for i in range(batches)]
        best_build = min(best_build, time.perf_counter() - started)
        # As the leader stores them: consecutive base offsets.
        body = b"".join(struct.pack(">q", i * args.per_batch) + b[8:] for i, b in enumerate(built))
        started = time.perf_counter()
        reader = BatchReader("bench", 0, body, 0)
        read = 0
        while not reader.done:
            read += len(reader.read(256 * 1024))
        best_read = min(best_read, time.perf_counter() - started)
        assert read == total
    megabytes = len(body) / 1e6
    print(f"aiokafka Cython classes in use: {CYTHON}")
    print(
        f"build: {total / best_build:,.0f} records/s ({megabytes / best_build:,.1f} MB/s of "
        f"batches), {total:,} records of {args.size} B in batches of {args.per_batch}"
    )
    print(f"read:  {total / best_read:,.0f} records/s ({megabytes / best_read:,.1f} MB/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
