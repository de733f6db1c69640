"""Every limit of the Kafka listener in one place, with its unit in the name and the reason
beside it. The node-wide limits it shares with the HTTP listener (socket.request.max.bytes,
queued.max.request.bytes, max.connections, connections.max.idle.ms) are settings
(server/config.py), read from the node's config."""

# A frame shorter than this cannot hold a request header's fixed part (api key, api version,
# correlation id): garbage, and the connection closes.
REQUEST_HEADER_PREFIX_BYTES = 8

# A frame's body is read in parts of this size; each part must arrive within
# http.request.read.timeout.ms, so a client that stops mid-frame does not hold a connection and
# its buffer for ever (Kafka has only its idle timeout; ours is stricter).
FRAME_READ_CHUNK_BYTES = 64 * 1024

# A fetch waits at most this long for records (a client's max_wait_ms above it is cut to it):
# the HTTP fetch's long-poll bound, so a forgotten request does not hold its connection.
FETCH_MAX_WAIT_MS_MAX = 60_000
# The bytes of one fetch answer, whatever the request's max_bytes (Kafka's fetch.max.bytes,
# 55 MiB): one consumer cannot make the node read and hold more at once.
FETCH_RESPONSE_BYTES_MAX = 55 * 1024 * 1024
# Consumer fetch sessions (KIP-227) kept at once over all connections (Kafka's
# max.incremental.fetch.session.cache.slots); a session lives as long as its connection, so
# the bound holds against a client that opens many on one connection, the oldest going first.
FETCH_SESSIONS_MAX = 1000

# An acks=all produce waits at most this long for the high watermark (the request's timeout_ms
# above it is cut to it): the HTTP produce's bound.
PRODUCE_TIMEOUT_MS_MAX = 300_000

# A request error's message (error_message fields) is cut to this many characters.
ERROR_MESSAGE_CHARS_MAX = 500

# Requests of one connection in flight at once (read and started, not yet answered): the
# listener reads no further frame of the connection until one is answered, so TCP holds the
# rest back. Kafka's broker serves one at a time; its clients pipeline (Java's producer 5,
# librdkafka up to 1,000,000). Our acks=all produce waits 10-18 ms for the followers' fsync, so
# a producer's next requests start meanwhile; 16 covers librdkafka's one request per
# linger.ms=5 through an 80 ms wait. The bytes they hold count in queued.max.request.bytes, as
# every frame's do; this bound keeps one connection from taking all of it with waiting requests.
REQUESTS_IN_FLIGHT_MAX = 16

# A request of any API but Produce is at most this large; a larger one closes the connection
# from its header, before the rest of its body is read. Kafka has no such cap (only
# socket.request.max.bytes, for every API), but Kafka's parsing is fast: ours walks and decodes
# a request in Python, in the event loop, at about half a second per MiB, so a 10 MiB Fetch
# naming 650k partitions stopped the node for 15 s. Produce alone carries records (its size
# is socket.request.max.bytes'); no real client sends any other request near this large.
NON_PRODUCE_REQUEST_BYTES_MAX = 4 * 1024 * 1024
# The array elements of one request, over all its arrays (bounds.py counts them before kio
# decodes): above it the connection closes. Each element costs the walk, kio's decode and the
# handler's answer (a partition named in a Fetch gets one in the response); 100k partitions is
# far beyond what a client names in one request.
REQUEST_ARRAY_ELEMENTS_MAX = 100_000

# A frame's body arrives at least this fast on average, on top of one
# http.request.read.timeout.ms: a client that trickles a big frame one part at a time does not
# hold its connection for ever. The same bound is given to writing an answer out, so a client
# that stops reading does not pin its answer in memory (Kafka has neither; ours is stricter).
FRAME_TRANSFER_MIN_BYTES_PER_S = 256 * 1024

# A DescribeTopicPartitions answer holds at most this many partitions, whatever the request's
# response_partition_limit asks (Kafka's max.request.partition.size.limit, default 2000): the
# client asks again from the answer's next_cursor, so describing a cluster of 100k partitions
# never builds one huge answer in the event loop.
DESCRIBE_PARTITIONS_PER_RESPONSE_MAX = 2000

# A handler walking a request's partitions gives the event loop to the others every this many
# (a Fetch of 100k partitions is otherwise one slice of Python time).
YIELD_EVERY_PARTITIONS = 1000

# The partitions one consumer fetch session holds (Kafka has no such bound, only its cache's
# slots): with FETCH_SESSIONS_MAX sessions, a session per connection naming every partition
# of a big cluster would hold sessions x partitions entries (~0.5 KB each). 10,000 is the
# partitions of the largest topic a node takes (server/limits.PARTITIONS_PER_TOPIC_MAX): a
# consumer reading all of one topic from one node still gets a session. A full request naming
# more is answered sessionless (session id 0), as Kafka answers when it cannot cache a session.
FETCH_SESSION_PARTITIONS_MAX = 10_000

# The SASL tokens of one authentication (SaslAuthenticate's auth_bytes) are at most this large:
# a PLAIN token holds a user name and a password (1 KiB each at most, server/users.py), SCRAM's
# messages hold a name, nonces and a proof. Kafka's SaslServerAuthenticator bounds the frames
# before authentication to 512 KiB (saslAuthRequestMaxReceiveSize); ours are smaller still.
SASL_TOKEN_BYTES_MAX = 8 * 1024
# Frames before a SASL connection is authenticated are at most this large: the largest token
# plus room for a request header (a client id of a few hundred bytes) and SaslAuthenticate's
# own fields. Kafka's sasl.server.max.receive.size is 524288, but a stranger's frames must
# stay cheap: they are read outside queued.max.request.bytes (which then stays for the
# authenticated clients' requests), so max.connections of them hold at most this much each.
SASL_UNAUTHENTICATED_FRAME_BYTES_MAX = SASL_TOKEN_BYTES_MAX + 8 * 1024
# A SASL connection must be authenticated within this long after it was accepted, or it
# closes. Kafka has no such deadline (a stranger may idle for connections.max.idle.ms, 10 min,
# holding one of max.connections.per.ip, and requests that do not change the state, as an
# ApiVersions of a version too new, reset even that): a few addresses could hold every
# connection slot. A client authenticates in a few round trips and one password check.
SASL_AUTHENTICATION_TIMEOUT_S = 30.0
# The TLS handshake of a new connection must end within this, so a peer that opens TCP and
# says nothing does not hold a connection slot (Kafka's selector counts the handshake in
# connections.max.idle.ms; ours is shorter: no client takes 10 s to say hello).
TLS_HANDSHAKE_TIMEOUT_S = 10.0
# A connection the node closes gets this long to close cleanly (its unsent answer flushed,
# TLS's close_notify sent and the peer's awaited), then its socket is dropped. asyncio waits
# 30 s for a TLS peer's close_notify (ssl_shutdown_timeout), so a peer that never reads held
# a file descriptor that long after each close; Kafka's SslTransportLayer sends close_notify
# and does not wait for the answer. The connection still counts in max.connections and
# max.connections.per.ip until its socket is closed.
CONNECTION_CLOSE_TIMEOUT_S = 1.0
