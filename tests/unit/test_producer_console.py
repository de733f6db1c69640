"""kraft-console-producer on the Producer: Kafka's flags become Kafka's producer properties,
and the loop prints Kafka's lines, against a fake producer (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from client.producer import RecordMetadata
from client.protocol import RECORD_TOO_LARGE, TOPIC_AUTHORIZATION_FAILED, ApiError
from client.tools import common, console_producer

BS = ["--bootstrap-server", "127.0.0.1:9092", "--topic", "news"]


def command(*argv: str) -> console_producer.ProducerCommand:
    return console_producer.parse_command([*BS, *argv])


def test_kafkas_console_defaults_are_the_producers_settings() -> None:
    config = command().producer_config()
    assert (config.acks, config.request_timeout_ms, config.retries) == ("all", 1500, 3)
    assert (config.retry_backoff_ms, config.linger_ms, config.batch_size) == (100, 1000, 16384)
    assert (config.max_block_ms, config.buffer_memory) == (60_000, 32 * 1024 * 1024)
    assert config.client_id == "console-producer" and config.enable_idempotence


def test_retry_flags_set_retries_and_backoff() -> None:
    config = command(
        "--message-send-max-retries", "10", "--retry-backoff-ms", "250"
    ).producer_config()
    assert (config.retries, config.retry_backoff_ms) == (10, 250)


def test_a_flag_given_wins_over_producer_property_which_wins_over_the_flags_default() -> None:
    cmd = command("--producer-property", "linger.ms=5", "--producer-property", "retries=7")
    assert (cmd.producer_config().linger_ms, cmd.producer_config().retries) == (5, 7)
    cmd = command("--producer-property", "linger.ms=5", "--timeout", "20")
    assert cmd.producer_config().linger_ms == 20


def test_max_partition_memory_bytes_replaces_batch_size() -> None:
    cmd = command("--batch-size", "1000", "--max-partition-memory-bytes", "2000")
    assert cmd.producer_config().batch_size == 2000
    assert command("--batch-size", "1000").producer_config().batch_size == 1000


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--producer-property", "lingr.ms=5"], "Unknown producer config: lingr.ms"),
        (["--retry-backoff-ms", "soon"], "Invalid value soon for configuration retry.backoff.ms"),
        (["--message-send-max-retries", "-1"], "Value must be at least 0"),
        (
            ["--compression-codec", "brotli"],
            "Invalid value brotli for configuration compression.type: String must be one of",
        ),
        (
            ["--request-required-acks", "1", "--producer-property", "enable.idempotence=true"],
            "Must set acks to all in order to use the idempotent producer.",
        ),
    ],
)
def test_settings_the_producer_cannot_use_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(common.UsageError, match=message):
        command(*argv)


def test_acks_1_without_asking_for_idempotence_turns_it_off_as_kafka_does() -> None:
    assert not command("--request-required-acks", "1").producer_config().enable_idempotence


# -- the loop ---------------------------------------------------------------------------------


class FakeLines:
    def __init__(self, *reads: list[bytes]) -> None:
        self.reads = list(reads)

    async def next_lines(self, max_lines: int, max_bytes: int) -> list[bytes] | None:
        return self.reads.pop(0) if self.reads else None


class FakeProducer:
    """Acknowledges at flush; ``fail`` maps a value to the error its record fails with, and
    ``refuse`` to the error send raises for it."""

    def __init__(
        self, fail: dict[str, Exception] | None = None, refuse: dict[str, Exception] | None = None
    ) -> None:
        self.fail = fail or {}
        self.refuse = refuse or {}
        self.sent: list[tuple[Any, Any, Any]] = []
        self.pending: list[tuple[asyncio.Future[RecordMetadata], Any, Any]] = []
        self.flushes = 0

    async def send(
        self,
        topic: str,
        value: Any,
        key: Any = None,
        partition: Any = None,
        timestamp_ms: Any = None,
        headers: Any = None,
        callback: Any = None,
    ) -> Any:
        if value in self.refuse:
            raise self.refuse[value]
        self.sent.append((key, value, headers))
        future: asyncio.Future[RecordMetadata] = asyncio.get_running_loop().create_future()
        self.pending.append((future, value, callback))
        return future

    async def flush(self) -> None:
        self.flushes += 1
        for offset, (future, value, callback) in enumerate(self.pending):
            error = self.fail.get(value)
            if error is None:
                metadata = RecordMetadata("news", 0, offset, 0)
                future.set_result(metadata)
                if callback:
                    callback(metadata, None)
            else:
                future.set_exception(error)
                future.exception()
                if callback:
                    callback(None, error)
        self.pending.clear()


def run(argv: list[str], producer: FakeProducer, lines: FakeLines) -> int:
    cmd = command(*argv)
    return asyncio.run(console_producer.produce_lines(cmd, producer, lines))


def test_each_line_is_a_record_with_a_prompt_before_each_line_and_before_the_end(
    capsys: pytest.CaptureFixture[str],
) -> None:
    producer = FakeProducer()
    lines = FakeLines([b"Good morning\n", b"Good day\n"], [b"Enjoy the Kafka lab\n"])
    assert run([], producer, lines) == 0
    assert capsys.readouterr().out == ">>>>"
    assert [v for _k, v, _h in producer.sent] == ["Good morning", "Good day", "Enjoy the Kafka lab"]
    assert producer.flushes == 1


def test_keys_and_headers_are_parsed_as_kafkas_line_reader_does() -> None:
    producer = FakeProducer()
    argv = [
        "--property",
        "parse.key=true",
        "--property",
        "key.separator=,",
        "--property",
        "parse.headers=true",
    ]
    assert run(argv, producer, FakeLines([b"h1:v1\tuser1,login website\n"])) == 0
    assert producer.sent == [("user1", "login website", [("h1", "v1")])]


def test_a_failed_record_prints_kafkas_line_the_rest_is_still_sent_and_the_exit_is_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    producer = FakeProducer(
        fail={"big": ApiError(RECORD_TOO_LARGE, "The message is 2000000 bytes")}
    )
    assert run([], producer, FakeLines([b"a\n", b"big\n", b"c\n"])) == 1
    assert [v for _k, v, _h in producer.sent] == ["a", "big", "c"]
    assert capsys.readouterr().err == (
        "Error when sending message to topic news with key: null, value: 3 bytes with error: "
        "The message is 2000000 bytes\n"
    )


def test_an_error_send_raises_is_printed_the_same_way(capsys: pytest.CaptureFixture[str]) -> None:
    denied = ApiError(
        TOPIC_AUTHORIZATION_FAILED, "User:alice is not authorized to WRITE topic news"
    )
    producer = FakeProducer(refuse={"x": denied})
    assert run([], producer, FakeLines([b"x\n"])) == 1
    err = capsys.readouterr().err
    assert err.endswith("with error: User:alice is not authorized to WRITE topic news\n")
    assert err.count("\n") == 1


def test_sync_waits_for_each_record_and_stops_at_the_first_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Immediate(FakeProducer):
        async def send(self, *args: Any, **kwargs: Any) -> Any:
            future = await super().send(*args, **kwargs)
            await self.flush()
            return future

    producer = Immediate(fail={"b": ApiError(RECORD_TOO_LARGE, "too large")})
    assert run(["--sync"], producer, FakeLines([b"a\n", b"b\n", b"c\n"])) == 1
    assert [v for _k, v, _h in producer.sent] == ["a", "b"]
    assert "value: 1 bytes with error: too large" in capsys.readouterr().err


def test_a_bad_line_stops_after_the_lines_before_it_are_sent_and_nothing_of_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    producer = FakeProducer()
    lines = FakeLines([b"user1,login website\n", b"user2 no separator\n", b"user3,x\n"])
    argv = ["--property", "parse.key=true", "--property", "key.separator=,"]
    assert run(argv, producer, lines) == 1
    out, err = capsys.readouterr()
    assert producer.sent == [("user1", "login website", None)] and producer.flushes == 1
    assert err == "No key separator found on line number 2: 'user2 no separator'\n"
    assert out == ">>"  # Kafka prints the prompt for line 2 before reading it
