"""The README as a script: its code blocks read as steps, and what a step printed compared with
what the README shows. Pure: no processes, no files (tests/integration/test_readme.py runs the
steps against a cluster it starts).

How the README is read:

- A ```` ```console ```` block is a terminal session. ``$ command`` is typed (a line ending in
  ``\\`` continues on the next); the lines after it, up to the next ``$``, are what it printed.
  Lines starting with ``>`` right after the command are typed into it (the console producer's
  prompt is ``>``), and ``>^C`` ends the typing (end of input). A printed line starting with
  ``^C`` means: once the lines before it have appeared, press Ctrl+C (SIGINT); the rest of
  that line, and the lines after it, were printed after that. A printed line ``...`` stands
  for any number of lines.
- A ```` ```sh ```` block is commands without their output: each must exit 0. ``#`` lines are
  comments; ``>`` lines after a command are typed into it, as above.
- A ```` ```python ```` block is run as a script with the project's Python; it must exit 0.
- Other blocks (```` ```text ````, tables of files, ...) are not commands.
- ``<!-- readme-test: not run: REASON -->`` on the line before a block leaves it out, with the
  reason on record; ``<!-- readme-test: any order -->`` compares its printed lines as a
  multiset (several partitions read at once print in no fixed order);
  ``<!-- readme-test: eventually -->`` marks commands that show what the cluster does in the
  background (the log cleaner): each is run again until it prints what the README shows, for
  up to a minute, as a user would look again. Only for commands that change nothing.

What "the same output" means: the shape, not the values a run chooses. Both sides are rewritten
the same way before they are compared: the documented ports become the test's, runs of blanks
one space, blank lines dropped, dates ``<date>``, topic ids ``<id>``, the checkout's absolute
path before ``.cluster/`` ``<checkout>``, numbers ``#``. Output
that is JSON (a document or one per line) is compared by structure: the same keys, values of
the same JSON types, the same strings, booleans and error codes, but for what a run chooses
(ids, which voter leads; a ``null`` shown matches any value: a figure not known yet). ``ls``
output is compared as a set of names, since ``ls`` lays names out in columns only on a
terminal; with ``...`` among them, the names shown must be there and others may be.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

NOT_RUN = "not run:"
ANY_ORDER = "any order"
EVENTUALLY = "eventually"
_EXITS = re.compile(r"^exits (\d+)$")
_ANNOTATION = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
_FENCE = re.compile(r"^```(\S*)\s*$")
RUN_LANGUAGES = ("console", "sh", "python")


@dataclass
class Block:
    """A fenced code block of the README."""

    language: str
    lines: list[str]
    line_no: int  # of the opening fence, 1-based
    annotations: list[str] = field(default_factory=list)

    @property
    def not_run_reason(self) -> str | None:
        for note in self.annotations:
            if note.startswith(NOT_RUN):
                return note[len(NOT_RUN) :].strip()
        return None

    @property
    def any_order(self) -> bool:
        return ANY_ORDER in self.annotations

    @property
    def eventually(self) -> bool:
        return EVENTUALLY in self.annotations

    @property
    def exit_status(self) -> int:
        for note in self.annotations:
            if match := _EXITS.match(note):
                return int(match.group(1))
        return 0


@dataclass
class Step:
    """One command to run, with what the README says it prints (None: not shown, exit 0)."""

    command: str
    line_no: int
    stdin: list[str] | None = None
    expected: list[str] | None = None
    interrupt_after: int | None = None  # printed lines to wait for before Ctrl+C
    any_order: bool = False
    python: bool = False
    exit_status: int = 0  # what the command exits with (Ctrl+C aside)
    eventually: bool = False  # run again until the output matches (background work)


def blocks(markdown: str) -> list[Block]:
    """Every fenced block, with the ``readme-test`` annotations on the lines just before it."""
    found: list[Block] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            i += 1
            continue
        notes: list[str] = []
        j = i - 1
        while j >= 0 and (note := _ANNOTATION.match(lines[j].strip())):
            notes.insert(0, note.group(1))
            j -= 1
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if end == len(lines):
            raise ValueError(f"README line {i + 1}: a code block is never closed")
        found.append(Block(fence.group(1), lines[i + 1 : end], i + 1, notes))
        i = end + 1
    return found


def _joined(lines: list[str], start: int) -> tuple[str, int]:
    """The command starting at ``lines[start]`` with its ``\\`` continuations, and the index
    after it."""
    parts = []
    i = start
    while True:
        line = lines[i]
        if line.rstrip().endswith("\\") and i + 1 < len(lines):
            parts.append(line.rstrip()[:-1].rstrip())
            i += 1
            continue
        parts.append(line.strip())
        return " ".join(part.strip() for part in parts if part.strip()), i + 1


def _typed(lines: list[str], i: int) -> tuple[list[str] | None, int]:
    """The ``>`` lines typed into a command from ``lines[i]`` on (``>^C`` ends them), or None
    if nothing is typed, and the index after them."""
    if i >= len(lines) or not lines[i].startswith(">"):
        return None, i
    typed: list[str] = []
    while i < len(lines) and lines[i].startswith(">"):
        text = lines[i][1:]
        i += 1
        if text.strip() == "^C":
            break
        typed.append(text)
    return typed, i


def steps(block: Block) -> list[Step]:
    """The commands of one block, in order (none for a block that is not run)."""
    if block.language not in RUN_LANGUAGES or block.not_run_reason is not None:
        return []
    if block.language == "python":
        return [Step("\n".join(block.lines), block.line_no, python=True)]
    found: list[Step] = []
    lines = block.lines
    i = 0
    if block.language == "sh":
        while i < len(lines):
            stripped = lines[i].strip()
            if not stripped or stripped.startswith("#"):
                i += 1
                continue
            line_no = block.line_no + 1 + i
            command, i = _joined(lines, i)
            stdin, i = _typed(lines, i)
            found.append(Step(command, line_no, stdin=stdin, exit_status=block.exit_status))
        return found
    while i < len(lines):
        if not lines[i].startswith("$ "):
            raise ValueError(
                f"README line {block.line_no + 1 + i}: a console block's output must follow "
                f"a '$ ' command: {lines[i]!r}"
            )
        line_no = block.line_no + 1 + i
        command, i = _joined([*lines[:i], lines[i][2:], *lines[i + 1 :]], i)
        stdin, i = _typed(lines, i)
        expected: list[str] = []
        interrupt_after = None
        while i < len(lines) and not lines[i].startswith("$ "):
            line = lines[i]
            if line.startswith("^C"):
                interrupt_after = len(expected)
                line = line[2:]
                if not line:
                    i += 1
                    continue
            expected.append(line)
            i += 1
        found.append(
            Step(
                command,
                line_no,
                stdin,
                expected,
                interrupt_after,
                any_order=block.any_order,
                exit_status=block.exit_status,
                eventually=block.eventually,
            )
        )
    return found


# ---------------------------------------------------------------------------------------------
# Rewriting the documented cluster into the test's
# ---------------------------------------------------------------------------------------------

DOCUMENTED_BASE_PORT = 9092
CLUSTER_PORTS = 6  # three nodes, HTTP and Raft each
_PORT = re.compile(r"(?<![\d.])(909[2-7])(?!\d)")
# The Kafka listeners the launcher gives nodes 1-5: 19092, 19094, ... 19100.
DOCUMENTED_KAFKA_BASE_PORT = 19092
KAFKA_PORTS = 10
_KAFKA_PORT = re.compile(r"(?<![\d.])(19(?:09[2-9]|10[01]))(?!\d)")


def rewrite_ports(text: str, base_port: int, kafka_base_port: int | None = None) -> str:
    """The documented ports 9092-9097 (nodes 1-3, HTTP and Raft) as ``base_port`` on, and the
    Kafka listeners' 19092-19101 as ``kafka_base_port`` on (when given)."""
    text = _PORT.sub(lambda m: str(base_port + int(m.group(1)) - DOCUMENTED_BASE_PORT), text)
    if kafka_base_port is None:
        return text
    return _KAFKA_PORT.sub(
        lambda m: str(kafka_base_port + int(m.group(1)) - DOCUMENTED_KAFKA_BASE_PORT), text
    )


# ---------------------------------------------------------------------------------------------
# Comparing output shapes
# ---------------------------------------------------------------------------------------------

_TOPIC_ID = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{22}(?![A-Za-z0-9_-])")
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
# Java's Date.toString(), as Kafka's meta.properties carries it: "Sun Dec 06 08:46:17 UTC 2026".
_JAVA_DATE = re.compile(
    r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"+\d{1,2} \d{2}:\d{2}:\d{2} [A-Za-z+\-0-9]+ \d{4}\b"
)
_BLANKS = re.compile(r"\s+")
WILDCARD = "..."


# The absolute path of the reader's checkout, before the cluster's directory: Kafka's tools
# print some paths absolute (kraft-dump-log's gap notes, kraft-log-dirs's logDir).
_CHECKOUT = re.compile(r"(?:/[^\s/\"']+)+/(?=\.cluster/)")


def normalize_line(line: str) -> str:
    """A printed line with what a run chooses (dates, ids, numbers, spacing) made uniform."""
    line = _JAVA_DATE.sub("<date>", line)
    line = _TOPIC_ID.sub(lambda m: "<id>" if re.search(r"\d|[A-Z]", m.group()) else m.group(), line)
    line = _CHECKOUT.sub("<checkout>/", line)
    line = _NUMBER.sub("#", line)
    return _BLANKS.sub(" ", line).strip()


def _json_documents(lines: list[str]) -> list[Any] | None:
    """The JSON the lines hold (one document, or one per line), or None if they are not JSON."""
    text = "\n".join(lines).strip()
    if not text or text[0] not in "[{":
        return None
    try:
        return [orjson.loads(text)]
    except orjson.JSONDecodeError:
        pass
    try:
        return [orjson.loads(line) for line in lines if line.strip()]
    except orjson.JSONDecodeError:
        return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__


# What a run chooses in an answer: ids, digests, and which voter happens to lead or to be
# connected at that moment. Every other string and boolean, and every error code, must be the
# one the README shows.
VOLATILE_KEYS = frozenset({"cluster_id", "topic_id", "metadata_digest", "status", "connected"})
EXACT_NUMBER_KEYS = frozenset({"error_code"})


def json_shape_difference(
    expected: Any, actual: Any, where: str = "$", key: str | None = None
) -> str | None:
    """Where ``actual`` differs from ``expected``, or None: the same keys, the same JSON types,
    the same strings, booleans and error codes (but for :data:`VOLATILE_KEYS`); numbers are
    the run's. A list is compared by its first element: lists grow and shrink with the data.
    A ``null`` in the README stands for a figure that may or may not be known yet, and
    matches anything."""
    if expected is None:
        return None
    if _kind(expected) != _kind(actual):
        return f"{where}: expected a {_kind(expected)}, got {actual!r:.80}"
    exact = isinstance(expected, str | bool) or key in EXACT_NUMBER_KEYS
    if exact and key not in VOLATILE_KEYS and expected != actual:
        return f"{where}: expected {expected!r:.80}, got {actual!r:.80}"
    if isinstance(expected, dict):
        missing = sorted(set(expected) - set(actual))
        extra = sorted(set(actual) - set(expected))
        if missing or extra:
            return f"{where}: keys missing {missing}, not documented {extra}"
        for name in expected:
            difference = json_shape_difference(
                expected[name], actual[name], f"{where}.{name}", name
            )
            if difference:
                return difference
    if isinstance(expected, list) and expected:
        if not actual:
            return f"{where}: expected a non-empty list, got []"
        return json_shape_difference(expected[0], actual[0], f"{where}[0]", key)
    return None


def _match_lines(expected: list[str], actual: list[str]) -> bool:
    """``expected`` (with ``...`` lines matching any run of lines) against ``actual``."""
    memo: dict[tuple[int, int], bool] = {}

    def match(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(expected):
            result = j == len(actual)
        elif expected[i] == WILDCARD:
            result = match(i + 1, j) or (j < len(actual) and match(i, j + 1))
        else:
            result = j < len(actual) and expected[i] == actual[j] and match(i + 1, j + 1)
        memo[(i, j)] = result
        return result

    return match(0, 0)


def output_difference(step: Step, actual: str) -> str | None:
    """Why what ``step`` printed (``actual``) is not what the README shows, or None."""
    assert step.expected is not None
    expected = step.expected
    actual_lines = actual.splitlines()
    if step.stdin is not None:
        # The console producer's prompts, printed without a newline before each line it reads.
        actual_lines = [line.lstrip(">") for line in actual_lines]
    if step.command.split()[:1] == ["ls"]:
        want = set(" ".join(expected).split())
        got = set(" ".join(actual_lines).split())
        if WILDCARD in want:
            missing = want - {WILDCARD} - got
            return f"ls did not list {sorted(missing)}: {sorted(got)}" if missing else None
        return None if want == got else f"ls listed {sorted(got)}, the README shows {sorted(want)}"
    documents = _json_documents(expected)
    if documents is not None:
        got_documents = _json_documents(actual_lines)
        if got_documents is None:
            return f"the README shows JSON, the command printed:\n{actual}"
        if len(got_documents) != len(documents):
            return f"{len(documents)} JSON documents shown, {len(got_documents)} printed:\n{actual}"
        for want, got in zip(documents, got_documents, strict=True):
            difference = json_shape_difference(want, got)
            if difference:
                return f"{difference}\nprinted:\n{actual}"
        return None
    want_lines = [normalize_line(line) for line in expected if line.strip()]
    got_lines = [normalize_line(line) for line in actual_lines if line.strip()]
    if step.any_order:
        same = Counter(want_lines) == Counter(got_lines)
    else:
        same = _match_lines(want_lines, got_lines)
    if same:
        return None
    return (
        "the README shows (normalized):\n  "
        + "\n  ".join(want_lines)
        + "\nthe command printed (normalized):\n  "
        + "\n  ".join(got_lines)
    )
