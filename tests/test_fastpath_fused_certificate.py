"""The a-posteriori certificate's products ride in the fast path's own passes (issue 10 cost, issue 14 item 4).

:func:`fastpath.certificate.forward_columns` / :func:`~fastpath.certificate.backward_columns` build the
certificate's non-negative columns before the passes; :func:`fastpath.layer.head_forward` and
:func:`fastpath.headgrad.head_backward` carry them as extra columns of their GEMMs (:func:`fastpath.head.mm_fused`).
Checked here: the carried products equal the separate pass of :func:`fastpath.apply.f_products` to float64
rounding, the fast path's own numbers and counted work do not change, the certificate's counted work is exactly
the extra columns' (from the shapes), and the bounds with the one-column forms of Step 3' still hold.

Tolerance of the product comparisons: both routes multiply the same non-negative columns by the same factors
($\\tilde D^{-1}$, $\\Phi$, $a$, $w\\Psi$, the exact diagonal blocks), only in another blocking of the sums; by the
rounding model of :func:`fastpath.bounds.rounding_rel` each computed product is within $r_r$ times the magnitude
$\\tilde f Y$ of the exact-arithmetic one (Y >= 0), so the two differ by at most $2 r_r \\tilde f Y \\le
2 r_r/(1 - r_r)$ times the computed product.
"""

import numpy as np
import pytest

import fastpath
from fastpath import aposteriori, certificate, layer
from fastpath.apply import f_products
from fastpath.compare import random_layers
from fastpath.work import Work


def _head(causal: bool, recentre: bool, n: int = 320, d: int = 4, seed: int = 0, e_x: float = 1e-6):
    rng = np.random.default_rng([seed, int(causal), int(recentre)])
    X = rng.uniform(-1, 1, (n, d))
    L = random_layers(rng, d, 1, with_g=False)[0]
    E_X = e_x * rng.uniform(0, 1, (n, d))  # an input error: the E_h and Step 1' columns are present
    kw = dict(eps=1e-8, kind="chebyshev", causal=causal, budget=2**30, block=64, recentre=recentre)
    st = layer.head_forward(X, L.W_Q, L.W_K, L.W_V, 1 / d, cert_cols=aposteriori.forward_columns_fn(X, E_X), **kw)
    plain = layer.head_forward(X, L.W_Q, L.W_K, L.W_V, 1 / d, **kw)
    return rng, X, E_X, st, plain


def _query_side(st, n: int) -> int:
    """Multiply-adds per certificate column on the query side of one pass: n r; with per-row degrees
    (fastpath.rowdegree) each group's features at its rank, sum_g n_g r_g, plus its scale r_g once per group
    (non-causal) or once per token block the group has rows in (causal)."""
    if st.rows is None:
        return n * st.rank
    groups = st.rows.groups
    if not st.causal:
        return st.rows.query_size() + sum(g.rank for g in groups)
    c, gid = st.block, st.rows.gid
    return st.rows.query_size() + sum(groups[k].rank for t0 in range(0, n, c) for k in np.unique(gid[t0 : t0 + c]))


def _close(fused: np.ndarray, sep: np.ndarray, rr: float) -> bool:
    return bool((np.abs(fused - sep) <= 2 * rr / (1 - rr) * np.abs(sep)).all())


@pytest.mark.paper("Lemma C.14")
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("recentre", [False, True])
def test_the_forward_carries_the_certificate_columns_without_changing_its_own_numbers_or_work(causal, recentre):
    _, X, _, st, plain = _head(causal, recentre)
    fz = st.fused
    assert fz is not None and fz.info["refine"] and fz.Y.shape[1] == 4 * 4 + 2  # |h|, E_h, Step 1': 2 d_h + 2
    sep, _ = f_products(st, fz.Y, np.zeros((X.shape[0], 0)), Work())
    assert _close(fz.FY, sep, fz.hk.rr)
    assert np.array_equal(st.s, plain.s) and np.array_equal(st.D, plain.D)
    assert st.madds == plain.madds
    n, r, c, w = X.shape[0], st.rank, st.block, fz.Y.shape[1]
    # two passes of (r, c) x (c, w) and (w, r) x (r, c) per block; causal adds the (c, c) x (c, w) diagonal block
    assert fz.madds == w * (n * r + _query_side(st, n) + (n * c if causal else 0))


@pytest.mark.paper("Lemma E.11")
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("recentre", [False, True])
def test_the_backward_carries_the_certificate_columns_and_its_own_work_is_unchanged(causal, recentre):
    rng, X, E_X, st, _ = _head(causal, recentre)
    n, d = X.shape
    G, E_G = rng.uniform(-1, 1, (n, d)), 1e-7 * rng.uniform(0, 1, (n, d))
    ds = certificate.forward_bound(st, st.fused.hk, Work(), st.fused)
    bc = certificate.backward_columns(st, st.fused.hk, X, E_X, G, E_G, ds)
    fused, plain = layer.head_backward(st, X, G, (bc.Y, bc.Z)), layer.head_backward(st, X, G)
    sep = f_products(st, bc.Y, bc.Z, Work())
    rr = st.fused.hk.rr
    assert _close(fused.cert[0], sep[0], rr) and _close(fused.cert[1], sep[1], rr)
    assert fused.madds == plain.madds and plain.cert is None and plain.cert_madds == 0
    # the fast numbers: the same sums in another blocking, each within r_r of its magnitude (the module docstring);
    # magnitudes of the five terms through the same operator, per head index (no Cauchy-Schwarz)
    K = np.abs((G * st.s).sum(axis=1))[:, None]
    Xa, Ga, ha, Wa, WVa = np.abs(X), np.abs(G), np.abs(st.h), np.abs(st.W), np.abs(st.W_V)
    fX, fTKX = f_products(st, Xa, K * Xa, Work())
    p1 = sum(Ga[:, [b]] * f_products(st, ha[:, [b]] * Xa, Ga[:, [b]] * Xa, Work())[0] for b in range(d))
    p1T = sum(ha[:, [b]] * f_products(st, ha[:, [b]] * Xa, Ga[:, [b]] * Xa, Work())[1] for b in range(d))
    fTG = f_products(st, np.zeros((n, 0)), Ga, Work())[1]
    beta = abs(st.beta)
    mag = {"D4": beta * p1 @ Wa.T, "D2": beta * K * fX @ Wa.T, "D7": beta * p1T @ Wa, "D6": beta * fTKX @ Wa,
           "D8": fTG @ WVa.T}  # fmt: skip
    for t, m in mag.items():
        assert (np.abs(fused.terms[t] - plain.terms[t]) <= 2 * rr / (1 - rr) * m * (1 + 1e-12)).all(), t


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads", [1, 2])
def test_the_certificate_work_is_exactly_its_extra_columns(causal, heads):
    """One layer, no block, no residual: the input is exact (E_X = 0) and so is the upstream (E_G = 0); forward
    columns |h| (d_h) plus, where Step 1' pays, 2 d_h + 2 (and its 4 n d_h closing products); backward right
    [||h|| |X| | |X|] (2 d) and left C7, P8, P6 (2 d + d_h); one pass over one column costs r (plus c on the causal
    diagonal blocks) per token, each set of columns rides in two passes; the closing products n d (7 d + 2 d_h)."""
    n, d = 256, 4
    rng = np.random.default_rng([7, int(causal), heads])
    X, dL = rng.uniform(-1, 1, (n, d)), rng.uniform(-1, 1, (n, d))
    layers = random_layers(rng, d, 1, with_g=False)
    kw = dict(eps=1e-8, causal=causal, heads=heads, method="lowrank", recentre=False, block=64 if causal else None)
    tr = fastpath.forward(X, layers, **kw)
    g = fastpath.backward(tr, dL)
    pr = fastpath.forward(X, layers, certificate="a-priori", **kw)
    gp = fastpath.backward(pr, dL)
    assert tr.madds == pr.madds and g.madds == gp.madds  # the fast path's own work does not see the certificate
    d_h = d // heads
    fwd = bwd = 0
    for st in tr.caches[0].heads:
        refine = st.fused.info["refine"]
        # one column, both passes: keys at rank r, queries at their group's rank plus its scale (fastpath.rowdegree)
        per = n * st.rank + _query_side(st, n) + (n * st.block if causal else 0)
        fwd += (d_h + (2 * d_h + 2 if refine else 0)) * per + (4 * n * d_h if refine else 0)
        bwd += (4 * d + d_h) * per + n * d * (7 * d + 2 * d_h)
    assert tr.cert_madds == fwd
    assert g.cert_madds == bwd


@pytest.mark.paper("Lemma H.4")
@pytest.mark.parametrize("causal", [False, True])
def test_the_one_column_forms_bound_one_head_with_an_exact_input_and_an_inexact_upstream(causal):
    """Step 3' (4') and (5') of docs/certificate.md are used where E_X = 0: here with E_G > 0 (an exact perturbation
    on binary grids, :func:`proofs_check.checks.fast_certificate.head_case`), every field bounded in float64."""
    from proofs_check.checks.fast_certificate import head_case
    from reference.backend import FLOAT64

    rng = np.random.default_rng([11, int(causal)])
    c = head_case(rng, n=40, d=2, causal=causal, eps=1e-6, e_x=0.0, e_g=2.0**-13)
    ex = c.exact(FLOAT64)
    for k, f in c.fast.items():
        assert (np.abs(f - ex[k]) <= c.bound[k]).all(), k
