"""The swap of a cleaned segment (storage.clean_swap): a crash after any step recovers to the
old segments or the new one, never a mix."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.clean_swap import cleaned_files, discard_cleaned, recover_swaps, swap_in, swap_steps
from storage.segment import segment_name

OLD = [0, 10, 20]
SUFFIXES = (".log", ".index", ".timeindex")


def make_old_and_cleaned(directory: Path, *, other: bool = True) -> None:
    for base in OLD:
        for suffix in SUFFIXES:
            (directory / f"{segment_name(base)}{suffix}").write_bytes(
                f"old {base}{suffix}".encode()
            )
    if other:  # a segment outside the group, and a file that is no segment's
        (directory / f"{segment_name(30)}.log").write_bytes(b"active")
        (directory / "leader-epoch-checkpoint").write_bytes(b"0\n0\n")
    for path, suffix in zip(cleaned_files(directory, 0), SUFFIXES, strict=True):
        path.write_bytes(f"new{suffix}".encode())


def state(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def old_state() -> dict[str, bytes]:
    files = {f"{segment_name(b)}{s}": f"old {b}{s}".encode() for b in OLD for s in SUFFIXES}
    files[f"{segment_name(30)}.log"] = b"active"
    files["leader-epoch-checkpoint"] = b"0\n0\n"
    return files


def new_state() -> dict[str, bytes]:
    files = {f"{segment_name(0)}{s}": f"new{s}".encode() for s in SUFFIXES}
    files[f"{segment_name(30)}.log"] = b"active"
    files["leader-epoch-checkpoint"] = b"0\n0\n"
    return files


def test_a_whole_swap_installs_the_new_segment(tmp_path: Path) -> None:
    make_old_and_cleaned(tmp_path)
    swap_in(tmp_path, OLD, fsync=lambda fd: None)
    assert state(tmp_path) == new_state()
    assert not recover_swaps(tmp_path)


def test_the_swap_runs_the_protocols_steps_in_order(tmp_path: Path) -> None:
    first, second = segment_name(0), segment_name(10)
    names = [name for name, _ in swap_steps(tmp_path, OLD[:2])]
    assert names == [
        f"set aside {second}.log",
        f"set aside {second}.index",
        f"set aside {second}.timeindex",
        "sync",
        f"commit {first}.index.cleaned",
        f"commit {first}.timeindex.cleaned",
        "sync",
        f"commit {first}.log.cleaned",  # the commit point
        "sync",
        f"remove {second}.log.replaced",
        f"remove {second}.index.replaced",
        f"remove {second}.timeindex.replaced",
        f"install {first}.index.swap",
        f"install {first}.timeindex.swap",
        "sync",
        f"install {first}.log.swap",
        "sync",
    ]


def steps_count() -> int:
    return len(swap_steps(Path("/nonexistent"), OLD))


@pytest.mark.parametrize("done", range(steps_count() + 1))
def test_a_crash_after_any_step_recovers_to_old_or_new(tmp_path: Path, done: int) -> None:
    make_old_and_cleaned(tmp_path)
    steps = swap_steps(tmp_path, OLD, fsync=lambda fd: None)
    for _name, action in steps[:done]:
        action()
    report = recover_swaps(tmp_path, fsync=lambda fd: None)
    after = state(tmp_path)
    names = [name for name, _ in steps]
    committed = done > names.index(f"commit {segment_name(0)}.log.cleaned")
    assert after == (new_state() if committed else old_state())
    if report:  # nothing to do after the last rename or before the first
        assert report.outcome == ("completed" if committed else "rolled back")
    # Recovery is idempotent.
    assert not recover_swaps(tmp_path)
    assert state(tmp_path) == after


def test_recovery_of_only_cleaned_files_removes_them(tmp_path: Path) -> None:
    make_old_and_cleaned(tmp_path)
    report = recover_swaps(tmp_path)
    assert state(tmp_path) == old_state()
    assert report.outcome == "rolled back"
    assert f"{segment_name(0)}.log.cleaned" in report.describe()


def test_an_old_segment_without_index_files_swaps_and_rolls_back(tmp_path: Path) -> None:
    make_old_and_cleaned(tmp_path, other=False)
    (tmp_path / f"{segment_name(10)}.index").unlink()
    before = state(tmp_path)
    steps = swap_steps(tmp_path, OLD)
    for _name, action in steps[:4]:
        action()
    recover_swaps(tmp_path)
    assert state(tmp_path) == {k: v for k, v in before.items() if not k.endswith(".cleaned")}


def test_discard_cleaned_removes_only_the_cleaned_files(tmp_path: Path) -> None:
    make_old_and_cleaned(tmp_path)
    discard_cleaned(tmp_path, 0)
    discard_cleaned(tmp_path, 0)  # nothing left: no error
    assert state(tmp_path) == old_state()


def test_a_one_segment_group_swaps_over_its_own_name(tmp_path: Path) -> None:
    (tmp_path / f"{segment_name(5)}.log").write_bytes(b"old")
    for path in cleaned_files(tmp_path, 5):
        path.write_bytes(b"new")
    swap_in(tmp_path, [5])
    assert state(tmp_path) == {f"{segment_name(5)}{s}": b"new" for s in SUFFIXES}
