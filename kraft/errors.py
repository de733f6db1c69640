"""The errors of the metadata layer.

Three kinds, kept apart:

- Bytes that are not what they claim: :class:`MetadataRecordError` (an encoded entry of
  records), :class:`MetadataSnapshotError` (a state snapshot or a dump file),
  :class:`JournalCorruptError` (the Raft journal). Each says what it expected and what it found.
- A record that is well formed but illegal in the current state: :class:`IllegalRecordError`
  names the record, the state it met and the rule it broke. The state is left unchanged.
- A write that the quorum could not carry out (:class:`QuorumError` and its subclasses). Each
  says whether the write certainly did not happen (:class:`NotControllerError`) or may have
  happened (:class:`OutcomeUnknownError`, :class:`QuorumTimeoutError`), and whether retrying
  can help (``retriable``).
"""

from __future__ import annotations

from typing import Any


class MetadataRecordError(ValueError):
    """Encoded metadata records (or a record's fields) that are malformed."""


class MetadataSnapshotError(ValueError):
    """A metadata snapshot or dump file that does not parse or breaks an invariant."""


class JournalCorruptError(ValueError):
    """A Raft journal file whose header is not ours (a torn tail is cut, not raised)."""


class IllegalRecordError(ValueError):
    """A record the state machine refuses: it names the record, the state and the rule."""

    def __init__(self, record: Any, state: str, rule: str) -> None:
        self.record = record
        self.state = state
        self.rule = rule
        super().__init__(f"can't apply {record!r} to {state}: {rule}")


class QuorumError(Exception):
    """A metadata write that did not complete. ``retriable``: trying again may succeed."""

    retriable = True


class NotControllerError(QuorumError):
    """This node is not the Raft leader (or not in the expected term): nothing was written.

    ``leader_id`` is the leader this node knows of, or None.
    """

    def __init__(self, leader_id: int | None, message: str | None = None) -> None:
        self.leader_id = leader_id
        default = f"this node is not the metadata controller (leader: {leader_id})"
        super().__init__(message or default)


class OutcomeUnknownError(QuorumError):
    """The entry may or may not have been committed: read the state before retrying."""


class QuorumTimeoutError(OutcomeUnknownError):
    """No answer within the timeout; the entry may still commit later."""


class QuorumStoppedError(QuorumError):
    """The quorum was stopped (or failed to start) while a call was waiting."""

    retriable = False
