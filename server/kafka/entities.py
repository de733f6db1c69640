"""kio entities built from plain values, whatever the API version.

Each version of a Kafka message is its own kio class (``MetadataResponse`` of v0 has no
``cluster_id``; v13 has no ``cluster_authorized_operations``). A handler describes its answer
once, as plain values (dicts, lists, ints, bytes), and :func:`build` makes the response class
of the request's version from them: a field the version has is taken (nested entities built
the same way), a value for a field it lacks is left out, as Kafka's generated code ignores a
field outside its versions when it writes. Conversions are those of kio's field types: an
error code is an ``ErrorCode``, a duration a ``timedelta``, a timestamp (-1: none) a
``datetime``, a topic id our base64 text (Kafka's Uuid.toString) as a ``uuid.UUID``.

A required field missing from the values is a bug here: the class's constructor raises.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime
import types
import typing
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from kio.schema.errors import ErrorCode
from kio.static.constants import EntityType

ZERO_UUID = uuid.UUID(int=0)

Convert = Callable[[Any], Any]


def topic_uuid(topic_id: str) -> uuid.UUID:
    """Our topic id (Kafka's Uuid as URL-safe base64 without padding) as a UUID."""
    return uuid.UUID(bytes=base64.urlsafe_b64decode(topic_id + "=="))


def topic_id_text(value: uuid.UUID | None) -> str | None:
    """A request's topic id as our text form; None for none (the zero id)."""
    if value is None or value == ZERO_UUID:
        return None
    return base64.urlsafe_b64encode(value.bytes).decode("ascii").rstrip("=")


def _is_entity(t: Any) -> bool:
    return isinstance(t, type) and getattr(t, "__type__", None) in (
        EntityType.nested,
        EntityType.response,
        EntityType.request,
    )


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    try:
        return topic_uuid(value)
    except (binascii.Error, ValueError):
        raise AssertionError(f"not a topic id: {value!r}") from None


def _datetime(value: Any) -> datetime.datetime | None:
    if value is None or isinstance(value, datetime.datetime):
        return value
    if value < 0:
        return None
    return datetime.datetime.fromtimestamp(value / 1000, datetime.UTC)


def _timedelta(value: Any) -> datetime.timedelta:
    if isinstance(value, datetime.timedelta):
        return value
    return datetime.timedelta(milliseconds=value)


def _error_code(value: Any) -> ErrorCode:
    return value if isinstance(value, ErrorCode) else ErrorCode(value)


def _converter(f: dataclasses.Field[Any]) -> Convert:
    """How a plain value becomes field ``f``'s value."""
    kafka_type = f.metadata.get("kafka_type")
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return _timedelta
    if kafka_type == "datetime_i64":
        return _datetime
    if kafka_type == "error_code":
        return _error_code
    if kafka_type == "uuid":
        return _uuid
    hint: Any = f.type
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    if _is_entity(hint):
        nested = hint
        return lambda v: v if v is None or isinstance(v, nested) else build(nested, v)
    if typing.get_origin(hint) is tuple and args and _is_entity(args[0]):
        item = args[0]
        return lambda v: (
            None if v is None else tuple(x if isinstance(x, item) else build(item, x) for x in v)
        )
    if typing.get_origin(hint) is tuple:
        return lambda v: None if v is None else tuple(v)
    return lambda v: v


_FIELDS: dict[type[Any], dict[str, Convert]] = {}


def _fields(cls: type[Any]) -> dict[str, Convert]:
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = _FIELDS[cls] = {f.name: _converter(f) for f in dataclasses.fields(cls)}
    return fields


def build(cls: type[Any], values: Mapping[str, Any]) -> Any:
    """An instance of the kio class ``cls`` from ``values`` (module docstring)."""
    fields = _fields(cls)
    return cls(**{name: fields[name](v) for name, v in values.items() if name in fields})


def has_field(cls: type[Any], name: str) -> bool:
    """Whether the kio class ``cls`` (one version of a message) has field ``name``."""
    return name in _fields(cls)
