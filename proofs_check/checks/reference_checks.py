r"""Checks of the exact model and its closed-form backward (issue 2): Def. 1.1–3.3, Lemma 3.4/C.4, D.1, D.17,
F.4, G.3, H.2, Algorithm 1 line 19, causal (I.5), residual (J.1–J.3), multi-head (K.1–K.2).

Routes: closed form (float64 and mpmath) against mpmath central differences (reference/fd.py), which use only the
forward model. A printed formula is called wrong only when it fails in mpmath at 50 digits too.
"""

from __future__ import annotations

import itertools

import mpmath
import numpy as np

from proofs_check.registry import Context, Result, check
from reference import HalfSquaredError, backward, forward, value_and_grad
from reference import printed as pr
from reference.attention import attention_matrix, head_vjp, softmax
from reference.backend import get_backend
from reference.blocked import layer_gradient_blocked
from reference.compare import TOLERANCES, rel_err
from reference.fd import fd_gradients
from reference.model import Layer
from reference.testing import fd_fields, grad_fields, random_problem, whole_rel_err, worst_rel_err

DPS = 50
TOL_FD = TOLERANCES["FD_mpmath_dps50"]
TOL_64 = TOLERANCES["float64_vs_mpmath"]
WRONG = TOLERANCES["PRINTED_WRONG"]


def _closed_vs_fd(rng, n, d, m, *, loss="linear", **cfg):
    """Worst relative error of every closed-form gradient (mpmath and float64) against mpmath FD."""
    p = random_problem(rng, n, d, m, loss=loss)
    tr = forward(p.X, p.layers, backend="mpmath", dps=DPS, **cfg)
    gm = backward(tr, value_and_grad(tr, p.loss)[1])
    fd = fd_gradients(p.X, p.layers, p.loss, dps=DPS, **cfg)
    k_fd, e_fd = worst_rel_err(grad_fields(gm), fd_fields(fd))
    tf = forward(p.X, p.layers, **cfg)
    g64 = backward(tf, value_and_grad(tf, p.loss)[1])
    k_64, e_64 = worst_rel_err(grad_fields(g64), grad_fields(gm))
    return (k_fd, e_fd), (k_64, e_64), whole_rel_err(grad_fields(g64), grad_fields(gm))


def _grid_result(cases, rng) -> Result:
    """Closed form vs FD per field (< TOL_FD); float64 vs mpmath normwise over the whole gradient (< TOL_64).

    The per-field float64 figure is reported too: it is larger where a field is tiny through cancellation.
    """
    worst_fd, worst_64, whole = ("", 0.0), ("", 0.0), 0.0
    for cfg in cases:
        (kf, ef), (k6, e6), ew = _closed_vs_fd(rng, **cfg)
        if ef >= worst_fd[1]:
            worst_fd = (f"{kf} @ {cfg}", ef)
        if e6 >= worst_64[1]:
            worst_64 = (f"{k6} @ {cfg}", e6)
        whole = max(whole, ew)
    ok = worst_fd[1] < TOL_FD and whole < TOL_64
    fig = (
        f"closed vs mpmath FD {worst_fd[1]:.1e} per field (<{TOL_FD:g}); float64 vs mpmath {whole:.1e} "
        f"normwise, {worst_64[1]:.1e} worst field; {len(cases)} cases"
    )
    return Result(
        ok,
        fig,
        {
            "worst_fd": worst_fd,
            "worst_float64_field": worst_64,
            "float64_normwise": whole,
            "cases": [str(c) for c in cases],
        },
    )


@check(id="ref.def1.1.softmax", label="Definition 1.1", name="Softmax: positive, rows sum to one, shift invariant",
       kind="DEF", expected="OK", spec=(2,))  # fmt: skip
def check_softmax(ctx: Context) -> Result:
    rng = ctx.rng(1)
    z = rng.uniform(-30, 30, (6, 9))
    y = softmax(z)
    row = np.abs(y.sum(axis=1) - 1).max()
    shift = np.abs(softmax(z + rng.uniform(-50, 50, (6, 1))) - y).max()
    bk = get_backend("mpmath", DPS)
    with bk.precision():
        ym = softmax(bk.asarray(z), bk)
        e_mp = float(rel_err(y, ym))
    ok = (y > 0).all() and row < 1e-15 and shift < 1e-15 and e_mp < 1e-15
    return Result(bool(ok), f"|rowsum-1| {row:.1e}, shift {shift:.1e}, float64 vs mpmath {e_mp:.1e}")


@check(id="ref.def1.2.attention", label="Definition 1.2", name="Self-attention f X W_V, f row-stochastic",
       kind="DEF", expected="OK", spec=(3, 25, 31, 33), uses=("ref.def1.1.softmax",))  # fmt: skip
def check_attention(ctx: Context) -> Result:
    rng = ctx.rng(2)
    n, d = 7, 4
    p = random_problem(rng, n, d, 1, with_g=False)
    L = p.layers[0]
    out = forward(p.X, p.layers).output
    naive = np.empty((n, d))  # a plain loop over query rows, scale 1/d
    for i in range(n):
        logits = np.array([p.X[i] @ L.W_Q @ L.W_K.T @ p.X[j] / d for j in range(n)])
        w = np.exp(logits - logits.max())
        naive[i] = (w / w.sum()) @ (p.X @ L.W_V)
    f = attention_matrix(p.X, L.W_Q @ L.W_K.T, 1.0 / d)
    e = float(rel_err(out, naive))
    rows = float(np.abs(f.sum(axis=1) - 1).max())
    return Result(e < 1e-14 and rows < 1e-15, f"vs naive loop {e:.1e}; |f 1 - 1| {rows:.1e}")


@check(id="ref.def1.3.model", label="Definition 1.3", name="Multi-layer model = composition g_m o Attn_m o ... o g_0",
       kind="DEF", expected="OK", spec=(4, 8), uses=("ref.def1.2.attention",))  # fmt: skip
def check_model(ctx: Context) -> Result:
    rng = ctx.rng(3)
    p = random_problem(rng, 6, 4, 3)
    tr = forward(p.X, p.layers, activation="tanh")
    T, errs = p.X, []
    for i, L in enumerate(p.layers):  # recompose layer by layer with one-layer calls
        a = forward(T, [Layer(L.W_Q, L.W_K, L.W_V)]).output
        errs.append(float(rel_err(tr.attn[i], a)))
        T = np.tanh(a @ L.W_g)
        errs.append(float(rel_err(tr.T[i + 1], T)))
    e = max(errs)
    return Result(e < 1e-15, f"T_i and Attn_i vs recomposition {e:.1e} (m=3)")


@check(id="ref.C4.closed_form", label="Lemma C.4", name="Closed-form backward = chain rule (vs mpmath FD)",
       kind="ID", expected="OK", spec=(9, 27, 44, 51), uses=("ref.def1.3.model",))  # fmt: skip
def check_closed_form(ctx: Context) -> Result:
    rng = ctx.rng(4)
    if ctx.quick:
        cases = [dict(n=5, d=2, m=2), dict(n=5, d=4, m=1, beta=1.0, activation="gelu")]
    else:
        cases = [
            dict(n=n, d=d, m=m, beta=b) for n, d, m, b in itertools.product((5, 8), (2, 4), (1, 2, 3), (None, 1.0))
        ]
    return _grid_result(cases, rng)


@check(id="ref.def3.1.losses", label="Definition 3.1", name="Gradient depends on the loss only through dL/dT_m",
       kind="DEF", expected="OK", spec=(6,), uses=("ref.C4.closed_form",))  # fmt: skip
def check_losses(ctx: Context) -> Result:
    rng = ctx.rng(5)
    cases = [dict(n=5, d=2, m=2, loss=lo) for lo in ("linear", "half_squared", "cross_entropy")]
    return _grid_result(cases, rng)


@check(id="ref.R3.2.cross_entropy", label="Remark 3.2", name="Cross-entropy head: dL/dT_m = (Y_pred - Y_gt) W_out^T",
       kind="DEF", expected="OK", spec=(7,), uses=("ref.def3.1.losses",))  # fmt: skip
def check_cross_entropy(ctx: Context) -> Result:
    rng = ctx.rng(6)
    p = random_problem(rng, 5, 3, 1, loss="cross_entropy", vocab=4)
    bk = get_backend("mpmath", DPS)
    with bk.precision():
        T = bk.asarray(rng.uniform(-1, 1, (5, 3)))
        _, g = p.loss(T, bk)
        eta = mpmath.mpf(10) ** -16
        fd = np.empty(T.shape, dtype=object)
        for idx in np.ndindex(*T.shape):
            Tp, Tm = T.copy(), T.copy()
            Tp[idx] += eta
            Tm[idx] -= eta
            fd[idx] = (p.loss(Tp, bk)[0] - p.loss(Tm, bk)[0]) / (2 * eta)
        e = float(rel_err(g, fd))
    return Result(e < TOL_FD, f"closed form vs mpmath FD {e:.1e}")


@check(id="ref.def3.3.intermediates", label="Definition 3.3", name="T_0 = X and T_i kept for the backward pass",
       kind="DEF", expected="OK", spec=(8,), uses=("ref.def1.3.model",))  # fmt: skip
def check_intermediates(ctx: Context) -> Result:
    rng = ctx.rng(7)
    p = random_problem(rng, 5, 2, 3)
    tr = forward(p.X, p.layers, residual=True, activation="tanh")
    same0 = tr.T[0] is p.X or np.array_equal(tr.T[0], p.X)
    ok = same0 and len(tr.T) == 4 and len(tr.attn) == 3 and all(t.shape == (5, 2) for t in tr.T + tr.attn)
    return Result(bool(ok), f"T_0 = X: {same0}; {len(tr.T)} T's, {len(tr.attn)} Attn's")


def _single_head(rng, n=7, d=3, beta=1.0, causal=False):
    """One head with mpmath cache and an upstream G, for the printed-vs-corrected checks (beta = 1: appendices)."""
    bk = get_backend("mpmath", DPS)
    p = random_problem(rng, n, d, 1, loss="half_squared", with_g=False)
    with bk.precision():
        tr = forward(p.X, p.layers, beta=beta, causal=causal, backend="mpmath", dps=DPS)
        G = value_and_grad(tr, p.loss)[1]
        cache = tr.caches[0].attn.heads[0]
        hg = head_vjp(G, cache)
    fd = fd_gradients(p.X, p.layers, p.loss, beta=beta, causal=causal, dps=DPS, with_dT=False)
    return bk, cache, G, hg, fd


@check(id="ref.D17.five_terms", label="Lemma D.17", name="Five terms of dL/dT_{i-1}: printed sum fails, corrected ok",
       kind="ID", expected="WRONG-AS-PRINTED", spec=(59, 57, 70), uses=("ref.C4.closed_form",))  # fmt: skip
def check_five_terms(ctx: Context) -> Result:
    bk, c, G, hg, fd = _single_head(ctx.rng(8))
    with bk.precision():
        e_corr = float(rel_err(hg.dX, fd.dX))
        e_pr = float(rel_err(pr.dX_as_printed(G, c), fd.dX))
        per = {t: float(rel_err(pr.PRINTED_TERMS[t](G, c), hg.terms[t])) for t in hg.terms}
    ok = e_corr < TOL_FD and e_pr > WRONG
    fig = f"printed sum off by {e_pr:.2f} rel (mpmath, 50 digits); corrected {e_corr:.1e}"
    return Result(ok, fig, {"printed_minus_true_rel": e_pr, "corrected": e_corr, "per_term_printed_vs_corrected": per,
                            "setting": "n=7, d=3, beta=1, non-symmetric W, seed-derived"})  # fmt: skip


@check(id="ref.D1.entrywise", label="Lemma D.1", name="Entrywise ds_{i0,j0}/dX: printed C1..C8 fail, corrected hold",
       kind="ID", expected="WRONG-AS-PRINTED", spec=(43,), uses=("ref.C4.closed_form",))  # fmt: skip
def check_D1(ctx: Context) -> Result:
    rng = ctx.rng(9)
    n, d, beta = 5, 3, mpmath.mpf(1)
    p = random_problem(rng, n, d, 1, with_g=False)
    L = p.layers[0]
    bk = get_backend("mpmath", DPS)
    i0, j0 = 1, 2
    with bk.precision():
        X, W, WV = (bk.asarray(a) for a in (p.X, L.W_Q @ L.W_K.T, L.W_V))
        # note: W is formed in float64 then converted exactly; the FD below uses the same merged W

        def s_of(Xa):
            f = attention_matrix(Xa, W, beta, False, bk)
            return (f @ (Xa @ WV))[i0, j0]

        eta = mpmath.mpf(10) ** -16
        J = np.empty((n, d), dtype=object)
        for idx in np.ndindex(n, d):
            Xp, Xm = X.copy(), X.copy()
            Xp[idx] += eta
            Xm[idx] -= eta
            J[idx] = (s_of(Xp) - s_of(Xm)) / (2 * eta)
        f = attention_matrix(X, W, beta, False, bk)
        h, s = X @ WV, f @ (X @ WV)
        XW, XWt = X @ W, X @ W.T
        corr, prnt = np.empty((n, d), dtype=object), np.empty((n, d), dtype=object)
        for i1, j1 in np.ndindex(n, d):
            # corrected (spec §2.3): C6*, C7*, C8* for every i1; C2*, C4* only on row i0
            c = -beta * s[i0, j0] * f[i0, i1] * XW[i0, j1] + beta * f[i0, i1] * h[i1, j0] * XW[i0, j1]
            c += f[i0, i1] * WV[j1, j0]
            # printed: f_{i1,i0} and <W_{j1,*}, X_{i0,*}> = (X W^T)_{i0,j1}; C2, C4 with X W_{*,j1}
            q = -s[i0, j0] * f[i1, i0] * XWt[i0, j1] + f[i1, i0] * h[i1, j0] * XWt[i0, j1] + f[i1, i0] * WV[j1, j0]
            if i1 == i0:
                c += -beta * s[i0, j0] * (f[i0] @ XWt[:, j1]) + beta * ((f[i0] * h[:, j0]) @ XWt[:, j1])
                q += -s[i0, j0] * (f[i0] @ XW[:, j1]) + ((f[i0] * h[:, j0]) @ XW[:, j1])
            corr[i1, j1], prnt[i1, j1] = c, q
        e_c, e_p = float(rel_err(corr, J)), float(rel_err(prnt, J))
    return Result(e_c < TOL_FD and e_p > WRONG, f"(i0,j0)=({i0},{j0}): printed {e_p:.1e}, corrected {e_c:.1e}",
                  {"printed": e_p, "corrected": e_c})  # fmt: skip


@check(id="ref.F4.dW", label="Lemma F.4", name="dL/dW = beta X^T P X (beta = 1 as printed)",
       kind="ID", expected="OK", spec=(74, 35), uses=("ref.C4.closed_form",))  # fmt: skip
def check_F4(ctx: Context) -> Result:
    bk, c, G, hg, fd = _single_head(ctx.rng(10))
    with bk.precision():
        e = float(rel_err(hg.dW, fd.layers[0]["dW"]))
    bk2, c2, G2, hg2, fd2 = _single_head(ctx.rng(11), beta=mpmath.mpf(1) / 3)
    with bk2.precision():
        e2 = float(rel_err(hg2.dW, fd2.layers[0]["dW"]))
    return Result(e < TOL_FD and e2 < TOL_FD, f"beta=1: {e:.1e}; beta=1/d: {e2:.1e} (vs mpmath FD)")


def _printed_vs_corrected(ctx: Context, salt: int, printed, corrected_field: str, fd_field: str) -> Result:
    """A printed single-head formula against mpmath FD, next to the corrected closed form (beta = 1, n=7, d=3)."""
    bk, c, G, hg, fd = _single_head(ctx.rng(salt))
    with bk.precision():
        e_c = float(rel_err(getattr(hg, corrected_field), fd.layers[0][fd_field]))
        e_p = float(rel_err(printed(G, c), fd.layers[0][fd_field]))
    return Result(e_c < TOL_FD and e_p > WRONG, f"printed {e_p:.2f} rel (mpmath, 50 digits), corrected {e_c:.1e}",
                  {"printed": e_p, "corrected": e_c, "setting": "n=7, d=3, beta=1, seed-derived"})  # fmt: skip


@check(id="ref.G3.dWV", label="Lemma G.3", name="dL/dW_V: printed X^T f G fails, corrected X^T f^T G holds",
       kind="ID", expected="WRONG-AS-PRINTED", spec=(78, 79), uses=("ref.C4.closed_form",))  # fmt: skip
def check_G3(ctx: Context) -> Result:
    return _printed_vs_corrected(ctx, 12, pr.dW_V_as_printed, "dW_V", "dW_V")


@check(id="ref.alg1.line19", label="Algorithm 1", name="Line 19 gw = X^T p1 X misses -X^T p2 X; corrected holds",
       kind="ALG", expected="WRONG-AS-PRINTED", spec=(12,), uses=("ref.F4.dW",))  # fmt: skip
def check_alg1_line19(ctx: Context) -> Result:
    return _printed_vs_corrected(ctx, 13, pr.dW_as_printed_alg1_line19, "dW", "dW")


@check(id="ref.C2.WQ_WK", label="Claim #26 (§C.2)", name="dL/dW_Q = (dL/dW) W_K, dL/dW_K = (dL/dW)^T W_Q",
       kind="ID", expected="OK", spec=(26,), uses=("ref.F4.dW",))  # fmt: skip
def check_WQ_WK(ctx: Context) -> Result:
    rng = ctx.rng(14)
    p = random_problem(rng, 5, 3, 1, with_g=False)
    fd = fd_gradients(p.X, p.layers, p.loss, dps=DPS, with_dT=False)
    tr = forward(p.X, p.layers, backend="mpmath", dps=DPS)
    g = backward(tr, value_and_grad(tr, p.loss)[1]).layers[0]
    with mpmath.workdps(DPS):
        e = max(float(rel_err(g.dW_Q, fd.layers[0]["dW_Q"])), float(rel_err(g.dW_K, fd.layers[0]["dW_K"])))
    return Result(e < TOL_FD, f"vs mpmath FD {e:.1e}")


@check(id="ref.H2.G_i", label="Lemma H.2", name="G_i = (gT_i ⊙ phi'(Attn_i W_g)) W_g^T, dL/dW_g",
       kind="ID", expected="OK", spec=(81, 80, 17), uses=("ref.C4.closed_form",))  # fmt: skip
def check_H2(ctx: Context) -> Result:
    rng = ctx.rng(15)
    cases = [dict(n=5, d=2, m=2, activation=a) for a in ("tanh", "gelu", "softplus")]
    return _grid_result(cases, rng)


@check(id="ref.I5.causal", label="Definition I.5", name="Causal f^M and the corrected masked gradients (I.7, I.8)",
       kind="ID", expected="OK", spec=(85, 89, 21), uses=("ref.C4.closed_form",))  # fmt: skip
def check_causal(ctx: Context) -> Result:
    rng = ctx.rng(16)
    X = rng.uniform(-1, 1, (6, 3))
    f = attention_matrix(X, rng.uniform(-1, 1, (3, 3)), 1.0, causal=True)
    tri = float(np.abs(np.triu(f, 1)).max())
    rows = float(np.abs(f.sum(axis=1) - 1).max())
    res = _grid_result([dict(n=5, d=2, m=2, causal=True), dict(n=6, d=2, m=1, causal=True, beta=1.0)], rng)
    res.ok = res.ok and tri == 0 and rows < 1e-15
    res.figure = f"upper triangle {tri:g}, |rowsum-1| {rows:.0e}; " + res.figure
    return res


@check(id="ref.J3.residual", label="Lemma J.3", name="Residual: dL/dX_R = dL/dY_R + VJP_H(dL/dY_R)",
       kind="ID", expected="OK", spec=(93, 94, 95, 96), uses=("ref.C4.closed_form", "ref.H2.G_i"))  # fmt: skip
def check_residual(ctx: Context) -> Result:
    rng = ctx.rng(17)
    return _grid_result([dict(n=5, d=2, m=2, residual=True, activation="tanh"),
                         dict(n=5, d=2, m=3, residual=True)], rng)  # fmt: skip


@check(id="ref.K2.multihead", label="Lemma K.2", name="Multi-head (Def. K.1): per-head corrected gradients summed",
       kind="ID", expected="OK", spec=(98, 99), uses=("ref.C4.closed_form",))  # fmt: skip
def check_multihead(ctx: Context) -> Result:
    rng = ctx.rng(18)
    return _grid_result([dict(n=5, d=4, m=1, heads=2), dict(n=5, d=4, m=2, heads=2, causal=True, residual=True)],
                        rng)  # fmt: skip


@check(id="ref.blocked", label="spec §2.2 (blocked)", name="Row-blocked exact layer gradient = dense exact gradient",
       kind="ID", expected="OK", spec=(), uses=("ref.C4.closed_form",))  # fmt: skip
def check_blocked(ctx: Context) -> Result:
    rng = ctx.rng(19)
    n, d = 203, 4
    errs = []
    for causal in (False, True):
        X = rng.uniform(-1, 1, (n, d))
        Ws = [rng.uniform(-1, 1, (d, d)) for _ in range(3)]
        G = rng.uniform(-1, 1, (n, d))
        tr = forward(X, [Layer(*Ws)], causal=causal)
        g = backward(tr, G).layers[0]
        s, dX, dW, dWQ, dWK, dWV = layer_gradient_blocked(X, *Ws, G, causal=causal, block=64)
        dense = (tr.output, backward(tr, G).dX, g.dW, g.dW_Q, g.dW_K, g.dW_V)
        errs += [float(rel_err(a, b)) for a, b in zip((s, dX, dW, dWQ, dWK, dWV), dense, strict=True)]
    e = max(errs)
    return Result(e < TOLERANCES["ID_float64"], f"max rel diff {e:.1e} (n={n}, block=64, causal on/off)")


@check(id="ref.W1.printed_paths", label="Lemma D.17 (paths)", name="Printed query/key/value paths each fail",
       kind="ID", expected="WRONG-AS-PRINTED", spec=(52, 53, 54, 55, 56), uses=("ref.D17.five_terms",))  # fmt: skip
def check_paths(ctx: Context) -> Result:
    bk, c, G, hg, fd = _single_head(ctx.rng(20))
    with bk.precision():
        t = hg.terms
        paths = {"query D4+D2": ("D4", "D2"), "key D7+D6": ("D7", "D6"), "value D8": ("D8",)}
        out = {}
        for name, ks in paths.items():
            true = sum(t[k] for k in ks)
            out[name] = float(rel_err(sum(pr.PRINTED_TERMS[k](G, c) for k in ks), true))
    ok = min(out.values()) > WRONG and float(rel_err(hg.dX, fd.dX)) < TOL_FD
    return Result(ok, "printed vs corrected: " + ", ".join(f"{k} {e:.2f}" for k, e in out.items()), out)


@check(id="ref.HSE.loss_agnostic", label="Weak point W12", name="Pipeline consumes only dL/dT_m",
       kind="DEF", expected="OK", spec=(6,), uses=("ref.def3.1.losses",))  # fmt: skip
def check_loss_agnostic(ctx: Context) -> Result:
    rng = ctx.rng(21)
    p = random_problem(rng, 6, 2, 2)
    tr = forward(p.X, p.layers)
    C = p.loss.C
    # half squared error with target Y = T_m - C has the same dL/dT_m = C as the linear loss <C, T_m>
    g1 = backward(tr, value_and_grad(tr, p.loss)[1])
    g2 = backward(tr, value_and_grad(tr, HalfSquaredError(tr.output - C))[1])
    _, e = worst_rel_err(grad_fields(g1), grad_fields(g2))
    return Result(e < 1e-15, f"max difference {e:.1e}")
