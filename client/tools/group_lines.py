"""kraft-consumer-groups' pure part: Kafka's tables and messages, and the reset-offsets rules.

Everything here is a function of its arguments (no I/O, no clock), so the unit tests check each
line against Kafka's ConsumerGroupCommand. Kafka prints its tables with Java's printf (left
aligned columns, widths grown to the longest value, a trailing blank where the format has one);
:func:`jpad` is its ``%-Ns``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from client.admin import TopicPartition
from client.protocol import GROUP_ID_NOT_FOUND, INVALID_GROUP_ID, NON_EMPTY_GROUP

MISSING = "-"  # Kafka's MISSING_COLUMN_VALUE

# Kafka 4's GroupState names (ConsumerGroupState without UNKNOWN), in Kafka's order: --state
# takes them in any case, and an unknown one is refused with this list.
GROUP_STATES = (
    "PreparingRebalance",
    "CompletingRebalance",
    "Stable",
    "Dead",
    "Empty",
    "Assigning",
    "Reconciling",
)
GROUP_TYPES = ("consumer", "classic")
# How Kafka's tool prints a group's type (GroupType.toString).
_TYPE_NAMES = {"consumer": "Consumer", "classic": "Classic", "share": "Share"}
REBALANCING_STATES = frozenset(
    {"PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling"}
)
# The states in which Kafka lets offsets be reset: nobody is consuming.
RESETTABLE_STATES = frozenset({"Empty", "Dead"})


class LineError(ValueError):
    """A command-line value Kafka refuses (a bad --state, --to-datetime, --topic t:p ...)."""


def jpad(value: object, width: int) -> str:
    """Java's ``%-{width}s``."""
    return str(value).ljust(width)


# ---------------------------------------------------------------------------------------------
# Parsing values
# ---------------------------------------------------------------------------------------------


def parse_states(text: str) -> set[str]:
    """Kafka's consumerGroupStatesFromString: comma-separated, any case."""
    by_lower = {s.lower(): s for s in GROUP_STATES}
    states = set()
    for part in text.split(","):
        state = by_lower.get(part.strip().lower())
        if state is None:
            raise LineError(
                f"Invalid state list '{text}'. Valid states are: " + ", ".join(GROUP_STATES)
            )
        states.add(state)
    return states


def parse_types(text: str) -> set[str]:
    """Kafka's consumerGroupTypesFromString."""
    types = {part.strip().lower() for part in text.lower().split(",")}
    if not types <= set(GROUP_TYPES):
        raise LineError(f"Invalid types list '{text}'. Valid types are: " + ", ".join(GROUP_TYPES))
    return types


def parse_topic_arg(arg: str) -> tuple[str, list[int] | None]:
    """``topic`` (every partition: None) or Kafka's ``topic:0,1,2``."""
    if ":" not in arg:
        return arg, None
    parts = arg.split(":")
    # Java's String.split drops trailing empty strings, so "t:" has one part.
    while parts and parts[-1] == "":
        parts.pop()
    if len(parts) != 2:
        raise LineError(f"Invalid topic arg '{arg}', expected topic name and partitions")
    topic, partitions = parts
    out: list[int] = []
    for item in partitions.split(","):
        if not re.fullmatch(r"[+-]?[0-9]{1,10}", item) or not -(2**31) <= int(item) < 2**31:
            raise LineError(f"Invalid partition '{item}' specified in topic arg '{arg}''")
        out.append(int(item))
    return topic, out


_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})(Z|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_datetime_ms(text: str) -> int:
    """Kafka's Utils.getDateTime: ``YYYY-MM-DDTHH:mm:SS.sss`` with an optional zone (``Z``,
    ``+hh``, ``+hhmm``, ``+hh:mm``); no zone means UTC. Milliseconds since the epoch."""
    if "T" not in text:
        raise LineError(
            "Error parsing timestamp. It does not contain a 'T' according to ISO8601 format"
        )
    match = _DATETIME.fullmatch(text)
    if match is None:
        raise LineError(f'Unparseable date: "{text}"')
    year, month, day, hour, minute, second, millis = (int(g) for g in match.groups()[:7])
    zone_text = match.group(8) or "Z"
    if zone_text == "Z":
        zone = UTC
    else:
        digits = zone_text[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        zone = timezone(offset if zone_text[0] == "+" else -offset)
    try:
        moment = datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=zone)
    except ValueError:
        # Kafka parses strictly (setLenient(false)): no 31st of February.
        raise LineError(f'Unparseable date: "{text}"') from None
    return int(moment.timestamp() * 1000)


_DURATION = re.compile(
    r"([-+]?)P(?:([-+]?[0-9]+)D)?"
    r"(?:T(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?)?",
    re.IGNORECASE,
)


def parse_duration_ms(text: str) -> int:
    """Java's Duration.parse (``PnDTnHnMn.nS``; signs allowed per part) in milliseconds."""
    match = _DURATION.fullmatch(text)
    if match is None or text.upper().endswith("T") or all(g is None for g in match.groups()[1:5]):
        raise LineError("Text cannot be parsed to a Duration")
    sign, days, hours, minutes, seconds, fraction = match.groups()
    total_ms = (
        int(days or 0) * 86_400_000
        + int(hours or 0) * 3_600_000
        + int(minutes or 0) * 60_000
        + int(seconds or 0) * 1000
    )
    if fraction:
        part_ms = int(fraction.ljust(9, "0")[:3])
        total_ms += -part_ms if (seconds or "").startswith("-") else part_ms
    return -total_ms if sign == "-" else total_ms


# ---------------------------------------------------------------------------------------------
# Reset rules
# ---------------------------------------------------------------------------------------------


def clamp_offset(
    tp: TopicPartition, offset: int, start: int | None, end: int | None
) -> tuple[int, str | None]:
    """Kafka's checkOffsetsRange: a wanted offset beyond the log end becomes the log end, one
    below the log start becomes the log start, each with Kafka's warning."""
    if end is not None and offset > end:
        return end, (
            f"New offset ({offset}) is higher than latest offset for topic partition {tp}. "
            f"Value will be set to {end}"
        )
    if start is not None and offset < start:
        return start, (
            f"New offset ({offset}) is lower than earliest offset for topic partition {tp}. "
            f"Value will be set to {start}"
        )
    return offset, None


def shift_offsets(
    partitions: Iterable[TopicPartition], committed: dict[TopicPartition, int], shift: int
) -> dict[TopicPartition, int]:
    """Kafka's --shift-by before the range check: each committed offset moved by ``shift``."""
    out: dict[TopicPartition, int] = {}
    for tp in partitions:
        if tp not in committed:
            raise LineError(
                f"Cannot shift offset for partition {tp} since there is no current committed offset"
            )
        out[tp] = committed[tp] + shift
    return out


def reset_refusal(group: str, state: str) -> str | None:
    """Kafka's refusal to reset a group that has active members, or None."""
    if state in RESETTABLE_STATES:
        return None
    return (
        f"Assignments can only be reset if the group '{group}' is inactive, but the current "
        f"state is {state}."
    )


# ---------------------------------------------------------------------------------------------
# Kafka's tables
# ---------------------------------------------------------------------------------------------


def list_lines(groups: list[dict[str, Any]], include_type: bool, include_state: bool) -> list[str]:
    """``--list``: names alone, or Kafka's GROUP [TYPE] [STATE] table."""
    if not include_type and not include_state:
        return [str(g["group"]) for g in groups]
    width = max([15, *(len(str(g["group"])) for g in groups)]) + 10
    header = [jpad("GROUP", width)]
    rows = [[jpad(g["group"], width)] for g in groups]
    for flag, name, key in ((include_type, "TYPE", "type"), (include_state, "STATE", "state")):
        if flag:
            header.append(" " + jpad(name, 20))
            for row, g in zip(rows, groups, strict=True):
                value = g.get(key) or "Unknown"
                if key == "type":
                    value = _TYPE_NAMES.get(str(value).lower(), "Unknown")
                row.append(" " + jpad(value, 20))
    return ["".join(header), *("".join(r) for r in rows)]


def state_notice(group: str, state: str) -> str | None:
    """Kafka's line on stderr before a group's table (Empty, rebalancing), or None."""
    if state == "Empty":
        return f"Consumer group '{group}' has no active members."
    if state in REBALANCING_STATES:
        return f"Warning: Consumer group '{group}' is rebalancing."
    return None


@dataclass(frozen=True)
class OffsetRow:
    group: str
    topic: str
    partition: int
    offset: int | None
    log_end_offset: int | None
    consumer_id: str
    host: str
    client_id: str

    @property
    def lag(self) -> int | None:
        if self.offset is None or self.log_end_offset is None:
            return None
        return self.log_end_offset - self.offset


def host_text(host: object) -> str:
    """A member's host as Kafka prints it: Java's InetAddress.toString, "/127.0.0.1"."""
    if not host:
        return MISSING
    text = str(host)
    return text if text.startswith("/") else "/" + text


def _text(value: int | None) -> str:
    return MISSING if value is None else str(value)


def offset_rows(desc: dict[str, Any]) -> list[OffsetRow]:
    """Kafka's collectGroupOffsets from a group description: the partitions of each member
    that owns some (members with more partitions first), then committed partitions nobody
    owns, with '-' for consumer, host and client."""
    group = str(desc["group"])
    by_partition = {
        (str(o["topic"]), int(o["partition"])): o
        for o in desc.get("offsets") or []
        if isinstance(o, dict)
    }
    rows: list[OffsetRow] = []
    owned: set[tuple[str, int]] = set()
    members = [m for m in desc.get("members") or [] if m.get("assignment")]
    members.sort(key=lambda m: len(m["assignment"]), reverse=True)  # stable, as Java's sort
    for member in members:
        parts = sorted((str(a["topic"]), int(a["partition"])) for a in member["assignment"])
        for key in parts:
            owned.add(key)
            info = by_partition.get(key, {})
            rows.append(
                OffsetRow(
                    group,
                    key[0],
                    key[1],
                    info.get("offset"),
                    info.get("log_end_offset"),
                    str(member.get("member_id") or MISSING),
                    host_text(member.get("client_host")),
                    str(member.get("client_id") or MISSING),
                )
            )
    for key in sorted(by_partition):
        info = by_partition[key]
        if key not in owned and info.get("offset") is not None:
            rows.append(
                OffsetRow(
                    group,
                    key[0],
                    key[1],
                    info.get("offset"),
                    info.get("log_end_offset"),
                    MISSING,
                    MISSING,
                    MISSING,
                )
            )
    return rows


def offsets_table(rows: list[OffsetRow]) -> list[str]:
    """Kafka's printOffsets for one group: a blank line, the header, a line per row."""
    g = max([15, *(len(r.group) for r in rows)])
    t = max([15, *(len(r.topic) for r in rows)])
    c = max([15, *(len(r.consumer_id) for r in rows)])
    h = max([15, *(len(r.host) for r in rows)])

    def line(*cols: object) -> str:
        group, topic, part, cur, leo, lag, cid, host, client = (str(x) for x in cols)
        return (
            f"{jpad(group, g)} {jpad(topic, t)} {jpad(part, 10)} {jpad(cur, 15)} "
            f"{jpad(leo, 15)} {jpad(lag, 15)} {jpad(cid, c)} {jpad(host, h)} {client}"
        )

    out = [
        "",
        line(
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ),
    ]
    for r in rows:
        out.append(
            line(
                r.group,
                r.topic,
                r.partition,
                _text(r.offset),
                _text(r.log_end_offset),
                _text(r.lag),
                r.consumer_id,
                r.host,
                r.client_id,
            )
        )
    return out


def _assignment_text(assignment: list[dict[str, Any]]) -> str:
    if not assignment:
        return MISSING
    by_topic: dict[str, list[int]] = {}
    for a in assignment:
        by_topic.setdefault(str(a["topic"]), []).append(int(a["partition"]))
    return ", ".join(
        f"{topic}({','.join(str(p) for p in sorted(parts))})"
        for topic, parts in sorted(by_topic.items())
    )


def members_table(desc: dict[str, Any], verbose: bool) -> list[str]:
    """Kafka's printMembers: GROUP CONSUMER-ID HOST CLIENT-ID #PARTITIONS [ASSIGNMENT]."""
    group = str(desc["group"])
    members = [m for m in desc.get("members") or [] if isinstance(m, dict)]
    g = max([15, len(group)])
    c = max([15, *(len(str(m.get("member_id", ""))) for m in members)])
    h = max([15, *(len(host_text(m.get("client_host"))) for m in members)])
    cl = max([15, *(len(str(m.get("client_id", ""))) for m in members)])

    def line(group_: object, cid: object, host: object, client: object, count: object) -> str:
        # Kafka's format ends with a blank after #PARTITIONS, where ASSIGNMENT follows.
        return (
            f"{jpad(group_, g)} {jpad(cid, c)} {jpad(host, h)} {jpad(client, cl)} "
            f"{jpad(count, 15)} "
        )

    out = [
        "",
        line("GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS")
        + ("ASSIGNMENT" if verbose else ""),
    ]
    for m in members:
        assignment = [a for a in m.get("assignment") or [] if isinstance(a, dict)]
        text = line(
            group,
            m.get("member_id", ""),
            host_text(m.get("client_host")),
            m.get("client_id", ""),
            len(assignment),
        )
        out.append(text + (_assignment_text(assignment) if verbose else ""))
    return out


def state_table(desc: dict[str, Any], coordinator: str) -> list[str]:
    """Kafka's printStates: GROUP COORDINATOR (ID) ASSIGNMENT-STRATEGY STATE #MEMBERS; the
    coordinator as ``host:port  (id)``."""
    width = max(25, len(coordinator))

    def line(*cols: object) -> str:
        group, coord, strategy, state, count = (str(x) for x in cols)
        return (
            f"{jpad(group, width)} {jpad(coord, 25)} {jpad(strategy, 20)} {jpad(state, 15)} {count}"
        )

    return [
        "",
        line("GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"),
        line(
            desc["group"],
            coordinator,
            desc.get("assignor") or "",
            desc.get("state"),
            len(desc.get("members") or []),
        ),
    ]


def reset_table(plans: dict[str, dict[TopicPartition, int]]) -> list[str]:
    """Kafka's printOffsetsToReset: GROUP TOPIC PARTITION NEW-OFFSET (no header when no group
    was planned at all)."""

    def line(*cols: object) -> str:
        group, topic, part, offset = (str(x) for x in cols)
        return f"{jpad(group, 30)} {jpad(topic, 30)} {jpad(part, 10)} {jpad(offset, 15)}"

    if not plans:
        return [""]
    out = ["", line("GROUP", "TOPIC", "PARTITION", "NEW-OFFSET")]
    for group in sorted(plans):
        for tp, offset in sorted(plans[group].items(), key=lambda e: (e[0].topic, e[0].partition)):
            out.append(line(group, tp.topic, tp.partition, offset))
    return out


def deletion_lines(deleted: list[str], failed: dict[str, str]) -> tuple[list[str], list[str]]:
    """Kafka's deleteGroups report as (stdout lines, stderr lines); ``failed`` maps a group to
    the exception text Kafka prints for it."""
    if not failed:
        return [
            f"Deletion of requested consumer groups ('{', '.join(deleted)}') was successful."
        ], []
    out = [f"* Group '{g}' could not be deleted due to: {why}" for g, why in failed.items()]
    if deleted:
        out += [
            "",
            "These consumer groups were deleted successfully: "
            + ", ".join(f"'{g}'" for g in deleted),
        ]
    return out, ["Error: Deletion of some consumer groups failed:"]


# What Kafka's tool prints for a group it could not delete: the Java exception as the admin
# client raises it, so a user's grep for Kafka's text finds ours.
_DELETE_FAILURES = {
    NON_EMPTY_GROUP.code: "GroupNotEmptyException: The group is not empty.",
    GROUP_ID_NOT_FOUND.code: "GroupIdNotFoundException: The group id does not exist.",
    INVALID_GROUP_ID.code: "InvalidGroupIdException: The configured groupId is invalid.",
}


def deletion_failure(code: int, message: str) -> str:
    """The reason printed after "* Group 'g' could not be deleted due to: "."""
    known = _DELETE_FAILURES.get(code)
    if known is None:
        return message
    return "java.util.concurrent.ExecutionException: org.apache.kafka.common.errors." + known
