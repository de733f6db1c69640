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
