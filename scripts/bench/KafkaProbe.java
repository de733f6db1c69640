// The Kafka side of scripts/bench/vs-kafka's probes, on Kafka's own Java client: the same three
// measurements as scripts/bench/probe.py makes of our nodes, printing the same lines.
// Compiled by the harness into its cache (javac against the Kafka 4.4.0 jars); not part of
// Kafka, and nothing of Kafka is committed.
//
//   java KafkaProbe e2e BOOTSTRAP TOPIC RECORDS RATE SIZE
//       a producer thread sends RECORDS records of SIZE bytes at RATE records/s, each value
//       starting with its send time (wall clock, ns); this thread consumes them (assigned
//       to every partition, from the end) and prints "e2e count=N p50_ms=.. p99_ms=.. ..."
//   java KafkaProbe first-ack BOOTSTRAP TOPIC START_MS
//       sends one record (acks=all) again and again until one is acknowledged, then prints
//       "first-ack ms=<ack time - START_MS>" (START_MS: when the nodes were launched)
//   java KafkaProbe acks BOOTSTRAP TOPIC SECONDS
//       sends to partition 0 one record at a time (acks=all, each waits for its ack) for
//       SECONDS and prints "ack <sent ms> <acknowledged ms>" (wall clock) per acknowledged
//       record, flushed at once, so the harness can kill the leader and read when the first
//       record sent after it was acknowledged
//   java KafkaProbe produce-workload BOOTSTRAP TOPIC RECORDS KEYS VALUE_BYTES TOMBSTONE_SHARE
//           BATCH_RECORDS SEED BASE_TIMESTAMP_MS BATCH_BYTES
//       scripts/bench_cleaner.py's records (scripts/bench/cleaner_workload.py says how each is
//       made; this computes the same), to partition 0, BATCH_RECORDS per batch (a flush after
//       each, so the producer's batches are exactly the workload's), without idempotence (no
//       producer id: the batches are the bytes our storage writes), acks=all; prints
//       "produced records=N batches=B ms=T"
//   java KafkaProbe read-partition BOOTSTRAP TOPIC PARTITION
//       reads the partition from its first offset to its end with Kafka's consumer (assigned,
//       no group) and prints "start S end E", then "record <offset> <timestamp> <key> <value>"
//       for each record (bytes as "x" and lowercase hex, null as "-"), then "done count=N"
import java.io.BufferedOutputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public final class KafkaProbe {
    // The first records of an e2e run pay for connections and metadata: left out, as in
    // probe.py.
    static final int E2E_WARMUP_RECORDS = 100;

    public static void main(String[] args) throws Exception {
        switch (args[0]) {
            case "e2e" -> e2e(args[1], args[2], Integer.parseInt(args[3]), Double.parseDouble(args[4]),
                    Integer.parseInt(args[5]));
            case "first-ack" -> firstAck(args[1], args[2], Long.parseLong(args[3]));
            case "acks" -> acks(args[1], args[2], Double.parseDouble(args[3]));
            case "produce-workload" -> produceWorkload(args[1], args[2], Arrays.copyOfRange(args, 3, args.length));
            case "read-partition" -> readPartition(args[1], args[2], Integer.parseInt(args[3]));
            default -> throw new IllegalArgumentException("unknown mode " + args[0]);
        }
    }

    static long wallNanos() {
        Instant now = Instant.now();
        return now.getEpochSecond() * 1_000_000_000L + now.getNano();
    }

    static Properties producerProps(String bootstrap) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("acks", "all");
        p.put("key.serializer", ByteArraySerializer.class.getName());
        p.put("value.serializer", ByteArraySerializer.class.getName());
        return p;
    }

    static void e2e(String bootstrap, String topic, int records, double rate, int size) throws Exception {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("key.deserializer", ByteArrayDeserializer.class.getName());
        c.put("value.deserializer", ByteArrayDeserializer.class.getName());
        c.put("enable.auto.commit", "false");
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c);
             KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(producerProps(bootstrap))) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo info : consumer.partitionsFor(topic)) {
                parts.add(new TopicPartition(topic, info.partition()));
            }
            consumer.assign(parts);
            consumer.seekToEnd(parts);
            for (TopicPartition tp : parts) {
                consumer.position(tp);  // resolve the end now, before anything is sent
            }
            Thread sender = new Thread(() -> {
                long start = System.nanoTime();
                for (int i = 0; i < records; i++) {
                    long due = start + (long) (i * 1e9 / rate);
                    long wait = due - System.nanoTime();
                    if (wait > 0) {
                        try {
                            TimeUnit.NANOSECONDS.sleep(wait);
                        } catch (InterruptedException e) {
                            return;
                        }
                    }
                    ByteBuffer value = ByteBuffer.allocate(Math.max(size, 8));
                    value.putLong(0, wallNanos());
                    producer.send(new ProducerRecord<>(topic, value.array()));
                }
                producer.flush();
            });
            sender.start();
            long[] latencies = new long[records];
            int received = 0;
            long quietSince = System.nanoTime();
            while (received < records && System.nanoTime() - quietSince < 30_000_000_000L) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(100));
                long now = wallNanos();
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    if (received < records) {
                        latencies[received++] = now - ByteBuffer.wrap(r.value()).getLong(0);
                    }
                    quietSince = System.nanoTime();
                }
            }
            sender.join();
            printLatencies(Arrays.copyOf(latencies, received), records, rate);
        }
    }

    static void printLatencies(long[] all, int records, double rate) {
        long[] kept = all.length > E2E_WARMUP_RECORDS
                ? Arrays.copyOfRange(all, E2E_WARMUP_RECORDS, all.length) : all;
        Arrays.sort(kept);
        System.out.printf("e2e count=%d of=%d rate=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f%n",
                all.length, records, rate, at(kept, 0.5), at(kept, 0.99), at(kept, 0.999),
                kept.length == 0 ? 0.0 : kept[kept.length - 1] / 1e6);
    }

    static double at(long[] sorted, double rank) {
        if (sorted.length == 0) {
            return 0.0;
        }
        return sorted[Math.min((int) (rank * sorted.length), sorted.length - 1)] / 1e6;
    }

    static void firstAck(String bootstrap, String topic, long startMs) throws Exception {
        Properties p = producerProps(bootstrap);
        p.put("max.block.ms", "2000");
        p.put("delivery.timeout.ms", "3000");
        p.put("request.timeout.ms", "2000");
        p.put("retry.backoff.ms", "50");
        p.put("reconnect.backoff.ms", "50");
        p.put("reconnect.backoff.max.ms", "200");
        while (true) {
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
                producer.send(new ProducerRecord<>(topic, "first".getBytes())).get();
                System.out.printf("first-ack ms=%d%n", System.currentTimeMillis() - startMs);
                return;
            } catch (Exception e) {
                Thread.sleep(50);
            }
        }
    }

    static void acks(String bootstrap, String topic, double seconds) throws Exception {
        Properties p = producerProps(bootstrap);
        p.put("delivery.timeout.ms", "120000");
        p.put("linger.ms", "0");
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            long end = System.nanoTime() + (long) (seconds * 1e9);
            while (System.nanoTime() < end) {
                long sentMs = System.currentTimeMillis();
                try {
                    producer.send(new ProducerRecord<>(topic, 0, null, "probe".getBytes())).get();
                    System.out.printf("ack %d %d%n", sentMs, System.currentTimeMillis());
                    System.out.flush();
                } catch (Exception e) {
                    Thread.sleep(10);
                }
            }
        }
    }

    // -- scripts/bench_cleaner.py's workload (cleaner_workload.py is the reference) ---------

    static final long GOLDEN_GAMMA = 0x9E3779B97F4A7C15L;

    static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    static long draw(long seed, long index, int stream) {
        return mix64(seed + (2 * index + stream + 1) * GOLDEN_GAMMA);
    }

    static void produceWorkload(String bootstrap, String topic, String[] a) throws Exception {
        long records = Long.parseLong(a[0]);
        long keys = Long.parseLong(a[1]);
        int valueBytes = Integer.parseInt(a[2]);
        double tombstoneShare = Double.parseDouble(a[3]);
        int batchRecords = Integer.parseInt(a[4]);
        long seed = Long.parseUnsignedLong(a[5]);
        long baseTimestamp = Long.parseLong(a[6]);
        int batchBytes = Integer.parseInt(a[7]);
        Properties p = producerProps(bootstrap);
        p.put("enable.idempotence", "false");
        p.put("max.in.flight.requests.per.connection", "1");
        p.put("compression.type", "none");
        // A batch leaves at the flush after its last record, never earlier: full batches only.
        p.put("linger.ms", "3600000");
        p.put("delivery.timeout.ms", "3700000");  // at least linger.ms + request.timeout.ms
        p.put("batch.size", String.valueOf(batchBytes));
        p.put("max.request.size", String.valueOf(Math.max(1048576, batchBytes + 1024)));
        p.put("buffer.memory", String.valueOf(Math.max(33554432L, 4L * batchBytes)));
        byte[] filler = new byte[valueBytes - 8];
        Arrays.fill(filler, (byte) '.');
        AtomicReference<Exception> failure = new AtomicReference<>();
        long started = System.nanoTime();
        long batches = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            for (long start = 0; start < records; start += batchRecords) {
                long end = Math.min(start + batchRecords, records);
                for (long i = start; i < end; i++) {
                    byte[] key = String.format("key-%08d", Long.remainderUnsigned(draw(seed, i, 0), keys))
                            .getBytes(StandardCharsets.US_ASCII);
                    byte[] value = null;
                    if (!((draw(seed, i, 1) >>> 11) * 0x1.0p-53 < tombstoneShare)) {
                        value = ByteBuffer.allocate(valueBytes).putLong(i).put(filler).array();
                    }
                    producer.send(new ProducerRecord<>(topic, 0, baseTimestamp + i, key, value), (m, e) -> {
                        if (e != null) {
                            failure.compareAndSet(null, e);
                        }
                    });
                }
                producer.flush();
                batches++;
                if (failure.get() != null) {
                    throw failure.get();
                }
            }
        }
        System.out.printf("produced records=%d batches=%d ms=%d%n", records, batches,
                (System.nanoTime() - started) / 1_000_000);
    }

    static String hex(HexFormat format, byte[] bytes) {
        return bytes == null ? "-" : "x" + format.formatHex(bytes);
    }

    static void readPartition(String bootstrap, String topic, int partition) throws Exception {
        Properties c = new Properties();
        c.put("bootstrap.servers", bootstrap);
        c.put("key.deserializer", ByteArrayDeserializer.class.getName());
        c.put("value.deserializer", ByteArrayDeserializer.class.getName());
        c.put("enable.auto.commit", "false");
        HexFormat format = HexFormat.of();
        PrintStream out = new PrintStream(new BufferedOutputStream(System.out, 1 << 16), false,
                StandardCharsets.US_ASCII);
        TopicPartition tp = new TopicPartition(topic, partition);
        long count = 0;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c)) {
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long start = consumer.beginningOffsets(List.of(tp)).get(tp);
            long end = consumer.endOffsets(List.of(tp)).get(tp);
            out.printf("start %d end %d%n", start, end);
            long quietSince = System.nanoTime();
            long lastPosition = -1;
            for (long position; (position = consumer.position(tp)) < end; ) {
                if (position != lastPosition) {
                    lastPosition = position;  // a compacted gap moves it without a record
                    quietSince = System.nanoTime();
                } else if (System.nanoTime() - quietSince > 60_000_000_000L) {
                    out.flush();
                    throw new IllegalStateException("no progress for 60 s at offset " + position);
                }
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(500));
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    out.print("record " + r.offset() + " " + r.timestamp() + " " + hex(format, r.key()) + " "
                            + hex(format, r.value()) + "\n");
                    count++;
                }
            }
        }
        out.printf("done count=%d%n", count);
        out.flush();
    }
}
