"""benchmarks/load_repeat.py (issue 9 acceptance): the comparison of quick-run verdicts idle vs under load."""

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "load_repeat.py"
_spec = importlib.util.spec_from_file_location("load_repeat", _PATH)
lr = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lr)


def _doc(*recs):
    return {"records": [{"id": i, "verdict": v, "verified": ok, "mutants_killed": list(m)} for i, v, ok, m in recs]}


def test_identical_runs_have_no_differences_and_are_tallied():
    doc = _doc(("a", "holds", True, ("m2", "m1")), ("b", "gap", False, ()))
    v = lr.verdicts(doc)
    assert v["a"]["mutants_killed"] == ["m1", "m2"]  # order of killing does not matter
    assert lr.differences(v, lr.verdicts(doc)) == []
    assert lr.counts(v) == {"records": 2, "verdicts": {"holds": 1, "gap": 1}, "verified": 1}


def test_a_moved_verdict_a_lost_kill_or_a_missing_record_is_a_difference():
    idle = lr.verdicts(_doc(("a", "holds", True, ("m",)), ("b", "trend", True, ("q",)), ("c", "gap", True, ("x",))))
    loaded = lr.verdicts(_doc(("a", "CONTRADICTS", False, ("m",)), ("b", "trend", False, ())))
    diff = lr.differences(idle, loaded)
    assert [d["id"] for d in diff] == ["a", "b", "c"] and diff[2]["loaded"] is None


def test_a_document_without_records_is_refused_by_name():
    with pytest.raises(ValueError, match="records"):
        lr.verdicts({"schema": 3})


def test_the_burner_runs_one_process_per_requested_core_and_stops():
    with lr.Burner(1) as b:
        assert len(b.procs) == 1 and b.procs[0].is_alive()
    assert not b.procs[0].is_alive()
    with pytest.raises(ValueError, match="burners"):
        lr.Burner(0)
