"""Def. 1.1, 1.2, I.5: softmax and attention matrices (property tests with bounded, well-conditioned inputs)."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reference.attention import attention_matrix, causal_mask, logits, softmax, unnormalised
from reference.backend import get_backend
from reference.compare import rel_err


def bounded(shape, R=5.0):
    return arrays(np.float64, shape, elements=st.floats(-R, R, allow_nan=False, allow_subnormal=False))


shapes = st.tuples(st.integers(1, 7), st.integers(1, 7))


@pytest.mark.paper("Definition 1.1")
@given(shapes.flatmap(lambda s: bounded(s, 30.0)))
@example(np.zeros((1, 1)))
def test_softmax_rows_are_positive_and_sum_to_one(z):
    y = softmax(z)
    assert (y > 0).all()
    assert np.abs(y.sum(axis=1) - 1).max() <= 4e-16 * z.shape[1]  # one rounding per term of the sum


@pytest.mark.paper("Definition 1.1")
@given(shapes.flatmap(lambda s: bounded(s, 30.0)), st.floats(-100, 100))
def test_softmax_is_invariant_to_adding_a_constant_to_a_row(z, c):
    # shifting by c changes z's rounding by at most ulp(100) ~ 1.4e-14 per entry; exp turns that into relative error
    assert np.abs(softmax(z + c) - softmax(z)).max() <= 1e-13


@pytest.mark.paper("Definition 1.1")
def test_softmax_float64_agrees_with_mpmath_at_50_digits():
    z = np.random.default_rng(0).uniform(-20, 20, (4, 6))
    bk = get_backend("mpmath", 50)
    assert float(rel_err(softmax(z), softmax(bk.asarray(z), bk))) < 1e-15


@pytest.mark.paper("Definition I.5")
@given(st.integers(1, 9), st.integers(1, 4), st.integers(0, 2**32 - 1))
def test_causal_attention_is_lower_triangular_with_unit_row_sums(n, d, seed):
    rng = np.random.default_rng(seed)
    f = attention_matrix(rng.uniform(-1, 1, (n, d)), rng.uniform(-1, 1, (d, d)), 1.0, causal=True)
    assert (f[~causal_mask(n)] == 0).all()
    assert np.abs(f.sum(axis=1) - 1).max() < 1e-15 * (n + 1)
    assert f[0, 0] == 1.0  # the first token attends only to itself (diagonal included)


@pytest.mark.paper("Definition 1.2")
def test_attention_matrix_uses_beta_x_w_x_transpose_with_rows_as_queries():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    W = np.array([[0.0, 2.0], [0.0, 0.0]])  # non-symmetric: only S[0, 1] = beta * x_0^T W x_1 = 2 beta is nonzero
    f = attention_matrix(X, W, 0.5)
    e = np.e
    assert np.allclose(f[0], [1 / (1 + e), e / (1 + e)], rtol=1e-15)
    assert np.allclose(f[1], [0.5, 0.5], rtol=1e-15)


@pytest.mark.paper("Definition C.6")
def test_unnormalised_attention_is_exp_of_the_logits_and_normalises_to_f():
    rng = np.random.default_rng(6)
    X, W = rng.uniform(-1, 1, (6, 3)), rng.uniform(-1, 1, (3, 3))
    u = unnormalised(X, W, 0.5)  # (n, n)
    loop = np.array([[np.exp(0.5 * (X[i] @ W @ X[j])) for j in range(6)] for i in range(6)])
    assert rel_err(u, loop) <= 64 * 2.0**-53  # a few roundings of a 3-term dot product and one exp per entry
    assert np.array_equal(u, np.exp(logits(X, W, 0.5)))  # the same logits S as attention_matrix
    f = u / u.sum(axis=1, keepdims=True)  # Def. C.7, C.8: diag(alpha)^-1 u
    assert rel_err(f, attention_matrix(X, W, 0.5)) <= 64 * 2.0**-53  # max shift vs none: a few roundings
    mp = get_backend("mpmath", 30)
    with mp.precision():
        u_mp = unnormalised(mp.asarray(X), mp.asarray(W), 0.5, mp)
        assert float(rel_err(u_mp, mp.asarray(u))) <= 64 * 2.0**-53
