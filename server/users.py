"""The users file: who may connect with SASL (HTTP basic), kept as salted hashes, as Kafka's
SCRAM credentials are; and ``kraft-users``, the tool that writes it.

The file (``http.users.file``), one user a line; ``#`` starts a comment line::

    alice=SCRAM-SHA-256:iterations=4096:salt=<b64>:stored_key=<b64>:server_key=<b64>

with Kafka's (RFC 5802's) derivation::

    SaltedPassword = PBKDF2-HMAC-SHA256(password, salt, iterations)
    ClientKey      = HMAC-SHA256(SaltedPassword, "Client Key")
    StoredKey      = SHA256(ClientKey)
    ServerKey      = HMAC-SHA256(SaltedPassword, "Server Key")

The node never keeps a password: it derives StoredKey from the password a request brings and
compares it with the file's in constant time. A user name is 1 to 255 printable ASCII
characters without ``:`` (HTTP basic splits there), ``=``, ``#`` or spaces. Base64 is standard
with padding. The file is written whole (temporary file, rename, mode 0600), so a node that
re-reads it sees the old or the new file, never a half-written one.

:class:`UserStore` is the node's view: it re-reads the file when its mtime, size or inode
change (looked at no more than once a second), and remembers recently verified credentials for
a short time, because PBKDF2 takes milliseconds by design and every request carries the
password. A wrong password is never remembered.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import fcntl
import getpass
import hashlib
import hmac
import logging
import os
import secrets
import sys
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from server import limits
from server.config import ConfigError
from storage.durable import atomic_write

log = logging.getLogger(__name__)

MECHANISM = "SCRAM-SHA-256"
# Kafka's minimum (and default) for SCRAM-SHA-256; more is allowed, up to Kafka's maximum.
ITERATIONS_MIN = 4096
ITERATIONS_MAX = 16384
SALT_BYTES = 32
USER_NAME_CHARS_MAX = 255
PASSWORD_BYTES_MAX = 1024  # an HTTP header's worth; a longer one is a mistake
# A users file bigger than this is a wrong path, not a list of users.
USERS_FILE_BYTES_MAX = 16 * 1024 * 1024

_FORBIDDEN_NAME_CHARS = set(':=# "\\')


class UsersFileError(ConfigError):
    """The users file cannot be read or has a bad line; the message names file and line."""


def check_user_name(name: str) -> str | None:
    """None when ``name`` is a valid user name, else what is wrong with it."""
    if not 1 <= len(name) <= USER_NAME_CHARS_MAX:
        return f"a user name has 1 to {USER_NAME_CHARS_MAX} characters"
    if not name.isascii() or not name.isprintable() or _FORBIDDEN_NAME_CHARS & set(name):
        return "a user name is printable ASCII without spaces, quotes, backslashes, ':', '=' or '#'"
    return None


@dataclass(frozen=True)
class Credential:
    """One user's SCRAM-SHA-256 credential (no password in it)."""

    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    def __post_init__(self) -> None:
        assert ITERATIONS_MIN <= self.iterations <= ITERATIONS_MAX, self.iterations
        assert len(self.stored_key) == len(self.server_key) == hashlib.sha256().digest_size

    @classmethod
    def derive(
        cls, password: str, *, iterations: int = ITERATIONS_MIN, salt: bytes | None = None
    ) -> Credential:
        """The credential for ``password`` with a fresh random salt (or the one given)."""
        salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        return cls(
            iterations=iterations,
            salt=salt,
            stored_key=hashlib.sha256(client_key).digest(),
            server_key=hmac.digest(salted, b"Server Key", "sha256"),
        )

    def verify(self, password: str) -> bool:
        """True when ``password`` is this credential's; the comparison takes constant time."""
        candidate = Credential.derive(password, iterations=self.iterations, salt=self.salt)
        return hmac.compare_digest(candidate.stored_key, self.stored_key)

    def encode(self) -> str:
        b64 = base64.b64encode
        return (
            f"{MECHANISM}:iterations={self.iterations}:salt={b64(self.salt).decode()}"
            f":stored_key={b64(self.stored_key).decode()}"
            f":server_key={b64(self.server_key).decode()}"
        )

    @classmethod
    def decode(cls, text: str) -> Credential:
        """Parses :meth:`encode`'s form; ValueError says what is wrong."""
        mechanism, _, rest = text.partition(":")
        if mechanism != MECHANISM:
            raise ValueError(f"the mechanism must be {MECHANISM}, got {mechanism!r}")
        fields: dict[str, str] = {}
        for part in rest.split(":"):
            key, sep, value = part.partition("=")
            if not sep or key in fields:
                raise ValueError(f"expected key=value fields once each, got {part!r}")
            fields[key] = value
        expected = {"iterations", "salt", "stored_key", "server_key"}
        if set(fields) != expected:
            raise ValueError(f"expected the fields {', '.join(sorted(expected))}")
        raw = fields["iterations"]
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 6):
            raise ValueError(f"iterations must be a number, got {raw!r}")
        iterations = int(raw)
        if not ITERATIONS_MIN <= iterations <= ITERATIONS_MAX:
            raise ValueError(f"iterations must be {ITERATIONS_MIN} to {ITERATIONS_MAX}")
        try:
            salt, stored, server = (
                base64.b64decode(fields[k], validate=True)
                for k in ("salt", "stored_key", "server_key")
            )
        except binascii.Error:
            raise ValueError("salt, stored_key and server_key must be base64") from None
        size = hashlib.sha256().digest_size
        if not salt or len(stored) != size or len(server) != size:
            raise ValueError(f"a salt and {size}-byte stored_key and server_key are required")
        return cls(iterations=iterations, salt=salt, stored_key=stored, server_key=server)


def parse_users(text: str, source: str) -> dict[str, Credential]:
    """The users of a users file's text; UsersFileError names ``source`` and the bad line."""
    users: dict[str, Credential] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        problem = "expected name=SCRAM-SHA-256:..." if not sep else check_user_name(name)
        if problem is None and name in users:
            problem = f"user {name} is listed twice"
        if problem is None:
            try:
                users[name] = Credential.decode(value)
            except ValueError as e:
                problem = f"user {name}: {e}"
        if problem is not None:
            raise UsersFileError(f"http.users.file: {source} line {number}: {problem}")
    return users


def format_users(users: dict[str, Credential]) -> str:
    lines = ["# kraft users (kraft-users); SCRAM-SHA-256 credentials, no passwords\n"]
    lines += [f"{name}={users[name].encode()}\n" for name in sorted(users)]
    return "".join(lines)


def read_users_file(path: Path) -> dict[str, Credential]:
    try:
        with path.open("rb") as f:
            data = f.read(USERS_FILE_BYTES_MAX + 1)
    except OSError as e:
        raise UsersFileError(f"http.users.file: cannot read {path}: {e.strerror}") from None
    if len(data) > USERS_FILE_BYTES_MAX:
        raise UsersFileError(
            f"http.users.file: {path} is over {USERS_FILE_BYTES_MAX} bytes: not a users file"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsersFileError(f"http.users.file: {path} is not UTF-8 text") from None
    return parse_users(text, str(path))


def parse_basic(header: str) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic ...`` value, or None if it is not one."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or len(token) > 4 * PASSWORD_BYTES_MAX:
        return None
    try:
        pair = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):  # binascii.Error, or a non-ASCII token
        return None
    user, sep, password = pair.partition(":")
    if not sep or check_user_name(user) is not None:
        return None
    return user, password


class UserStore:
    """The node's users: the file re-read when it changes, recent verifications remembered.

    Not thread-safe; the node calls it from its event loop (``verify_password`` alone may run
    in a worker thread: it touches nothing of the store's)."""

    def __init__(self, path: Path, monotonic: Callable[[], float]) -> None:
        self.path = path
        self._monotonic = monotonic
        self._users = read_users_file(path)
        self._stamp = self._file_stamp()
        self._checked_at = monotonic()
        # sha256 of the header value -> (user name, expiry on the monotonic clock)
        self._verified: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self.reload_error: str | None = None

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def users(self) -> list[str]:
        return sorted(self._users)

    def maybe_reload(self) -> bool:
        """Re-reads the file if it changed since the last look (at most once a second).
        Returns True when the users were replaced. A file that became unreadable or bad keeps
        the previous users; ``reload_error`` says why, logged once for each new error."""
        now = self._monotonic()
        if now - self._checked_at < limits.USERS_FILE_CHECK_INTERVAL_S:
            return False
        self._checked_at = now
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        try:
            users = read_users_file(self.path)
        except UsersFileError as e:
            if str(e) != self.reload_error:
                log.warning("users file not reloaded, keeping the users read before: %s", e)
            self.reload_error = str(e)  # the stamp stays: read again at the next look
            return False
        self._stamp = stamp
        self.reload_error = None
        self._users = users
        self._verified.clear()
        return True

    def cached(self, header: str) -> str | None:
        """The user a recently verified ``Authorization`` value belongs to, else None."""
        key = hashlib.sha256(header.encode("utf-8", "surrogateescape")).digest()
        entry = self._verified.get(key)
        if entry is None:
            return None
        name, expires = entry
        if self._monotonic() >= expires or name not in self._users:
            del self._verified[key]
            return None
        return name

    def credential(self, name: str) -> Credential | None:
        return self._users.get(name)

    def iterations_max(self) -> int:
        """The most PBKDF2 iterations of any user (a decoy check must take as long)."""
        return max((c.iterations for c in self._users.values()), default=ITERATIONS_MIN)

    def remember(self, header: str, name: str, credential: Credential) -> None:
        """Remembers that ``header`` carried ``name``'s right password (call only after
        ``credential.verify`` succeeded). Nothing is remembered if the file was re-read
        meanwhile and ``name``'s credential changed: an old password must not live on."""
        if self._users.get(name) is not credential:
            return
        key = hashlib.sha256(header.encode("utf-8", "surrogateescape")).digest()
        self._verified[key] = (name, self._monotonic() + limits.LOGIN_CACHE_TTL_S)
        self._verified.move_to_end(key)
        while len(self._verified) > limits.LOGIN_CACHE_ENTRIES_MAX:
            self._verified.popitem(last=False)


# -- kraft-users ---------------------------------------------------------------------------------


class _ToolError(Exception):
    pass


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two kraft-users at once must not lose each other's change: a lock file beside the users
    # file serialises read-modify-write (the users file itself is replaced by rename).
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
    except OSError as e:
        raise _ToolError(f"cannot open {lock_path}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_password(args: argparse.Namespace) -> str:
    if args.password is not None:
        password: str = args.password
    elif args.password_file is not None:
        try:
            text = Path(args.password_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise _ToolError(f"cannot read the password file {args.password_file}: {e}") from None
        password = text.splitlines()[0] if text else ""
    elif sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.add}: ")
        if getpass.getpass("Again: ") != password:
            raise _ToolError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise _ToolError("the password is empty")
    if len(password.encode()) > PASSWORD_BYTES_MAX:
        raise _ToolError(f"the password is over {PASSWORD_BYTES_MAX} bytes")
    return password


def _parse_tool_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="kraft-users",
        description="Add, remove or list the users of a node's http.users.file "
        "(SCRAM-SHA-256 salted hashes; the nodes re-read the file within a second or two).",
        allow_abbrev=False,
    )
    parser.add_argument("--users-file", required=True, type=Path, help="the users file")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--add", metavar="NAME", help="add a user, or set its password")
    action.add_argument("--remove", metavar="NAME", help="remove a user")
    action.add_argument("--list", action="store_true", help="print the user names")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--password", help="the password (else --password-file, else asked)")
    secret.add_argument("--password-file", help="a file whose first line is the password")
    parser.add_argument(
        "--iterations",
        type=int,
        default=ITERATIONS_MIN,
        help=f"PBKDF2 iterations ({ITERATIONS_MIN} to {ITERATIONS_MAX}; default {ITERATIONS_MIN})",
    )
    args = parser.parse_args(argv)
    if args.add is None and (args.password is not None or args.password_file is not None):
        parser.error("--password and --password-file go with --add")
    if not ITERATIONS_MIN <= args.iterations <= ITERATIONS_MAX:
        parser.error(f"--iterations must be {ITERATIONS_MIN} to {ITERATIONS_MAX}")
    for name in (args.add, args.remove):
        if name is not None and (problem := check_user_name(name)) is not None:
            parser.error(f"{name!r}: {problem}")
    return args


def _run_tool(args: argparse.Namespace) -> None:
    path: Path = args.users_file
    if args.list:
        try:
            users = read_users_file(path)
        except UsersFileError as e:
            raise _ToolError(str(e).removeprefix("http.users.file: ")) from None
        for name in sorted(users):
            print(name)
        return
    password = _read_password(args) if args.add is not None else ""
    with _locked(path):
        try:
            users = read_users_file(path) if path.exists() else {}
        except UsersFileError as e:
            raise _ToolError(str(e).removeprefix("http.users.file: ")) from None
        if args.add is not None:
            existed = args.add in users
            users[args.add] = Credential.derive(password, iterations=args.iterations)
            message = f"{'Updated' if existed else 'Added'} user {args.add}."
        else:
            if args.remove not in users:
                raise _ToolError(f"user {args.remove} is not in {path}")
            del users[args.remove]
            message = f"Removed user {args.remove}."
        try:
            atomic_write(path, format_users(users).encode(), mode=0o600)
        except OSError as e:
            raise _ToolError(f"cannot write {path}: {e.strerror}") from None
    print(message)


def main(argv: list[str] | None = None) -> int:
    """``kraft-users``: exit 0 done, 1 refused or failed (one line on stderr), 2 a usage
    error, 130 Ctrl+C."""
    args = _parse_tool_args(argv)
    try:
        _run_tool(args)
    except _ToolError as e:
        print(f"kraft-users: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
