"""The claims registry: every entry has a check, ids are unique, dependencies exist and form a DAG; the CLI."""

import json

import pytest

from proofs_check import registry as reg
from proofs_check.cli import main


@pytest.fixture(scope="module")
def registry():
    return reg.load_all()


def test_every_registered_check_has_a_label_a_kind_a_status_and_a_function(registry):
    assert registry
    for c in registry.values():
        assert c.label and c.name and callable(c.fn)
        assert c.kind in reg.KINDS and c.expected in reg.STATUSES
        assert all(isinstance(s, int) and 1 <= s <= 100 for s in c.spec), c.id


def test_dependencies_name_registered_checks_and_form_a_dag(registry):
    state = {}

    def visit(cid, path):
        assert cid in registry, f"{path[-1] if path else '?'} uses unknown check {cid!r}"
        if state.get(cid) == "done":
            return
        assert state.get(cid) != "open", f"dependency cycle: {' -> '.join([*path, cid])}"
        state[cid] = "open"
        for u in registry[cid].uses:
            visit(u, [*path, cid])
        state[cid] = "done"

    for cid in registry:
        visit(cid, [])


def test_issue_2_statements_are_registered(registry):
    labels = {c.label for c in registry.values()}
    for want in ["Definition 1.1", "Definition 1.2", "Definition 1.3", "Definition 3.1", "Remark 3.2",
                 "Definition 3.3", "Lemma C.4", "Lemma D.17", "Lemma D.1", "Lemma F.4", "Lemma G.3", "Lemma H.2",
                 "Definition I.5", "Lemma J.3", "Lemma K.2", "Algorithm 1"]:  # fmt: skip
        assert want in labels, want


def test_a_check_that_contradicts_its_status_is_reported_and_fails_the_run():
    chk = reg.Check("t.fake", "Lemma Z.9", "fake", "ID", "OK", (), (), lambda ctx: reg.Result(False, "x"), "t")
    rec = reg.run_check(chk, reg.Context())
    assert rec.verdict == reg.CONTRADICTS and rec.contradicts


def test_a_crashing_check_is_reported_as_an_error_with_its_traceback():
    def boom(ctx):
        raise RuntimeError("kaput")

    rec = reg.run_check(reg.Check("t.boom", "Lemma Z.9", "boom", "ID", "OK", (), (), boom, "t"), reg.Context())
    assert rec.verdict == reg.ERROR and "kaput" in rec.figure and "Traceback" in rec.data["traceback"]


def test_wrong_as_printed_checks_that_agree_say_so():
    chk = reg.Check("t.w", "Lemma Z.9", "w", "ID", "WRONG-AS-PRINTED", (), (), lambda ctx: reg.Result(True, ""), "t")
    assert reg.run_check(chk, reg.Context()).verdict == "wrong as printed"


def test_check_command_writes_json_and_exits_zero_when_all_agree(tmp_path, capsys):
    out = tmp_path / "r.json"
    rc = main(["check", "--only", "Definition 1.1", "Lemma G.3", "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["paper"] == "arXiv:2408.13233v2" and doc["seed"] == 0
    assert {r["label"] for r in doc["records"]} == {"Definition 1.1", "Lemma G.3"}
    assert "wrong as printed" in capsys.readouterr().out


def test_only_with_an_unknown_label_lists_the_known_ones(capsys):
    assert main(["check", "--only", "Lemma Q.99"]) == 2
    assert "known labels" in capsys.readouterr().err


def test_list_prints_every_check(capsys, registry):
    assert main(["check", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(cid in out for cid in registry)


def test_expected_word_names_the_verdict_of_each_status_and_trend_for_asym_ok():
    assert reg.expected_word("OK") == "holds" and reg.expected_word("OK", "ID") == "holds"
    assert reg.expected_word("OK", "ASYM") == "trend" and reg.expected_word("GAP", "ASYM") == "gap"
    assert reg.expected_word("WRONG-AS-PRINTED") == "wrong as printed" and reg.expected_word("AMBIG") == "ambiguous"
    for status in reg.STATUSES:  # the one vocabulary: an agreeing check's verdict is its expected word
        chk = reg.Check("x", "X 1", "x", "INEQ", status, (), (), lambda ctx: reg.Result(True, ""), __name__)
        assert reg.verdict_for(chk, True) == reg.expected_word(status, "INEQ")
    with pytest.raises(ValueError, match="status"):
        reg.expected_word("holds")
    with pytest.raises(ValueError, match="kind"):
        reg.expected_word("OK", "THEOREM")


def test_run_many_calls_on_record_once_per_finished_record_in_order():
    def make(cid, ok):
        return reg.Check(cid, "X 1", cid, "ID", "OK", (), (), lambda ctx: reg.Result(ok, cid), __name__)

    chosen = [make("a", True), make("b", False), make("c", True)]
    seen = []
    out = reg.run_many(chosen, reg.Context(), progress=None, on_record=seen.append)
    assert [r.id for r in seen] == ["a", "b", "c"] and seen == out
    assert [r.verdict for r in seen] == ["holds", "CONTRADICTS", "holds"]
