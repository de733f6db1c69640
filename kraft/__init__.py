"""The cluster metadata: records, the pure state machine, and the Raft quorum shell (pysyncobj)."""
