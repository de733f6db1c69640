"""Kafka's LineMessageReader, pure: how the console producer turns a line into a record.

A line is split, in this order, into headers (``parse.headers=true``: up to
``headers.delimiter``), a key (``parse.key=true``: up to ``key.separator``) and the value (the
rest). Headers are ``name<headers.key.separator>value`` pairs joined by ``headers.separator``.
A field equal to ``null.marker`` becomes null. A missing separator is an error naming the line,
unless ``ignore.error=true``: then the part is simply absent (Kafka's behaviour).

Records come out in docs/api.md's JSON form: text as ``key``/``value``, bytes that are not UTF-8 as
``key_b64``/``value_b64``, so what was typed or piped in is stored byte for byte.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from client.tools import common

# Kafka's reader properties; anything else given with --property is refused by name.
READER_PROPERTIES = frozenset(
    {
        "parse.key",
        "key.separator",
        "parse.headers",
        "headers.delimiter",
        "headers.separator",
        "headers.key.separator",
        "ignore.error",
        "null.marker",
    }
)


class LineError(Exception):
    """A line the reader cannot turn into a record (Kafka's KafkaException message)."""


@dataclass(frozen=True)
class ReaderConfig:
    """Kafka's LineMessageReader settings."""

    parse_key: bool = False
    key_separator: str = "\t"
    parse_headers: bool = False
    headers_delimiter: str = "\t"
    headers_separator: str = ","
    headers_key_separator: str = ":"
    ignore_error: bool = False
    null_marker: str | None = None

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> ReaderConfig:
        """The reader settings of ``--property`` values; raises UsageError with Kafka's
        message for settings that contradict each other, and names unknown properties."""
        unknown = sorted(set(props) - READER_PROPERTIES)
        if unknown:
            raise common.UsageError(
                f"--property {unknown[0]} is not supported; the reader takes "
                + ", ".join(sorted(READER_PROPERTIES))
            )
        cfg = cls(
            parse_key=common.parse_bool(props.get("parse.key", "false")),
            key_separator=props.get("key.separator", "\t"),
            parse_headers=common.parse_bool(props.get("parse.headers", "false")),
            headers_delimiter=props.get("headers.delimiter", "\t"),
            headers_separator=props.get("headers.separator", ","),
            headers_key_separator=props.get("headers.key.separator", ":"),
            ignore_error=common.parse_bool(props.get("ignore.error", "false")),
            null_marker=props.get("null.marker"),
        )
        pairs = [
            (
                "headers.delimiter",
                cfg.headers_delimiter,
                "headers.separator",
                cfg.headers_separator,
            ),
            (
                "headers.delimiter",
                cfg.headers_delimiter,
                "headers.key.separator",
                cfg.headers_key_separator,
            ),
            (
                "headers.separator",
                cfg.headers_separator,
                "headers.key.separator",
                cfg.headers_key_separator,
            ),
            ("null.marker", cfg.null_marker, "key.separator", cfg.key_separator),
            ("null.marker", cfg.null_marker, "headers.separator", cfg.headers_separator),
            ("null.marker", cfg.null_marker, "headers.delimiter", cfg.headers_delimiter),
            ("null.marker", cfg.null_marker, "headers.key.separator", cfg.headers_key_separator),
        ]
        for name_a, a, name_b, b in pairs:
            if a is not None and a == b:
                raise common.UsageError(f"{name_a} and {name_b} may not be equal")
        for name, sep in (
            ("key.separator", cfg.key_separator),
            ("headers.delimiter", cfg.headers_delimiter),
            ("headers.separator", cfg.headers_separator),
            ("headers.key.separator", cfg.headers_key_separator),
        ):
            if not sep:
                raise common.UsageError(f"{name} may not be empty")
        return cfg


def _bytes_field(record: dict[str, Any], name: str, text: str | None) -> None:
    if text is None:
        record[name] = None
        return
    # Lines are decoded with surrogateescape, so encoding back gives the exact input bytes;
    # bytes that are not UTF-8 travel as base64 rather than being mangled.
    data = text.encode("utf-8", "surrogateescape")
    try:
        record[name] = data.decode("utf-8")
    except UnicodeDecodeError:
        record[f"{name}_b64"] = base64.b64encode(data).decode("ascii")


def _split_headers(
    headers: str, cfg: ReaderConfig, line_number: int
) -> list[tuple[str, str | None]]:
    parts = headers.split(cfg.headers_separator)
    while len(parts) > 1 and parts[-1] == "":  # Java's split drops trailing empty parts
        parts.pop()
    result: list[tuple[str, str | None]] = []
    for pair in parts:
        index = pair.find(cfg.headers_key_separator)
        if index == -1:
            if cfg.ignore_error:
                result.append((pair, None))
                continue
            raise LineError(
                f"No header key separator found in pair '{pair}' on line number {line_number}"
            )
        key = pair[:index]
        if key == cfg.null_marker:
            raise LineError(
                f"Header keys should not be equal to the null marker '{cfg.null_marker}' as "
                "they can't be null"
            )
        value: str | None = pair[index + len(cfg.headers_key_separator) :]
        result.append((key, None if value == cfg.null_marker else value))
    return result


def _cut(
    enabled: bool, line: str, start: int, sep: str, what: str, cfg: ReaderConfig, line_number: int
) -> str | None:
    if not enabled:
        return None
    index = line.find(sep, start)
    if index == -1:
        if cfg.ignore_error:
            return None
        raise LineError(f"No {what} found on line number {line_number}: '{line}'")
    return line[start:index]


def parse_line(line: str, line_number: int, cfg: ReaderConfig) -> dict[str, Any]:
    """One line (without its line break) as a produce record in docs/api.md's JSON form, parsed
    exactly as Kafka's LineMessageReader parses it; raises LineError with Kafka's message."""
    headers = _cut(
        cfg.parse_headers, line, 0, cfg.headers_delimiter, "headers delimiter", cfg, line_number
    )
    header_end = 0 if headers is None else len(headers) + len(cfg.headers_delimiter)
    key = _cut(
        cfg.parse_key, line, header_end, cfg.key_separator, "key separator", cfg, line_number
    )
    key_end = 0 if key is None else len(key) + len(cfg.key_separator)
    value: str | None = line[header_end + key_end :]
    record: dict[str, Any] = {}
    if key is not None and key != cfg.null_marker:
        _bytes_field(record, "key", key)
    _bytes_field(record, "value", None if value == cfg.null_marker else value)
    if headers is not None and headers != cfg.null_marker:
        pairs = _split_headers(headers, cfg, line_number)
        for name, _hv in pairs:
            _check_utf8(name, line_number)
        record["headers"] = [
            [
                name,
                None
                if hv is None
                else hv.encode("utf-8", "surrogateescape").decode("utf-8", "replace"),
            ]
            for name, hv in pairs
        ]
    return record


def _check_utf8(text: str, line_number: int) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise LineError(f"A header name on line number {line_number} is not UTF-8") from None


def decode_line(raw: bytes) -> str:
    """A line's bytes as text, without its line break ("\\n" or "\\r\\n", as Java's readLine)."""
    if raw.endswith(b"\n"):
        raw = raw[:-1]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw.decode("utf-8", "surrogateescape")


class LineSplitter:
    """Turns chunks of bytes into whole lines (each with its b"\\n"); the last line may lack
    one at end of input."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        # Only "\n" ends a line ("\r\n" is trimmed later by decode_line): a lone "\r" stays
        # inside its line, as it would in most shells' view of a line.
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        return [line + b"\n" for line in complete]

    def finish(self) -> list[bytes]:
        rest, self._partial = self._partial, b""
        return [rest] if rest else []
