"""Issue 9 item 5: ``altgrad report --compare OLD NEW`` compares two runs record by record."""

import copy
import json

import pytest
from test_proofs_check_report import _minimal_doc

from proofs_check import report as rep
from proofs_check.cli import main
from proofs_check.report_compare import compare_docs, relative_change


def _pair():
    old = _minimal_doc()
    new = copy.deepcopy(old)
    recs = {r["id"]: r for r in new["records"]}
    recs["x.fact"]["verdict"] = "CONTRADICTS"  # a new failure
    recs["x.fact"]["verified"] = False
    recs["x.fact"]["mutants_killed"], recs["x.fact"]["mutants_survived"] = [], {"transposed": "ok stayed True"}
    recs["x.ineq"]["observed"] = 8e-9  # x4: beyond a relative change of 0.5
    recs["x.ineq"]["ratio"] = 8e-3
    new["records"] = [r for r in new["records"] if r["id"] != "x.slack"]  # removed
    added = copy.deepcopy(recs["x.ineq"])
    added.update(id="x.new", label="Lemma E.12", observed=1.0)
    new["records"].append(added)
    return old, new


def test_a_comparison_names_verdict_changes_observed_changes_and_added_and_removed_ids():
    old, new = _pair()
    cmp = compare_docs(old, new)
    assert cmp.verdicts == [("x.fact", "holds", "CONTRADICTS")] and cmp.new_failures == ["x.fact"]
    assert cmp.verified == [("x.fact", True, False)] and cmp.survivors == [("x.fact", ["transposed"])]
    assert [(i, o, n) for i, o, n, _ in cmp.observed] == [("x.ineq", 2e-9, 8e-9)]
    assert [r["id"] for r in cmp.added] == ["x.new"] and [r["id"] for r in cmp.removed] == ["x.slack"]
    assert cmp.exit_status == 1
    assert compare_docs(old, new, threshold=0.8).observed == []  # a relative change of 0.75 is within 0.8


def test_a_run_compared_with_itself_has_no_difference():
    old = _minimal_doc()  # x.w already CONTRADICTS: an old failure is no new failure
    cmp = compare_docs(old, copy.deepcopy(old))
    assert (cmp.verdicts, cmp.observed, cmp.added, cmp.removed, cmp.new_failures, cmp.survivors) == ([],) * 6
    assert cmp.exit_status == 0


def test_relative_change_is_symmetric_and_bounded():
    assert relative_change(1.0, 4.0) == relative_change(4.0, 1.0) == 0.75
    assert relative_change(0.0, 0.0) == 0.0 and relative_change(-1.0, 1.0) == 2.0


def test_compare_command_exits_nonzero_on_a_new_failure_and_reads_directories(tmp_path, capsys):
    old, new = _pair()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    assert main(["report", "--compare", str(tmp_path / "old"), str(tmp_path / "new.json")]) == 1
    out = capsys.readouterr().out
    assert "NEW FAILURES (1): x.fact" in out and "- x.fact: holds -> CONTRADICTS" in out
    assert "mutants that newly survive: 1\n- x.fact: transposed" in out
    assert "- x.ineq: 2e-09 -> 8e-09" in out and "- x.new (Lemma E.12)" in out and "- x.slack (Lemma C.13)" in out
    assert main(["report", "--compare", str(tmp_path / "new.json"), str(tmp_path / "new.json")]) == 0


def test_compare_command_refuses_unreadable_input_with_a_clear_error(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["report", "--compare", str(tmp_path / "bad.json"), str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert "--compare" in err and "not JSON" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv", [["report"], ["report", "d", "--compare", "a", "b"], ["report", "d", "--threshold", "1"]]
)
def test_report_command_needs_exactly_one_of_dir_and_compare(argv, capsys):
    assert main(argv) == 2
    assert "altgrad report: error:" in capsys.readouterr().err


def test_a_real_run_compares_equal_to_itself(tmp_path):
    assert main(["check", "--only", "cat.C2.hadamard_lowrank", "--json", str(tmp_path / "a.json"), "--quiet"]) == 0
    doc = rep.read_doc(tmp_path / "a.json")
    assert compare_docs(doc, doc).exit_status == 0
