"""Java ``.properties`` files (node configuration, ``meta.properties``), read and written as
``java.util.Properties`` does, so that files move freely between Kafka and us.

Reading (``Properties.load``):

- A *natural line* ends at ``\\n``, ``\\r`` or ``\\r\\n``. Leading spaces, tabs and form feeds
  are skipped. A line whose first other character is ``#`` or ``!`` is a comment; a blank
  line is skipped.
- A line that ends in an odd number of backslashes continues on the next one: the backslash
  goes, and so does the next line's leading whitespace.
- The key runs to the first unescaped ``=``, ``:`` or whitespace; then whitespace, at most one
  ``=`` or ``:``, and whitespace again are skipped; the rest of the line is the value.
- Escapes in keys and values: ``\\t \\n \\r \\f``, ``\\uXXXX``, and ``\\`` before any other
  character stands for that character (``\\=``, ``\\:``, ``\\ ``, ``\\\\``, ``\\#``).
- Unlike Java, unescaped whitespace at the end of a value is dropped: a trailing space after
  ``node.id=1`` is never what the writer meant. Write ``\\ `` to keep one.
- Unlike Java, which reads ISO 8859-1, the file is UTF-8 (ASCII files read the same both ways).
- A malformed line (bad ``\\uXXXX``, an empty key) raises :class:`PropertiesError` naming the
  file and the line; the last of several equal keys wins, as in Java.

Writing (``Properties.store`` to a stream): ``#`` + each comment line, optionally ``#`` + the
date as Java's ``Date.toString()`` prints it, then ``key=value`` lines with ``\\``, ``=``,
``:``, ``#``, ``!`` and control characters escaped, spaces escaped in keys and at either end
of values, and every character outside printable ASCII written ``\\uXXXX``.

``meta.properties`` (one per log directory; Kafka's layout, version 1)::

    #
    #Tue Nov 26 09:49:00 UTC 2024
    node.id=1
    directory.id=<22-character Kafka uuid>
    version=1
    cluster.id=<22-character Kafka uuid>
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from storage.durable import atomic_write
from storage.ids import is_valid_uuid

# Node configurations are a few KiB; anything this large is not a properties file.
PROPERTIES_FILE_BYTES_MAX = 16 * 1024 * 1024

META_PROPERTIES_NAME = "meta.properties"

_WHITESPACE = " \t\f"
_LINE_ENDS = "\r\n"
_SEPARATORS = "=:"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


class PropertiesError(ValueError):
    """A properties file that cannot be used: names the file, the line if one is to blame,
    and what is wrong. A configuration mistake, to be shown to the user as is."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.message = message
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{where}: {message}")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first natural line number, logical line) for each non-comment, non-blank line."""
    out: list[tuple[int, str]] = []
    natural = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    i = 0
    while i < len(natural):
        start_no = i + 1
        line = natural[i].lstrip(_WHITESPACE)
        i += 1
        if not line or line[0] in "#!":
            continue
        parts: list[str] = []
        while True:
            trailing = len(line) - len(line.rstrip("\\"))
            if trailing % 2 == 1:
                parts.append(line[:-1])
                if i >= len(natural):
                    break
                line = natural[i].lstrip(_WHITESPACE)
                i += 1
            else:
                parts.append(line)
                break
        out.append((start_no, "".join(parts)))
    return out


def _unescape(raw: str, source: str, line_no: int) -> list[tuple[str, bool]]:
    """The characters of ``raw`` with escapes resolved, each flagged True if it was escaped."""
    out: list[tuple[str, bool]] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        i += 1
        if c != "\\":
            out.append((c, False))
            continue
        if i >= len(raw):  # a lone backslash at the very end of the file: Java drops it
            break
        c = raw[i]
        i += 1
        if c == "u":
            digits = raw[i : i + 4]
            if len(digits) != 4 or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise PropertiesError(source, line_no, f"malformed \\uxxxx escape: '\\u{digits}'")
            out.append((chr(int(digits, 16)), True))
            i += 4
        else:
            out.append((_ESCAPES.get(c, c), True))
    return out


def _join_surrogates(text: str) -> str:
    # \uD83D\uDE00 written by Java for characters beyond the BMP.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _split_key_value(line: str) -> tuple[str, str]:
    """The raw (still escaped) key and value of a logical line, per Properties.load."""
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\":
            i += 2
            continue
        if c in _SEPARATORS or c in _WHITESPACE:
            break
        i += 1
    key = line[: min(i, n)]
    j = i
    while j < n and line[j] in _WHITESPACE:
        j += 1
    if j < n and line[j] in _SEPARATORS:
        j += 1
    while j < n and line[j] in _WHITESPACE:
        j += 1
    return key, line[j:]


def parse_properties(text: str, source: str = "<properties>") -> dict[str, str]:
    """The key/value pairs of a properties text (rules at the top of the module).

    ``source`` names the text in errors (usually the file's path). Raises
    :class:`PropertiesError` for a malformed line.
    """
    props: dict[str, str] = {}
    for line_no, line in _logical_lines(text):
        raw_key, raw_value = _split_key_value(line)
        key = _join_surrogates("".join(c for c, _ in _unescape(raw_key, source, line_no)))
        if not key:
            raise PropertiesError(source, line_no, f"a line with no key: {line!r}")
        value_chars = _unescape(raw_value, source, line_no)
        while value_chars and not value_chars[-1][1] and value_chars[-1][0] in _WHITESPACE:
            value_chars.pop()
        props[key] = _join_surrogates("".join(c for c, _ in value_chars))
    return props


def load_properties(path: str | os.PathLike[str]) -> dict[str, str]:
    """The properties in the file at ``path``.

    Raises :class:`PropertiesError` for a malformed line or a file that is not UTF-8, and
    ``OSError`` (``FileNotFoundError`` ...) if it cannot be read.
    """
    source = str(path)
    with open(path, "rb") as f:
        raw = f.read(PROPERTIES_FILE_BYTES_MAX + 1)
    if len(raw) > PROPERTIES_FILE_BYTES_MAX:
        raise PropertiesError(source, None, f"larger than {PROPERTIES_FILE_BYTES_MAX} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise PropertiesError(source, line, "not UTF-8 text") from None
    return parse_properties(text, source)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def java_date(moment: datetime) -> str:
    """``moment`` as Java's ``Date.toString()`` prints it in UTC: ``Tue Nov 26 09:49:00 UTC 2024``.

    Locale-independent, unlike ``strftime``. A naive ``moment`` is taken to be UTC.
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return (
        f"{_DAYS[moment.weekday()]} {_MONTHS[moment.month - 1]} {moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} UTC {moment.year}"
    )


def _escape(text: str, *, is_key: bool) -> str:
    out: list[str] = []
    # Leading spaces would be skipped by a reader, trailing ones trimmed by ours: escape both.
    trailing_from = len(text.rstrip(" "))
    for i, c in enumerate(text):
        if c == " ":
            out.append("\\ " if is_key or i == 0 or i >= trailing_from else " ")
        elif c in "\\=:#!":
            out.append("\\" + c)
        elif c in "\t\n\r\f":
            out.append("\\" + {"\t": "t", "\n": "n", "\r": "r", "\f": "f"}[c])
        elif " " < c <= "~":
            out.append(c)
        else:
            # Outside printable ASCII: \uXXXX per UTF-16 unit, so Java's Latin-1 reader agrees.
            out.extend(f"\\u{u:04X}" for u in _utf16_units(c))
    return "".join(out)


def format_properties(
    props: Mapping[str, str], comment: str | None = None, *, date: datetime | None = None
) -> str:
    """The text ``Properties.store`` would write, keys in the mapping's order.

    ``comment`` becomes ``#`` lines (``""`` gives a lone ``#``, as Kafka's files start);
    ``date``, if given, becomes a ``#`` line in Java's ``Date.toString()`` format. The text
    parses back to ``props`` with :func:`parse_properties`.
    """
    lines: list[str] = []
    if comment is not None:
        lines.extend("#" + _escape_comment(part) for part in comment.split("\n"))
    if date is not None:
        lines.append("#" + java_date(date))
    for key, value in props.items():
        lines.append(f"{_escape(key, is_key=True)}={_escape(value, is_key=False)}")
    return "".join(line + "\n" for line in lines)


def _escape_comment(text: str) -> str:
    return "".join(
        c if " " <= c <= "~" else "".join(f"\\u{u:04X}" for u in _utf16_units(c)) for c in text
    )


def _utf16_units(c: str) -> list[int]:
    raw = c.encode("utf-16-be", "surrogatepass")
    return [int.from_bytes(raw[k : k + 2], "big") for k in range(0, len(raw), 2)]


# ---------------------------------------------------------------------------------------------
# meta.properties
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MetaProperties:
    """A log directory's identity card, ``meta.properties`` (version 1, KRaft mode).

    A node refuses to start on a directory whose card names another cluster or node.
    """

    cluster_id: str
    node_id: int
    directory_id: str | None = None
    version: int = 1

    SUPPORTED_VERSION: ClassVar[int] = 1

    def __post_init__(self) -> None:
        if self.version != self.SUPPORTED_VERSION:
            raise ValueError(
                f"meta.properties version {self.version} is not supported (only "
                f"{self.SUPPORTED_VERSION}, KRaft mode; version 0 is ZooKeeper mode)"
            )
        if not self.cluster_id or any(c.isspace() for c in self.cluster_id):
            raise ValueError(f"invalid cluster.id {self.cluster_id!r}")
        if isinstance(self.node_id, bool) or not isinstance(self.node_id, int):
            raise ValueError(f"node.id must be an integer, got {self.node_id!r}")
        if self.node_id < 0:
            raise ValueError(f"node.id must be a non-negative integer, got {self.node_id}")
        if self.directory_id is not None and not is_valid_uuid(self.directory_id):
            raise ValueError(f"invalid directory.id {self.directory_id!r}")

    def to_properties(self) -> dict[str, str]:
        """The file's key/value pairs, in the order Kafka writes them."""
        props = {"node.id": str(self.node_id)}
        if self.directory_id is not None:
            props["directory.id"] = self.directory_id
        props["version"] = str(self.version)
        props["cluster.id"] = self.cluster_id
        return props

    @classmethod
    def from_properties(cls, props: Mapping[str, str], source: str) -> MetaProperties:
        """Parses the pairs of a ``meta.properties``; :class:`PropertiesError` names ``source``."""
        for required in ("version", "cluster.id", "node.id"):
            if required not in props:
                raise PropertiesError(source, None, f"{required} is missing")
        try:
            version = int(props["version"])
        except ValueError:
            raise PropertiesError(
                source, None, f"version is {props['version']!r}, not an integer"
            ) from None
        try:
            node_id = int(props["node.id"])
        except ValueError:
            raise PropertiesError(
                source, None, f"node.id is {props['node.id']!r}, not an integer"
            ) from None
        try:
            return cls(
                cluster_id=props["cluster.id"],
                node_id=node_id,
                directory_id=props.get("directory.id"),
                version=version,
            )
        except ValueError as e:
            raise PropertiesError(source, None, str(e)) from None

    @classmethod
    def path_in(cls, log_dir: str | os.PathLike[str]) -> Path:
        return Path(log_dir) / META_PROPERTIES_NAME

    @classmethod
    def read(cls, log_dir: str | os.PathLike[str]) -> MetaProperties | None:
        """The directory's ``meta.properties``; None if it has none (it is not formatted).

        Raises :class:`PropertiesError` if the file is malformed, ``OSError`` if unreadable.
        """
        path = cls.path_in(log_dir)
        try:
            props = load_properties(path)
        except FileNotFoundError:
            return None
        return cls.from_properties(props, str(path))

    def write(self, log_dir: str | os.PathLike[str], *, now: datetime | None = None) -> None:
        """Writes ``meta.properties`` into ``log_dir`` (which must exist), atomically.

        ``now`` is the date written in the header comment (default: the current time).
        """
        text = format_properties(
            self.to_properties(), "", date=now if now is not None else datetime.now(UTC)
        )
        atomic_write(self.path_in(log_dir), text.encode("ascii"))
