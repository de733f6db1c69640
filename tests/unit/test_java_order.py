"""storage.java_order gives the orders OpenJDK 17's HashMap gave (jshell, pasted below)."""

from __future__ import annotations

from storage.java_order import (
    hash_map_order,
    hash_set_capacity,
    long_hash,
    string_hash,
    table_size_for,
    topic_partition_hash,
)


def test_string_hash_is_javas_over_utf16_code_units() -> None:
    assert string_hash("") == 0
    assert string_hash("a") == 97
    assert string_hash("/tmp/taskD/seg2/00000000000000000000.log") == 999806193
    assert string_hash("/tmp/taskD/seg2/00000000000000000100.log") == 1887309874
    # jshell: "résumé".hashCode(), and a character outside the BMP (two UTF-16 units)
    assert string_hash("résumé") == -812521675
    assert string_hash("\U0001f600") == 1772899


def test_long_hash_folds_the_high_half() -> None:
    assert long_hash(5) == 5
    assert long_hash(-1) == 0
    assert long_hash(1 << 32) == 1


def test_topic_partitions_in_a_default_hash_map_come_out_as_in_java() -> None:
    topics = ["orders", "weather", "__consumer_offsets", "t", "compacted-table"]
    keys = [(t, p) for t in topics for p in range(5)]
    order = hash_map_order((k, topic_partition_hash(*k)) for k in keys)
    # jshell: new HashMap<TopicPartition, Integer>(), put in the order above, keySet()
    assert [f"{t}-{p}" for t, p in order] == (
        "t-3, t-1, compacted-table-1, compacted-table-3, weather-0, orders-1, orders-3, "
        "__consumer_offsets-3, weather-4, __consumer_offsets-1, weather-2, "
        "__consumer_offsets-0, t-4, t-2, compacted-table-0, t-0, compacted-table-2, "
        "compacted-table-4, weather-1, orders-0, orders-2, orders-4, __consumer_offsets-4, "
        "weather-3, __consumer_offsets-2"
    ).split(", ")


def test_strings_in_a_default_hash_map_come_out_as_in_java() -> None:
    keys = [
        "/tmp/a/00000000000000000100.log",
        "/tmp/a/00000000000000000000.log",
        "/tmp/a/00000000000000000050.log",
        "/work/x/y-0/00000000000000001234.log",
        "résumé",
        *"partitions error logDir partition size offsetLag isFuture broker logDirs".split(),
        "version",
        "brokers",
    ]
    assert hash_map_order((k, string_hash(k)) for k in keys) == [
        "partitions",
        "/work/x/y-0/00000000000000001234.log",
        "brokers",
        "résumé",
        "/tmp/a/00000000000000000050.log",
        "error",
        "broker",
        "version",
        "isFuture",
        "/tmp/a/00000000000000000100.log",
        "/tmp/a/00000000000000000000.log",
        "partition",
        "size",
        "logDirs",
        "offsetLag",
        "logDir",
    ]


def test_a_sized_map_and_a_copied_set_start_from_their_own_tables() -> None:
    # new HashMap<Integer, ...>(3) holding 1, 2, 4: a table of 4, where 4 lands in bucket 0
    assert table_size_for(3) == 4
    assert hash_map_order(((i, i) for i in [1, 2, 4]), table_size_for(3)) == [4, 1, 2]
    # new HashSet<>(List.of(17, 1, 2, 33, 100000)): a table of 16
    assert hash_set_capacity(5) == 16
    keys = [17, 1, 2, 33, 100000]
    assert hash_map_order(((i, i) for i in keys), hash_set_capacity(5)) == [17, 1, 33, 100000, 2]


def test_compute_if_absent_puts_a_new_key_first_in_its_bucket() -> None:
    # Two of these paths share a bucket of a 16-entry table. jshell, computeIfAbsent in the
    # order given, then forEach:
    base = "/tmp/taskD/seg2/"
    names = [base + f"{n:020d}.log" for n in (100, 0, 50)]
    order = hash_map_order(((n, string_hash(n)) for n in names), compute_if_absent=True)
    assert order == [base + f"{n:020d}.log" for n in (0, 50, 100)]
    # ... and with put instead, the first one put stays first in the shared bucket
    order = hash_map_order((n, string_hash(n)) for n in names)
    assert order == [base + f"{n:020d}.log" for n in (0, 100, 50)]


def test_a_map_grows_when_it_passes_three_quarters_of_its_table() -> None:
    # 13 keys (jshell, keySet()): put resizes at the 13th (16 -> 32), so 16 and 0 sit in
    # buckets 16 and 0; computeIfAbsent resizes only before a 14th, so both share bucket 0,
    # newest first.
    keys = list(range(12)) + [16]
    assert hash_map_order((k, k) for k in keys)[-1] == 16
    assert hash_map_order(((k, k) for k in keys), compute_if_absent=True)[:2] == [16, 0]
