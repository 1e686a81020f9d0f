"""The staircase's shortcuts (fastpath.staircase, fastpath.ranges.col_min_max) answer exactly as the plain forms.

The sampled budget test must take every decision of the exact count (so the level, hence the bound, is unchanged),
the rectangles must meet the exact maximum over the staircase within one logit's rounding while evaluating at most
4/3 of its pairs, and the column extremes must equal numpy's axis-0 reductions bit for bit.
"""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastpath import staircase
from fastpath.directed import TINY, abs_box, col_min_max, gam, norms_up, prod_up
from fastpath.ranges import _box_max


def _sorted_norms(rng, n, spread):
    return -np.sort(-(rng.uniform(0.0, 1.0, n) ** spread))  # (n,) descending, ties when spread is large


@given(st.integers(0, 2**31 - 1), st.integers(1, 3000), st.integers(1, 3000), st.floats(0.5, 8.0))
def test_the_sampled_budget_test_answers_as_the_exact_count_of_the_staircase(seed, n, m, spread):
    rng = np.random.default_rng(seed)
    sq, sk = _sorted_norms(rng, n, spread), _sorted_norms(rng, m, spread)
    total = n * m
    for budget in (0, 1, total // 100, total // 7, total // 2, total):
        fits = staircase._Fits(sq, sk, budget)
        for L in rng.uniform(0.0, 1.0, 8) ** spread:
            exact = int(staircase.staircase_counts(sq, sk, L).sum()) <= budget
            assert fits(L) == exact


def _exact_staircase_max(qs, ks, cnt) -> Fraction:
    return max(
        (abs(sum(Fraction(a) * Fraction(b) for a, b in zip(qs[i], ks[j], strict=True)))
         for i in range(qs.shape[0]) for j in range(int(cnt[i]))),
        default=Fraction(0),
    )  # fmt: skip


@given(st.integers(0, 2**31 - 1), st.integers(1, 40), st.integers(1, 40), st.integers(1, 4), st.floats(0.0, 1.0))
def test_the_rectangles_meet_the_exact_staircase_maximum_and_evaluate_at_most_four_thirds_of_it(seed, n, m, d, lev):
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((n, d)), rng.standard_normal((m, d))
    nq, nk = norms_up(q), norms_up(k)
    oq, ok = np.argsort(-nq), np.argsort(-nk)
    qs, ks, sq, sk = q[oq], k[ok], nq[oq], nk[ok]
    cnt = staircase.staircase_counts(sq, sk, lev * prod_up(sq[0], sk[0]))
    E, pairs = staircase._max_over_staircase(qs, ks, cnt)
    area = int(cnt.sum())
    assert area <= pairs and 3 * pairs <= 4 * area  # every staircase pair, at most 4/3 of them
    err = Fraction(gam(d)) * Fraction(prod_up(sq[0], sk[0])) + d * Fraction(TINY)  # one float logit's rounding
    assert abs(Fraction(E) - _exact_staircase_max(qs, ks, cnt)) <= err


def test_a_chunked_staircase_finds_the_same_maximum_as_one_product():
    # chunks of CHUNK entries and a buffer reused across rectangles: the same float logits as one big product
    rng = np.random.default_rng(1)
    q, k = rng.standard_normal((3000, 4)), rng.standard_normal((2500, 4))
    nq, nk = norms_up(q), norms_up(k)
    oq, ok = np.argsort(-nq), np.argsort(-nk)
    cnt = staircase.staircase_counts(nq[oq], nk[ok], 0.3 * prod_up(nq.max(), nk.max()))
    assert cnt[0] * 3000 > staircase.CHUNK  # more than one chunk
    P = q[oq] @ k[ok].T  # (n, m)
    mask = np.arange(k.shape[0])[None, :] < cnt[:, None]
    E, _ = staircase._max_over_staircase(q[oq], k[ok], cnt)
    assert np.abs(P[mask]).max() == E


@given(st.integers(0, 2**31 - 1), st.integers(1, 5000), st.integers(1, 9))
def test_column_extremes_equal_numpys_axis_reductions_and_those_of_the_absolute_values(seed, n, d):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d)) * rng.choice([0.0, 1.0, 1e300], (n, d))
    lo, hi = col_min_max(Z)
    assert np.array_equal(lo, Z.min(0)) and np.array_equal(hi, Z.max(0))
    A = np.abs(Z)
    alo, ahi = abs_box(lo, hi)
    assert np.array_equal(ahi, A.max(0)) and (alo <= A.min(0)).all()
    # the box bound of |q|, |k| from these boxes is bit for bit the one from the exact extremes of |Z|
    Y = rng.standard_normal((max(1, n // 2), d))
    B = np.abs(Y)
    with np.errstate(over="ignore"):
        assert _box_max(alo, ahi, *abs_box(*col_min_max(Y))) == _box_max(A.min(0), A.max(0), B.min(0), B.max(0))


@pytest.mark.parametrize("seed", range(3))
def test_gathered_thin_pairs_meet_the_rectangles_maximum_and_count_the_staircase_exactly(monkeypatch, seed):
    # the same staircase all by rectangles (THIN = 0) and all gathered pair by pair (THIN above its area)
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((700, 6)), rng.standard_normal((900, 6))
    nq, nk = norms_up(q), norms_up(k)
    oq, ok = np.argsort(-nq), np.argsort(-nk)
    cnt = staircase.staircase_counts(nq[oq], nk[ok], 0.4 * prod_up(nq.max(), nk.max()))
    monkeypatch.setattr(staircase, "THIN", 0)
    E_rect, p_rect = staircase._max_over_staircase(q[oq], k[ok], cnt)
    monkeypatch.setattr(staircase, "THIN", 2**62)
    monkeypatch.setattr(staircase, "CHUNK", 4096)  # several gathered chunks
    E_thin, p_thin = staircase._max_over_staircase(q[oq], k[ok], cnt)
    area = int(cnt.sum())
    assert p_thin == area > staircase.CHUNK and area <= p_rect
    err = gam(6) * prod_up(nq.max(), nk.max()) + 6 * TINY  # each float logit within this of its exact value
    assert abs(E_thin - E_rect) <= 2 * err
    mask = np.arange(k.shape[0])[None, :] < cnt[:, None]
    assert np.abs((q[oq] @ k[ok].T)[mask]).max() == E_rect
