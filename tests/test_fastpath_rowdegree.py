"""Per-row degrees on the non-causal low-rank path (issue 14 item 3, :mod:`fastpath.rowdegree`).

Fast against exact within the certificate on inputs whose query norms vary widely (the authors' X ~ N(0, 1) with
orthogonal weights), against float64 and against a 50-digit mpmath reference; the counted work equals the shapes'
sum and drops against the single-degree path; the option off is the single-degree path. That the evidence can
fail (row ranges underestimated 2x, groups reading the head's coefficients) is shown by the registry check
``fast.rowdegree.certificate`` (:mod:`proofs_check.checks.fast_rowdegree`; its mutants, built by parameters, are
killed in tests/test_mutants.py).
"""

import numpy as np
import pytest
from mp_oracle import assert_within_bounds_against_mpmath

import fastpath
from benchmarks.peers_bench import problem
from fastpath import layer, rowdegree
from fastpath.compare import compare
from reference.model import Layer

EPS = 1e-6


def _authors(n, d=4):
    X, W_Q, W_K, W_V, G, beta = problem("authors", n, d)
    return X, Layer(W_Q, W_K, W_V), G, beta


def _head(X, L, beta, row_degrees, causal=False, **kw):
    return layer.head_forward(X, L.W_Q, L.W_K, L.W_V, beta, eps=EPS, kind="chebyshev", causal=causal, budget=2**30,
                              row_degrees=row_degrees, **kw)  # fmt: skip


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n", [256, 2048])
def test_per_row_degrees_stay_within_the_certificate_against_float64(n, causal):
    X, L, G, beta = _authors(n)
    tr = fastpath.forward(X, [L], eps=EPS, beta=beta, method="lowrank", causal=causal)
    rows = tr.caches[0].heads[0].rows
    assert rows is not None and len(rows.groups) >= 3  # "auto" groups these rows (the evidence is about them)
    assert min(g.cert.degree for g in rows.groups) < tr.degree
    c = compare(X, [L], G, eps=EPS, beta=beta, causal=causal)
    assert not c.violations, c.violations
    for k in ("dT[0]", "layers[0].dW", "layers[0].dW_V", "Attn[1]"):
        assert c.ratio[k] < 1, k


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize("causal", [False, True])
def test_per_row_degrees_stay_within_the_certificate_against_mpmath(monkeypatch, causal):
    """The second route: a 50-digit mpmath forward and backward; "auto" is made to group even these few rows
    (causal: blocks of 8 tokens, so that most rows read the low-rank state)."""
    monkeypatch.setattr(rowdegree, "ROW_MIN_SAVING", 0.0)
    X, L, G, beta = _authors(24, d=2)
    X = X * np.linspace(0.3, 3.0, 24)[:, None]  # query norms spread over a decade
    kw = dict(causal=True, block=8) if causal else {}
    tr = fastpath.forward(X, [L], eps=EPS, beta=beta, method="lowrank", **kw)
    assert tr.caches[0].heads[0].rows is not None
    g = fastpath.backward(tr, G)
    assert_within_bounds_against_mpmath(X, [L], G, tr, g, ("dW", "dW_V"), beta=beta, causal=causal)


@pytest.mark.parametrize("causal", [False, True])
def test_the_option_off_is_the_single_degree_path_and_on_agrees_within_the_kernel_error(causal):
    X, L, G, beta = _authors(1024)
    off, on = _head(X, L, beta, False, causal), _head(X, L, beta, True, causal)
    assert off.rows is None and on.rows is not None
    assert off.cert.degree == on.cert.degree and off.rank == on.rank  # the key side keeps the full rank
    # every row's polynomial is certified to eps: s moves by at most 2 * 2 eps/(1 - eps) max|h| (both paths' errors)
    assert np.abs(on.s - off.s).max() <= 4 * EPS / (1 - EPS) * np.abs(on.h).max()
    assert (on.rows.err <= EPS).all() and on.cert.err == max(off.cert.err, on.rows.err_max)  # a bound for every row
    assert sorted(np.concatenate([g.idx for g in on.rows.groups]).tolist()) == list(range(1024))  # a partition


def test_per_row_ranges_bound_every_logit_of_their_row():
    X, L, _, beta = _authors(512)
    q, k = X @ L.W_Q, X @ L.W_K
    Ri = rowdegree.row_ranges(q, k, beta, np.inf)
    assert (np.abs(beta * q @ k.T).max(axis=1) <= Ri).all()
    assert (rowdegree.row_ranges(q, k, beta, 1.0) <= 1.0).all()


def test_the_counted_work_is_the_shapes_sum_and_drops_against_one_degree():
    n, d = 2048, 4
    X, L, G, beta = _authors(n, d)
    off, on = _head(X, L, beta, False), _head(X, L, beta, True)
    rows, r, w = on.rows, on.rank, 1 + d
    Q, S = rows.query_size(), sum(g.rank for g in rows.groups)
    # forward: q, k, h; W; keys: features + V_0^T [1 | h]; queries per group: features + GEMM + its scale; norms
    assert off.madds == 3 * n * d * d + d**3 + 2 * (n * r + n * r * w)
    assert on.madds == 3 * n * d * d + d**3 + (n * r + n * r * w) + (Q + Q * w + S * w) + 2 * n * d
    assert on.madds < 0.8 * off.madds
    # backward: the query side of pass 1 (features, U-side GEMM of width w_U, scale) and pass 2 (features, GEMM of
    # width d_h d + d, scale) at the groups' ranks, and the key features built once instead of twice (n r);
    # everything else is the same
    g_off, g_on = layer.head_backward(off, X, G), layer.head_backward(on, X, G)
    wU, wR = d + d + d * d, d * d + d
    assert g_off.madds - g_on.madds == (n * r - Q) * (2 + wU + wR) - S * (wU + wR) + n * r
    assert g_on.madds < 0.8 * g_off.madds
    # the backward's results agree within both paths' kernel errors (relative to the magnitude of dX's terms)
    assert np.abs(g_on.dX - g_off.dX).max() <= 1e-3 * np.abs(g_off.dX).max()


def test_auto_keeps_one_degree_when_the_rows_would_not_save_work():
    rng = np.random.default_rng(5)
    n, d = 512, 4
    Y = rng.uniform(-1, 1, (n, d))
    X = 2 * Y / np.linalg.norm(Y, axis=1, keepdims=True)  # (n, d) every |x_i| = 2 (to rounding)
    W = np.linalg.qr(rng.standard_normal((d, d)))[0]
    st = layer.head_forward(X, W, W, W, 1.0, eps=EPS, kind="chebyshev", causal=False, budget=2**30)
    assert st.rows is None  # every |q_i| is 2: one range for every row


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_a_bad_row_degrees_option_is_refused_by_name(bad):
    X, L, _, beta = _authors(64)
    with pytest.raises(ValueError, match="row_degrees"):
        _head(X, L, beta, bad)


@pytest.mark.parametrize("d, g", [(4, 0), (4, 1), (2, 7), (4, 9)])
def test_the_features_built_degree_by_degree_are_the_monomials_bit_for_bit(d, g):
    from fastpath.features import monomial_plan, monomial_slabs, monomials, slab_rows

    rng = np.random.default_rng([3, d, g])
    Z, w = rng.standard_normal((37, d)), rng.uniform(0.1, 1, 37)
    plan = monomial_plan(d, g)
    bufs = (np.empty((slab_rows(plan), 37)), np.empty((slab_rows(plan), 37)))
    for scale in (None, w):
        slabs = [(lo, hi, F.copy()) for lo, hi, F in monomial_slabs(Z, plan, bufs, scale)]
        assert slabs[0][0] == 0 and slabs[-1][1] == plan.rank  # contiguous slabs covering every row
        assert all(a[1] == b[0] for a, b in zip(slabs[:-1], slabs[1:], strict=True))
        assert np.array_equal(np.vstack([F for _, _, F in slabs]), monomials(Z, plan, scale=scale))


def test_per_row_degrees_on_a_re_centred_head_stay_within_the_certificate():
    """Re-centring (fastpath.centring) moves the key factor w into the key features: the groups share them."""
    X, L, G, beta = _authors(1024)
    X = X + np.array([1.5, -1.0, 0.5, 2.0])  # (n, d) a mean offset the re-centring removes
    tr = fastpath.forward(X, [L], eps=EPS, beta=beta, method="lowrank", recentre=True)
    st = tr.caches[0].heads[0]
    assert st.recentred and st.w is not None and st.rows is not None and len(st.rows.groups) >= 3
    c = compare(X, [L], G, eps=EPS, beta=beta, recentre=True)
    assert not c.violations, c.violations


@pytest.mark.parametrize("heads, certificate", [(2, "a-posteriori"), (1, "a-priori"), (2, "a-priori")])
def test_per_row_degrees_stay_within_both_certificates_with_one_or_two_heads(heads, certificate):
    """The a-priori route takes the largest row error (``st.cert.err`` raised to it) and the groups' kappa."""
    X, L, G, beta = _authors(1024)
    tr = fastpath.forward(X, [L], eps=EPS, beta=beta, method="lowrank", heads=heads, certificate=certificate)
    assert all(st.rows is not None for st in tr.caches[0].heads)
    c = compare(X, [L], G, eps=EPS, beta=beta, heads=heads, certificate=certificate)
    assert not c.violations, c.violations


def test_the_public_forward_takes_row_degrees_and_says_which_degrees_it_used():
    X, L, G, beta = _authors(2048)
    on = fastpath.forward(X, [L], eps=EPS, beta=beta, method="lowrank")  # "auto" groups these rows
    off = fastpath.forward(X, [L], eps=EPS, beta=beta, method="lowrank", row_degrees=False)
    (degrees_on,), (degrees_off,) = on.row_degrees, off.row_degrees
    assert len(degrees_on) >= 3 and list(degrees_on) == sorted(degrees_on) and degrees_on[-1] == on.degree
    assert degrees_off == (off.degree,) and off.caches[0].heads[0].rows is None
    single = _head(X, L, beta, False)  # the option off is the single-degree head, bit for bit
    assert np.array_equal(off.output, single.s) and off.madds == single.madds
    assert on.madds < off.madds  # counted work, the reason "auto" took the groups
    with pytest.raises(ValueError, match="row_degrees"):
        fastpath.forward(X, [L], eps=EPS, beta=beta, row_degrees="yes")
    with pytest.raises(TypeError, match="row_degrees"):
        fastpath.forward(X, [L], eps=EPS, beta=beta, row_degrees=1)


def test_the_causal_counted_work_is_the_shapes_sum_and_drops_against_one_degree():
    """Causal: per token block the keys' features (r c) and GEMM as before; the queries per group present in the
    block: features r_g c_g, GEMM r_g c_g w and the group's scale r_g w, instead of r c (1 + w); the exact
    diagonal blocks unchanged. The backward's prefix and suffix passes likewise, and both agree with one degree."""
    n, d = 2048, 4
    X, L, G, beta = _authors(n, d)
    off, on = _head(X, L, beta, False, True), _head(X, L, beta, True, True)
    rows, r, w, c = on.rows, on.rank, 1 + d, on.block
    assert rows is not None and c == off.block
    Q = rows.query_size()
    S = sum(rows.groups[k].rank for t0 in range(0, n, c) for k in np.unique(rows.gid[t0 : t0 + c]))
    assert off.madds - on.madds == (n * r - Q) * (1 + w) - S * w - 2 * n * d  # the norms of plan_rows: 2 n d
    assert on.madds < 0.8 * off.madds
    g_off, g_on = layer.head_backward(off, X, G), layer.head_backward(on, X, G)
    wV, wU = d + d * d, d + d + d * d
    assert g_off.madds - g_on.madds == (n * r - Q) * (2 + wV + wU) - S * (wV + wU)
    assert g_on.madds < 0.8 * g_off.madds
    assert np.abs(g_on.dX - g_off.dX).max() <= 1e-3 * np.abs(g_off.dX).max()


def test_the_causal_forward_carries_the_certificate_columns_with_row_groups():
    """The fused columns of the certificate ride in the grouped causal passes: the same products as the separate
    pass of :func:`fastpath.apply.f_products` (itself grouped) to its rounding (tests/test_fastpath_fused_certificate.py
    states the tolerance), and the head's own numbers do not see them."""
    from fastpath import aposteriori
    from fastpath.apply import f_products
    from fastpath.work import Work

    X, L, G, beta = _authors(512)
    E_X = 1e-6 * np.random.default_rng(1).uniform(0, 1, X.shape)  # an input error: every column present
    st = _head(X, L, beta, True, True, cert_cols=aposteriori.forward_columns_fn(X, E_X))
    plain = _head(X, L, beta, True, True)
    assert st.rows is not None and st.fused is not None
    sep, _ = f_products(st, st.fused.Y, np.zeros((X.shape[0], 0)), Work())
    rr = st.fused.hk.rr
    assert (np.abs(st.fused.FY - sep) <= 2 * rr / (1 - rr) * np.abs(sep)).all()
    assert np.array_equal(st.s, plain.s) and st.madds == plain.madds
