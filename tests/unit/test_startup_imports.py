"""What a node imports before it starts its quorum, and the rare paths imported late.

``server.main`` starts the metadata quorum before it imports the modules that serve HTTP
(the election overlaps their import), and the TLS keystore check imports cryptography's
certificate modules only when there is a keystore. Each check runs in a fresh interpreter:
this test process has imported everything already.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from scripts import certs

ROOT = Path(__file__).resolve().parents[2]


def fresh(code: str) -> str:
    """Runs ``code`` in a new interpreter from the project's root; its stdout."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_server_main_imports_the_quorum_but_not_the_http_side_before_it_starts() -> None:
    loaded = fresh(
        "import sys, server.main\n"
        "for name in ('kraft.quorum', 'aiohttp', 'server.node', 'server.http_api', "
        "'cryptography.x509'):\n"
        "    print(name, name in sys.modules)\n"
    ).split("\n")
    assert "kraft.quorum True" in loaded
    assert "aiohttp False" in loaded
    assert "server.node False" in loaded
    assert "server.http_api False" in loaded
    assert "cryptography.x509 False" in loaded


def test_keystore_check_imports_the_certificate_modules_when_it_needs_them(
    tmp_path: Path,
) -> None:
    keystore = certs.write_keystore(tmp_path, certs.ensure_ca(tmp_path), "node-1")
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    answers = fresh(
        "import sys\n"
        "from server.config import ConfigError\n"
        "from server.tls import check_keystore\n"
        "print('before', 'cryptography.x509' in sys.modules)\n"
        f"check_keystore(__import__('pathlib').Path({str(keystore)!r}), None)\n"
        "print('good keystore accepted')\n"
        "try:\n"
        f"    check_keystore(__import__('pathlib').Path({str(not_pem)!r}), None)\n"
        "except ConfigError as e:\n"
        "    print('refused:', e)\n"
    )
    assert "before False" in answers
    assert "good keystore accepted" in answers
    assert "refused: ssl.keystore.location:" in answers
    assert "holds no PEM certificate" in answers
