"""Seeded hypothesis properties of the model itself: invariances and linearity the exact math guarantees.

Each tolerance is float64 unit roundoff u = 2^-53 times a stated count of rounding steps: the two sides of every
property are computed with different summation orders, so they differ by rounding only; a count of 2^20 covers
the sums of at most n d <= 2^6 terms, each formed by <= 2^4 roundings, with a margin of 2^10 (the same derivation as
``proofs_check.decide.COND_ID``). Any error in the model (a wrong axis, a mask off by one, a dropped term) moves the
sides apart by O(1).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference
from fastpath.features import row_kron
from reference.attention import softmax
from reference.testing import grad_fields, random_problem

TOL = 2.0**-53 * 2.0**20

SHAPES = st.tuples(st.integers(2, 8), st.sampled_from([2, 4]), st.integers(1, 2), st.integers(0, 2**32 - 1))
MODEL = st.tuples(
    st.booleans(), st.sampled_from(["identity", "tanh", "gelu", "softplus"]), st.sampled_from([None, 1.0])
)


def _close(a, b, scale) -> bool:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max()) <= TOL * max(1.0, scale)


@pytest.mark.paper("Definition 1.1")
@given(st.integers(1, 6), st.integers(1, 9), st.floats(-30, 30), st.integers(0, 2**32 - 1))
def test_softmax_rows_sum_to_one_and_ignore_a_per_row_shift(n, k, shift, seed):
    z = np.random.default_rng(seed).uniform(-5, 5, (n, k))
    f = softmax(z)
    assert _close(f.sum(axis=1), np.ones(n), 1.0) and (f >= 0).all()
    assert _close(softmax(z + shift), f, 1.0)


@pytest.mark.paper("Definition I.5")
@given(SHAPES, MODEL)
def test_causal_outputs_of_earlier_tokens_ignore_every_later_token(shape, model):
    n, d, m, seed = shape
    residual, act, beta = model
    p = random_problem(np.random.default_rng(seed), n, d, m)
    cfg = dict(causal=True, residual=residual, activation=act, beta=beta)
    T = reference.forward(p.X, p.layers, **cfg).T[-1]
    X2 = p.X.copy()
    X2[-1] += 1.0  # move the last token only
    T2 = reference.forward(X2, p.layers, **cfg).T[-1]
    assert _close(T2[:-1], T[:-1], float(np.abs(T).max()))  # rows 0..n-2 see tokens <= their own index only
    assert not _close(T2[-1], T[-1], float(np.abs(T).max()))  # ...while the moved token's own row does change


@pytest.mark.paper("Lemma 3.4")
@given(SHAPES, MODEL, st.floats(-3, 3), st.floats(-3, 3))
def test_the_backward_is_linear_in_the_upstream_gradient(shape, model, a, b):
    n, d, m, seed = shape
    residual, act, beta = model
    rng = np.random.default_rng(seed)
    p = random_problem(rng, n, d, m)
    t = reference.forward(p.X, p.layers, residual=residual, activation=act, beta=beta)
    G1, G2 = rng.uniform(-1, 1, (n, d)), rng.uniform(-1, 1, (n, d))
    g1, g2, g = (grad_fields(reference.backward(t, G)) for G in (G1, G2, a * G1 + b * G2))
    for k in g:
        scale = abs(a) * float(np.abs(g1[k]).max()) + abs(b) * float(np.abs(g2[k]).max())
        assert _close(g[k], a * g1[k] + b * g2[k], scale), k


@pytest.mark.paper("Definition 1.3")
@given(SHAPES, MODEL)
def test_without_the_mask_the_model_and_its_input_gradient_commute_with_a_token_permutation(shape, model):
    n, d, m, seed = shape
    residual, act, beta = model
    rng = np.random.default_rng(seed)
    p = random_problem(rng, n, d, m)
    perm = rng.permutation(n)
    G = rng.uniform(-1, 1, (n, d))
    cfg = dict(residual=residual, activation=act, beta=beta)
    t, tp = reference.forward(p.X, p.layers, **cfg), reference.forward(p.X[perm], p.layers, **cfg)
    assert _close(tp.T[-1], t.T[-1][perm], float(np.abs(t.T[-1]).max()))
    g, gp = reference.backward(t, G), reference.backward(tp, G[perm])
    assert _close(gp.dX, g.dX[perm], float(np.abs(g.dX).max()))
    assert _close(gp.layers[0].dW_V, g.layers[0].dW_V, float(np.abs(g.layers[0].dW_V).max()))  # a sum over tokens


@pytest.mark.paper("Fact C.2")
@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 4), st.integers(1, 5), st.integers(0, 2**32 - 1))
def test_the_row_kronecker_product_turns_a_hadamard_of_products_into_one_product(c, p, s, k, seed):
    rng = np.random.default_rng(seed)
    U1, U2, V1, V2 = (
        rng.uniform(-1, 1, (c, p)),
        rng.uniform(-1, 1, (c, s)),
        rng.uniform(-1, 1, (k, p)),
        rng.uniform(-1, 1, (k, s)),
    )
    lhs = (U1 @ V1.T) * (U2 @ V2.T)  # (c, k)
    rhs = row_kron(U1, U2) @ row_kron(V1, V2).T  # (c, k)
    assert _close(lhs, rhs, float(np.abs(U1).max() * np.abs(V1).max() * p * np.abs(U2).max() * np.abs(V2).max() * s))
