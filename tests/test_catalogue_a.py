"""The exact checks (``exact_*`` modules, the former catalogue part A and the reference and SymPy checks): layout by
paper part, coverage, docstrings, the verdicts SPEC §0.5 rules, and the evidence each WRONG-AS-PRINTED check stores.
Every check is run with its mutants in tests/test_mutants.py; this file runs only what it inspects."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from proofs_check import registry as reg
from proofs_check.checks import exact_common as ec

REGISTRY = reg.load_all()
EXACT = [c for c in REGISTRY.values() if c.module.split(".")[-1].startswith("exact_")]
CHECKS_DIR = Path(reg.__file__).parent / "checks"

# SPEC §3 numbers of the exact part: main text #1-#22 less the [ASYM] theorems and #19-#21, Appendices C, D, F, G
ASSIGNED = {1, 2, 3, 4, 6, 7, 8, 9, 12, 13, 22} | set(range(23, 60)) | set(range(71, 80))


def test_the_exact_checks_cover_every_assigned_entry():
    ours = {s for c in EXACT for s in c.spec}
    assert not sorted(ASSIGNED - ours), f"SPEC entries with no exact check: {sorted(ASSIGNED - ours)}"


def test_every_exact_module_has_at_most_400_lines_and_no_softmax_of_its_own():
    for path in sorted(CHECKS_DIR.glob("exact_*.py")):
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 400, path.name
        tree = ast.parse(text)
        defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert not defined & {"softmax", "attention_matrix", "head_vjp", "lift", "backward"}, path.name


def test_ids_labels_and_docstrings_follow_the_paper():
    pattern = re.compile(r"^(Fact|Definition|Lemma|Remark|Claim|Notation|Algorithm|Weak point|spec) ")
    for c in EXACT:
        assert re.match(r"^(cat|ref|sym)\.", c.id), c.id
        assert pattern.match(c.label), c.label
        assert c.fn.__doc__ and "spec #" in c.fn.__doc__.replace("Spec §", "spec #"), f"{c.id}: restate the statement"


@pytest.mark.paper("Lemma D.3")
def test_the_matrix_views_and_closed_sums_hold_and_inherit_lemma_d1():
    for cid in ("cat.D3.B6", "cat.D4.B7", "cat.D5.B8", "cat.D6.B2", "cat.D7.B4", "cat.D10.z6", "cat.D11.z7",
                "cat.D12.B8_sum", "cat.D13.z2", "cat.D14.z4"):  # fmt: skip
        c = REGISTRY[cid]
        assert c.expected == "OK" and c.inherits == (43,), cid
        res = c.fn(reg.Context())
        assert res.ok and res.data["inherited_43"]["printed_vs_corrected_rel"] > 1e-3, cid


@pytest.mark.paper("Lemma D.8")
def test_the_statements_about_the_derivative_are_wrong_as_printed_and_inherit_lemma_d1():
    for cid in ("cat.D8.slice", "cat.D9.sum", "ref.D17.five_terms", "sym.D17.five_terms", "ref.W1.printed_paths"):
        c = REGISTRY[cid]
        assert c.expected == "WRONG-AS-PRINTED" and c.inherits == (43,), cid
    assert REGISTRY["cat.D16.K"].expected == "OK" and REGISTRY["cat.D16.K"].inherits == ()


@pytest.mark.paper("Lemma C.18")
def test_lemma_c18_is_checked_at_n_below_d_where_the_printed_bound_fails():
    c = REGISTRY["cat.C18.h_bounded"]
    assert c.expected == "WRONG-AS-PRINTED"
    res = c.fn(reg.Context())
    assert res.ok and res.counterexample["n"] == 2 and res.counterexample["d"] == 5
    assert any(k.startswith("printed") for k in res.data["rows"])


def test_inequality_checks_record_the_slack_and_the_two_sides_of_the_tightest_row():
    for c in EXACT:
        if c.kind == "INEQ" and c.id.startswith("cat.") and c.id != "cat.C18.h_bounded":
            res = c.fn(reg.Context())
            assert res.data["slack"] and all(0 <= v <= 1 + 1e-9 for v in res.data["slack"].values()), c.id
            assert res.observed is not None and res.bound is not None and res.observed <= res.bound, c.id


@pytest.mark.paper("Lemma D.1")
def test_wrong_as_printed_checks_are_decided_in_mpmath_with_a_counterexample():
    for cid in ("ref.D1.entrywise", "cat.D8.slice", "cat.D9.sum"):
        res = REGISTRY[cid].fn(reg.Context())
        assert res.ok and res.precision.split(";")[0] == "mpmath dps=50", cid
        assert res.counterexample["seed"] == 0 and min(res.counterexample["errors"].values()) > 1e-3, cid


@pytest.mark.paper("Lemma C.13")
def test_the_entry_bound_gap_is_measured_not_assumed():
    res = REGISTRY["cat.C13.lowrank_f"].fn(reg.Context())
    gap = res.data["gap"]
    deg1, degd = gap["beta=1 (C.13)"]["degree_for_1e-8"], gap["beta=1/d (I.1)"]["degree_for_1e-8"]
    assert deg1 == sorted(deg1) and deg1[-1] > 3 * deg1[0]
    assert len(set(degd)) == 1
    assert gap["beta=1 (C.13)"]["max_logit"] == [float(d) for d in gap["d"]]  # logits reach d R^2 with R = 1


@pytest.mark.paper("Lemma C.13")
def test_the_measured_taylor_degree_is_at_most_the_proved_one():
    from proofs_check.checks.exact_appendix_c_lowrank import measured_degree, taylor_error

    for Rbar in (1.0, 4.0):
        g = measured_degree(Rbar, 1e-8)
        assert taylor_error(Rbar, g) <= 1e-8 < taylor_error(Rbar, g - 1)
        assert g <= ec.degree_for(Rbar, 1e-8)


@pytest.mark.paper("Fact C.2")
def test_row_kronecker_matches_the_papers_column_index():
    rng = np.random.default_rng(0)
    U, V = rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (4, 2))
    K = ec.rowkron(U, V)
    for l1, l2 in np.ndindex(3, 2):
        np.testing.assert_array_equal(K[:, l1 + l2 * 3], U[:, l1] * V[:, l2])
