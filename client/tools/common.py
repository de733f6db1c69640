"""What the kraft-* command-line tools share: flag parsing the Kafka way, refusals, exit codes.

Our users type Kafka's commands with ``kraft-`` in place of ``kafka-``, so each tool takes
Kafka's flags and prints Kafka's lines. Three kinds of flags:

- flags we support, parsed by argparse;
- flags Kafka's tool has and we do not (yet): parsed too, then refused *by name* with a
  message that says why (:data:`REFUSED_FLAGS`), so nobody thinks the flag was honoured;
- anything else: argparse's "unrecognized arguments" error, exit 2.

Exit codes: 0 success, 1 an error (one line on stderr, Kafka's wording where Kafka has one),
2 an unknown flag, 130 Ctrl+C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

from client.client import TransportError, parse_bootstrap
from client.protocol import ApiError
from client.security import ClientSecurity, SecurityConfigError
from storage.properties import PropertiesError, parse_properties

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE_UNKNOWN_FLAG = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a job ended by Ctrl+C

Command = TypeVar("Command")

_ZOOKEEPER = "--zookeeper is not supported: this cluster has no ZooKeeper; use --bootstrap-server"

# Kafka's flags that a tool parses but refuses, with the reason. "{flag}" is replaced by the
# flag's name. Every flag here is accepted by argparse (with an optional value), so a refused
# flag is always named in the message rather than reported as unknown.
REFUSED_FLAGS: dict[str, dict[str, str]] = {
    "kraft-topics": {
        "--zookeeper": _ZOOKEEPER,
        "--replica-assignment": ("{flag} is not supported: the controller places replicas itself"),
        "--delete-config": (
            "{flag} is not supported (Kafka 4 removed it too); set the config again instead"
        ),
        "--topic-id": "{flag} is not supported yet; use --topic",
        "--partition-size-limit-per-response": "{flag} is not supported",
        "--disable-rack-aware": (
            "{flag} is not supported (Kafka 4 removed it too): the controller places a new "
            "topic's replicas over the brokers' broker.rack whenever they have one"
        ),
    },
    "kraft-console-producer": {
        "--zookeeper": _ZOOKEEPER,
        "--reader-config": "{flag} is not supported; give the reader's settings with --property",
        "--line-reader": "{flag} is not supported: lines are read by the built-in line reader",
        "--socket-buffer-size": "{flag} is not supported",
        "--command-property": "{flag} is not supported; use --producer-property acks=...",
    },
    "kraft-console-consumer": {
        "--zookeeper": _ZOOKEEPER,
        "--include": "{flag} is not supported yet; name one topic with --topic",
        "--whitelist": "{flag} is not supported yet; name one topic with --topic",
        "--formatter": "{flag} is not supported: only the default message formatter exists",
        "--formatter-config": "{flag} is not supported; give formatter settings with --property",
        "--key-deserializer": "{flag} is not supported: keys are printed as stored",
        "--value-deserializer": "{flag} is not supported: values are printed as stored",
        "--isolation-level": "{flag} is not supported: there are no transactions",
        "--enable-systest-events": "{flag} is not supported",
        "--skip-message-on-error": "{flag} is not supported",
    },
}


class UsageError(Exception):
    """A command line that cannot run: printed as one line on stderr, exit 1 (as Kafka)."""


def refused_message(tool: str, flag: str) -> str:
    return REFUSED_FLAGS[tool][flag].format(flag=flag)


def _dest(flag: str) -> str:
    return "refused_" + flag.lstrip("-").replace("-", "_").replace(".", "_")


def new_parser(
    tool: str,
    description: str,
    refused: Mapping[str, str] | None = None,
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """A parser with ``--version`` and the refused flags (``refused``: flag -> reason, with
    "{flag}" for the flag's name; default ``REFUSED_FLAGS[tool]``); abbreviations are off so
    a typo is never taken for another flag."""
    parser = argparse.ArgumentParser(
        prog=tool, description=description, epilog=epilog, allow_abbrev=False
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    for flag in REFUSED_FLAGS[tool] if refused is None else refused:
        parser.add_argument(flag, dest=_dest(flag), nargs="?", const="", help=argparse.SUPPRESS)
    return parser


def check_refused(
    tool: str, args: argparse.Namespace, refused: Mapping[str, str] | None = None
) -> None:
    """Raises UsageError naming the first refused flag that was given (``refused`` as for
    :func:`new_parser`)."""
    for flag, why in (REFUSED_FLAGS[tool] if refused is None else refused).items():
        if getattr(args, _dest(flag)) is not None:
            raise UsageError(why.format(flag=flag))


def parse_argv(argv: list[str] | None, parse: Callable[[list[str]], Command]) -> Command | int:
    """The front part of every tool's ``main``: the command ``parse`` makes of ``argv``
    (``sys.argv[1:]`` when None), or the exit code when the tool has already answered:
    ``--version`` anywhere prints the version (0); argparse's ``--help`` (0) or unknown flag
    (2) keep their code; a UsageError prints its one line on stderr (1)."""
    argv = sys.argv[1:] if argv is None else argv
    if "--version" in argv:
        print_version()
        return EXIT_OK
    try:
        return parse(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    except UsageError as exc:
        print_error(str(exc))
        return EXIT_ERROR


def add_config_flags(parser: argparse.ArgumentParser, *flags: str, what: str) -> None:
    """Kafka's client config file flag(s) (``--command-config``, ``--producer.config``...):
    a properties file whose security settings (security.protocol, ssl.truststore.location,
    sasl.jaas.config or sasl.username/sasl.password) the tool's client uses."""
    parser.add_argument(
        *flags,
        dest="command_config",
        metavar="FILE",
        help=f"A property file containing configs to be passed to the {what} "
        "(security.protocol, ssl.truststore.location, sasl.jaas.config...).",
    )


def load_client_config(path: str | None) -> tuple[ClientSecurity | None, dict[str, str]]:
    """The client security and all the properties of a ``--command-config`` file ((None, {})
    without one); UsageError (one line, exit 1) for a file that cannot be read or holds a wrong
    setting."""
    if path is None:
        return None, {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read {path}: {why}") from None
    try:
        props = parse_properties(text, source=path)
        security = ClientSecurity.from_properties(props, path)
        security.ssl_context()  # a truststore that cannot be loaded fails here, not mid-run
    except (PropertiesError, SecurityConfigError) as exc:
        raise UsageError(str(exc)) from None
    return security, props


def load_security(path: str | None) -> ClientSecurity | None:
    """The client security of a ``--command-config`` file (see :func:`load_client_config`)."""
    return load_client_config(path)[0]


def parse_key_values(items: list[str] | None) -> dict[str, str]:
    """Kafka's ``key=value`` command-line properties (split at the first '='); later wins."""
    result: dict[str, str] = {}
    bad = [item for item in items or [] if "=" not in item]
    if bad:
        raise UsageError("Invalid command line properties: " + " ".join(bad))
    for item in items or []:
        key, _, value = item.partition("=")
        result[key.strip()] = value
    return result


def parse_bool(value: str) -> bool:
    # Kafka's reading of a boolean property: "true" in any case is true, anything else false.
    return value.strip().lower() == "true"


def check_bootstrap(bootstrap: str) -> None:
    try:
        parse_bootstrap(bootstrap)
    except ValueError as exc:
        raise UsageError(
            f"Please provide valid host:port like host1:9091,host2:9092 ({exc})"
        ) from None


def error_text(exc: BaseException) -> str:
    """The human part of an error: the server's message, else the error's name."""
    if isinstance(exc, ApiError):
        return exc.message or exc.name
    return str(exc) or type(exc).__name__


def print_error(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def print_version() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        print(version("kraft-streaming"))
    except PackageNotFoundError:
        print("unknown (not installed)")


def _silence_stdout() -> None:
    # After EPIPE (say `| head -1`), Python would complain again when it flushes stdout at
    # exit; point fd 1 at /dev/null so the exit stays quiet.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def run(main_coro: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Runs a tool's coroutine: Ctrl+C gives exit 130 with no traceback; a closed stdout
    pipe gives exit 1 quietly; a transport failure prints its one line and gives exit 1."""
    try:
        return asyncio.run(main_coro())
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_ERROR
    except TransportError as exc:
        print_error(str(exc))
        return EXIT_ERROR
