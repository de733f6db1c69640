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
import java.nio.ByteBuffer;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
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
}
