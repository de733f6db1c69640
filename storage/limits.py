"""Every limit of the storage layer in one place, with its unit in the name and a reason beside it.

Kafka's own defaults (segment size, retention, index interval, max message size) are topic
configs and live in :mod:`storage.log_config`; these are the engine's internal bounds.
"""

from __future__ import annotations

# Header scans (finding the batch that holds an offset, rebuilding an index) read the log in
# windows of this size: one pread covers the headers of many small batches (several index
# intervals of 4 KiB), while a scan over big batches still reads little more than headers.
SCAN_WINDOW_BYTES = 64 * 1024

# Recovery re-reads the unflushed tail in windows of this size to check every CRC: big enough
# that a 1 GiB segment takes a few hundred reads, small enough to bound the memory it uses.
# A batch larger than the window is checked in window-sized pieces (the CRC is incremental).
RECOVERY_WINDOW_BYTES = 4 * 1024 * 1024

# One read returns at most this many bytes (max_bytes is clamped to it), unless the first
# batch alone is larger (Kafka's rule: a read returns at least one whole batch). It bounds
# the memory one fetch can make the node allocate.
READ_BYTES_MAX = 64 * 1024 * 1024

# Log.batch_headers (the producer state rebuilt from the log when a partition opens) reads
# this many bytes at a time: one read holds the headers of thousands of small batches, and the
# memory a rebuild takes stays bounded whatever the log's size (a single batch larger than
# this is read whole, as every read returns at least one batch; max.message.bytes bounds it).
BATCH_HEADERS_READ_BYTES = 1024 * 1024

# Index entries wait in memory and are written with the next flush; past this many pending
# entries (256 KiB of index) they are written at once, bounding memory between flushes.
INDEX_PENDING_ENTRIES_MAX = 32 * 1024

# An active segment's .index and .timeindex are preallocated to this many bytes (rounded down
# to whole entries), zero-filled, and trimmed to their entries when the segment rolls or the
# log closes: Kafka's segment.index.bytes default (10 MiB; we have no such topic config), so
# a running node's files are the size Kafka's are. ftruncate makes the zeros sparse on ext4
# and xfs: an unused preallocated file takes no disk blocks.
INDEX_PREALLOCATE_BYTES = 10 * 1024 * 1024

# Opening a segment reads its index files only up to their first unused (all-zero) entry, in
# reads that start at this size and double: a preallocated file left by a crash is 10 MiB of
# mostly zeros, and a node opening thousands of partitions must not read them all. A multiple
# of both entry sizes (8 and 12 bytes), so no read ends inside an entry.
INDEX_READ_BYTES_MIN = 24 * 512

# Relative offsets in the index files are int32 (Kafka's format): a segment rolls before a
# batch whose last offset is further than this from the segment's base offset.
RELATIVE_OFFSET_MAX = 2**31 - 1

# Positions in the .index file are int32 too, so no segment may grow past 2 GiB - 1 bytes,
# whatever segment.bytes says (Kafka caps segment.bytes at Int.MaxValue for the same reason).
SEGMENT_BYTES_MAX = 2**31 - 1

# A producer snapshot (storage.producer_snapshot) is read whole into memory when a partition
# opens. Ours hold at most one 46-byte entry per producer the table keeps (1,000: about 46 KB);
# Kafka's own have no bound, and one with a million producers on a partition (46 MB) still
# reads. Past this the file is taken as corrupt, so a damaged or foreign file cannot make a
# node allocate without bound.
PRODUCER_SNAPSHOT_BYTES_MAX = 64 * 1024 * 1024

# A compressed batch's records are never decompressed past this many bytes (storage.compression):
# a batch of a few KiB can hold gigabytes of zeros (a decompression bomb). Producers bound a
# batch's uncompressed records by their batch.size (Java 16 KiB, librdkafka 1 MB by default),
# so 64 MiB leaves wide room for a raised batch.size, while one batch can make a node allocate
# no more than one read of uncompressed batches already may (READ_BYTES_MAX). A batch past it
# is refused at produce as corrupt, and a reader of a stored one reports it as corrupt.
DECOMPRESSED_BATCH_BYTES_MAX = 64 * 1024 * 1024

# lz4 and zstd decompress into a buffer that starts at 8 times the compressed size, at least
# this, and doubles while the codec fills it (storage.compression): a typical batch takes one
# pass, a bomb at most log2(DECOMPRESSED_BATCH_BYTES_MAX / this) = 10 passes before refusal.
DECOMPRESS_START_BYTES = 64 * 1024

# A gzip records section may hold at most this many gzip members back to back (Java's
# GZIPInputStream reads concatenated members, so we do too). Kafka's clients and librdkafka
# write one; each member costs a copy of everything after it (zlib's unused_data), so without a
# bound a batch of thousands of empty 20-byte members took seconds to decompress.
GZIP_MEMBERS_MAX = 64
