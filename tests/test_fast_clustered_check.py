r"""The registry check ``fast.clustered.certificate`` (issue 14 item 3): it forces its plan and builds its mutants
through explicit parameters of fastpath.clustered / fastpath.cluster_tree, kills both mutants, and leaves every
module global (and mpmath's precision) as it was; the parameters themselves validate their values by name."""

import mpmath
import numpy as np
import pytest

import fastpath.certificate as certificate
import fastpath.cluster_tree as ct
import fastpath.clustered as cl
from fastpath.work import Work
from proofs_check import registry as reg
from proofs_check.checks import fast_clustered as fc

REGISTRY = reg.load_all()
CHECK = REGISTRY["fast.clustered.certificate"]


def _snapshot():
    mods = (cl, ct, certificate, fc)
    return {(m.__name__, k): v for m in mods for k, v in vars(m).items()}, mpmath.mp.prec, mpmath.mp.dps


@pytest.mark.paper("Lemma I.1")
def test_the_clustered_check_holds_kills_both_mutants_and_changes_no_global():
    before = _snapshot()
    rec = reg.run_check(CHECK, reg.Context(quick=True, seed=0))
    after = _snapshot()
    assert rec.verified and rec.mutants_killed == list(fc.MUTANTS) and rec.mutants_survived == {}
    assert before[1:] == after[1:]
    assert before[0].keys() == after[0].keys()
    changed = [k for k, v in before[0].items() if after[0][k] is not v]
    assert changed == [], f"module globals rebound by the check: {changed}"


def test_each_mutant_reaches_polynomial_pairs_and_exceeds_its_certificate():
    for m in fc.MUTANTS:
        res = CHECK.fn(reg.Context(quick=True, seed=0, mutant=m))
        assert not res.ok and res.data["method"] == "clustered" and res.data["poly_pairs"] == 16, (m, res.figure)


def _qk(n=128, d=4, seed=3):
    rng = np.random.default_rng([14, n, seed])
    X = rng.standard_normal((n, d))
    W = [np.linalg.qr(rng.standard_normal((d, d)))[0] for _ in range(2)]
    return X @ W[0], X @ W[1]


def test_rule_polynomial_makes_pairs_polynomial_that_the_cost_rule_keeps_exact():
    q, k = _qk()
    _, _, cost = ct.choose_level(q, k, 0.25, 1e-6, "chebyshev", Work(), 1)
    _, _, poly = ct.choose_level(q, k, 0.25, 1e-6, "chebyshev", Work(), 1, rule="polynomial")
    _, _, default = ct.choose_level(q, k, 0.25, 1e-6, "chebyshev", Work(), 1, rule="cost")
    assert not cost.poly.any() and poly.poly.all()  # n = 128, 2 x 2 clusters: dense blocks are cheaper
    assert (default.rank == cost.rank).all() and default.cost == cost.cost


def test_the_pair_range_parameter_sets_the_ranges_the_polynomials_are_certified_on():
    q, k = _qk()
    qs, ks, plan = ct.choose_level(q, k, 0.25, 1e-6, "chebyshev", Work(), 1, rule="polynomial",
                                   pair_range=fc.rms_ranges)  # fmt: skip
    assert np.array_equal(plan.R, fc.rms_ranges(qs, ks, 0.25)) and (ct.pair_ranges(qs, ks, 0.25) > plan.R).all()


def test_bad_plan_parameters_are_refused_by_name():
    q, k = _qk()
    with pytest.raises(ValueError, match="rule: expected one of"):
        ct.choose_level(q, k, 0.25, 1e-6, "chebyshev", Work(), 1, rule="cheapest")
    with pytest.raises(TypeError, match="pair_range: expected a callable"):
        ct.choose_level(q, k, 0.25, 1e-6, "chebyshev", Work(), 1, pair_range=1.0)
    with pytest.raises(ValueError, match="pair_range: expected finite ranges"):
        ct.choose_level(q, k, 0.25, 1e-6, "chebyshev", Work(), 1, pair_range=lambda qs, ks, b: np.zeros((1, 1)))
    with pytest.raises(ValueError, match="pair_range: expected finite ranges"):
        ct.choose_level(q, k, 0.25, 1e-6, "chebyshev", Work(), 1, pair_range=lambda qs, ks, b: -np.ones((2, 2)))
    X = np.ones((8, 2))
    with pytest.raises(TypeError, match="dense_fallback: expected a bool"):
        cl.head_forward_clustered(X, np.eye(2), np.eye(2), np.eye(2), 0.5, X, X, X, 1.0, Work(), eps=1e-6,
                                  kind="chebyshev", causal=False, budget=2**31, dense_fallback=0)  # fmt: skip


def test_the_column_factor_mutant_is_a_copy_and_leaves_the_operator_alone():
    X = np.random.default_rng(5).standard_normal((300, 4))
    st = fc.clustered_head(X, np.eye(4), np.eye(4), np.eye(4), 0.25, None)
    colf = [c.copy() for c in st.op.colf]
    mut = fc.without_column_factor(st.op)
    assert mut is not st.op and all(np.array_equal(a, b) for a, b in zip(st.op.colf, colf, strict=True))
    assert all((c == 1).all() for c in mut.colf)
