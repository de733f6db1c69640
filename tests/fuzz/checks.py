"""The rules every answer of the fuzz tier keeps, and the tally of what the node answered.

Each broken rule raises its own exception class from its own line, so Hypothesis reports
each kind of bug as a separate failure with its own shrunk example (it tells bugs apart by
exception type and origin).

The rules, from issue 11 and docs/api.md:

- an answer is a well-formed HTTP/1.1 response, or the server closes the connection; it
  never leaves the connection hanging past its read timeout;
- the status is a documented one: 200, 201, 202, 204, 207, a 307 with ``Location`` (or the
  console's 301 and 302, also with it), any 4xx,
  a 503 of docs/api.md (NOT_ENOUGH_REPLICAS, LEADER_NOT_AVAILABLE, SERVER_BUSY; with
  ``Retry-After``), or for a produce the documented 500 REQUEST_TIMED_OUT of an acks=all wait;
  never another 5xx;
- an answer of 400 or above is JSON: ``{"error_code", "error", "message"}``, the code's first
  three digits the status, a short message;
- a JSON 2xx answer parses;
- an internal endpoint never answers 2xx to a request without the cluster's proof (the
  internal fuzz signs its requests with it);
- a number that is not ASCII digits ("١", "+1", "1_0") is not taken as a number.

Hypothesis stops a test at its first broken rule (and shrinks it). To see every kind at once,
run the tier with ``KRAFT_FUZZ_SURVEY=1``: broken rules are then recorded instead of raised,
the shortest request of each kind (rule, route, answer) is listed at the end of the run, and
the run fails if there is any.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections import Counter
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson

from tests.fuzz.routes import MAIN_TOPIC, Case
from tests.fuzz.wire import Answer, Closed, Hung, Malformed, Outcome, Request

# Requests sent by the whole tier, by what came back ("200", "closed", ...).
TALLY: Counter[str] = Counter()
SURVEY = os.environ.get("KRAFT_FUZZ_SURVEY") == "1"
# In survey mode: (rule, route, answer, error name) -> (request size, the report's text).
FOUND: dict[tuple[str, str, str, str], tuple[int, str]] = {}

SUCCESS_STATUSES = frozenset({200, 201, 202, 204, 207})
# 307: to a partition's leader, a group's coordinator or a broker; 301 and 302: to the console.
REDIRECT_STATUSES = frozenset({301, 302, 307})
DOCUMENTED_503 = frozenset({"NOT_ENOUGH_REPLICAS", "LEADER_NOT_AVAILABLE", "SERVER_BUSY"})
PRODUCE_ROUTES = (
    "POST /v1/topics/{topic}/records",
    "POST /v1/topics/{topic}/partitions/{partition}/records",
)
# "Messages stay short" (issue 11): a message may name what was wrong, not echo a whole
# request (a 10,000-character path) or a library's internals (5 KB of aiohttp's repr).
MESSAGE_CHARS_MAX = 1000


class HungConnection(AssertionError):
    """Neither an answer nor a close within the deadline."""


class MalformedResponse(AssertionError):
    """Bytes that are not a well-formed HTTP/1.1 response."""


class ServerError(AssertionError):
    """A 5xx that docs/api.md does not document for this request (a 500 is a bug)."""


class UndocumentedStatus(AssertionError):
    """A 1xx-3xx status docs/api.md does not use, or a redirect without Location."""


class ErrorNotJson(AssertionError):
    """An error answer whose body is not docs/api.md's JSON error."""


class LongMessage(AssertionError):
    """An error message longer than MESSAGE_CHARS_MAX."""


class SuccessNotJson(AssertionError):
    """A 2xx answer labelled JSON whose body does not parse."""


class InternalWithoutProof(AssertionError):
    """An internal endpoint did what a stranger asked."""


class OddNumberTaken(AssertionError):
    """A number that is not ASCII digits was taken as one."""


def label(outcome: Outcome) -> str:
    if isinstance(outcome, Answer):
        return str(outcome.status)
    return {Closed: "closed", Hung: "hung", Malformed: "malformed"}[type(outcome)]


def error_body(answer: Answer) -> dict[str, Any] | None:
    """The JSON error object of an answer, or None if it is not one."""
    try:
        body = orjson.loads(answer.body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    code, name, message = body.get("error_code"), body.get("error"), body.get("message")
    if not (isinstance(code, int) and isinstance(name, str) and isinstance(message, str)):
        return None
    return body


def check(case: Case, outcome: Outcome) -> None:
    """Raises the rule's exception if ``outcome`` breaks one of the rules above."""
    TALLY[label(outcome)] += 1

    def said() -> str:  # only when a rule is broken: a summary of a 9 MiB body takes time
        return f"{case!r}\n  -> {outcome.summary()}"

    if isinstance(outcome, Closed):
        return
    if isinstance(outcome, Hung):
        raise HungConnection(said())
    if isinstance(outcome, Malformed):
        raise MalformedResponse(said())
    answer = outcome
    status = answer.status
    head_only = case.request.method == b"HEAD"
    body = None if head_only or status < 400 else error_body(answer)
    if status >= 500:
        name = body.get("error") if body else None
        documented = (status == 503 and name in DOCUMENTED_503) or (
            status == 500 and name == "REQUEST_TIMED_OUT" and case.route in PRODUCE_ROUTES
        )
        if not documented:
            raise ServerError(said())
        if status == 503 and answer.header("retry-after") is None:
            raise ServerError(f"a 503 without Retry-After: {said()}")
    elif status < 400 and status not in SUCCESS_STATUSES:
        if status not in REDIRECT_STATUSES:
            raise UndocumentedStatus(said())
        if answer.header("location") is None:
            raise UndocumentedStatus(f"a {status} without Location: {said()}")
    if status >= 400:
        if answer.media_type != "application/json":
            raise ErrorNotJson(said())
        if not head_only:
            if body is None:
                raise ErrorNotJson(said())
            if body["error_code"] // 100 != status:
                raise ErrorNotJson(f"error_code {body['error_code']} for status {status}: {said()}")
            if len(body["message"]) > MESSAGE_CHARS_MAX:
                raise LongMessage(said())
    elif (
        answer.media_type == "application/json"
        and not answer.streamed
        and not head_only
        and status != 204
    ):
        try:
            orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            raise SuccessNotJson(said()) from None
    if 200 <= status < 300 and case.route.startswith("POST /v1/internal/") and not case.signed:
        raise InternalWithoutProof(said())
    if 200 <= status < 300 and case.odd_numbers:
        raise OddNumberTaken(said())
    if 200 <= status < 400 and case.odd_path_numbers:
        raise OddNumberTaken(f"in the path: {said()}")


def check_or_record(case: Case, outcome: Outcome) -> None:
    """``check``, or in survey mode: record what it raises (the shortest request per kind)."""
    try:
        check(case, outcome)
    except AssertionError as e:
        if not SURVEY:
            raise
        name = ""
        if isinstance(outcome, Answer):
            body = error_body(outcome)
            name = str(body["error"]) if body else outcome.media_type
        key = (type(e).__name__, case.route, label(outcome), name)
        size = len(case.request.to_bytes(b"x"))
        if key not in FOUND or size < FOUND[key][0]:
            FOUND[key] = (size, str(e))


# -- authorization (the secure fuzz: tests/fuzz/test_secure_fuzz.py) -----------------------------

# What alice (READ on topic fuzz, which implies DESCRIBE) may read; anyone may check health.
# The console's files are open to anyone; READ on a topic implies DESCRIBE (its replicas, the
# disk view's listing) and gives the disk view's file text.
_OPEN_READS = r"/v1/health/ready/?|/|/ui|/ui/.*"
_ALICE_READS = re.compile(
    rf"{_OPEN_READS}|/v1/(topics|groups|topics/{MAIN_TOPIC}|topics/{MAIN_TOPIC}/partitions/[^/]+/"
    rf"(records|offsets)|topics/{MAIN_TOPIC}/replicas"
    rf"|brokers/[^/]+/partitions/{MAIN_TOPIC}/[^/]+/files(/[^/]+)?)/?"
)
_ANYONE_READS = re.compile(_OPEN_READS)


class AuthorizationBypass(AssertionError):
    """A request got a 2xx or 3xx its sender may not have."""


def effective_path(target: bytes) -> str:
    """The path a lenient server could route a request target to: absolute form stripped,
    query and fragment cut, percent-decoded, slashes merged, dot segments resolved."""
    text = target.decode("utf-8", "replace")
    if "://" in text:
        text = urlsplit(text).path
    text = unquote(text.split("#", 1)[0].split("?", 1)[0])
    return posixpath.normpath(re.sub("/+", "/", "/" + text))


def may_get(principal: str, request: Request) -> bool:
    """Whether ``principal`` may get a 2xx or 3xx for ``request`` on the secure fuzz's node:
    "admin" (a super user) anything; "alice" (READ on topic fuzz) reads of that topic, and
    the topic and group lists (filtered to what she may see); anyone else the health check."""
    if principal == "admin":
        return True
    if request.method not in (b"GET", b"HEAD"):
        return False
    pattern = _ALICE_READS if principal == "alice" else _ANYONE_READS
    return pattern.fullmatch(effective_path(request.target)) is not None
