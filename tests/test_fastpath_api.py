"""The fast path's experiment-facing API: method, degree, exact_forward, counted work, row_kron (issues 9, 10).

Every new option is checked against an independent route: the exact reference (``reference.forward/backward``),
the dense lift (:func:`fastpath.features.lift`) and ``np.kron``.
"""

import math

import numpy as np
import pytest

import fastpath
import reference
from fastpath.compare import compare, random_layers
from fastpath.features import lift, rank_of, row_kron
from fastpath.poly import round_up_R, taylor_bound, taylor_coeffs


def _problem(seed=0, n=48, d=4, m=2, scale=1.0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, d)), random_layers(rng, d, m, scale=scale), rng.uniform(-1, 1, (n, d))


def test_row_kron_rows_are_numpy_kron_of_the_rows():
    rng = np.random.default_rng(1)
    A, B = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    K = row_kron(A, B)
    assert K.shape == (5, 6)
    for i in range(5):
        np.testing.assert_array_equal(K[i], np.kron(A[i], B[i]))
    assert K[2, 1 * 2 + 0] == A[2, 1] * B[2, 0]  # column a*s + b


@pytest.mark.paper("Fact C.2")
def test_row_kron_turns_hadamard_products_of_low_rank_matrices_into_one_low_rank_product():
    rng = np.random.default_rng(2)
    U1, V1, U2, V2 = (rng.normal(size=(7, k)) for k in (3, 3, 2, 2))
    lhs = (U1 @ V1.T) * (U2 @ V2.T)
    rhs = row_kron(U1, U2) @ row_kron(V1, V2).T
    assert np.abs(lhs - rhs).max() <= 1e-13 * np.abs(lhs).max()  # 6-term sums: a few ulps


def test_row_kron_refuses_mismatched_rows():
    with pytest.raises(ValueError, match="row_kron: expected"):
        row_kron(np.ones((3, 2)), np.ones((4, 2)))


@pytest.mark.parametrize("causal", [False, True])
def test_method_exact_is_the_reference_computation_and_says_so(causal):
    X, layers, dL = _problem()
    tr = fastpath.forward(X, layers, method="exact", causal=causal, residual=True, activation="tanh")
    g = fastpath.backward(tr, dL)
    rt = reference.forward(X, layers, causal=causal, residual=True, activation="tanh")
    rg = reference.backward(rt, dL)
    assert tr.method == "exact" and tr.rank == X.shape[0]
    np.testing.assert_array_equal(tr.output, rt.output)  # same dense code, same order: bit-identical
    np.testing.assert_array_equal(g.dX, rg.dX)
    # the certificate is float64 rounding only: kernel error ~ 3 gamma_{n+2} ~ 2e-14, and the propagated bound a
    # gamma_m multiple of the magnitudes (m ~ n (1 + d_h) here: 12 gamma_m ~ 3e-13 per product, two layers)
    assert tr.cert_err <= 1e-13
    assert float(g.bound.dX.max()) <= 1e-9 * float(np.abs(rg.dX).max())
    prior = fastpath.backward(fastpath.forward(X, layers, method="exact", causal=causal, residual=True,
                                               activation="tanh", certificate="a-priori"), dL)  # fmt: skip
    assert (np.abs(prior.dX - rg.dX) <= prior.bound.dX).all()


def test_auto_uses_the_exact_kernel_when_the_rank_is_not_below_n_and_the_low_rank_path_otherwise():
    X, layers, _ = _problem(n=40, m=1)
    tr = fastpath.forward(X, layers, eps=1e-8)
    assert tr.method == "exact"
    forced = fastpath.forward(X, layers, eps=1e-8, method="lowrank")
    assert forced.method == "lowrank" and forced.rank >= 40
    Xl, layers_l, _ = _problem(n=2048, d=2, m=1)
    big = fastpath.forward(Xl, layers_l, eps=1e-3)
    assert big.method == "lowrank" and big.rank < 2048


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize("kind", ["taylor", "chebyshev"])
def test_a_fixed_degree_is_used_and_its_error_certified_not_targeted(kind):
    X, layers, dL = _problem(m=1)
    tr = fastpath.forward(X, layers, degree=3, poly=kind, method="lowrank")
    st = tr.caches[0].heads[0]
    assert tr.degree == 3 and tr.rank == rank_of(4, 3)
    if kind == "taylor":
        assert st.cert.err == taylor_bound(taylor_coeffs(3), round_up_R(st.R_poly))
    # the streamed forward equals the dense lift of the same polynomial (independent route, spec §2.5), on the
    # centred q - a, k - c with the key factor w when the head was re-centred (fastpath.centring)
    q, k, h = X @ layers[0].W_Q, X @ layers[0].W_K, X @ layers[0].W_V
    w = np.ones(len(X))
    if st.recentred:
        a, c = st.centring.a, st.centring.c
        q, k, w = q - a, k - c, np.exp(0.25 * (X @ layers[0].W_K @ a) - 0.25 * (X @ layers[0].W_K @ a).max())
    U0, V0 = lift(q, k, st.cert.coeffs, 0.25)
    A = (U0 @ V0.T) * w[None, :]  # (n, n)
    s = (A @ h) / A.sum(axis=1, keepdims=True)
    assert np.abs(tr.attn[0] - s).max() <= 1e-13
    c = compare(X, layers, dL, eps=1e-8, degree=3, poly=kind, method="lowrank")
    assert not c.violations


@pytest.mark.paper("Lemma H.4")
def test_exact_forward_keeps_the_exact_outputs_and_a_low_rank_backward():
    X, layers, dL = _problem(m=2)
    tr = fastpath.forward(X, layers, degree=2, poly="taylor", method="lowrank", exact_forward=True)
    rt = reference.forward(X, layers)
    for a, b in zip(tr.T, rt.T, strict=True):
        np.testing.assert_array_equal(a, b)
    g, rg = fastpath.backward(tr, dL), reference.backward(rt, dL)
    err = float(np.abs(g.dX - rg.dX).max())
    assert 0 < err <= float(g.bound.dX.max())  # degree 2: a visible backward error, still certified


def test_counted_work_is_linear_in_n_on_the_low_rank_path_and_quadratic_on_the_exact_one():
    rng = np.random.default_rng(3)
    layers = random_layers(rng, 2, 1)
    counts = {}
    for n in (512, 1024):
        X = rng.uniform(-1, 1, (n, 2))
        for method in ("lowrank", "exact"):
            tr = fastpath.forward(X, layers, degree=4, method=method)
            g = fastpath.backward(tr, X)
            assert isinstance(tr.madds, int) and isinstance(g.madds, int) and tr.madds > 0 and g.madds > 0
            counts[method, n] = tr.madds + g.madds
    lin = counts["lowrank", 1024] / counts["lowrank", 512]
    quad = counts["exact", 1024] / counts["exact", 512]
    assert 1.9 <= lin <= 2.1, lin  # exact doubling up to the O(1) k-side products
    assert 3.6 <= quad <= 4.0, quad  # n^2 terms dominate, O(n d^2) terms pull it below 4
    assert math.log2(quad) > 1.5 > math.log2(lin)


@pytest.mark.parametrize(("arg", "val", "msg"), [("method", "dense", "method: expected one of"),
                                                 ("degree", -1, "degree: expected"),
                                                 ("degree", 2.5, "degree: expected"),
                                                 ("certificate", "tight", "certificate: expected one of"),
                                                 ("exact_forward", 1, "exact_forward: expected a bool")])  # fmt: skip
def test_bad_options_are_refused_with_the_argument_named(arg, val, msg):
    X, layers, _ = _problem(m=1)
    with pytest.raises((ValueError, TypeError), match=msg):
        fastpath.forward(X, layers, **{arg: val})


def test_auto_takes_the_exact_kernel_when_the_certified_rank_is_not_below_n():
    """Method "auto" re-applies its rule r >= n to the certified degree, not only to the optimistic estimate
    (issue 14: the estimate kept the low-rank path at 3x n on the authors' inputs)."""
    import fastpath.layer as fl
    from fastpath.poly import certified_poly, degree_lower_estimate
    from fastpath.ranges import FAST_RTOL, logit_ranges

    rng = np.random.default_rng(5)
    n, d, eps = 256, 4, 1e-4
    X = rng.normal(size=(n, d))  # the authors' inputs: N(0, 1), orthogonal weights, beta = 1/d
    Wq, Wk, Wv = (np.linalg.qr(rng.normal(size=(d, d)))[0] for _ in range(3))
    q, k = X @ Wq, X @ Wk
    rb = logit_ranges(q, k, 1 / d, rtol=FAST_RTOL)  # the ranges head_forward computes
    R = min(rb.absolute, rb.signed)
    r_est = rank_of(d, degree_lower_estimate(round_up_R(R), eps))
    r_cert = rank_of(d, certified_poly(R, eps, "chebyshev").degree)
    assert r_est < n <= r_cert  # the case in question: the estimate alone would keep the low-rank path
    st = fl.head_forward(X, Wq, Wk, Wv, 1 / d, eps=eps, kind="chebyshev", causal=False, budget=2**31,
                         method="auto", recentre=False)  # fmt: skip
    assert st.method == "exact"
