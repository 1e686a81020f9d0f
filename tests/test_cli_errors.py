"""Issue 13 item 7: the command line refuses unwritable outputs and bad argument ranges *before* any check runs,
and a failure after the run still saves what was computed (to a temporary file whose path it prints)."""

import json
import pathlib
import re

import pytest

from proofs_check import registry as reg
from proofs_check.cli import main

ONE = "cat.C2.hadamard_lowrank"  # a check that takes milliseconds


@pytest.fixture
def no_check_may_run(monkeypatch):
    """Fail the test if any check function is called."""

    def refuse(*args, **kwargs):
        raise AssertionError("a check ran although the command should have stopped before the run")

    monkeypatch.setattr(reg, "run_check", refuse)
    monkeypatch.setattr(reg, "run_many", refuse)


def _one_error_line(err: str, *words: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("altgrad check: error:") and "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_issue_13_json_into_a_missing_directory_is_refused_before_the_run(no_check_may_run, capsys):
    assert main(["check", "--only", ONE, "--json", "/nonexistent/x.json"]) == 2
    _one_error_line(capsys.readouterr().err, "--json", "/nonexistent/x.json")


def test_issue_13_json_onto_a_directory_is_refused_before_the_run(no_check_may_run, tmp_path, capsys):
    assert main(["check", "--only", ONE, "--json", str(tmp_path)]) == 2
    _one_error_line(capsys.readouterr().err, "--json", "is a directory")


def test_issue_13_report_under_proc_is_refused_before_the_run(no_check_may_run, capsys):
    assert main(["check", "--only", ONE, "--report", "/proc/x"]) == 2
    _one_error_line(capsys.readouterr().err, "--report", "/proc/x")


def test_report_onto_an_existing_file_is_refused_before_the_run(no_check_may_run, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("keep me")
    assert main(["check", "--only", ONE, "--report", str(f)]) == 2
    _one_error_line(capsys.readouterr().err, "--report", "not a directory")
    assert f.read_text() == "keep me"


def test_the_probe_of_a_json_path_leaves_no_file_behind(tmp_path, capsys, monkeypatch):
    target = tmp_path / "x.json"

    def boom(*args, **kwargs):
        raise RuntimeError("stop after the probe")

    monkeypatch.setattr(reg, "load_all", boom)
    with pytest.raises(RuntimeError, match="stop after the probe"):
        main(["check", "--json", str(target)])
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_issue_13_negative_seed_is_refused_with_a_message_naming_the_argument(no_check_may_run, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["check", "--only", ONE, "--seed", "-1"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--seed" in err and "-1" in err and ">= 0" in err and "Traceback" not in err


@pytest.mark.parametrize("bad", ["0", "-3", "two"])
def test_jobs_must_be_a_positive_integer(no_check_may_run, capsys, bad):
    with pytest.raises(SystemExit) as exc:
        main(["check", "--only", ONE, "--jobs", bad])
    assert exc.value.code == 2
    assert "--jobs" in capsys.readouterr().err


def test_issue_13_a_huge_seed_is_accepted_and_recorded(tmp_path, capsys):
    seed = 2**80
    out = tmp_path / "r.json"
    assert main(["check", "--only", ONE, "--seed", str(seed), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["seed"] == seed and doc["records"][0]["seed"] == seed
    assert f"--seed {seed}" in doc["records"][0]["command"]


def _saved_doc(err: str) -> dict:
    """The document the command says it saved (read, then removed)."""
    m = re.search(r"saved to (\S+\.json)", err)
    assert m, err
    path = pathlib.Path(m.group(1))
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    finally:
        path.unlink()


def test_a_write_failure_after_the_run_saves_the_records_to_a_temporary_file(tmp_path, capsys, monkeypatch):
    from proofs_check import report as rep

    def disk_full(doc, outdir):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rep, "write_report", disk_full)
    assert main(["check", "--only", ONE, "--report", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
    doc = _saved_doc(err)
    assert [r["id"] for r in doc["records"]] == [ONE] and rep.validate_doc(doc) == []


def test_an_interrupted_run_saves_the_records_it_has(capsys, monkeypatch):
    real = reg.run_check
    calls = []

    def interrupt_second(chk, ctx, **kw):
        calls.append(chk.id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(chk, ctx, **kw)

    monkeypatch.setattr(reg, "run_check", interrupt_second)
    assert main(["check", "--only", ONE, "cat.F1.kronecker", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err
    doc = _saved_doc(err)
    assert [r["id"] for r in doc["records"]] == [ONE] and doc["complete"] is False
