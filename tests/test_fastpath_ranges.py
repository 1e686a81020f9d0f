"""Certified logit ranges (fastpath.ranges, issue 14 items 1-2): every bound is >= the exact maximum.

The exact maximum is computed with ``fractions.Fraction`` (every float64 is a rational, so
max_ij |beta q_i . k_j| is exact, no tolerance) on small cases, and by float64 brute force with its own rounding
bound (gamma_d |beta||q||k|, Higham Lemma 3.1) on larger ones. Mutants (a bound without its rounding inflation, a
box bound missing a sign case) are run on constructed counterexamples and must fall below the exact maximum.
"""

import importlib.util
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastpath import directed, ranges, staircase
from fastpath.poly import round_up_R
from fastpath.ranges import (
    FAST_RTOL,
    SPREAD_MAX,
    abs_logit_bound,
    block_bounds,
    box_bound,
    centres,
    cluster_bound,
    cs_bound,
    key_spread,
    logit_bound,
    logit_ranges,
    recentred_range,
    rotated_bound,
    tail_bound,
)


def balls_only(q, k, beta):
    return cluster_bound(q, k, beta, tail=False)


BOUNDS = (cs_bound, box_bound, rotated_bound, cluster_bound, balls_only, tail_bound, logit_bound)
U = 2.0**-53


def exact_max(q, k, beta) -> Fraction:
    """max_ij |beta q_i . k_j| in exact rational arithmetic."""
    b = Fraction(float(beta))
    Q = [[Fraction(float(x)) for x in row] for row in q]
    K = [[Fraction(float(x)) for x in row] for row in k]
    return max(abs(b * sum(x * y for x, y in zip(qi, kj, strict=True))) for qi in Q for kj in K)


def brute_lower_of_max(q, k, beta) -> float:
    """A float64 lower bound of the exact max by brute force (n m d): the float logits minus their rounding bound."""
    S = np.abs(beta * (q @ k.T))  # (n, m)
    d = q.shape[1]
    err = 2 * (d + 1) * 2.0**-53 * abs(beta) * (np.abs(q) @ np.abs(k).T)  # gamma_{d+1} |beta||q||k|
    return float((S - err).max())  # <= exact max: a lower bound of it


def shaped(kind: str, base: np.ndarray) -> np.ndarray:
    """Adversarial rows: all equal, one huge row, rank 1, alternating signs, zero rows."""
    n, d = base.shape
    if kind == "equal":
        return np.repeat(base[:1], n, axis=0)
    if kind == "huge":
        out = base.copy()
        out[0] *= 1e6
        return out
    if kind == "rank1":
        return np.outer(np.linspace(-1, 1, n), base[0])
    if kind == "alternating":
        return np.abs(base) * np.where((np.arange(n)[:, None] + np.arange(d)) % 2, -1.0, 1.0)
    if kind == "zeros":
        out = base.copy()
        out[::2] = 0.0
        return out
    return base


floats = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False)
KINDS = ("plain", "equal", "huge", "rank1", "alternating", "zeros")


@st.composite
def pairs(draw, max_n=6, max_d=4):
    d = draw(st.integers(1, max_d))
    n, m = draw(st.integers(1, max_n)), draw(st.integers(1, max_n))
    q = np.array(draw(st.lists(floats, min_size=n * d, max_size=n * d))).reshape(n, d)
    k = np.array(draw(st.lists(floats, min_size=m * d, max_size=m * d))).reshape(m, d)
    q, k = shaped(draw(st.sampled_from(KINDS)), q), shaped(draw(st.sampled_from(KINDS)), k)
    beta = draw(st.sampled_from([1.0, 0.25, 1 / 3, -0.7, 1e-3]))
    return q, k, beta


@given(pairs(), st.sampled_from([0.0, FAST_RTOL, 0.5]), st.sampled_from([None, 1, 7]))
def test_both_joint_ranges_cover_the_exact_rational_maxima_at_any_tolerance_and_budget(case, rtol, budget):
    q, k, beta = case
    got = logit_ranges(q, k, beta, rtol=rtol, budget=budget)
    assert Fraction(got.signed) >= exact_max(q, k, beta)
    assert Fraction(got.absolute) >= exact_max(np.abs(q), np.abs(k), beta)


@given(pairs())
def test_every_bound_is_at_least_the_exact_rational_maximum(case):
    q, k, beta = case
    want = exact_max(q, k, beta)
    for bound in BOUNDS:
        assert Fraction(bound(q, k, beta)) >= want, bound.__name__


@given(pairs(max_n=12, max_d=3), st.integers(1, 5), st.integers(1, 5))
def test_block_bounds_cover_every_block_pair_exactly(case, cq, ck):
    q, k, beta = case
    B = block_bounds(q, k, beta, cq, ck)
    assert B.shape == (-(-q.shape[0] // cq), -(-k.shape[0] // ck))
    for I in range(B.shape[0]):
        for J in range(B.shape[1]):
            want = exact_max(q[I * cq : (I + 1) * cq], k[J * ck : (J + 1) * ck], beta)
            assert Fraction(float(B[I, J])) >= want


@given(pairs(max_n=8, max_d=3))
def test_recentred_range_covers_the_exact_recentred_logits(case):
    q, k, beta = case
    a, c = centres(q, k, beta)
    Qa = [[Fraction(float(x)) - Fraction(float(y)) for x, y in zip(row, a, strict=True)] for row in q]
    Kc = [[Fraction(float(x)) - Fraction(float(y)) for x, y in zip(row, c, strict=True)] for row in k]
    b = Fraction(float(beta))
    want = max(abs(b * sum(x * y for x, y in zip(qi, kj, strict=True))) for qi in Qa for kj in Kc)
    assert Fraction(recentred_range(q, k, beta, a, c)) >= want
    want_abs = max(abs(b) * sum(abs(x) * abs(y) for x, y in zip(qi, kj, strict=True)) for qi in Qa for kj in Kc)
    assert Fraction(recentred_range(q, k, beta, a, c, absolute=True)) >= want_abs
    assert not a.any() or key_spread(k, beta, a) <= SPREAD_MAX


@given(pairs(max_n=8, max_d=3))
def test_centres_never_widen_the_range_they_compare(case):
    q, k, beta = case

    def cheap(qa, kc):  # the rigorous bounds centres() compares (the staircase usually meets the maximum)
        return min(cs_bound(qa, kc, beta), box_bound(qa, kc, beta), tail_bound(qa, kc, beta))

    for absolute in (False, True):
        a, c = centres(q, k, beta, absolute=absolute)
        shifted, plain = (q - a, k - c), (q, k)
        if absolute:
            shifted, plain = tuple(map(np.abs, shifted)), tuple(map(np.abs, plain))
        assert cheap(*shifted) <= cheap(*plain)  # (0, 0) is always a candidate


def test_recentring_is_exact_on_the_kernel_identity():
    rng = np.random.default_rng(5)
    q, k = rng.normal(size=(7, 3)) + 2.0, rng.normal(size=(5, 3)) - 1.0
    beta = 0.5
    a, c = centres(q, k, beta)
    assert a.any() and c.any()  # shifted data: re-centring is chosen
    lhs = beta * q @ k.T  # (7, 5)
    rhs = beta * ((q @ c)[:, None] + (q - a) @ (k - c).T + (k @ a)[None, :] - a @ c)
    assert np.abs(lhs - rhs).max() <= 1e-12 * (np.abs(q) @ np.abs(k).T).max()  # a few ulps of |q||k| terms
    assert recentred_range(q, k, beta, a, c) < logit_bound(q, k, beta)


def _bench():
    """benchmarks/range_bench.py as a module (benchmarks/ is not a package): the one home of issue 14's inputs."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "range_bench.py"
    spec = importlib.util.spec_from_file_location("altgrad_range_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dist", ["small", "authors"])
def test_bounds_hold_and_improve_on_cauchy_schwarz_on_issue_14_inputs(dist):
    q, k, beta = _bench().inputs(dist, 512, 4)
    lower = brute_lower_of_max(q, k, beta)
    for bound in BOUNDS:
        assert bound(q, k, beta) >= lower
    assert logit_bound(q, k, beta) < cs_bound(q, k, beta)


def _identity_box(q, k, beta):
    return rotated_bound(q, k, beta, np.eye(q.shape[1]))  # O = I: no defect term hides the rounding


@pytest.mark.parametrize("bound", [cs_bound, box_bound, _identity_box, cluster_bound, balls_only, tail_bound])
def test_a_bound_without_its_rounding_inflation_falls_below_the_exact_maximum(monkeypatch, bound):
    # aligned q = k = x: every bound is attained, so any downward rounding shows; the mutant drops every upward
    # step (up, down, the 1 + 2mu factors and the gamma terms) of fastpath.directed, .ranges and .staircase
    rng = np.random.default_rng(0)
    for _ in range(300):
        x = rng.uniform(0.5, 1.5, (1, 7))
        want = exact_max(x, x, 1.0)
        assert Fraction(bound(x, x, 1.0)) >= want
        with monkeypatch.context() as mp:
            for mod in (directed, ranges, staircase):
                mp.setattr(mod, "up", lambda v: v)
                mp.setattr(mod, "gam", lambda m: 0.0)
                if hasattr(mod, "rel"):
                    mp.setattr(mod, "rel", lambda m: 1.0)
            mp.setattr(ranges, "down", lambda v: v)
            mp.setattr(staircase, "down", lambda v: v)
            mutant = bound(x, x, 1.0)
        if Fraction(mutant) < want:
            return  # the mutant is caught on this input
    pytest.fail("no input found where the bound without its rounding terms falls below the exact maximum")


@pytest.mark.parametrize("d", [4, 8])
def test_logit_bound_meets_the_true_maximum_to_rounding_on_the_authors_inputs(d):
    # the norm-tail bound converges here: R = max float logit + 2 d u CS + a few ulps, so (R - true)/true is at most
    # about 2 d u CS/true + 4u; allow 4 d u CS/true + 16 u (twice over)
    q, k, beta = _bench().inputs("authors", 1024, d)
    true = float(np.abs(beta * (q @ k.T)).max())
    R, cs = logit_bound(q, k, beta), cs_bound(q, k, beta)
    assert true <= R <= true * (1 + 16 * U) + 4 * d * U * cs
    assert cs > 1.1 * true  # while Cauchy-Schwarz is 10 % or more off (1.31 at d = 4, 1.79 at d = 8 on these inputs)


def _box_same_corners_only(lq, hq, lk, hk):
    """Mutant: only the products of like corners (lq lk, hq hk), the cross corners forgotten."""
    hi = np.maximum(lq * lk, hq * hk).sum(axis=-1)
    lo = np.minimum(lq * lk, hq * hk).sum(axis=-1)
    return np.maximum(hi, -lo)


def _box_max_side_only(lq, hq, lk, hk):
    """Mutant: max q.k over the box only, without -min q.k."""
    c = np.stack([lq * lk, lq * hk, hq * lk, hq * hk])
    return c.max(axis=0).sum(axis=-1)


@pytest.mark.parametrize("mutant", [_box_same_corners_only, _box_max_side_only])
def test_a_box_bound_missing_a_sign_case_is_caught(monkeypatch, mutant):
    q = np.array([[1.0, 2.0], [2.0, 1.0]])  # positive queries
    k = np.array([[-1.0, -2.0], [-2.0, -1.0]])  # negative keys: every logit is negative, |q.k| up to 5
    want = exact_max(q, k, 1.0)
    assert Fraction(box_bound(q, k, 1.0)) >= want
    monkeypatch.setattr(ranges, "_box_max", mutant)
    assert Fraction(float(box_bound(q, k, 1.0))) < want


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.zeros(3), np.zeros((2, 3)), 1.0), r"q: expected a non-empty 2-D array .* shape \(3,\)"),
        ((np.zeros((2, 3)), np.zeros((2, 4)), 1.0), r"k: expected 3 columns like q \(2, 3\), got shape \(2, 4\)"),
        ((np.zeros((0, 3)), np.zeros((2, 3)), 1.0), r"q: expected a non-empty"),
        ((np.full((2, 3), np.nan), np.zeros((2, 3)), 1.0), r"q, k: expected finite"),
        ((np.zeros((2, 3)), np.zeros((2, 3)), float("inf")), r"beta: expected a finite number"),
    ],
)
def test_bad_input_names_the_argument_and_shape(args, match):
    with pytest.raises(ValueError, match=match):
        logit_bound(*args)


def test_bad_beta_type_and_bad_blocks_are_refused():
    q = np.zeros((4, 2))
    with pytest.raises(TypeError, match="beta: expected a real number, got str"):
        logit_bound(q, q, "1")
    with pytest.raises(ValueError, match=r"q_blocks: expected a block size or .* shape \(4,\), got shape \(3,\)"):
        block_bounds(q, q, 1.0, np.zeros(3, dtype=int), 2)
    with pytest.raises(ValueError, match=r"k_blocks: expected a block size >= 1"):
        block_bounds(q, q, 1.0, 2, 0)
    with pytest.raises(ValueError, match=r"a: expected a finite vector of shape \(2,\), got shape \(3,\)"):
        recentred_range(q, q, 1.0, np.zeros(3), np.zeros(2))


@given(pairs(max_n=10, max_d=3), st.integers(0, 12))
def test_the_staircase_bound_holds_when_the_budget_forces_a_higher_level(case, budget):
    q, k, beta = case
    assert Fraction(tail_bound(q, k, beta, budget=budget)) >= exact_max(q, k, beta)


@given(pairs(max_n=10, max_d=3), st.data())
def test_block_bounds_cover_every_pair_of_labelled_blocks(case, data):
    q, k, beta = case
    lq = np.array(data.draw(st.lists(st.integers(0, 3), min_size=q.shape[0], max_size=q.shape[0])))
    lk = np.array(data.draw(st.lists(st.integers(0, 2), min_size=k.shape[0], max_size=k.shape[0])))
    B = block_bounds(q, k, beta, lq, lk)
    assert B.shape == (lq.max() + 1, lk.max() + 1)
    for I in range(B.shape[0]):
        for J in range(B.shape[1]):
            if (lq == I).any() and (lk == J).any():
                assert Fraction(float(B[I, J])) >= exact_max(q[lq == I], k[lk == J], beta)
            else:
                assert B[I, J] == 0.0  # an empty block holds no logit


@given(pairs(max_n=8, max_d=3))
def test_key_spread_bounds_the_exact_spread_of_the_key_weights(case):
    q, k, beta = case
    a = q.mean(axis=0)
    b = Fraction(float(beta))
    logs = [b * sum(Fraction(float(x)) * Fraction(float(y)) for x, y in zip(a, kj, strict=True)) for kj in k]
    assert Fraction(key_spread(k, beta, a)) >= max(logs) - min(logs)


def test_logit_range_is_the_absolute_range_between_the_logit_bound_and_cauchy_schwarz():
    from fastpath.lowrank import logit_range

    rng = np.random.default_rng(3)
    q, k = rng.normal(size=(300, 5)), rng.normal(size=(200, 5))
    R_abs = abs_logit_bound(q, k, 0.2)
    assert logit_range(q, k, 0.2) == R_abs
    assert logit_bound(q, k, 0.2) < R_abs < cs_bound(q, k, 0.2)


@given(pairs())
def test_the_absolute_range_covers_every_absolute_product(case):
    q, k, beta = case
    assert Fraction(abs_logit_bound(q, k, beta)) >= exact_max(np.abs(q), np.abs(k), beta)


def test_the_signed_range_does_not_bound_the_absolute_products_the_rounding_terms_need():
    # q . k = 0 but |q| . |k| = 2: the features' absolute sums (fastpath.bounds.rounding_rel) need the latter
    q, k = np.array([[1.0, 1.0]]), np.array([[1.0, -1.0]])
    assert logit_bound(q, k, 1.0) < 1e-15
    assert abs_logit_bound(q, k, 1.0) >= 2.0


@pytest.mark.parametrize("scale", [1e-200, 1e-160, 2.0**-1074])
def test_bounds_cover_logits_that_underflow_in_float64(scale):
    # every product q_t k_t underflows (to 0 or a subnormal), yet the exact maximum is positive
    q = np.array([[scale, -scale, scale], [scale, scale, 0.0]])
    k = np.array([[3 * scale, -scale, scale]])
    want = exact_max(q, k, 0.5)
    assert want > 0 and float(np.abs(0.5 * q @ k.T).max()) < 1e-300
    for bound in BOUNDS:
        assert Fraction(bound(q, k, 0.5)) >= want, bound.__name__
    assert Fraction(float(block_bounds(q, k, 0.5, 1, 1).min())) >= exact_max(q[1:], k, 0.5)


def test_overflowing_logits_give_an_infinite_bound_never_nan():
    q = np.random.default_rng(0).normal(size=(50, 3)) * 1e200  # |q_i . k_j| ~ 1e400 overflows float64
    for bound in BOUNDS:
        assert bound(q, q, 1.0) == np.inf, bound.__name__
    assert (block_bounds(q, q, 1.0, 8, 8) == np.inf).all()
    a, c = centres(q, q, 1.0)
    assert not a.any() and not c.any() and key_spread(q, 1.0, q.mean(axis=0)) == np.inf


@pytest.mark.parametrize("dist", ["small", "authors"])
@pytest.mark.parametrize("d", [4, 8])
def test_the_ranges_evaluate_a_number_of_exact_logits_linear_in_n(dist, d):
    # counted work (never time): per range d (n + m) top-norm logits, the staircase's rectangles at most 4/3 of its
    # budget 16 d (n + m) per stage (the fast path's two stages: 1/8 then all of it), and with rtol = 0 the
    # cluster tail's 8 d (n + m): <= (1 + 4/3 * 18) = 25 d (n + m) per range fast, <= (1 + 4/3 * 16 + 8) < 31
    # d (n + m) exact, two ranges
    n = 4096
    q, k, beta = _bench().inputs(dist, n, d)
    fast, full = logit_ranges(q, k, beta, rtol=FAST_RTOL), logit_ranges(q, k, beta)
    assert 0 < fast.pairs <= 50 * d * 2 * n < n * n  # below the n m of brute force: the assertion has teeth
    assert 0 < full.pairs <= 62 * d * 2 * n < n * n
    assert (full.signed, full.absolute) == (logit_bound(q, k, beta), abs_logit_bound(q, k, beta))
    assert round_up_R(fast.signed) <= round_up_R(full.signed * (1 + FAST_RTOL))  # early exit: the same grid point
    assert round_up_R(fast.absolute) <= round_up_R(full.absolute * (1 + FAST_RTOL))  # or one 1.6 % above


def test_a_small_budget_caps_the_counted_logits_and_keeps_the_bound_rigorous():
    # small logits: the full staircase above the true maximum holds over 4 times the budget's 256 pairs: it binds
    q, k, beta = _bench().inputs("small", 2048, 4)
    n, d, budget = 2048, 4, 256
    nq, nk = -np.sort(-np.linalg.norm(q, axis=1)), -np.sort(-np.linalg.norm(k, axis=1))
    level = brute_lower_of_max(q, k, beta) / abs(beta)  # pairs with a norm product above it: beyond the budget
    assert staircase.staircase_counts(nq, nk, level).sum() > 4 * budget
    got = logit_ranges(q, k, beta, rtol=FAST_RTOL, budget=budget)
    assert got.pairs <= 2 * (d * 2 * n + 4 * (budget // 8) // 3 + 4 * budget // 3)  # rectangles <= 4/3 the area
    assert got.signed >= brute_lower_of_max(q, k, beta)
    assert got.absolute >= brute_lower_of_max(np.abs(q), np.abs(k), beta)


@pytest.mark.parametrize(("kw", "name"), [({"rtol": -1.0}, "rtol"), ({"rtol": math.nan}, "rtol"),
                                           ({"budget": -3}, "budget"), ({"budget": 2.5}, "budget")])  # fmt: skip
def test_logit_ranges_refuses_a_bad_rtol_or_budget_by_name(kw, name):
    q = np.ones((4, 2))
    with pytest.raises(ValueError, match=name):
        ranges.logit_ranges(q, q, 0.5, **kw)
