"""Catalogue checks, part A: every check runs in quick mode and agrees with its SPEC §3 status; the judging rules."""

import re

import numpy as np
import pytest

from proofs_check import decide as dc
from proofs_check import registry as reg
from proofs_check.checks import catalogue_a as ca

REGISTRY = reg.load_all()
CAT_A = [c for c in REGISTRY.values() if c.module.endswith("catalogue_a")]

# SPEC §3 numbers assigned to part A: main text #1-#22 less the [ASYM] theorems and #19-#21, Appendices C, D, F, G
ASSIGNED = (
    {1, 2, 3, 4, 6, 7, 8, 9, 12, 13, 22} | set(range(23, 60)) | set(range(71, 80))
)  # fmt: skip


def test_part_a_covers_every_assigned_entry_that_no_reference_check_covers():
    ref_covered = {s for c in REGISTRY.values() if c.module.endswith("reference_checks") for s in c.spec}
    ours = {s for c in CAT_A for s in c.spec}
    missing = sorted(ASSIGNED - ref_covered - ours)
    assert not missing, f"SPEC entries of part A with no check: {missing}"
    assert ours <= ASSIGNED, f"part A names entries that belong elsewhere: {sorted(ours - ASSIGNED)}"


def test_part_a_ids_and_labels_follow_the_paper():
    pattern = re.compile(r"^(Fact|Definition|Lemma|Remark) [A-K]\.\d+$|^(Claim|Notation) §[0-9A-K.]+$")
    for c in CAT_A:
        assert c.id.startswith("cat."), c.id
        assert pattern.match(c.label), c.label
        assert c.fn.__doc__ and "spec #" in c.fn.__doc__, f"{c.id}: docstring must name the statement and spec #"


@pytest.mark.parametrize(
    "cid", [pytest.param(c.id, marks=pytest.mark.paper(c.label), id=c.id) for c in CAT_A]
)  # fmt: skip
def test_every_part_a_check_agrees_with_its_expected_status_in_quick_mode(cid):
    rec = reg.run_check(REGISTRY[cid], reg.Context(quick=True, seed=0))
    assert rec.verdict not in (reg.CONTRADICTS, reg.ERROR), f"{cid}: {rec.figure} {rec.data.get('traceback', '')}"
    assert rec.data["precision_that_decided"] in ("float64", "mpmath dps=50")


def test_a_different_seed_still_agrees():
    for c in CAT_A:
        rec = reg.run_check(c, reg.Context(quick=True, seed=7))
        assert not rec.contradicts, f"{c.id} seed 7: {rec.figure}"


def test_inequality_checks_record_the_slack_observed_over_bound():
    for c in CAT_A:
        if c.kind == "INEQ":
            res = c.fn(reg.Context())
            assert res.data["slack"], c.id
            assert all(0 <= v <= 1 + 1e-9 for v in res.data["slack"].values()), (c.id, res.data["slack"])


@pytest.mark.paper("Lemma D.3")
def test_wrong_as_printed_checks_store_a_counterexample_decided_in_mpmath():
    wrong = [c for c in CAT_A if c.expected == "WRONG-AS-PRINTED"]
    assert len(wrong) == 5
    for c in wrong:
        res = c.fn(reg.Context())
        cex = res.data["counterexample"]
        assert cex["seed"] == 0 and cex["shapes"] == {"n": 5, "d": 3}
        assert res.data["precision_that_decided"] == "mpmath dps=50"
        printed = [v for k, v in cex["errors"].items() if k.startswith("printed") and "re-indexing" not in k]
        assert printed and min(printed) > dc.WRONG


def test_a_float64_failure_is_recomputed_in_mpmath_before_it_counts():
    def claim(bk, x):
        return [("eq", "(x + 1) - x = 1", (x + 1) - x, bk.ones(x.shape))]

    rows, bk = dc.judge(claim, {"x": np.array([1e17])})
    assert bk.is_mp and all(r.holds for r in rows)


def test_a_printed_form_that_holds_makes_a_falsification_check_disagree():
    def claim(bk, x):
        return [("ne", "printed equals corrected", 2 * x, x + x)]

    rows, bk = dc.judge(claim, {"x": np.array([0.5, 1.5])})
    assert bk.is_mp and not rows[0].holds
    res = dc.decide(claim, [{"x": np.array([0.5])}])
    assert not res.ok and "FAILS" in res.figure


def test_a_violated_inequality_fails_in_both_precisions():
    def claim(bk, x):
        return [("le", "x <= x/2", x[0], x[0] / 2)]

    res = dc.decide(claim, [{"x": np.array([1.0])}])
    assert not res.ok and res.data["precision_that_decided"] == "mpmath dps=50" and res.data["slack"]["x <= x/2"] == 2.0


@pytest.mark.paper("Fact C.2")
def test_row_kronecker_matches_the_papers_column_index():
    rng = np.random.default_rng(0)
    U, V = rng.uniform(-1, 1, (4, 3)), rng.uniform(-1, 1, (4, 2))
    K = ca._rowkron(U, V)
    for l1, l2 in np.ndindex(3, 2):
        np.testing.assert_array_equal(K[:, l1 + l2 * 3], U[:, l1] * V[:, l2])


@pytest.mark.paper("Lemma C.13")
def test_the_entry_bound_gap_is_computed_not_assumed():
    res = REGISTRY["cat.C13.lowrank_f"].fn(reg.Context())
    gap = res.data["gap"]
    deg1, degd = gap["beta=1 (C.13)"]["degree_for_1e-8"], gap["beta=1/d (I.1)"]["degree_for_1e-8"]
    assert deg1 == sorted(deg1) and deg1[-1] > 3 * deg1[0]
    assert len(set(degd)) == 1
    assert gap["beta=1 (C.13)"]["max_logit"] == [float(d) for d in gap["d"]]  # logits reach d R^2 with R = 1
