"""Exact re-centring (issue 14 item 2, :mod:`fastpath.centring`): fast vs exact and the certificate, on inputs with a
large common offset (X + 3), where centring shrinks the range the polynomial must cover, and the rank it saves.

Tolerances: the certificate's own bounds (zero violations, ``fastpath.compare``), and the spec §2.5 relative bound
100 eps for one layer's attention output (as in ``test_fastpath_model``).
"""

import numpy as np
import pytest

import fastpath
from fastpath import layer
from fastpath.compare import compare, random_layers
from fastpath.features import lift


def _offset_problem(n, d, seed, offset=3.0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d)) + offset
    layers = random_layers(rng, d, 1, with_g=False)
    dL = rng.uniform(-1, 1, (n, d))
    return X, layers, dL


@pytest.mark.paper("Lemma C.13")
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads", [1, 2])
def test_recentred_fast_path_agrees_with_exact_within_its_certificate_on_offset_inputs(causal, heads):
    X, layers, dL = _offset_problem(200, 4, seed=3 + heads + 2 * causal)
    eps = 1e-8
    c = compare(X, layers, dL, eps=eps, causal=causal, heads=heads, block=48, recentre=True)
    assert not c.violations, f"certificate violated in {c.violations}"
    assert c.rel_err["Attn[1]"] <= 100 * eps
    tr = fastpath.forward(X, layers, eps=eps, causal=causal, heads=heads, method="lowrank", recentre=True)
    assert tr.recentred is True and tr.R_poly < tr.R


@pytest.mark.paper("Lemma I.1")
def test_recentring_shrinks_the_range_and_the_rank_on_offset_inputs():
    X, layers, _ = _offset_problem(256, 4, seed=11)
    kw = dict(eps=1e-8, method="lowrank", allow_vacuous=True)
    plain = fastpath.forward(X, layers, recentre=False, **kw)
    cen = fastpath.forward(X, layers, recentre=True, **kw)
    auto = fastpath.forward(X, layers, **kw)
    assert plain.recentred is False and cen.recentred is True and auto.recentred is True
    assert plain.R_poly <= plain.R and cen.R == plain.R  # R bounds beta |q|.|k|; R_poly the signed logits it covers
    q, k = X @ layers[0].W_Q, X @ layers[0].W_K
    assert np.abs(q @ k.T).max() / 4 <= cen.R  # beta = 1/d
    cc = cen.caches[0].heads[0].centring
    qc, kc = q - cc.a, k - cc.c
    assert np.abs(qc @ kc.T).max() / 4 <= cen.R_poly <= plain.R / 2  # the offset is gone from the range
    assert cen.degree < plain.degree and cen.rank < plain.rank
    assert np.abs(cen.attn[0] - plain.attn[0]).max() <= 1e-6 * np.abs(plain.attn[0]).max()


@pytest.mark.paper("Lemma C.14")
@pytest.mark.parametrize("causal", [False, True])
def test_the_recentred_kernel_is_the_dense_lift_of_the_centred_logits_times_the_key_factor(causal):
    X, layers, _ = _offset_problem(150, 4, seed=5)
    L, beta = layers[0], 0.25
    st = layer.head_forward(X, L.W_Q, L.W_K, L.W_V, beta, eps=1e-6, kind="chebyshev", causal=causal,
                            budget=2**30, block=40, recentre=True)  # fmt: skip
    cen = st.centring
    q, k, h = X @ L.W_Q, X @ L.W_K, X @ L.W_V
    a, c = cen.a, cen.c  # the centres of fastpath.recentre.centres
    assert a.any()  # the test is about the key factor
    logit_a = beta * (k @ a)
    w = np.exp(logit_a - logit_a.max())  # exp(beta a.k_j - m), the per-key factor moved to the value side
    assert np.allclose(cen.w, w, rtol=1e-14, atol=0)
    U0, V0 = lift(q - a, k - c, st.cert.coeffs, beta)
    A = (U0 @ V0.T) * w[None, :]  # (n, n)
    if causal:  # the diagonal blocks use the exact kernel exp(beta (q - a).(k - c)) w_j
        E = np.exp(beta * (q - a) @ (k - c).T) * w[None, :]
        for t0 in range(0, len(X), st.block):
            t1 = min(len(X), t0 + st.block)
            A[t0:t1, t0:t1] = E[t0:t1, t0:t1]
        A = np.tril(A)
    s = (A @ h) / A.sum(axis=1, keepdims=True)
    assert np.abs(st.s - s).max() <= 1e-13 * np.abs(h).max()
    # and the softmax of the *uncentred* logits, within the certified relative error (spec §2.5)
    S = np.exp(beta * q @ k.T)
    if causal:
        S = np.tril(S)
    exact = (S @ h) / S.sum(axis=1, keepdims=True)
    assert np.abs(st.s - exact).max() <= 2 * st.kernel_err / (1 - st.kernel_err) * np.abs(h).max() * 1.01


def test_recentring_rounding_term_is_tiny_and_counted_in_the_kernel_error():
    X, layers, _ = _offset_problem(100, 4, seed=2)
    L = layers[0]
    st = layer.head_forward(X, L.W_Q, L.W_K, L.W_V, 0.25, eps=1e-8, kind="chebyshev", causal=False,
                            budget=2**30, recentre=True)  # fmt: skip
    assert 0 < st.centre_err <= 1e-13
    assert st.kernel_err == st.cert.err + st.centre_err * (1 + st.cert.err)


@pytest.mark.parametrize(("val", "exc"), [("yes", ValueError), (1, TypeError), (None, TypeError)])
def test_bad_recentre_values_are_refused_with_the_argument_named(val, exc):
    X, layers, _ = _offset_problem(40, 4, seed=0)
    with pytest.raises(exc, match="recentre"):
        fastpath.forward(X, layers, recentre=val)
