"""Our batch filter against Kafka's own: byte for byte, on many generated batches.

Kafka 4.4.0's ``MemoryRecords.filterTo`` (the code its cleaner calls) filters each batch with
a ``RecordFilter`` that applies the cleaner's rules (``Cleaner.shouldRetainRecord`` and
``checkBatchRetention`` without transactions, as we have none), fed the same offset map, clock,
delete retention, active producers and round bound as :func:`storage.clean_filter.filter_batch`.
Every output must be the same bytes: copied batches, batches rebuilt with or without a delete
horizon, cleaned batches cleaned again later, header-only batches, dropped batches.

It needs Java and Kafka's jars in the benchmark harness's cache (scripts/bench/kafka_dist.py:
``scripts/bench/vs-kafka`` fills it); without them it is skipped, saying why. It lives in
tests/kafka, which the suite (scripts/test) does not run: it does not fetch Kafka.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from functools import partial
from pathlib import Path

import pytest

from scripts.bench.kafka_dist import COMPLETE, default_cache
from storage.batch import NewRecord, build_batch
from storage.clean_filter import filter_batch

T0 = 1_700_000_000_000
CASES = 400
SEED = 17
KEYS = [b"a", b"b", b"c", b"d"]

# One line per case: in-file out-file now retention latest upper producer:last|- key=offset...
JAVA = """
import org.apache.kafka.common.record.internal.*;
import org.apache.kafka.common.utils.internals.BufferSupplier;
import java.nio.ByteBuffer;
import java.nio.file.*;
import java.util.*;

public class KafkaFilter {
    public static void main(String[] args) throws Exception {
        for (String line : Files.readAllLines(Path.of(args[0]))) one(line.split(" "));
    }

    static void one(String[] a) throws Exception {
        byte[] in = Files.readAllBytes(Path.of(a[0]));
        long now = Long.parseLong(a[2]), retention = Long.parseLong(a[3]);
        long latest = Long.parseLong(a[4]), upper = Long.parseLong(a[5]);
        Map<Long, Long> producers = new HashMap<>();
        if (!a[6].equals("-")) {
            String[] p = a[6].split(":");
            producers.put(Long.parseLong(p[0]), Long.parseLong(p[1]));
        }
        Map<String, Long> map = new HashMap<>();
        for (int i = 7; i < a.length; i++) {
            String[] kv = a[i].split("=");
            map.put(kv[0], Long.parseLong(kv[1]));
        }
        MemoryRecords.RecordFilter filter = new MemoryRecords.RecordFilter(now, retention) {
            protected BatchRetentionResult checkBatchRetention(RecordBatch batch) {
                Long last = producers.get(batch.producerId());
                boolean producerLast = batch.hasProducerId() && last != null
                    && last == batch.lastOffset();
                BatchRetention r = producerLast || batch.nextOffset() == upper
                    ? BatchRetention.RETAIN_EMPTY : BatchRetention.DELETE_EMPTY;
                return new BatchRetentionResult(r, false);
            }

            protected boolean shouldRetainRecord(
                    RecordBatch batch, org.apache.kafka.common.record.internal.Record record) {
                if (record.offset() > latest) return true;
                if (!record.hasKey()) return false;
                byte[] k = new byte[record.keySize()];
                record.key().get(k);
                Long found = map.get(new String(k));
                boolean latestForKey = found == null || record.offset() >= found;
                boolean retainDeletes = !batch.deleteHorizonMs().isPresent()
                    || now < batch.deleteHorizonMs().getAsLong();
                return latestForKey && (record.hasValue() || retainDeletes);
            }
        };
        ByteBuffer out = ByteBuffer.allocate(1 << 20);
        MemoryRecords.FilterResult result = MemoryRecords.readableRecords(ByteBuffer.wrap(in))
            .filterTo(filter, out, BufferSupplier.NO_CACHING, Integer.MAX_VALUE);
        ByteBuffer o = result.outputBuffer();
        o.flip();
        byte[] bytes = new byte[o.remaining()];
        o.get(bytes);
        Files.write(Path.of(a[1]), bytes);
    }
}
"""


class Map:
    def __init__(self, offsets: dict[bytes, int], latest: int) -> None:
        self.offsets = offsets
        self.latest_offset = latest

    def get(self, key: bytes) -> int | None:
        return self.offsets.get(key)


def kafka_libs() -> Path:
    cache = default_cache()
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("no Java on PATH")
    if not (cache / COMPLETE).exists():
        pytest.skip(f"no Kafka jars in {cache} (scripts/bench/vs-kafka fetches them)")
    return cache / "libs"


def test_filter_batch_writes_what_kafkas_filter_to_writes(tmp_path: Path) -> None:
    libs = kafka_libs()
    rng = random.Random(SEED)
    lines: list[str] = []
    ours: list[bytes] = []
    for i in range(CASES):
        count = rng.randint(1, 6)
        records = [
            NewRecord(
                rng.choice([None, *KEYS]),
                rng.choice([None, b"v", b"xyz" * rng.randint(0, 50)]),
                T0 + rng.randint(-5_000, 5_000),
                tuple((f"h{j}", rng.choice([None, b"q"])) for j in range(rng.randint(0, 2))),
            )
            for _ in range(count)
        ]
        base = rng.randint(0, 10**6)
        producer = rng.choice([-1, 7])
        batch = build_batch(
            records,
            base_offset=base,
            partition_leader_epoch=rng.randint(0, 9),
            producer_id=producer,
            producer_epoch=0 if producer >= 0 else -1,
            base_sequence=rng.randint(0, 100) if producer >= 0 else -1,
        )
        offsets = {k: base + rng.randint(0, count + 2) for k in KEYS if rng.random() < 0.7}
        offset_map = Map(offsets, base + rng.randint(-1, count + 1))
        now = T0 + rng.randint(0, 10**6)
        retention = rng.choice([0, 1_000, 86_400_000])
        upper = rng.choice([base + count, 10**9])
        active = rng.choice([None, (7, base + count - 1), (7, base)])

        run = partial(
            filter_batch,
            offset_map=offset_map,
            delete_retention_ms=retention,
            last_data_offsets=dict([active]) if active else {},
            upper_bound_offset=upper,
        )
        first = run(batch, 0, now_ms=now)[1].data
        if first and rng.random() < 0.5:
            # A batch cleaned before, cleaned again: its horizon kept, passed or not yet.
            batch = first
            now += rng.choice([0, retention, retention + 1, 2 * retention])
        (tmp_path / f"in{i}").write_bytes(batch)
        ours.append(run(batch, 0, now_ms=now)[1].data)
        pairs = " ".join(f"{k.decode()}={v}" for k, v in offsets.items())
        producer_arg = f"{active[0]}:{active[1]}" if active else "-"
        lines.append(
            f"{tmp_path}/in{i} {tmp_path}/out{i} {now} {retention} {offset_map.latest_offset} "
            f"{upper} {producer_arg} {pairs}".strip()
        )
    (tmp_path / "cases.txt").write_text("\n".join(lines) + "\n")
    source = tmp_path / "KafkaFilter.java"
    source.write_text(JAVA)
    classpath = f"{libs}/*"
    subprocess.run(
        ["javac", "-d", str(tmp_path), "-cp", classpath, str(source)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["java", "-cp", f"{classpath}:{tmp_path}", "KafkaFilter", str(tmp_path / "cases.txt")],
        check=True,
        capture_output=True,
    )
    kinds = {"dropped": 0, "header only": 0, "kept": 0}
    for i, mine in enumerate(ours):
        assert mine == (tmp_path / f"out{i}").read_bytes(), lines[i]
        kinds["dropped" if not mine else "header only" if len(mine) == 61 else "kept"] += 1
    # The cases cover every outcome.
    assert all(n > 10 for n in kinds.values()), kinds
