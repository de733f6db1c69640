"""Every limit and default of the client and its tools, in one place, with the reason for each.

Units are the last part of each name (``_s`` seconds, ``_ms`` milliseconds, ``_bytes``).
"""

from __future__ import annotations

# How long one request may take beyond any long-poll wait it asked the server for. Kafka's
# producer and admin client use 30 s (`request.timeout.ms`); an `acks=all` produce waits for
# every ISR member's fsync, which can take a few seconds on a loaded machine.
REQUEST_TIMEOUT_S = 30.0

# A 307 NOT_LEADER_OR_FOLLOWER is followed at most this many times: one hop reaches the leader
# when metadata is settled; a few more cover a leadership change in flight; more would be a
# redirect loop, which docs/api.md promises never to produce, so we stop rather than spin.
REDIRECT_HOPS_MAX = 3

# The console consumer's long poll: the server answers as soon as one record is there, so this
# only bounds how long an idle partition's request stays open. Short enough that Ctrl+C and
# --timeout-ms react promptly, long enough not to spin on an idle topic.
FETCH_WAIT_MS = 1000

# Records asked for per fetch: large enough to drain a backlog quickly, small enough that one
# partition cannot starve the others' output for long.
FETCH_RECORDS_MAX = 500

# The consumer reads partitions concurrently, one open long poll each; aiohttp keeps one
# connection per request in flight, so this caps the sockets a consumer of a wide topic holds.
CONNECTIONS_MAX = 64

# Fetched batches (each up to FETCH_RECORDS_MAX records) not yet printed, across all
# partitions: back-pressure so a fast cluster cannot fill the consumer's memory while stdout
# (a slow terminal, a pipe) lags behind.
CONSUMER_QUEUE_BATCHES_MAX = 8

# Backoff after a retriable error (no leader yet, not enough replicas, too many requests) when
# the server sent no Retry-After, and the cap on any Retry-After we honour: the tools should
# stay responsive rather than sleep for as long as a misconfigured server says.
RETRY_BACKOFF_S = 0.2
RETRY_AFTER_MAX_S = 2.0

# How long the console tools keep retrying a retriable error before giving up with its message:
# long enough to ride out a leader election (seconds, see docs/design.md), short enough that a
# user is told about a cluster that is really down.
RETRY_DEADLINE_S = 30.0

# The console producer takes the lines already waiting on stdin this many (and bytes) at a
# time: enough to keep the producer's batches full, bounded so a huge file is streamed in
# pieces, not held in memory.
STDIN_BATCH_LINES_MAX = 1000
STDIN_BATCH_BYTES_MAX = 1 << 20

# One read from stdin; lines longer than this are assembled across reads.
STDIN_READ_BYTES = 64 * 1024

# Reads of stdin handed over but not yet sent: enough to batch what is waiting, few enough
# that a file piped in is not read into memory faster than it is sent.
STDIN_CHUNKS_AHEAD = 4

# -- The metadata cache and the producer (client/metadata.py, client/producer.py) --------------

# Kafka's metadata.max.age.ms: metadata is read again after this long even without an error,
# so partitions added to a topic are seen by a producer that never fails.
METADATA_MAX_AGE_MS = 300_000

# A node that did not answer goes to the back of the order metadata reads try for this long:
# long enough that a dead node is not tried first on every read of a leader election (about
# 1.5-3 s, README), short enough that a restarted node is used again soon.
NODE_FAILURE_BACKOFF_S = 5.0

# Sockets one producer holds: up to max.in.flight requests per partition, each on its own
# keep-alive connection (HTTP/1.1 has one request per connection at a time); bounded so a
# producer writing to 1,000 partitions cannot open thousands.
PRODUCER_CONNECTIONS_MAX = 256

# Records in one produce request: the node refuses more (server PRODUCE_RECORDS_MAX), however
# small they are; max.request.size bounds the bytes.
PRODUCE_RECORDS_PER_REQUEST_MAX = 10_000

# The longest acks wait the node accepts in a produce's timeout_ms (server
# PRODUCE_TIMEOUT_MS_MAX); a larger request.timeout.ms still bounds the client's own wait.
PRODUCE_TIMEOUT_MS_MAX = 300_000

# A produce answer may take request.timeout.ms at the node (its acks wait) plus the way back:
# without this slack the client would give up at the moment the node answers REQUEST_TIMED_OUT.
PRODUCE_ANSWER_SLACK_S = 1.0

# The sender looks for batches past delivery.timeout.ms this often (and wakes at least this
# often): expiry is a ms-precise setting in name only, a tenth of a second late is harmless,
# and sweeping every queue on every wake would cost more than the sends.
PRODUCER_EXPIRY_SWEEP_S = 0.1

# The sender never sleeps less than this for a linger or backoff to end: below ~1 ms the
# event loop's timer resolution makes the wait a busy loop.
PRODUCER_WAKE_MIN_S = 0.001

# After Ctrl+C the console producer gives the lines it read this long to be acknowledged, then
# ends (Kafka's closes its producer without a limit; a user who presses Ctrl+C while the
# cluster is down should not wait delivery.timeout.ms for the prompt).
CONSOLE_CLOSE_ON_INTERRUPT_S = 5.0

# A compressed batch of this many bytes or more (uncompressed) is built in a worker thread:
# lz4 at Kafka's default level 9 (high compression) takes about 30 ms a MiB on the development
# machine and gzip about 10, which would hold every other partition's sends and answers; the
# codecs release the GIL, so the thread also uses the second core. Below it the loop is held
# for at most about 2 ms, and the thread hand-off would cost more than it saves.
COMPRESS_IN_THREAD_BYTES_MIN = 64 * 1024
