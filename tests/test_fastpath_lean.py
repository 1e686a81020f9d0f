"""Lean passes (issue 14 item 4): a forward-only call does only forward work, the backward forms its own V-side
products, feature blocks kept within a call are counted once, and every variant computes the same numbers.

The counts are exact (``fastpath.work`` counts the shapes the code multiplies), so they are asserted with ==
against the formula of the module docstrings, not timed.
"""

import numpy as np
import pytest

from fastpath import layer
from fastpath.apply import f_products
from fastpath.compare import random_layers
from fastpath.features import rank_of
from fastpath.work import Work


def _head(n=300, d=4, causal=False, seed=0, recentre=False, block=64):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d))
    L = random_layers(rng, d, 1, with_g=False)[0]
    st = layer.head_forward(X, L.W_Q, L.W_K, L.W_V, 1 / d, eps=1e-8, kind="chebyshev", causal=causal,
                            budget=2**30, block=block, recentre=recentre)  # fmt: skip
    return X, st, rng.uniform(-1, 1, (n, d))


@pytest.mark.paper("Lemma C.14")
def test_the_non_causal_forward_counts_only_forward_work():
    n, d = 300, 4
    X, st, _ = _head(n, d)
    r, d_h = st.rank, d
    assert r == rank_of(d_h, st.cert.degree)
    # q, k, h; W = W_Q W_K^T; key features + V_0^T [1 | h]; query features + U_0 (a . state): width 1 + d_h;
    # the query and key norms of the per-row ranges (fastpath.rowdegree; here one degree fits all, so no groups)
    assert st.rows is None
    assert st.madds == 3 * n * d * d_h + d * d_h * d + 2 * (n * r + n * r * (1 + d_h)) + 2 * n * d_h
    assert st.SV is None


def test_re_centring_adds_only_its_o_n_d_work_to_the_forward():
    n, d = 300, 4
    _, plain, _ = _head(n, d, recentre=False)
    _, cen, _ = _head(n, d, recentre=True)
    assert cen.recentred and cen.rank == plain.rank
    assert cen.madds - plain.madds == 3 * n * d  # q - a, k - c, k . a


@pytest.mark.parametrize("causal", [False, True])
def test_kept_feature_blocks_are_counted_once_and_change_no_number(causal):
    X, st, G = _head(causal=causal)
    base = layer.head_backward(st, X, G)
    Y, Z = np.abs(G), np.abs(X)
    w0 = Work()
    fy0, fz0 = f_products(st, Y, Z, w0)
    st.cache_bytes = 2**30  # keep every block: the second pass reads instead of rebuilding
    kept = layer.head_backward(st, X, G)
    w1 = Work()
    fy1, fz1 = f_products(st, Y, Z, w1)
    n, r = X.shape[0], st.rank
    assert base.madds - kept.madds == 2 * n * r  # one rebuild of each side saved, exactly
    assert w0.madds - w1.madds == 2 * n * r
    for t in base.terms:
        assert np.array_equal(base.terms[t], kept.terms[t])
    assert np.array_equal(base.dW, kept.dW) and np.array_equal(base.dW_V, kept.dW_V)
    assert np.array_equal(fy0, fy1) and np.array_equal(fz0, fz1)


def test_the_rounding_scale_bounds_the_absolute_inner_products_even_where_the_range_is_tighter():
    from fastpath.bounds import rounding_rel
    from fastpath.lowrank import abs_sum_at

    X, st, _ = _head(n=400, seed=4)
    q, k = st.qf, st.kf
    abs_ip = np.abs(q) @ np.abs(k).T * abs(st.beta)  # (n, n) beta sum_e |q_e||k_e|, what kappa's P_abs needs
    assert abs_ip.max() <= st.R_cs and st.R_cs > st.cert.R  # here the certified range is the tighter one
    assert np.abs(q @ k.T).max() * abs(st.beta) <= st.R_poly  # the logits themselves
    kappa, _ = rounding_rel(st, *X.shape)
    P_abs = max(st.cert.abs_sum, abs_sum_at(st.cert.coeffs, st.R_cs))
    assert kappa >= P_abs * np.exp(st.cert.R) / (1 - st.kernel_err) * (1 - 1e-15)
