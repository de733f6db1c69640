"""The node's password checks (server/password_checks.py): at most PASSWORD_CHECKS_AT_ONCE_MAX
run at once, even when the clients that asked for them go away and their tasks are cancelled
(a semaphore around asyncio.to_thread was released at the cancellation while the thread went
on hashing). Driven through SASL/PLAIN's check (server/kafka/sasl_apis.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from server import limits, password_checks
from server.kafka.sasl import PasswordCheck
from server.kafka.sasl_apis import SaslNode
from server.users import Credential


class _Counting:
    """A stand-in for PBKDF2 that takes a while and counts how many run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.peak = 0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, _credential: Credential, _password: str) -> bool:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.02)
            return True
        finally:
            with self._lock:
                self.running -= 1


def test_cancelled_checks_never_run_more_than_the_limit_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = Credential.derive("alice-secret")
    users_file = tmp_path / "users"
    users_file.write_text(f"alice={alice.encode()}\n")
    counting = _Counting()
    monkeypatch.setattr(Credential, "verify", lambda self, password: counting(self, password))
    config: Any = SimpleNamespace(users_file=users_file, sasl_enabled_mechanisms=("PLAIN",))
    sasl = SaslNode(config)

    async def run() -> bool:
        # Twenty clients each send a password and go away while it is being checked.
        for _ in range(20):
            task = asyncio.create_task(sasl.check_password(PasswordCheck("alice", "pw", alice)))
            await asyncio.sleep(0.005)
            task.cancel()
        # One that stays: it runs after whatever is still running (one pool, first come).
        return await sasl.check_password(PasswordCheck("alice", "pw", alice))

    assert asyncio.run(run()) is True
    assert counting.calls >= 2  # some cancelled checks had started: the case that matters
    assert counting.peak <= limits.PASSWORD_CHECKS_AT_ONCE_MAX


def test_run_gives_back_the_result_and_the_exception() -> None:
    def fails() -> None:
        raise ValueError("bad")

    async def run() -> int:
        with pytest.raises(ValueError, match="bad"):
            await password_checks.run(fails)
        return await password_checks.run(int, "7", base=8)

    assert asyncio.run(run()) == 7
