"""The metadata quorum's voter set (Kafka's KIP-853, a dynamic controller quorum): pure rules.

The voter set lives in the Raft log itself, as pysyncobj's membership entries (``add`` or
``rem`` one voter's Raft address; Raft's single-server change). Like every Raft, a node uses
the latest voter set *in its log*, committed or not, from the moment the entry is appended:
a leader counts a new voter toward its majority at once, and a follower that drops the entry
(a new leader overwrote it) goes back to the set before it. The dump a node writes at log
compaction carries the voter set at its index (``kraft/dump.py``).

So a node learns the current voters at start from its own files (:func:`log_voters`): the
dump's voters, then every membership entry of the journal after the dump. That set wins over
``controller.quorum.voters`` of the node's properties, which stays as formatted (Kafka keeps
its static voters' config too, and its log's VotersRecord wins).

Rules of a change (:func:`check_add`, :func:`check_remove`), Kafka's AddRaftVoter and
RemoveRaftVoter: one change at a time; a new voter is a controller that follows the log as an
observer and is caught up (its log within :data:`CATCH_UP_LAG_ENTRIES` entries of the
leader's commit index); a voter is named by id and directory id; the last voter stays.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from kraft.dump import decode_dump
from kraft.errors import MetadataSnapshotError
from kraft.journal import FILE_HEADER, MEMBERSHIP_COMMAND, Entry, parse_entries

__all__ = [
    "CATCH_UP_LAG_ENTRIES",
    "MEMBERSHIP",
    "VoterChangeError",
    "apply_changes",
    "check_add",
    "check_base",
    "check_live_majority",
    "counted_live",
    "journal_entries",
    "saved_commit_index",
    "check_remove",
    "continues_dump",
    "log_voters",
    "membership_change",
    "pending_change",
    "uncommitted_add",
    "undo_changes",
]

# pysyncobj's command type byte of a membership entry (syncobj._COMMAND_TYPE.MEMBERSHIP).
MEMBERSHIP = MEMBERSHIP_COMMAND[0]
# How far behind the leader's commit index a new voter's log may end when it is added. Kafka
# adds a voter only once its fetch offset reached the leader's high watermark at the time of
# the check; entries committed meanwhile are a few at most (one append round).
CATCH_UP_LAG_ENTRIES = 16


class VoterChangeError(Exception):
    """A voter change refused: ``kind`` names the API error (REQUEST_TIMED_OUT: not yet,
    retriable; DUPLICATE_VOTER; VOTER_NOT_FOUND; INVALID_REQUEST), the message says why."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def membership_change(command: bytes) -> tuple[str, str] | None:
    """``("add" | "rem", address)`` of a pysyncobj membership entry's command, else None."""
    if not command or command[0] != MEMBERSHIP:
        return None
    try:
        # Only entries from our own quorum's log (authenticated, CRC-checked) reach here.
        request = pickle.loads(command[1:])  # noqa: S301
    except Exception:
        return None
    if (
        type(request) is not list
        or len(request) < 2
        or request[0] not in ("add", "rem")
        or type(request[1]) is not str
    ):
        return None
    return str(request[0]), str(request[1])


def apply_changes(voters: Iterable[str], entries: Iterable[Entry]) -> tuple[str, ...]:
    """The voter set after the membership entries among ``entries``, in order (an add of a
    voter already there or a removal of one not there changes nothing, as pysyncobj)."""
    current = list(voters)
    for command, _index, _term in entries:
        change = membership_change(command)
        if change is None:
            continue
        kind, address = change
        if kind == "add" and address not in current:
            current.append(address)
        elif kind == "rem" and address in current:
            current.remove(address)
    return tuple(sorted(current))


def undo_changes(voters: Iterable[str], entries: Sequence[Entry], after: int) -> tuple[str, ...]:
    """The voter set as it was at index ``after``, given ``voters`` (the set now, changed by
    every membership entry appended) and the log's ``entries``: the membership entries above
    ``after`` undone, latest first. Exact under the rules of a change (an add only of a
    non-voter, a removal only of a voter)."""
    current = set(voters)
    for command, index, _term in reversed(entries):
        if index <= after:
            break
        change = membership_change(command)
        if change is None:
            continue
        kind, address = change
        if kind == "add":
            current.discard(address)
        else:
            current.add(address)
    return tuple(sorted(current))


def pending_change(entries: Sequence[Entry], commit_index: int) -> str | None:
    """The voter change among the log's ``entries`` that is not committed yet (its index
    above ``commit_index``), described, else None: one change at a time counts the log's,
    whatever became of the request that wrote it (timed out, or written by an earlier
    leader)."""
    for command, index, _term in reversed(entries):
        if index <= commit_index:
            return None
        change = membership_change(command)
        if change is not None:
            verb = "adding" if change[0] == "add" else "removing"
            return f"{verb} the voter at {change[1]}, entry {index}, not committed yet"
    return None


def uncommitted_add(entries: Sequence[Entry], address: str, commit_index: int) -> int | None:
    """The index of the latest change of ``address`` among ``entries`` when it is an add
    above ``commit_index`` (not known to be committed), else None.

    A controller that was added turns voter only once its add is committed: until then a new
    leader may overwrite the entry, and a node that took itself for a voter would get no
    append to learn so (the voters refuse a non-voter's link) and stay an isolated voter."""
    for command, index, _term in reversed(entries):
        change = membership_change(command)
        if change is None or change[1] != address:
            continue
        return index if change[0] == "add" and index > commit_index else None
    return None


def saved_commit_index(data_dir: Path, meta_file: str) -> int:
    """The commit index the quorum state file in ``data_dir`` saved (saved lazily, so it may
    trail the log's); 0 when it cannot be read (nothing is known committed)."""
    try:
        stored = orjson.loads((data_dir / meta_file).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return 0
    index = stored.get("commit_index") if type(stored) is dict else None
    return index if type(index) is int else 0


def continues_dump(entries: Sequence[Entry], prev_entry: Entry, last_entry: Entry) -> bool:
    """Whether a journal starts with the dump's last two entries, as one cut after that dump
    does; pysyncobj keeps only such a journal when it loads the dump (it clears any other)."""
    return (
        len(entries) >= 2
        and tuple(entries[0]) == tuple(prev_entry)
        and tuple(entries[1]) == tuple(last_entry)
    )


def journal_entries(data_dir: Path, journal_file: str) -> list[Entry]:
    """The entries of the journal in ``data_dir`` (none when it cannot be read)."""
    try:
        entries, _offsets, _end = parse_entries(
            (data_dir / journal_file).read_bytes(), FILE_HEADER.size
        )
    except OSError:
        return []
    return entries


def log_voters(
    data_dir: Path, dump_file: str, journal_file: str, base: Sequence[str]
) -> tuple[str, ...] | None:
    """The voters (Raft addresses) of the metadata log in ``data_dir`` as its files hold
    them: the dump's set, changed by the journal's membership entries after the dump. None
    when the files say nothing of the voters (no dump and no membership entry): then the
    configured voters are the set (a cluster as formatted).

    Without a dump the journal starts at the log's first entry, whose voters are the
    formatted ones: ``base`` stands for them (controller.quorum.voters; a node that knows only
    controller.quorum.bootstrap.servers gives those, the voters when it joined: every
    original voter not removed since is among them, and the journal's changes say the rest).

    Reads the files only; a torn journal tail counts as absent here (the journal cuts it
    when it opens). A dump that exists but does not decode raises MetadataSnapshotError
    naming the file (OSError when it cannot be read): pysyncobj would skip it and go on with
    the voters of ``base``, which may not be the log's, so the node must not start."""
    dump_voters: tuple[str, ...] | None = None
    dump_index = 0
    entries = journal_entries(data_dir, journal_file)
    path = data_dir / dump_file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = None
    if data is not None:
        try:
            dump = decode_dump(data)
        except MetadataSnapshotError as e:
            raise MetadataSnapshotError(
                f"the metadata dump {path} does not decode ({e}): this node cannot tell the "
                "quorum's voters; restore the file, or move the metadata directory aside to "
                "follow the log afresh"
            ) from None
        dump_voters = tuple(v for v in dump.voters if _is_address(v))
        dump_index = dump.last_entry[1]
        if not continues_dump(entries, dump.prev_entry, dump.last_entry):
            entries = []  # pysyncobj clears such a journal when it loads the dump
    later = [e for e in entries if e[1] > dump_index]
    if dump_voters is None and not any(membership_change(e[0]) for e in later):
        return None
    return apply_changes(base if dump_voters is None else dump_voters, later)


def _is_address(text: str) -> bool:
    host, sep, port = text.rpartition(":")
    return bool(sep and host and port.isdigit())


@dataclass(frozen=True)
class Observed:
    """What the leader knows of an observer: its node id, the end of its log it acked, and
    for a controller waiting to be added the Raft address and directory id its handshake
    said (None for a broker-only node, which has no Raft listener)."""

    node_id: int
    match_index: int | None
    raft_address: str | None = None
    directory_id: str | None = None
    # The addresses it counts its voters from, changed by the log (see check_base).
    base: tuple[str, ...] = ()


def check_add(
    voter_id: int,
    address: str,
    voters: Mapping[str, int | None],
    observers: Sequence[Observed],
    commit_index: int,
    pending: str | None,
    directory_id: str | None = None,
) -> None:
    """Raises VoterChangeError unless ``voter_id`` at Raft ``address`` with ``directory_id``
    may become a voter now.

    ``voters`` are the current voters' addresses with their ids (None: not known yet),
    ``observers`` the observers linked to the leader, ``pending`` the change in flight. The
    new voter must be a linked observer that is a controller whose handshake names this very
    address and directory id: a voter at an address nobody serves (or that the node does not
    take: pysyncobj names a voter by its listener address) would count toward every majority
    and never answer."""
    if pending is not None:
        raise VoterChangeError(
            "REQUEST_TIMED_OUT",
            f"a voter change is in progress ({pending}); one change at a time: retry once "
            "it is done",
        )
    if address in voters:
        raise VoterChangeError(
            "DUPLICATE_VOTER",
            f"the Raft address {address} is already a voter's (node {voters[address]})",
        )
    if voter_id in voters.values():
        raise VoterChangeError("DUPLICATE_VOTER", f"node {voter_id} is already a voter")
    matched = [o.match_index for o in observers if o.node_id == voter_id]
    if not matched:
        raise VoterChangeError(
            "REQUEST_TIMED_OUT",
            f"node {voter_id} does not follow the metadata log as an observer of the leader: "
            "start it first (process.roles=controller with "
            "controller.quorum.bootstrap.servers), then add it",
        )
    controllers = [o for o in observers if o.node_id == voter_id and o.raft_address]
    if not controllers:
        raise VoterChangeError(
            "INVALID_REQUEST",
            f"node {voter_id} follows the metadata log as a broker-only node: only a controller "
            "(process.roles=controller with controller.quorum.bootstrap.servers, and a "
            "directory.id in its meta.properties) can be added",
        )
    if not any(o.raft_address == address for o in controllers):
        said = ", ".join(sorted({str(o.raft_address) for o in controllers}))
        raise VoterChangeError(
            "INVALID_REQUEST",
            f"node {voter_id}'s Raft address (its CONTROLLER listener in `listeners`) is "
            f"{said}, not {address}",
        )
    if directory_id is not None and not any(
        o.raft_address == address and o.directory_id == directory_id for o in controllers
    ):
        said = ", ".join(sorted({str(o.directory_id) for o in controllers}))
        raise VoterChangeError(
            "INVALID_REQUEST", f"node {voter_id} has directory id {said}, not {directory_id}"
        )
    matched = [
        o.match_index
        for o in controllers
        if o.raft_address == address and directory_id in (None, o.directory_id)
    ]
    best = max((m for m in matched if m is not None), default=None)
    if best is None or best < commit_index - CATCH_UP_LAG_ENTRIES:
        raise VoterChangeError(
            "REQUEST_TIMED_OUT",
            f"node {voter_id} is not caught up: its log ends at {best}, the leader's commit "
            f"index is {commit_index}; retry once it has caught up",
        )


def check_base(
    voter_id: int, base: Sequence[str], entries: Sequence[Entry], voters: Mapping[str, int | None]
) -> None:
    """Raises VoterChangeError unless observer ``voter_id``, counting its voters from
    ``base`` (its handshake's base voters: controller.quorum.bootstrap.servers) changed by
    the log's membership entries, counts the leader's ``voters``; ``entries`` are the
    leader's journal (the log after its dump, if any).

    Until it has a dump, a joined controller counts its voters that way (kraft/voters
    log_voters): a base that leaves a voter out would make it turn voter, or restart, with a
    minority that can elect it beside the real quorum. Checked on the leader's entries after
    its dump, the answer is exact when they start at 1 and never wrong otherwise: a voter the
    compacted entries changed that the later ones do not counts the same either way only
    when the base already agrees with the leader's set on it (else refused)."""
    counted = apply_changes(base, entries)
    actual = tuple(sorted(voters))
    if base and counted == actual:
        return
    raise VoterChangeError(
        "INVALID_REQUEST",
        f"node {voter_id} counts the voters from its controller.quorum.bootstrap.servers "
        f"({', '.join(base) or 'not said: an older version'}) and the log as "
        f"{', '.join(counted)}, but they are {', '.join(actual)}: restart it with bootstrap "
        "servers naming every voter, then add it",
    )


def counted_live(
    new_voters: Iterable[str], live: Iterable[str], adding: str | None = None
) -> set[str]:
    """The addresses that count toward the majority of ``new_voters`` (the set after the
    change): the ``live`` old voters, and for an add (the new voter's Raft address
    ``adding``) the new voter only when the new set has at most two voters.

    pysyncobj's leader commits on its followers' match indexes, and a new voter sends none
    while it is an observer: it turns voter only once its add is committed (kraft/quorum.py
    _add_settled), except in a set of two, where the add commits only with its vote and it
    turns voter at once. Counting it in a larger set would let an add through that the old
    voters cannot commit alone; no election could then win either (it never votes)."""
    voters = set(new_voters)
    alive = set(live)
    if adding is not None:
        if len(voters) <= 2:
            alive.add(adding)
        else:
            alive.discard(adding)
    return alive


def check_live_majority(
    new_voters: Iterable[str],
    live: Iterable[str],
    ids: Mapping[str, int | None],
    what: str,
    adding: str | None = None,
) -> None:
    """Raises VoterChangeError unless a majority of ``new_voters`` (the set after the change)
    is live: answering the leader lately with a log near its end (the leader itself, and
    the new voter ``adding`` as :func:`counted_live` says). Otherwise the change could never
    commit: the leader would step down, and every journal holding the change would count
    the new set, which has no majority, until the absent voters come back."""
    voters = sorted(set(new_voters))
    alive = counted_live(voters, live, adding)
    majority = len(voters) // 2 + 1
    up = [a for a in voters if a in alive]
    if len(up) >= majority:
        return
    down = ", ".join(
        f"node {ids.get(a)} ({a})" if ids.get(a) is not None else a
        for a in voters
        if a not in alive and a != adding
    )
    if adding is None:
        raise VoterChangeError(
            "REQUEST_TIMED_OUT",
            f"{what} would leave {len(up)} of {len(voters)} voters live, and a quorum needs "
            f"{majority}: {down} not answering or behind; retry once they are back",
        )
    raise VoterChangeError(
        "REQUEST_TIMED_OUT",
        f"{what} would leave {len(up)} of {len(voters)} voters live, and a quorum needs "
        f"{majority} (the new voter counts only once its add is committed): {down} not "
        "answering or behind; remove a voter that is gone for good first, or retry once "
        "they are back",
    )


def check_remove(
    voter_id: int,
    directory_id: str | None,
    voters: Mapping[str, int | None],
    directories: Mapping[int, str | None],
    pending: str | None,
) -> str:
    """The Raft address of the voter to remove, or raises VoterChangeError.

    ``directories`` are the voters' directory ids as their registrations say (None: a
    registration that did not say, which any directory id given matches)."""
    if pending is not None:
        raise VoterChangeError(
            "REQUEST_TIMED_OUT",
            f"a voter change is in progress ({pending}); one change at a time: retry once "
            "it is done",
        )
    address = next((a for a, i in voters.items() if i == voter_id), None)
    if address is None:
        raise VoterChangeError(
            "VOTER_NOT_FOUND",
            f"node {voter_id} is not a voter (the voters are "
            f"{sorted(i for i in voters.values() if i is not None)})",
        )
    known = directories.get(voter_id)
    if directory_id is not None and known is not None and directory_id != known:
        raise VoterChangeError(
            "VOTER_NOT_FOUND",
            f"voter {voter_id} has directory id {known}, not {directory_id}",
        )
    if len(voters) == 1:
        raise VoterChangeError(
            "INVALID_REQUEST", f"node {voter_id} is the last voter: a quorum needs one"
        )
    return address
