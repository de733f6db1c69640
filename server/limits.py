"""Every limit of the node in one place, with its unit in the name and the reason beside it."""

from kraft import limits as kraft_limits

# Request bodies: a produce of many records fits, and one record of max.message.bytes (1 MiB by
# default) with JSON and base64 overhead fits too; bigger bodies get a JSON 413 before parsing.
HTTP_REQUEST_BYTES_MAX = 8 * 1024 * 1024

# The largest request body of any kind (Kafka's socket.request.max.bytes, 100 MiB); nothing, not
# even max.message.bytes, may need a bigger one.
SOCKET_REQUEST_MAX_BYTES = 100 * 1024 * 1024
# Request body bytes held by the node at once, over every request (Kafka's
# queued.max.request.bytes): a request that would go above waits for room, then gets a 503.
QUEUED_MAX_REQUEST_BYTES = 200 * 1024 * 1024
# Open client connections (Kafka's max.connections is unbounded; a node's file handles are not).
MAX_CONNECTIONS = 1000
# Open connections from one IP address on the KAFKA listener (Kafka's max.connections.per.ip,
# unbounded by default): one peer cannot take every slot of max.connections.
MAX_CONNECTIONS_PER_IP = 200
# A connection without a request for this long is closed (Kafka's connections.max.idle.ms).
CONNECTIONS_MAX_IDLE_MS = 600_000
# A request's headers, and each part of its body, must arrive within this, so a client that
# stops mid-request does not hold a connection and its buffers for ever.
REQUEST_READ_TIMEOUT_MS = 30_000
# A failed authentication on the KAFKA listener is answered, and its connection closed, this
# much later (Kafka's connection.failed.authentication.delay.ms): a client guessing passwords
# gets at most one guess per delay per connection. At most a minute, so a closing connection
# does not linger for ever (and the request read timeout outlasts it).
FAILED_AUTHENTICATION_DELAY_MS = 100
FAILED_AUTHENTICATION_DELAY_MS_MAX = 60_000

# Records in one produce request: bounds the event-loop time one request takes (100,000
# records of 48 bytes took 0.8 s to parse and plan, longer than a Raft election timeout).
PRODUCE_RECORDS_MAX = 10_000

# An acks=all produce waits this long for the high watermark by default (Kafka's
# request.timeout.ms is 30 s), then answers REQUEST_TIMED_OUT (the outcome is unknown).
PRODUCE_TIMEOUT_MS_DEFAULT = 30_000
PRODUCE_TIMEOUT_MS_MAX = 300_000

# Fetch defaults and bounds: a long poll may wait at most this long, so a forgotten request
# does not hold a connection for ever; max_bytes is bounded so one fetch cannot make the node
# read and encode hundreds of MiB into one JSON body.
FETCH_TIMEOUT_MS_MAX = 60_000
FETCH_MAX_BYTES_DEFAULT = 1024 * 1024
FETCH_MAX_BYTES_MAX = 64 * 1024 * 1024
FETCH_MAX_RECORDS_DEFAULT = 500
FETCH_MAX_RECORDS_MAX = 10_000

# follow=true streams send a heartbeat line this often when no record arrives, so a client
# (and any proxy between) sees the stream is alive.
STREAM_HEARTBEAT_MS = 5_000
# A stream reads at most this many bytes of records per step, then yields to other requests.
STREAM_READ_BYTES = 256 * 1024

# Kafka's log.retention.check.interval.ms is 5 minutes; one minute keeps a lab's short
# retention.ms visible without a long wait.
RETENTION_CHECK_INTERVAL_MS = 60_000

# Checkpoint files (recovery point, log start offset, high watermark) are rewritten this often,
# as Kafka's log.flush.offset.checkpoint.interval.ms (60 s) and replica HW checkpoint (5 s).
CHECKPOINT_INTERVAL_MS = 5_000

# Partitions per topic and in total on one node: each open log holds file handles.
PARTITIONS_PER_TOPIC_MAX = 10_000

# A metadata write (topic creation, say) waits this long for the quorum to commit it.
METADATA_WRITE_TIMEOUT_S = 10.0

# Broker sessions (docs/design.md): heartbeats every 300 ms, fenced after 1.5 s without one, so a
# dead broker's partitions move within seconds (Kafka's defaults are 2 s and 9 s).
BROKER_HEARTBEAT_INTERVAL_S = 0.3
BROKER_SESSION_TIMEOUT_S = 1.5
# Until it is first unfenced, a starting broker asks again this soon after the controller
# answered (Kafka's BrokerLifecycleManager heartbeats every 10 ms while STARTING), doubling the
# pause after each failure up to the heartbeat interval: a cold start waits on no interval,
# and a node that cannot reach a controller for long asks no more often than a running one.
BROKER_STARTING_POLL_S = 0.01
# How often the controller looks for ended sessions and leaderless partitions.
CONTROLLER_TICK_S = 0.1
# The controller wakes this long after the soonest session's end (timers may fire a little
# early), and never sooner than this from now.
CONTROLLER_DEADLINE_SLACK_S = 0.002
# Node-to-node HTTP (registration, heartbeats, forwarded admin requests): a peer that does not
# answer in this time is treated as unreachable, well within one broker session.
INTERNAL_HTTP_TIMEOUT_S = 1.0
# A forwarded admin request may wait for a metadata commit.
FORWARD_TIMEOUT_S = METADATA_WRITE_TIMEOUT_S + 5.0
# A registration refused because a live broker has this node.id is retried this long (three
# sessions: the live one may be this node's previous process, killed a moment ago) before the
# node gives up and exits.
DUPLICATE_REGISTRATION_GIVE_UP_S = 3 * BROKER_SESSION_TIMEOUT_S
# A new controller counts each voter's session from its last Raft message, and from its later
# ones too until its first heartbeat, for at most this long after the election: a broker alive
# on Raft has this long to find the new controller (server/controller_driver.py), enough for
# a heartbeat stuck on the silent previous controller (INTERNAL_HTTP_TIMEOUT_S), the pause
# before the next one and its round trip (allowed 0.2 s), less the shortest election after the
# old controller's last message (RAFT_MIN_TIMEOUT_S after it, which may come one append period
# before it went silent).
NEW_CONTROLLER_GRACE_S = 1.2
assert NEW_CONTROLLER_GRACE_S >= (
    INTERNAL_HTTP_TIMEOUT_S
    + BROKER_HEARTBEAT_INTERVAL_S
    + 0.2
    - (kraft_limits.RAFT_MIN_TIMEOUT_S - kraft_limits.RAFT_APPEND_ENTRIES_PERIOD_S)
)
assert NEW_CONTROLLER_GRACE_S < BROKER_SESSION_TIMEOUT_S
# Every inherited session lasts at least this long from the election: a voter last heard long
# ago (followers message each other only to vote) is alive if it answers the new leader's
# first appends, which takes a tick and a journal fsync. The dead old leader is not kept longer
# by it: it was elected at most RAFT_MAX_TIMEOUT_S after that leader's last message, whose
# session then ends later anyway.
NEW_CONTROLLER_RAFT_GRACE_S = 0.5
assert NEW_CONTROLLER_RAFT_GRACE_S + kraft_limits.RAFT_MAX_TIMEOUT_S <= BROKER_SESSION_TIMEOUT_S
# Producer ids are handed to brokers in blocks, as Kafka does (1,000 a block), so allocating
# one for a producer needs no metadata write most of the time.
PRODUCER_ID_BLOCK_SIZE = 1000

# Replica fetches (followers pull from leaders): a leader holds a fetch with nothing new for
# up to REPLICA_FETCH_WAIT_MS, so an idle follower costs two requests a second per leader;
# one answer carries at most REPLICA_FETCH_BYTES, bounding a follower's memory per round.
REPLICA_FETCH_WAIT_MS = 500
REPLICA_FETCH_WAIT_MS_MAX = 5_000
REPLICA_FETCH_BYTES = 4 * 1024 * 1024
REPLICA_FETCH_BYTES_MAX = 64 * 1024 * 1024
# A fetch that failed (leader away) is retried after this pause.
REPLICA_FETCH_BACKOFF_S = 0.2
# A fetch whose every partition was refused (an epoch not applied yet on one side) is sent
# again after a metadata change of those partitions, or this pause: no spinning meanwhile, and
# short next to the failover it may delay (Kafka's replica.fetch.backoff.ms is 1 s).
REPLICA_FETCH_ERROR_BACKOFF_S = 0.05
# A follower's fetch session names only partitions an event changed; every this many seconds
# it also compares every partition it follows there with what the leader holds.
REPLICA_FETCH_RECHECK_S = 5.0
# A leader keeps at most this many replica fetch sessions. One per follower node is the need
# (a follower's new session replaces its previous one); the bound holds against a peer that
# opens many, the least recently used going first. (Kafka's
# max.incremental.fetch.session.cache.slots, 1,000, counts client sessions too.)
FETCH_SESSIONS_MAX = 64
# A produced binary batch above this many bytes is checked in a worker thread: the record walk
# takes about a microsecond a record, and a batch of max.message.bytes in small records would
# hold the event loop (every other request, the heartbeats) for a tenth of a second or more.
CHECK_IN_THREAD_BYTES_MIN = 256 * 1024
# A live follower that has not caught up for this long leaves the ISR (Kafka: 30 s; docs/design.md
# asks for 10 s); node.properties' replica.lag.time.max.ms overrides it.
REPLICA_LAG_TIME_MAX_MS = 10_000
# How often a leader looks for followers to drop from, or add to, the ISR.
ISR_CHECK_INTERVAL_S = 1.0
# A node that wrote or forwarded an admin request waits at most this long to apply its result
# before answering (normally one Raft round, a few ms); a produce or fetch to a partition this
# node was just given waits at most this long for its replica to open (a millisecond or two per
# new replica).
FORWARD_APPLY_WAIT_S = 2.0
# The node's log: a message template logged more than this many times within the interval is
# dropped until the interval ends (a loop must not fill the disk; a real burst, say one line
# per partition at startup, stays under it for all but the most repeated lines).
LOG_REPEAT_BURST = 50
LOG_REPEAT_INTERVAL_S = 60.0
LOG_REPEAT_TEMPLATES_MAX = 4096  # templates tracked at once: more are pruned by age
# kraft-server-start --log-file: the file rolls at this size and this many old ones are kept,
# so a node's log takes at most 5 x 64 MiB of disk.
LOG_FILE_BYTES = 64 * 1024 * 1024
LOG_FILE_BACKUPS = 4
# A controller cut off from the brokers' heartbeats asks the quorum to hand its leadership over
# at most this often (a transfer is denied while no voter is caught up).
CONTROLLER_TRANSFER_RETRY_S = 1.0
# A leader whose ISR change went unanswered (the controller moved, a timeout) sends it again
# after this long: the change may have been made, and the HW counts its members until the
# metadata says.
ISR_CHANGE_RETRY_S = 0.5
# ISR change requests wait this long to be sent to the controller together (Kafka batches
# AlterPartition the same way): one metadata entry for many partitions.
ISR_CHANGE_BATCH_S = 0.02
# Preferred-leader balancing, Kafka's defaults (auto.leader.rebalance.enable=true): every
# leader.imbalance.check.interval.seconds the controller moves leadership back to preferred
# replicas for each broker above leader.imbalance.per.broker.percentage of its partitions led
# elsewhere. node.properties overrides them.
LEADER_IMBALANCE_CHECK_INTERVAL_S = 300
LEADER_IMBALANCE_PER_BROKER_PERCENTAGE = 10
# Node-to-node calls carry a timestamp under their proof of the cluster secret
# (server/internal_auth.py): one stamped further than this from the receiver's clock is refused,
# so a recorded call cannot be replayed later. Wide enough for clocks that drift a little
# apart (NTP keeps them within milliseconds); a call takes at most FORWARD_TIMEOUT_S to arrive.
INTERNAL_AUTH_WINDOW_MS = 30_000
# Nonces of accepted node-to-node calls remembered within that window, so an exact replay is
# refused: about 220 bytes each, 22 MB at most. A node receives a few hundred calls a second
# under load (its followers' fetch rounds, heartbeats, forwards); when a flood fills the cache,
# the oldest nonces go and calls stamped before them are refused (the window shrinks, no replay
# passes): at 5,000 calls a second it still spans 20 s, longer than any call takes to arrive.
INTERNAL_AUTH_NONCES_MAX = 100_000
# A peer's error quoted in a message (a node-to-node call that got no answer) is cut to this
# many characters: one line that names the cause, not kilobytes of a library's internals.
PEER_ERROR_CHARS_MAX = 200

# -- the HTTP listener, request bodies, users and ACLs (issue 11: hardening) --
# A body is read in parts of this size: one part is what a stalled or slow client can make the
# node wait for at most http.request.read.timeout.ms.
BODY_READ_CHUNK_BYTES = 64 * 1024
# A request whose body does not fit in queued.max.request.bytes beside the others waits this
# long for room, then gets SERVER_BUSY: long enough for a burst of produces to pass, short
# enough that a client is not left hanging by a node under memory pressure.
BODY_BUDGET_WAIT_MS = 1_000
BUSY_RETRY_AFTER_S = 1
# Any error message is cut to this many characters, whatever built it: a message names what
# was wrong, it does not echo a request back (an 8,000-character path) or a library's reprs.
ERROR_MESSAGE_CHARS_MAX = 500
# The request line and each header line (aiohttp's default, as nginx's 8k): a longer one is
# refused with 413 before it is buffered further.
HTTP_LINE_BYTES_MAX = 8190
# Header lines in one request (aiohttp's default): more are refused with 413.
HTTP_HEADERS_MAX = 128
# Request heads split apart in one read, so each pipelined request gets its own answer even
# when a malformed one follows it (aiohttp's parser drops a read's good requests when a later
# one fails); the rest of the read goes to the parser whole. Bounds the parser calls a read
# of blank lines can cost.
HTTP_PIPELINED_HEADS_MAX = 16
# A refused request whose body was not read is drained (read and dropped) for at most this long
# (and at most http.request.read.timeout.ms) before the connection closes, so a client still
# sending reads the answer instead of a reset.
REFUSED_BODY_LINGER_S = 10.0
# Waking four to ten times a second costs nothing measurable and still sees a 100 ms stall.
LOOP_LAG_INTERVAL_S = 0.2
# Above this the node's own timers (300 ms heartbeats, 100 ms controller ticks) slip visibly.
LOOP_LAG_WARN_MS = 100.0
# At most one warning line this often while the loop stays slow.
LOOP_LAG_WARN_EVERY_S = 10.0
# How often the node looks at http.users.file's mtime: adding a user takes effect within this.
USERS_FILE_CHECK_INTERVAL_S = 1.0
# A verified Authorization header is trusted again without PBKDF2 for this long, and at most
# this many are remembered (oldest dropped first). A removed user or changed password takes
# effect at the next reload, which forgets them all.
LOGIN_CACHE_TTL_S = 60.0
LOGIN_CACHE_ENTRIES_MAX = 4096
# Password checks (PBKDF2, a few ms each by design) run in a pool of this many worker threads
# (server/password_checks.py, HTTP and KAFKA alike); more wait their turn: a flood of wrong
# passwords takes one core, not all of them.
PASSWORD_CHECKS_AT_ONCE_MAX = 1
# One request creates at most this many ACLs: one metadata entry, well under its size limit.
ACLS_PER_REQUEST_MAX = 1000


# -- consumer groups -----------------------------------------------------------------------------

# Kafka's defaults for __consumer_offsets: 50 partitions spread the coordinators over the nodes;
# three copies survive one node's loss. The replication factor is lowered to the number of
# registered brokers when the topic is created (a one-node lab could never create it).
OFFSETS_TOPIC_PARTITIONS = 50
OFFSETS_TOPIC_REPLICATION_FACTOR = 3
# Kafka 4's consumer-protocol defaults, but the minimum session: Kafka's is 45 s, which makes a
# "kill a consumer and watch its partitions move" lab a long wait; 6 s is the classic protocol's.
GROUP_SESSION_TIMEOUT_MS = 45_000
GROUP_MIN_SESSION_TIMEOUT_MS = 6_000
GROUP_MAX_SESSION_TIMEOUT_MS = 300_000
GROUP_HEARTBEAT_INTERVAL_MS = 5_000
# A member that must give partitions up and has not done so this long after being told is
# removed (Kafka: the member's rebalance timeout, max.poll.interval.ms, 300 s by default).
GROUP_REBALANCE_TIMEOUT_MS = 300_000
OFFSET_METADATA_BYTES_MAX = 4096
# A group id longer than this is refused (INVALID_GROUP_ID): it is a key of every commit
# record, and a path segment.
GROUP_ID_CHARS_MAX = 255
# Members per group: each costs heartbeats and a share of every assignment computation.
GROUP_MEMBERS_MAX = 1000
# Offsets per commit request (Kafka bounds it by the request size only; a commit is one
# __consumer_offsets batch, which must stay far below max.message.bytes).
COMMIT_OFFSETS_MAX = 10_000
# How often the coordinator looks for members whose session expired.
GROUP_EXPIRY_CHECK_INTERVAL_MS = 500
