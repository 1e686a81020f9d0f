"""The single homes other packages call: dense backward core, central differences (issue 9 item 1)."""

import numpy as np
import pytest

from reference import Layer, backward, forward
from reference.attention import dense_head_backward
from reference.backend import get_backend
from reference.blocked import layer_gradient_blocked
from reference.fd import central_differences

# float64 rounding of O(n) sums of O(1) terms at n = 12: ~1e-15 relative; 1e-12 is a 1000x margin.
TOL64 = 1e-12


def _problem(seed=0, n=12, d=3):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d))
    L = Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(3)))
    return X, L, rng.uniform(-1, 1, (n, d))


@pytest.mark.paper("Lemma C.4")
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("block", [1, 5, 12, 64])
def test_blocked_gradient_sums_the_dense_core_over_row_blocks(causal, block):
    X, L, G = _problem()
    tr = forward(X, [L], causal=causal)
    g = backward(tr, G).layers[0]
    s, dX, dW, dW_Q, dW_K, dW_V = layer_gradient_blocked(X, L.W_Q, L.W_K, L.W_V, G, causal=causal, block=block)
    for got, want in ((s, tr.output), (dX, backward(tr, G).dX), (dW, g.dW), (dW_Q, g.dW_Q), (dW_V, g.dW_V)):
        assert np.abs(got - want).max() <= TOL64 * max(1.0, np.abs(want).max())


def test_dense_core_on_all_rows_returns_the_five_terms_and_their_sum():
    X, L, G = _problem(1)
    c = forward(X, [L]).caches[0].attn.heads[0]
    hg = dense_head_backward(G, c.f, c.h, c.s, c.X, c.X, c.W, c.W_V, c.beta)
    assert set(hg.terms) == {"D2", "D4", "D6", "D7", "D8"}
    np.testing.assert_array_equal(hg.dX, sum(hg.terms[k] for k in ("D2", "D4", "D6", "D7", "D8")))
    assert np.abs(hg.P.sum(axis=1)).max() <= TOL64  # P 1_n = K - K = 0


def test_central_differences_of_a_quadratic_are_exact_in_mpmath():
    bk = get_backend("mpmath", 40)
    A = bk.asarray(np.array([[0.5, -1.25], [2.0, 0.75]]))
    grad = central_differences(lambda M: (M * M).sum(), A, bk.ctx.mpf(10) ** -10)
    assert grad.shape == (2, 2)
    # a quadratic has no third derivative: only rounding is left, about 10^-dps |L| / eta = 10^-40 * 7 / 10^-10
    for idx in np.ndindex(2, 2):
        assert abs(grad[idx] - 2 * A[idx]) < bk.ctx.mpf(10) ** -28


def test_central_differences_of_an_array_valued_function_give_its_jacobian():
    A = np.array([1.0, 2.0, 3.0])
    J = central_differences(lambda v: np.array([v[0] * v[1], v[2]]), A, 1e-6)
    assert J.shape == (2, 3)
    np.testing.assert_allclose(J, [[2.0, 1.0, 0.0], [0.0, 0.0, 1.0]], atol=1e-9)  # eta^2 terms vanish


class _Counting(np.ndarray):
    """An ndarray that adds the p q s multiply-adds of every 2-D matmul it takes part in to ``_Counting.madds``."""

    madds = 0

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        args = [np.asarray(x) if isinstance(x, _Counting) else x for x in inputs]
        if ufunc is np.matmul and method == "__call__":
            a, b = args
            _Counting.madds += a.shape[0] * a.shape[1] * b.shape[1]
        out = getattr(ufunc, method)(*args, **kwargs)
        return out.view(_Counting) if isinstance(out, np.ndarray) else out


@pytest.mark.paper("Theorem 4.1")
@pytest.mark.parametrize(("n", "d", "d_h"), [(7, 3, 3), (12, 4, 2)])
def test_dense_head_count_is_the_matmuls_the_reference_performs_plus_its_elementwise_work(n, d, d_h):
    from reference.attention import dense_head_madds, head_contractions, head_forward, head_vjp

    rng = np.random.default_rng(n)
    X, W, WV, G = (rng.uniform(-1, 1, s).view(_Counting) for s in ((n, d), (d, d), (d, d_h), (n, d_h)))
    table = head_contractions(n, d, d_h)
    counted = {}
    _Counting.madds = 0
    c = head_forward(X, W, WV, 0.5, False)
    counted["forward"] = _Counting.madds
    _Counting.madds = 0
    head_vjp(G, c)
    counted["backward"] = _Counting.madds
    for stage in ("forward", "backward"):
        matmul = sum(k for p, kind, _, k in table if p == stage and kind == "matmul")
        assert counted[stage] == matmul, stage  # every matrix product of the reference, none missing or extra
    elementwise = sum(k for _, kind, _, k in table if kind == "elementwise")
    total = sum(k for *_, k in table)
    assert dense_head_madds(n, d, d_h) == total and total - elementwise > 0
    assert dense_head_madds(n, d, d_h, forward=False) + dense_head_madds(n, d, d_h, backward=False) == total
