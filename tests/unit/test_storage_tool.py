"""kraft-storage: random-uuid, format and info, run in-process on temporary directories."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.ids import is_valid_uuid
from storage.properties import MetaProperties
from storage.storage_tool import main
from tests.processes import default_sigint, interrupt_when_blocked, stop

CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qg"
OTHER_CLUSTER_ID = "7yq5ZmHaRoiaQjrvUO7E0w"
SECRET = b"correct horse battery staple\n"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def node(tmp_path: Path) -> dict[str, Path]:
    """A node.properties with two log dirs (one nested) and a secret file."""
    a = tmp_path / "logs-a"
    b = tmp_path / "deep" / "logs-b"
    config = tmp_path / "node.properties"
    config.write_text(f"process.roles=broker,controller\nnode.id=2\nlog.dirs={a}, {b}\n")
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    return {"config": config, "secret": secret, "a": a, "b": b, "tmp": tmp_path}


def run_format(node: dict[str, Path], *extra: str, cluster_id: str = CLUSTER_ID) -> int:
    argv = ["format", "-t", cluster_id, "-c", str(node["config"])]
    return main([*argv, "--secret-file", str(node["secret"]), *extra])


def test_random_uuid_prints_one_kafka_id(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["random-uuid"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and is_valid_uuid(out.strip())


def test_format_writes_meta_properties_and_the_secret_in_every_log_dir(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_format(node) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"Formatting {node['a']} with cluster.id {CLUSTER_ID} and node.id 2",
        f"Formatting {node['b']} with cluster.id {CLUSTER_ID} and node.id 2",
    ]
    directory_ids = set()
    for d in (node["a"], node["b"]):
        meta = MetaProperties.read(d)
        assert meta is not None
        assert (meta.cluster_id, meta.node_id, meta.version) == (CLUSTER_ID, 2, 1)
        assert meta.directory_id is not None and is_valid_uuid(meta.directory_id)
        directory_ids.add(meta.directory_id)
        secret = d / "cluster.secret"
        assert secret.read_bytes() == SECRET
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert sorted(p.name for p in d.iterdir()) == ["cluster.secret", "meta.properties"]
    assert len(directory_ids) == 2  # each directory gets its own id


def test_format_uses_log_dir_when_log_dirs_is_absent(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    node["config"].write_text(f"node.id=0\nlog.dir={node['a']}\n")
    assert run_format(node) == 0
    assert MetaProperties.read(node["a"]) is not None
    assert not node["b"].exists()


def test_format_refuses_an_already_formatted_directory(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_format(node) == 0
    capsys.readouterr()
    assert run_format(node) == 1
    err = capsys.readouterr().err
    assert err == (
        f"Log directory {node['a']} is already formatted. Use --ignore-formatted to ignore "
        "this directory and format the others.\n"
    )


def test_ignore_formatted_skips_formatted_dirs_and_formats_the_others(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    node["config"].write_text(f"node.id=2\nlog.dirs={node['a']}\n")
    assert run_format(node) == 0
    before = (node["a"] / "meta.properties").read_bytes()
    node["config"].write_text(f"node.id=2\nlog.dirs={node['a']},{node['b']}\n")
    capsys.readouterr()
    assert run_format(node, "--ignore-formatted") == 0
    out = capsys.readouterr().out
    assert f"Log directory {node['a']} is already formatted; skipping it." in out
    assert f"Formatting {node['b']} with cluster.id {CLUSTER_ID} and node.id 2" in out
    assert (node["a"] / "meta.properties").read_bytes() == before
    assert MetaProperties.read(node["b"]) is not None


def test_ignore_formatted_with_everything_formatted_says_so(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_format(node) == 0
    capsys.readouterr()
    assert run_format(node, "-g") == 0
    assert "All of the log directories are already formatted." in capsys.readouterr().out


@pytest.mark.parametrize("ignore", [[], ["--ignore-formatted"]])
def test_format_always_refuses_a_directory_of_another_cluster(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str], ignore: list[str]
) -> None:
    assert run_format(node, cluster_id=OTHER_CLUSTER_ID) == 0
    capsys.readouterr()
    assert run_format(node, *ignore) == 1
    err = capsys.readouterr().err
    assert OTHER_CLUSTER_ID in err and CLUSTER_ID in err and str(node["a"]) in err
    assert len(err.splitlines()) == 1
    meta = MetaProperties.read(node["a"])
    assert meta is not None and meta.cluster_id == OTHER_CLUSTER_ID


def test_format_always_refuses_a_directory_of_another_node(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_format(node) == 0
    node["config"].write_text(f"node.id=5\nlog.dirs={node['a']}\n")
    capsys.readouterr()
    assert run_format(node, "--ignore-formatted") == 1
    err = capsys.readouterr().err
    assert "node.id 2" in err and "node.id 5" in err


def test_a_refused_format_writes_nothing(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    node["b"].mkdir(parents=True)
    MetaProperties(cluster_id=OTHER_CLUSTER_ID, node_id=2).write(node["b"])
    assert run_format(node) == 1
    assert not node["a"].exists()  # checked every directory before writing any


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "does not exist"),
        (b"", "is empty"),
        (b" \n", "is empty"),
        (b"short\n", "at least 16"),
    ],
)
def test_format_checks_the_secret_file(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str], content: bytes | None, words: str
) -> None:
    if content is None:
        node["secret"].unlink()
    else:
        node["secret"].write_bytes(content)
    assert run_format(node) == 1
    err = capsys.readouterr().err
    assert words in err and str(node["secret"]) in err and len(err.splitlines()) == 1
    assert not node["a"].exists()


@pytest.mark.parametrize(
    "cluster_id", ["not-a-uuid", "MkU3OEVBNTcwNTJENDM2Q", "AAAAAAAAAAAAAAAAAAAAAA"]
)
def test_format_refuses_a_cluster_id_that_is_not_a_kafka_uuid(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str], cluster_id: str
) -> None:
    assert run_format(node, cluster_id=cluster_id) == 1
    assert cluster_id in capsys.readouterr().err
    assert not node["a"].exists()


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ("log.dirs=/tmp/x\n", "node.id"),
        ("node.id=-1\nlog.dirs=/tmp/x\n", "non-negative"),
        ("node.id=one\nlog.dirs=/tmp/x\n", "non-negative"),
        ("node.id=1\nlog.dirs= , \n", "log.dirs"),
        ("node.id=1\nbad=\\uZZZZ\n", "line 2"),
    ],
)
def test_format_names_the_bad_setting(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str], config: str, words: str
) -> None:
    node["config"].write_text(config)
    assert run_format(node) == 1
    err = capsys.readouterr().err
    assert words in err and len(err.splitlines()) == 1


def test_format_with_a_missing_config_file_fails_cleanly(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    node["config"].unlink()
    assert run_format(node) == 1
    assert str(node["config"]) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "name"),
    [
        (["--release-version", "3.7"], "--release-version"),
        (["-r", "3.7"], "--release-version"),
        (["--add-scram", "SCRAM-SHA-256=[name=a,password=b]"], "--add-scram"),
        (["--standalone"], "--standalone"),
        (["--initial-controllers", "0@h:1:x"], "--initial-controllers"),
        (["--no-initial-controllers"], "--no-initial-controllers"),
        (["--feature", "kraft.version=1"], "--feature"),
    ],
)
def test_kafka_flags_we_do_not_support_are_refused_by_name(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str], flags: list[str], name: str
) -> None:
    assert run_format(node, *flags) == 2
    assert f"{name} is not supported" in capsys.readouterr().err
    assert not node["a"].exists()


def test_an_unknown_flag_is_a_usage_error_naming_it(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_format(node, "--frobnicate") == 2
    assert "--frobnicate" in capsys.readouterr().err


def test_a_missing_required_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["format", "-t", CLUSTER_ID, "-c", "x"]) == 2
    assert "--secret-file" in capsys.readouterr().err


def test_info_shows_the_directories_and_their_metadata(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_format(node) == 0
    capsys.readouterr()
    assert main(["info", "-c", str(node["config"])]) == 0
    out = capsys.readouterr().out
    assert "Found log directories:\n" in out
    assert f"  {node['a']}\n" in out and f"  {node['b']}\n" in out
    assert f"Found metadata: {{cluster.id={CLUSTER_ID}, directory.id=" in out
    assert "node.id=2, version=1}" in out


def test_info_reports_unformatted_directories(
    node: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    node["a"].mkdir()
    assert main(["info", "-c", str(node["config"])]) == 1
    out = capsys.readouterr().out
    assert "Found problems:" in out
    assert f"{node['a']} is not formatted." in out
    assert f"{node['b']} does not exist" in out


def test_the_tool_runs_as_a_module_and_exits_130_on_ctrl_c(tmp_path: Path) -> None:
    # A FIFO as the secret file blocks the tool in open() until we interrupt it.
    fifo = tmp_path / "secret"
    os.mkfifo(fifo)
    config = tmp_path / "node.properties"
    config.write_text(f"node.id=1\nlog.dirs={tmp_path / 'logs'}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "storage.storage_tool", "format", "-t", CLUSTER_ID]
        + ["-c", str(config), "--secret-file", str(fifo)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=default_sigint,
    )
    # Opening the FIFO for writing succeeds once the tool has opened it for reading; holding
    # it open without writing keeps the tool blocked in read() until the interrupt.
    deadline = time.monotonic() + 30
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "tool never read it"
            time.sleep(0.05)
    try:
        interrupt_when_blocked(proc)
        out, err = proc.communicate(timeout=30)
    finally:
        os.close(fd)
        stop(proc)
    assert proc.returncode == 130, err
    assert b"Traceback" not in err
