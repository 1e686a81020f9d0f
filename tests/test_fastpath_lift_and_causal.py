"""Lemma I.1 step 2 (the lift), Lemma C.13 (normalised factors), Lemma I.3/I.4 and the suffix-sum variant (§2.7).

Tolerances: the lift is an exact identity; float64 evaluation of a degree-g polynomial of |x| <= 1 with O(1)
coefficients costs a few ulps times the number of terms, so 1e-12 absolute is a wide margin. The prefix/suffix
products are reassociations of the dense product (spec pilot: 7e-15), checked at 1e-12 relative.
"""

import math

import mpmath
import numpy as np
import pytest

from fastpath.causal import causal_matmul, causal_mv, causal_mv_T
from fastpath.features import lift, monomial_plan, rank_of
from fastpath.lowrank import fixed_degree_poly, logit_range, lowrank_attention
from reference.attention import attention_matrix


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize(("d", "g"), [(1, 5), (2, 4), (4, 6), (5, 3)])
def test_lift_reproduces_the_polynomial_of_the_scaled_inner_products(d, g):
    rng = np.random.default_rng(d * 10 + g)
    Q, K = rng.uniform(-1, 1, (7, d)), rng.uniform(-1, 1, (6, d))
    c = rng.normal(size=g + 1)
    beta = 0.7
    U, V = lift(Q, K, c, beta)
    with mpmath.workdps(40):
        cc = [mpmath.mpf(float(v)) for v in c[::-1]]
        want = np.array([[float(mpmath.polyval(cc, beta * mpmath.fsum(mpmath.mpf(float(a)) * float(b)
                          for a, b in zip(q, k, strict=True)))) for k in K] for q in Q])  # fmt: skip
    assert np.abs(U @ V.T - want).max() < 1e-12


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize(("d", "g"), [(2, 2), (3, 7), (4, 10), (8, 3)])
def test_rank_is_the_monomial_count_and_below_the_papers_bound(d, g):
    plan = monomial_plan(d, g)
    assert plan.rank == rank_of(d, g) == math.comb(d + g, g)
    assert plan.rank <= math.comb(2 * (g + d), 2 * g)  # spec W20
    assert len({tuple(e) for e in plan.exponents}) == plan.rank
    assert (plan.exponents.sum(axis=1) == plan.degree).all() and plan.degree.max() == g


@pytest.mark.paper("Lemma C.13")
@pytest.mark.parametrize("eps", [1e-4, 1e-9])
def test_normalised_factors_have_the_relative_error_of_section_2_5(eps):
    rng = np.random.default_rng(3)
    n, d = 90, 4
    X = rng.uniform(-1, 1, (n, d))
    WQ, WK = rng.uniform(-0.5, 0.5, (d, d)), rng.uniform(-0.5, 0.5, (d, d))
    beta = 1 / d
    U1, V1, D, cert, R = lowrank_attention(X @ WQ, X @ WK, beta, eps)
    f = attention_matrix(X, WQ @ WK.T, beta)
    rel = np.abs(U1 @ V1.T - f) / f
    rho = 2 * cert.err / (1 - cert.err)
    assert np.abs(beta * (X @ WQ) @ (X @ WK).T).max() <= R
    assert rel.max() <= rho + 1e-13, f"{rel.max():.3e} > 2 eps/(1 - eps) = {rho:.3e}"


@pytest.mark.paper("Lemma C.13")
@pytest.mark.parametrize("kind", ["taylor", "chebyshev"])
def test_lowrank_attention_at_a_fixed_degree_uses_that_polynomial_and_its_certified_error(kind):
    rng = np.random.default_rng(4)
    n, d, g = 60, 3, 4
    X = rng.uniform(-1, 1, (n, d))
    WQ, WK = rng.uniform(-0.5, 0.5, (d, d)), rng.uniform(-0.5, 0.5, (d, d))
    beta = 1 / d
    U1, V1, D, cert, R = lowrank_attention(X @ WQ, X @ WK, beta, None, kind, degree=g)
    assert cert.degree == g and U1.shape == (n, math.comb(d + g, g))
    assert cert is fixed_degree_poly(R, g, kind)  # the fixed-degree polynomial of fastpath.layer.head_forward
    f = attention_matrix(X, WQ @ WK.T, beta)
    rel = np.abs(U1 @ V1.T - f) / f
    rho = 2 * cert.err / (1 - cert.err)
    assert 1e-12 < rel.max() <= rho + 1e-13  # the degree-g error: far above rounding, within its certificate
    assert np.abs((U1 @ V1.T).sum(axis=1) - 1).max() <= 1e-13  # rows of f~ sum to one (n roundings)
    lower = lowrank_attention(X @ WQ, X @ WK, beta, None, kind, degree=g - 1)[3]
    assert lower.err > cert.err  # one degree lower certifies a larger error
    with pytest.raises(ValueError, match="eps"):
        lowrank_attention(X @ WQ, X @ WK, beta, None, kind)


@pytest.mark.paper("Lemma I.3")
def test_prefix_and_suffix_sums_match_the_dense_masked_products():
    rng = np.random.default_rng(5)
    n, k = 50, 4
    U, V, v = rng.normal(size=(n, k)), rng.normal(size=(n, k)), rng.normal(size=n)
    M = np.tril(U @ V.T)
    assert np.allclose(causal_mv(U, V, v), M @ v, rtol=1e-12, atol=1e-12)
    assert np.allclose(causal_mv_T(U, V, v), M.T @ v, rtol=1e-12, atol=1e-12)


@pytest.mark.paper("Lemma I.4")
@pytest.mark.parametrize("block", [1, 7, 16, 50, 64])
def test_blocked_prefix_and_suffix_products_match_dense_at_every_block_size(block):
    rng = np.random.default_rng(block)
    n, k, w = 50, 3, 5
    U, V, H = rng.normal(size=(n, k)), rng.normal(size=(n, k)), rng.normal(size=(n, w))
    M = np.tril(U @ V.T)
    scale = np.abs(M).sum(axis=1).max() * np.abs(H).max()
    assert np.abs(causal_matmul(U, V, H, block=block) - M @ H).max() < 1e-12 * scale
    assert np.abs(causal_matmul(U, V, H, block=block, transpose=True) - M.T @ H).max() < 1e-12 * scale


def test_logit_range_bounds_every_logit_even_for_aligned_tokens():
    q = np.array([[3.0, 4.0], [1.0, 0.0]])
    k = np.array([[0.6, 0.8], [-3.0, -4.0]])
    R = logit_range(q, k, 0.5)
    assert R >= np.abs(0.5 * q @ k.T).max() == 12.5
