"""kraft-cluster without a cluster: Kafka's commands, flags, refusals and messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from client.tools import common
from client.tools.cluster import ClusterCommand, main, parse_command

BS = ["--bootstrap-server", "127.0.0.1:9092"]


def usage_error(argv: list[str]) -> str:
    with pytest.raises(common.UsageError) as info:
        parse_command(argv)
    return str(info.value)


def test_unregister_takes_kafkas_flags_long_and_short() -> None:
    expected = ClusterCommand("127.0.0.1:9092", "unregister", 4)
    assert parse_command(["unregister", *BS, "--id", "4"]) == expected
    assert parse_command(["unregister", "-b", "127.0.0.1:9092", "-i", "4"]) == expected
    assert parse_command(["cluster-id", *BS]) == ClusterCommand("127.0.0.1:9092", "cluster-id")


def test_the_config_file_is_read_under_kafkas_name_and_ours(tmp_path: Path) -> None:
    config = tmp_path / "client.properties"
    config.write_text("security.protocol=PLAINTEXT\ndefault.api.timeout.ms=5000\n")
    for flag in ("--config", "-c", "--command-config"):
        cmd = parse_command(["unregister", *BS, "--id", "4", flag, str(config)])
        assert cmd.security is not None and cmd.security.protocol == "PLAINTEXT"
        assert cmd.settings == {"default_api_timeout_ms": 5000}
    config.write_text("default.api.timeout.ms=soon\n")
    assert "Invalid value soon for configuration default.api.timeout.ms" in usage_error(
        ["unregister", *BS, "--id", "4", "-c", str(config)]
    )


def test_a_missing_bootstrap_or_the_controller_listener_is_refused_with_a_reason() -> None:
    assert usage_error(["unregister", "--id", "4"]) == (
        "one of the arguments --bootstrap-server --bootstrap-controller is required"
    )
    assert "--bootstrap-controller is not supported" in usage_error(
        ["unregister", "--bootstrap-controller", "127.0.0.1:9093", "--id", "4"]
    )
    assert "Please provide valid host:port" in usage_error(["cluster-id", "-b", "nohost"])
    assert "too few arguments" in usage_error([])


@pytest.mark.parametrize(
    "argv",
    [
        ["unregister", *BS],  # --id is required
        ["unregister", *BS, "--id", "four"],
        ["unregister", *BS, "--id", "-1"],
        ["unregister", *BS, "--id", "2147483648"],
        ["describe", *BS],
        ["cluster-id", *BS, "--id", "4"],
    ],
)
def test_argparse_refuses_a_bad_or_unknown_argument_with_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_usage_errors_exit_1_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["unregister", "--id", "4"]) == 1
    assert capsys.readouterr().err == (
        "one of the arguments --bootstrap-server --bootstrap-controller is required\n"
    )
