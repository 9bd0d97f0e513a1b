"""The stage contract: params from mappings, validation, committed output folders, locks,
fingerprints, file modes, and how failures reach the user."""

from __future__ import annotations

import errno
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from templearn.errors import ExternalToolError, InputError
from templearn.stages.base import (
    Record,
    Stage,
    StageParams,
    fingerprint,
    option,
    output_lock,
    recorded_fingerprint,
    run_stage,
    work_dir_of,
)


@dataclass(frozen=True)
class Inputs(Record):
    source: Path = option(help="A file.", argument=True)


@dataclass(frozen=True)
class Params(StageParams):
    count: int = option(2, "How many.", minimum=1)
    mode: str = option("a", "Mode.", choices=("a", "b"))
    size: tuple[int, int] = option((1, 2), "Size.", positive=True)
    fail: str = option("", "Raise this kind of failure inside write.")


def write(params: Params, inputs: Inputs, out: Path) -> str:
    for i in range(params.count):
        (out / f"part{i}.txt").write_text(inputs.source.read_text() + params.mode)
    if params.fail == "input":
        raise InputError("bad content", inputs.source)
    if params.fail == "tool":
        raise ExternalToolError("the tool died", "/tmp/tool.log")
    if params.fail == "disk":
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "big.mrc"))
    return f"{params.count} parts"


STAGE = Stage("toy", "A toy stage.", Params, Inputs, write)


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "source.txt"
    path.write_text("x")
    return path


def test_from_mapping_converts_and_names_bad_keys():
    params = Params.from_mapping({"count": "3", "size": "4,5", "mode": "b"}, where="toy")
    assert params == Params(count=3, mode="b", size=(4, 5))
    for data, message in (({"cout": 1}, "toy.cout: unknown key"),
                          ({"count": "many"}, "toy.count expects an integer"),
                          ({"count": 0}, "toy.count must be at least 1"),
                          ({"mode": "c"}, "toy.mode must be one of a, b"),
                          ({"size": [1, 0]}, "toy.size must be positive"),
                          ({"size": [1, 2, 3]}, "toy.size expects 2 values"),
                          ({"count": True}, "toy.count expects an integer")):
        with pytest.raises(InputError, match=message):
            Params.from_mapping(data, where="toy")


def test_a_rerun_replaces_the_folder_whole_and_records_the_run(tmp_path, source):
    out = tmp_path / "out"
    run_stage(STAGE, Params(count=3), Inputs(source), out)
    assert sorted(p.name for p in out.iterdir()) == ["part0.txt", "part1.txt", "part2.txt",
                                                     "toy.params.yml", "versions.yml"]
    run_stage(STAGE, Params(count=1, mode="b"), Inputs(source), out)
    assert sorted(p.name for p in out.iterdir()) == ["part0.txt", "toy.params.yml",
                                                     "versions.yml"]
    assert (out / "part0.txt").read_text() == "xb"
    assert recorded_fingerprint(out, "toy") == fingerprint(
        "toy", Params(count=1, mode="b").record(), Inputs(source).record())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_failure_leaves_the_previous_folder_and_nothing_else(tmp_path, source):
    out = tmp_path / "out"
    run_stage(STAGE, Params(count=2), Inputs(source), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for kind, error in (("input", InputError), ("tool", ExternalToolError), ("disk", OSError)):
        with pytest.raises(error):
            run_stage(STAGE, Params(count=3, fail=kind), Inputs(source), out)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_second_writer_is_refused(tmp_path, source):
    out = tmp_path / "out"
    with output_lock(out), pytest.raises(InputError, match="another templearn process"):
        run_stage(STAGE, Params(), Inputs(source), out)
    run_stage(STAGE, Params(), Inputs(source), out)  # free again once the first is done


def test_an_output_that_is_a_file_fails_before_any_work(tmp_path, source):
    calls = []
    taken = tmp_path / "taken"
    taken.write_text("")
    stage = Stage("toy", "", Params, Inputs, lambda *a: calls.append(a) or "")
    with pytest.raises(InputError, match="exists and is not a directory"):
        run_stage(stage, Params(), Inputs(source), taken)
    assert calls == []


def test_files_get_the_users_umask(tmp_path, source):
    old = os.umask(0o022)
    try:
        run_stage(STAGE, Params(), Inputs(source), tmp_path / "out")
    finally:
        os.umask(old)
    for path in (tmp_path / "out").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


def test_the_fingerprint_follows_input_contents_not_just_names(tmp_path, source):
    first = fingerprint("toy", Params().record(), Inputs(source).record())
    source.write_text("y")
    assert fingerprint("toy", Params().record(), Inputs(source).record()) != first
    folder = tmp_path / "maps"
    folder.mkdir()
    (folder / "a.mrc").write_text("1")
    spec = {"template": {"t": str(folder)}, "pairs": [f"{source},{folder}"]}
    before = fingerprint("toy", {}, spec)
    (folder / "a.mrc").write_text("2")
    assert fingerprint("toy", {}, spec) != before


def test_a_killed_resumable_stage_leaves_its_work_for_the_same_run_only(tmp_path, source):
    out = tmp_path / "out"
    resumable = Stage("toy", "", Params, Inputs, write, resumable=True)
    with pytest.raises(ExternalToolError):
        run_stage(resumable, Params(fail="tool"), Inputs(source), out)
    assert (work_dir_of(out) / "part0.txt").exists()  # kept for a rerun to resume
    run_stage(resumable, Params(count=1), Inputs(source), out)  # other params: starts over
    assert sorted(p.name for p in out.glob("part*")) == ["part0.txt"]


@pytest.mark.parametrize("kind, status, needle", [
    ("input", 2, "templearn: error: "), ("tool", 3, "templearn: external tool failed: "),
    ("disk", 2, "no space left on the device")])
def test_failures_become_one_line_and_an_exit_status(kind, status, needle, source, tmp_path,
                                                     monkeypatch, capsys):
    import templearn.cli as cli

    def fail_stage(stage, params, inputs, out):
        return write(Params(fail=kind), Inputs(source), tmp_path)

    monkeypatch.setattr("templearn.cli.build.run_stage", fail_stage)
    monkeypatch.setattr(sys, "argv", ["templearn", "density", str(source), "-o",
                                      str(tmp_path / "o")])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    err = capsys.readouterr().err
    assert exit_.value.code == status
    assert err.count("\n") == 1 and err.startswith("templearn: ") and needle in err
