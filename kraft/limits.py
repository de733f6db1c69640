"""Every limit of the metadata layer, in one place, each with the reason for its value.

Units come last in the names (``_bytes``, ``_s``, ``_ms``, ``_count``). The Raft timings are
pysyncobj settings; see the comment above them for how they were chosen.
"""

from __future__ import annotations

# --- Number ranges (Kafka's wire types) --------------------------------------------------------

# Kafka carries broker ids, partition numbers, leader and partition epochs as int32.
INT32_MAX = 2**31 - 1
# Broker epochs and producer ids are int64 in Kafka.
INT64_MAX = 2**63 - 1

# --- Names and strings -------------------------------------------------------------------------

# An incarnation id is a UUID string in Kafka (36 characters, or 22 in base64url); room to spare.
INCARNATION_ID_LENGTH_MAX = 64
# A URL or a host:port we store and hand to peers; longer is a typo or an attack.
URL_LENGTH_MAX = 1024
# Kafka config names are short dotted words ("retention.ms"); 255 is generous.
CONFIG_NAME_LENGTH_MAX = 255
# A config value is a number, a word or a short list; 32 KiB keeps one entry small.
CONFIG_VALUE_LENGTH_MAX = 32 * 1024
# Replicas per partition: no sane cluster needs more, and it bounds one record's size.
REPLICAS_COUNT_MAX = 256

# --- Entries of the metadata log ---------------------------------------------------------------

# One Raft entry carries one encoded list of records. Creating a topic with 10,000 partitions
# of 3 replicas is about 1.2 MB of JSON; 8 MiB leaves room and still bounds what a follower
# must hold in memory for one entry.
ENTRY_BYTES_MAX = 8 * 1024 * 1024
# Records in one entry: bounds the work of applying one entry on the tick thread.
ENTRY_RECORDS_COUNT_MAX = 100_000
# A metadata snapshot (the state in the dump file); 512 MiB is far beyond any cluster we run
# and keeps a corrupt length field from making us allocate gigabytes.
SNAPSHOT_BYTES_MAX = 512 * 1024 * 1024

# --- The Raft journal and the transport --------------------------------------------------------

# A journal entry is one encoded command: the entry's bytes plus pysyncobj's pickle framing.
JOURNAL_ENTRY_BYTES_MAX = ENTRY_BYTES_MAX + 64 * 1024
# One message between Raft peers (zlib + Fernet framed), on the wire and decompressed. Entries
# are batched up to 64 KiB, but a batch may end with one large entry, and Fernet's base64 adds
# a third: 4 x the largest entry is a safe ceiling. A peer announcing more is dropped before we
# buffer it (pysyncobj would otherwise buffer up to 2 GiB before it even checks the password).
RAFT_MESSAGE_BYTES_MAX = 4 * JOURNAL_ENTRY_BYTES_MAX
# A peer's first message on a connection is a 32-byte random key, pickled, zlib'd and Fernet
# framed: about 150 bytes. Until a message has passed authentication, that is all a connection
# may announce, so a stranger on the Raft port makes us buffer 4 KiB, not 32 MiB.
RAFT_HANDSHAKE_MESSAGE_BYTES_MAX = 4 * 1024
# pysyncobj's handshake (key exchange, then the dialer names itself) takes one round trip and a
# tick or two; a connection, ours or a stranger's, still in it after this is dropped. pysyncobj
# would keep a silent connection forever, and an outgoing one stuck there is never redialled.
RAFT_HANDSHAKE_TIMEOUT_S = 5.0
# Incoming connections in the handshake at once; a new one beyond this evicts the oldest, so a
# flood of idle connections cannot exhaust our file descriptors (pysyncobj's server stops
# accepting for good after an accept fails with EMFILE). Voters need one each.
RAFT_HANDSHAKING_CONNECTIONS_COUNT_MAX = 32
# Closes by the peer during the handshake, in a row, before a dialer reports that the cluster
# secrets differ: a peer whose secret differs closes every time; one close may be a restart.
RAFT_HANDSHAKE_CLOSES_REPORTED_COUNT = 2
# A recurring problem with one Raft link (one kind, one peer) is logged at most this often,
# with the count of repeats; links are retried every second, so once a second would flood.
RAFT_LINK_LOG_INTERVAL_S = 10.0
# A node that cannot reach some voters says so first after this (a few connection retries:
# sooner would name peers that are merely starting), then every RAFT_UNREACHABLE_LOG_INTERVAL_S.
RAFT_UNREACHABLE_FIRST_LOG_S = 3.0
RAFT_UNREACHABLE_LOG_INTERVAL_S = 10.0
# Commands waiting for the tick thread; a writer beyond this gets an error, not a queue.
RAFT_COMMANDS_QUEUE_COUNT_MAX = 1000
# How long pysyncobj keeps a peer's resolved address (its defaults: 600 s, and 30 s for a name
# that did not resolve). A peer named by host name (compose: node2) gets a new address when its
# container is recreated, and may not resolve yet while it starts: with the defaults it would
# stay unreachable over Raft for up to 10 minutes, or 30 s. A lookup is cheap next to that.
RAFT_DNS_CACHE_S = 5.0
RAFT_DNS_FAIL_CACHE_S = 1.0

# --- Raft timings (pysyncobj) ------------------------------------------------------------------
#
# pysyncobj sends appended entries on its append tick when batching is on (the default; see
# docs/design.md, "Known traps": with batching off, followers truncate already-applied entries),
# every `RAFT_APPEND_ENTRIES_PERIOD_S`. Measured on this machine (2 shared cores, loopback, ext4,
# journal fdatasync on, sequential writes of one NoOpRecord, three nodes in one process):
#   pysyncobj defaults (tick 50 ms, period 100 ms): median 103 ms per write, three nodes
#   tick 10 ms, period 20 ms:                      median  22 ms (three nodes), 21 ms (one)
# Since issue 13 a leader sends new entries, and the news that entries committed, at the end
# of the tick that appended or committed them whenever its followers have answered everything
# it sent (kraft.quorum), so a write waits for no period: the period is only a heartbeat. Every
# heartbeat is pickled, zlib'd and Fernet-encrypted, and answered: at 20 ms the quorum alone
# cost 1.75-2.1% of a core per node (three idle quorums in one process), at 100 ms 0.75-0.8%,
# and 0.36-0.40% once the tick thread slept until its next timer (below). Whole idle nodes
# (scripts/bench_idle.py, shared machine): 0.8-1.8% of a core with no partitions and 1.2-2.0%
# with 1,000, against 2.6-4.1% and 3.1-4.6% at 20 ms with a 10 ms tick.
# A kill -9 of the leader is noticed as fast: a follower's election timeout runs from the
# last message, which is on average half a period old at the kill.
RAFT_APPEND_ENTRIES_PERIOD_S = 0.1
# The tick thread sleeps in poll until a socket event, a wake-up from a writer (a command
# queued, a flag set) or its next timer (heartbeat, election deadline, redial), at most
# RAFT_IDLE_WAIT_S, which bounds how late the timers pysyncobj keeps to itself are seen (its
# leader fallback, handshake deadlines: a second or more). It ticks every RAFT_TICK_S while work
# waits (queued commands, committed entries to apply); a fixed 10 ms tick cost ~0.3% of a core
# per idle node for nothing. RAFT_TIMER_SLACK_S is the shortest sleep for a timer due now.
RAFT_TICK_S = 0.01
RAFT_IDLE_WAIT_S = 0.1
RAFT_TIMER_SLACK_S = 0.001
# Election timeout range: must stay above 3 x the append period (pysyncobj asserts it), and
# well above GIL stalls of the event loop sharing the process (tens of ms under load).
RAFT_MIN_TIMEOUT_S = 0.4
RAFT_MAX_TIMEOUT_S = 1.0
# A node's first election in a new cluster (term 0: no leader can exist yet, and a candidate
# for term 1 disturbs no leader) comes this long after it first reaches a peer (kraft.quorum).
RAFT_FIRST_ELECTION_MIN_S = 0.05
RAFT_FIRST_ELECTION_MAX_S = 0.3
# A leader that heard from no majority for this long steps down (pysyncobj's default is 30 s).
RAFT_LEADER_FALLBACK_TIMEOUT_S = 1.5
# How often a node redials a lost peer (default 5 s: a healed node would wait 5 s to rejoin):
# after a failed dial it waits RAFT_RECONNECT_BACKOFF_S, doubling up to RAFT_CONNECTION_RETRY_S
# (Kafka's reconnect.backoff.ms 50 and reconnect.backoff.max.ms 1000), so a peer starting a
# moment later, as at a cold start of the cluster, is reached at once.
RAFT_CONNECTION_RETRY_S = 1.0
RAFT_RECONNECT_BACKOFF_S = 0.05
# A connection with no data for this long is dead; must be >= RAFT_MAX_TIMEOUT_S (asserted).
# A follower that has heard nothing from its leader for this long is not ready (pysyncobj keeps
# a follower that reaches nobody on its old leader forever: it starts no election alone).
RAFT_CONNECTION_TIMEOUT_S = 2.0
# Bind attempts at start, RAFT_BIND_RETRY_S apart, before start() gives up with an error.
RAFT_BIND_RETRIES_COUNT = 5
RAFT_BIND_RETRY_S = 0.2
# Log compaction (a dump of the whole state, then the journal is cut): after this many entries
# or this long, whichever comes first.
RAFT_COMPACTION_ENTRIES_COUNT = 5000
RAFT_COMPACTION_INTERVAL_S = 300.0
# Entries kept for the first entry listener (kraft/applied_entries.py) while nobody listens yet:
# twice what a journal holds between dumps, so a restarted node's replay is kept whole. They
# are the decoded records of entries the journal holds as bytes anyway, kept for a second or
# so (until the node starts listening).
APPLIED_ENTRIES_EARLY_COUNT_MAX = 2 * RAFT_COMPACTION_ENTRIES_COUNT
