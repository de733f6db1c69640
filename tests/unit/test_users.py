"""The users file (SCRAM-SHA-256 credentials), its store on the node, and kraft-users."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest

from server import limits, users
from server.users import (
    Credential,
    UsersFileError,
    UserStore,
    format_users,
    parse_basic,
    parse_users,
    read_users_file,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_credential_follows_kafkas_scram_derivation() -> None:
    salt = b"0123456789abcdef"
    cred = Credential.derive("alice-secret", iterations=4096, salt=salt)
    salted = hashlib.pbkdf2_hmac("sha256", b"alice-secret", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    assert cred.stored_key == hashlib.sha256(client_key).digest()
    assert cred.server_key == hmac.new(salted, b"Server Key", "sha256").digest()


def test_verify_accepts_the_password_and_refuses_others() -> None:
    cred = Credential.derive("alice-secret")
    assert cred.verify("alice-secret")
    assert not cred.verify("alice-secreT")
    assert not cred.verify("")


def test_two_users_with_one_password_get_different_salts() -> None:
    a, b = Credential.derive("same"), Credential.derive("same")
    assert a.salt != b.salt and a.stored_key != b.stored_key


def test_encode_decode_round_trip_and_format() -> None:
    cred = Credential.derive("pw", iterations=8192)
    text = cred.encode()
    assert text.startswith("SCRAM-SHA-256:iterations=8192:salt=")
    assert ":stored_key=" in text and ":server_key=" in text
    assert Credential.decode(text) == cred


def test_users_file_round_trip_keeps_no_password() -> None:
    table = {"alice": Credential.derive("alice-secret"), "bob": Credential.derive("b")}
    text = format_users(table)
    assert "alice-secret" not in text
    assert parse_users(text, "f") == table


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("alice", "expected name=SCRAM-SHA-256"),
        ("al ice=SCRAM-SHA-256:x", "printable ASCII"),
        (
            "alice=SCRAM-SHA-512:iterations=4096:salt=AA==:stored_key=AA==:server_key=AA==",
            "SHA-256",
        ),
        ("alice=SCRAM-SHA-256:iterations=10:salt=AA==:stored_key=AA==:server_key=AA==", "4096"),
        ("alice=SCRAM-SHA-256:iterations=٤٠٩٦:salt=AA==:stored_key=AA==:server_key=AA==", "number"),
        (
            "alice=SCRAM-SHA-256:iterations=4096:salt=AA==:stored_key=AA==:server_key=AA==",
            "32-byte",
        ),
        ("alice=SCRAM-SHA-256:iterations=4096:salt=!!:stored_key=AA==:server_key=AA==", "base64"),
        ("alice=SCRAM-SHA-256:iterations=4096", "expected the fields"),
    ],
)
def test_a_bad_line_is_refused_naming_file_and_line(line: str, problem: str) -> None:
    with pytest.raises(UsersFileError, match=rf"users\.txt line 2: .*{problem}"):
        parse_users("# comment\n" + line + "\n", "users.txt")


def test_a_user_listed_twice_is_refused() -> None:
    line = "alice=" + Credential.derive("x").encode()
    with pytest.raises(UsersFileError, match="listed twice"):
        parse_users(f"{line}\n{line}\n", "f")


def test_missing_file_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(UsersFileError, match="http.users.file: cannot read"):
        read_users_file(tmp_path / "nope")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("alice", "pw:with:colons"), ("alice", "pw:with:colons")),
        (basic("alice", ""), ("alice", "")),
        ("basic " + base64.b64encode(b"bob:x").decode(), ("bob", "x")),
        ("Bearer abc", None),
        ("Basic !!!", None),
        ("Basic " + base64.b64encode(b"no-colon").decode(), None),
        ("Basic " + base64.b64encode(b"a b:x").decode(), None),
        ("Basic " + base64.b64encode(b"\xff:x").decode(), None),
        ("Basic é", None),
        ("Basic \udcff", None),
        ("Basic " + "A" * 5000, None),
    ],
)
def test_parse_basic(header: str, expected: tuple[str, str] | None) -> None:
    assert parse_basic(header) == expected


def write_users(path: Path, table: dict[str, Credential]) -> None:
    path.write_text(format_users(table))


def test_store_reloads_a_changed_file_at_most_once_a_second(tmp_path: Path) -> None:
    path = tmp_path / "users"
    write_users(path, {"alice": Credential.derive("a")})
    clock = FakeClock()
    store = UserStore(path, clock)
    assert store.users() == ["alice"]
    write_users(path, {"alice": Credential.derive("a"), "bob": Credential.derive("b")})
    os.utime(path, ns=(1, 1))  # a new mtime even on a coarse file-system clock
    clock.now += 0.5
    assert not store.maybe_reload() and store.users() == ["alice"]
    clock.now += 0.6
    assert store.maybe_reload() and store.users() == ["alice", "bob"]
    clock.now += 2
    assert not store.maybe_reload()  # unchanged


def test_store_keeps_its_users_when_the_file_turns_bad(tmp_path: Path) -> None:
    path = tmp_path / "users"
    write_users(path, {"alice": Credential.derive("a")})
    clock = FakeClock()
    store = UserStore(path, clock)
    path.write_text("garbage\n")
    clock.now += 2
    assert not store.maybe_reload()
    assert store.users() == ["alice"]
    assert store.reload_error is not None and "line 1" in store.reload_error


def test_store_remembers_verified_headers_for_a_while_and_forgets_on_reload(
    tmp_path: Path,
) -> None:
    path = tmp_path / "users"
    write_users(path, {"alice": Credential.derive("a")})
    clock = FakeClock()
    store = UserStore(path, clock)
    credential = store.credential("alice")
    assert credential is not None
    header = basic("alice", "a")
    assert store.cached(header) is None
    store.remember(header, "alice", credential)
    assert store.cached(header) == "alice"
    assert store.cached(basic("alice", "b")) is None
    clock.now += limits.LOGIN_CACHE_TTL_S
    assert store.cached(header) is None
    store.remember(header, "alice", credential)
    write_users(path, {"bob": Credential.derive("b")})  # alice removed
    os.utime(path, ns=(1, 1))
    clock.now += 2
    assert store.maybe_reload()
    assert store.cached(header) is None


def test_a_login_verified_across_a_reload_that_changed_the_password_is_not_remembered(
    tmp_path: Path,
) -> None:
    path = tmp_path / "users"
    write_users(path, {"alice": Credential.derive("old")})
    clock = FakeClock()
    store = UserStore(path, clock)
    verified = store.credential("alice")  # checked against while the file changes
    write_users(path, {"alice": Credential.derive("new")})
    os.utime(path, ns=(1, 1))
    clock.now += 2
    assert store.maybe_reload()
    assert verified is not None
    store.remember(basic("alice", "old"), "alice", verified)
    assert store.cached(basic("alice", "old")) is None


def test_a_bad_users_file_is_read_again_at_the_next_look(tmp_path: Path) -> None:
    path = tmp_path / "users"
    write_users(path, {"alice": Credential.derive("a")})
    clock = FakeClock()
    store = UserStore(path, clock)
    write_users(path, {"bob": Credential.derive("b")})
    good = path.read_bytes()
    # Caught half-written: a bad file with the good one's size and mtime (as an editor that
    # writes in place may leave it for a moment).
    path.write_bytes(b"x" * (len(good) - 1) + b"\n")
    os.utime(path, ns=(2, 2))
    clock.now += 2
    assert not store.maybe_reload() and store.reload_error is not None
    path.write_bytes(good)
    os.utime(path, ns=(2, 2))
    clock.now += 2
    assert store.maybe_reload() and store.users() == ["bob"]


def test_store_bounds_its_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "LOGIN_CACHE_ENTRIES_MAX", 2)
    path = tmp_path / "users"
    write_users(path, {"alice": Credential.derive("a")})
    store = UserStore(path, FakeClock())
    credential = store.credential("alice")
    assert credential is not None
    for i in range(3):
        store.remember(basic("alice", str(i)), "alice", credential)
    assert store.cached(basic("alice", "0")) is None
    assert store.cached(basic("alice", "2")) == "alice"


# -- kraft-users ---------------------------------------------------------------------------------


def test_kraft_users_add_list_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "users"
    assert users.main(["--users-file", str(path), "--add", "alice", "--password", "s1"]) == 0
    assert capsys.readouterr().out == "Added user alice.\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pw_file = tmp_path / "pw"
    pw_file.write_text("s2\nignored\n")
    assert (
        users.main(["--users-file", str(path), "--add", "bob", "--password-file", str(pw_file)])
        == 0
    )
    # A password with characters base64 never holds, so its absence from the file (salts and
    # keys are base64) proves it is not stored in clear ("s3" was in a random salt 1 run in 20).
    secret = "s3 #!"
    assert users.main(["--users-file", str(path), "--add", "alice", "--password", secret]) == 0
    assert capsys.readouterr().out == "Added user bob.\nUpdated user alice.\n"
    table = read_users_file(path)
    assert table["alice"].verify(secret) and table["bob"].verify("s2")
    assert secret not in path.read_text()
    assert users.main(["--users-file", str(path), "--list"]) == 0
    assert capsys.readouterr().out == "alice\nbob\n"
    assert users.main(["--users-file", str(path), "--remove", "alice"]) == 0
    assert capsys.readouterr().out == "Removed user alice.\n"
    assert list(read_users_file(path)) == ["bob"]


def test_kraft_users_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "users"
    assert users.main(["--users-file", str(path), "--remove", "ghost"]) == 1
    assert capsys.readouterr().err == f"kraft-users: user ghost is not in {path}\n"
    assert users.main(["--users-file", str(path), "--add", "a", "--password", ""]) == 1
    assert "the password is empty" in capsys.readouterr().err
    assert users.main(["--users-file", str(path), "--list"]) == 1
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        users.main(["--users-file", str(path), "--add", "a:b", "--password", "x"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        users.main(["--users-file", str(path), "--list", "--password", "x"])
