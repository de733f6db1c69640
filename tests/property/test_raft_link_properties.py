"""The Raft link parser without sockets: any bytes yield no message and no exception; real
frames, however the stream is cut, yield exactly the messages sent."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pysyncobj.pickle as pysyncobj_pickle
from hypothesis import given, settings
from hypothesis import strategies as st
from pysyncobj.encryptor import getEncryptor
from pysyncobj.tcp_connection import TcpConnection

from kraft import limits
from kraft.transport import KraftConnection, LinkReporter

SETTINGS = settings(max_examples=150, deadline=None)
ENCRYPTOR = getEncryptor("cluster-secret")  # PBKDF2: derive once for the module


class _NoPoller:
    def subscribe(self, *args: Any) -> None:
        pass

    def unsubscribe(self, *args: Any) -> None:
        pass


def connection(authenticated: bool = False) -> Any:
    conn: Any = TcpConnection(poller=_NoPoller())
    conn.__class__ = KraftConnection
    conn.kraft_setup(LinkReporter(1), "127.0.0.1:9095", incoming=False)
    conn.encryptor = ENCRYPTOR
    conn._kraft_authenticated = authenticated
    return conn


def parse_all(conn: Any, chunks: list[bytes]) -> list[Any]:
    """Feed `chunks` as reads would, parsing after each; the messages that came out."""
    messages = []
    for chunk in chunks:
        conn._kraft_buffer += chunk
        if not conn._head_ok():  # the size check each read makes
            continue
        while (message := conn._TcpConnection__processParseMessage()) is not None:
            messages.append(message)
        assert len(conn._kraft_buffer) <= 4 + limits.RAFT_MESSAGE_BYTES_MAX + len(chunk)
    return messages


def frame(message: Any, timestamp: int) -> bytes:
    """A message as pysyncobj's TcpConnection.send puts it on the wire."""
    token = ENCRYPTOR.encrypt_at_time(zlib.compress(pysyncobj_pickle.dumps(message), 3), timestamp)
    return struct.pack("i", len(token)) + token


@SETTINGS
@given(st.lists(st.binary(max_size=3000), max_size=8), st.booleans())
def test_any_bytes_yield_no_message_and_no_exception(chunks: list[bytes], auth: bool) -> None:
    assert parse_all(connection(auth), chunks) == []


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.binary(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@SETTINGS
# pysyncobj never sends None, and its parser returns None for "no message yet".
@given(st.lists(json_like.filter(lambda m: m is not None), min_size=1, max_size=5), st.data())
def test_frames_cut_anywhere_yield_the_messages_sent(messages: list[Any], data: Any) -> None:
    stream = b"".join(frame(m, 1000 + i) for i, m in enumerate(messages))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert parse_all(connection(), chunks) == messages
