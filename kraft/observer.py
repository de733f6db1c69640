"""A broker-only node's view of the metadata quorum: an observer of the Raft log.

Kafka's broker-only nodes fetch the metadata log from the quorum's leader as *observers*: they
apply every committed record but never vote, never count for a majority and never lead. Ours
are pysyncobj *read-only nodes* (``SyncObj(None, voters)``):

- The observer has no Raft address: it dials every voter it knows (from
  ``controller.quorum.bootstrap.servers`` or ``controller.quorum.voters``) with the voters'
  handshake and cluster secret, and names itself ``observer <node id>``
  (``kraft/transport.py``). The leader sends it the same appends, commit index and dump as a
  follower, and counts none of its answers toward a commit; it starts no election (pysyncobj
  elects only with an address of its own).
- It applies what the leader says is committed, in order, through the very code path a voter
  uses (:meth:`MetadataQuorum._apply`, the same fencing by term, the same listeners and
  entry listeners): at the same applied index its state equals the voters' (the
  ``metadata_digest`` of ``GET /v1/cluster/quorum``).
- It keeps its own journal, term and dump in ``__cluster_metadata-0``, fsynced as a voter's
  are: a restart replays them and catches up from there (or receives the leader's dump when
  the leader has cut its journal past the observer's end).
- Writes on it raise :class:`~kraft.errors.NotControllerError` naming the leader it knows, the
  path that makes a node forward an admin request to the controller.
- Only the leader sends appends, so the observer's leader is whichever voter sent the latest
  one; with only bootstrap addresses it learns the voters' ids from their
  ``RegisterControllerRecord`` (``state.controllers``), which a controller writes when it
  takes over, before anything else of its term.

The voter set changes (kraft/voters.py): the membership entries reach an observer with the
log, and pysyncobj makes it dial a new voter and drop a removed one as it appends them; a
restart dials the voters its own log names (its dump and journal) and the configured
addresses besides: either may be stale (the log's voters all replaced while the node was
down; a bootstrap list naming removed controllers), and the leader found among them sends
the log whose changes name the voters.

A controller being added to the quorum (``raft_address`` given: process.roles=controller with
only controller.quorum.bootstrap.servers) starts as an observer too, so that it catches up
first; once its log makes it a voter, it becomes one in place (``MetadataQuorum._promote``)
and from then on behaves as a voter in every method here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pysyncobj.node import TCPNode

from kraft import limits
from kraft.quorum import MetadataQuorum

__all__ = ["MetadataObserver", "extra_dial"]

logger = logging.getLogger(__name__)


def extra_dial(
    configured: Sequence[str], log_voters: Sequence[str] | None, own: str | None
) -> tuple[str, ...]:
    """The configured voter addresses an observer dials besides the voters its log names
    (none when the log names none: then it dials the configured ones alone).

    The configured ones may name newer voters than its log (all of the log's replaced while
    the node was down): dialled beside the log's, the leader among them sends the log, whose
    changes then name the voters."""
    if log_voters is None:
        return ()
    return tuple(a for a in configured if a not in log_voters and a != own)


class MetadataObserver(MetadataQuorum):
    """A read-only member of the metadata quorum, with the interface of MetadataQuorum.

    ``voters`` are the voters by node id when known (controller.quorum.voters), else empty;
    ``bootstrap`` their Raft addresses (host:port) when only those are known.
    """

    def __init__(
        self,
        node_id: int,
        voters: Mapping[int, str],
        bootstrap: Sequence[str],
        data_dir: Path,
        secret: str,
        *,
        dial_overrides: Mapping[int, str] | None = None,
        raft_address: str | None = None,
        directory_id: str | None = None,
    ) -> None:
        if node_id in voters:
            raise ValueError(f"observer {node_id} is listed among the voters")
        if not voters and not bootstrap:
            raise ValueError("an observer needs the voters or their bootstrap addresses")
        super().__init__(node_id, None, voters, data_dir, secret, dial_overrides=dial_overrides)
        addresses = list(voters.values()) or list(bootstrap)
        if len(set(addresses)) != len(addresses):
            raise ValueError("the voters' Raft addresses must be distinct")
        self.bootstrap: tuple[str, ...] = tuple(addresses)
        if raft_address is not None and raft_address in addresses:
            raise ValueError(f"observer {node_id}'s own Raft address {raft_address} is a voter's")
        self.promote_address = raft_address
        self.directory_id = directory_id
        # Configured addresses its log does not name as voters, dialled too (see _on_tick).
        self._extra_dial: tuple[str, ...] = ()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        super().start(loop)
        self._extra_dial = extra_dial(self.bootstrap, self.start_voters, self.promote_address)

    def _on_tick(self) -> None:
        super()._on_tick()
        extra, sync = self._extra_dial, self._sync
        if extra and sync is not None and not self.voting:
            self._extra_dial = ()  # the transport redials them from now on
            transport = sync._SyncObj__transport
            for address in extra:
                transport.addNode(self._node_of(address))

    @property
    def addresses(self) -> tuple[str, ...]:
        """The voters' Raft addresses this observer links with now."""
        return self.voter_addresses()

    @property
    def voting(self) -> bool:
        """The log made this node a voter (a controller that was added): it is one now."""
        return self.self_address is not None

    def voter_addresses(self) -> tuple[str, ...]:
        if self._sync is None and not self.voting and self.start_voters is None:
            return tuple(sorted(self.bootstrap))
        return super().voter_addresses()

    def _formatted_voters(self) -> tuple[str, ...]:
        return self.bootstrap  # the configured voters' addresses, else the bootstrap servers

    def _remote_nodes(self) -> list[Any]:
        if self.voting or self.start_voters is not None or self.configured_peers:
            return super()._remote_nodes()
        return [TCPNode(address) for address in self.bootstrap]

    def is_leader(self) -> bool:
        # An observer never leads (pysyncobj starts no election without an address).
        return self.voting and super().is_leader()

    def last_heard(self, node_id: int) -> float | None:
        """When a Raft message last came from voter ``node_id`` (an observer hears only the
        voters, and mostly the leader)."""
        if self.voting:
            return super().last_heard(node_id)
        for address in self.addresses:
            if self.voter_id(address) == node_id:
                return self._last_heard.get(address)
        return None

    def _log_unreachable(self, sync: Any) -> None:
        if self.voting:
            super()._log_unreachable(sync)
            return
        lost = [a for a in self.addresses if not sync.isNodeConnected(self._node_of(a))]
        if len(lost) == len(self.addresses):
            self._unreachable_logged = True
            logger.warning(
                "observer %d reaches no voter of %s; it keeps retrying every %s s and is not "
                "ready until it hears the leader",
                self.node_id,
                ", ".join(self.addresses),
                limits.RAFT_CONNECTION_RETRY_S,
            )
        elif lost:
            self._unreachable_logged = True
            logger.warning(
                "observer %d cannot reach voters at %s; it keeps retrying (it follows the "
                "log from the leader, when that is one it reaches)",
                self.node_id,
                ", ".join(lost),
            )
        elif self._unreachable_logged:
            self._unreachable_logged = False
            logger.info("observer %d reaches every voter again", self.node_id)

    def status(self) -> dict[str, Any]:
        """This observer's view of the quorum, for /v1/cluster/quorum: the voters it links
        with (the leader as it knows it) and itself among the observers."""
        if self.voting:
            return super().status()
        sync = self._sync
        base = {**self._status_head(), "observer": True}
        if sync is None:
            return {**base, "running": False, "leader_id": None, "voters": [], "observers": []}
        status = self._sync_status(sync)
        leader = sync._getLeader()
        leader_address = None if leader is None else leader.id
        now = time.monotonic()
        voters: list[dict[str, Any]] = []
        for address in self.addresses:
            heard = self._last_heard.get(address)
            voters.append(
                {
                    "id": self.voter_id(address),
                    "address": address,
                    "status": "Leader" if address == leader_address else "Follower",
                    "connected": sync.isNodeConnected(self._node_of(address)),
                    "last_contact_ms": None if heard is None else int((now - heard) * 1000),
                }
            )
        voters.sort(key=lambda v: (v["id"] is None, v["id"] or 0, v["address"]))
        return {
            **base,
            "running": True,
            "leader_id": self.leader_id(),
            "term": status.get("raft_term"),
            "commit_index": status.get("commit_idx"),
            "applied_index": max(status.get("last_applied", 0), base["metadata_applied_index"]),
            "voters": voters,
            "observers": [
                {
                    "id": self.node_id,
                    "status": "Observer",
                    "connected": True,
                    "log_end_index": self._journal.last_index,
                    "last_contact_ms": 0,
                }
            ],
        }
