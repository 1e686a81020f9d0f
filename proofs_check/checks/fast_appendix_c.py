r"""Appendix C of arXiv:2408.13233v2 on the fast path: the polynomial low-rank $\tilde f$ and the thin products.

* Lemma C.13 (#36): for logits in $[-\bar R, \bar R]$ a polynomial P of degree g gives $\tilde A = U_0 V_0^\top$ with
  $|\tilde A - A| \le \varepsilon A$ entrywise, rank $\binom{d+g}{g}$; then $\tilde f = \tilde D^{-1}\tilde A$ has
  relative error $\le 2\varepsilon/(1-\varepsilon)$ (spec §2.5).
* Lemma C.13 with $\beta = 1$ (spec W5/W6): without the $1/d$ the logits reach $d R^2$ and the degree grows with d.
* Lemma C.14 (#37, #13): $\|U_1(V_1^\top h) - s\|_\infty \le n\,\delta_f \|h\|_\infty$ (paper) and
  $\le 2\varepsilon/(1-\varepsilon)\|h\|_\infty$ (relative).
* Lemma C.15 (#38): $p_1 = f \odot (G h^\top)$ from $U_3 = U_1 \oslash G$, $V_3 = V_1 \oslash h$ (Fact C.2),
  $\|\tilde p_1 - p_1\|_\infty \le \delta_f \|q\|_\infty \le d\,\delta_f\|G\|_\infty\|h\|_\infty$.
* Lemma C.16 (#39): $p_2 = \mathrm{diag}(K) f$ from $U_4 = \mathrm{diag}(K) U_1$, $V_4 = V_1$,
  $\|\tilde p_2 - p_2\|_\infty \le \delta_f \|K\|_\infty$.

Each check names the wrong variant its evidence rejects (``mutants``). Shape legend: n tokens, d width, r rank.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from fastpath.features import lift, rank_of, row_kron
from fastpath.lowrank import gamma, logit_range, lowrank_attention
from fastpath.poly import chebyshev_coeffs, taylor_coeffs
from proofs_check.checks.exact_common import smallest_degree
from proofs_check.checks.fast_common import fast_forward, mx, one_head, p_parts, rho, within
from proofs_check.registry import Context, Result, check
from reference.attention import attention_matrix, logit_gradient, logits, unnormalised
from reference.compare import TOLERANCES, rel_err


@check(id="fast.C13.relative_error", label="Lemma C.13",
       name="Polynomial low-rank f~: relative error within the certified bound; rank C(d+g,g)",
       kind="INEQ", expected="OK", spec=(36, 84), mutants=("degree one too low",))  # fmt: skip
def check_C13(ctx: Context) -> Result:
    r"""Lemma C.13: $|\tilde A - A| \le \varepsilon A$ (certified $\varepsilon$ plus the float64 floor of the lift)
    and $|\tilde f - f| \le (2\varepsilon/(1-\varepsilon)) f$, over $\beta \in \{1/d, 1/2\}$ and three targets.

    Mutant: the same lift with the Chebyshev interpolant one degree lower, held against the same certificate.
    """
    rng = ctx.rng(101)
    worst, rows, cex = 0.0, [], None
    for beta_mode, eps in itertools.product(("1/d", "1"), (1e-4, 1e-8, 1e-12)):
        n, d = (80, 4) if ctx.quick else (300, 4)
        X = rng.uniform(-1, 1, (n, d))
        WQ, WK = rng.uniform(-0.5, 0.5, (d, d)), rng.uniform(-0.5, 0.5, (d, d))
        Q, K = X @ WQ, X @ WK  # (n, d) each
        beta = 1 / d if beta_mode == "1/d" else 0.5
        U1, V1, D, pc, R = lowrank_attention(Q, K, beta, eps)
        coeffs = chebyshev_coeffs(pc.degree - 1, pc.R) if ctx.mutated("degree one too low") else pc.coeffs
        U0, V0 = lift(Q, K, coeffs, beta)  # (n, r) each
        A = unnormalised(X, WQ @ WK.T, beta)  # (n, n)  u(X), Def. C.6
        # float64 evaluation of the lift: chains of about 3g + r roundings, each relative to |P|(R) e^R
        floor = pc.abs_sum * math.exp(pc.R) * gamma(pc.degree * 3 + U0.shape[1] + 10)
        rA = float((np.abs(U0 @ V0.T - A) / A).max())
        f = attention_matrix(X, WQ @ WK.T, beta)  # (n, n)
        rf = float((np.abs(U1 @ V1.T - f) / f).max())
        bA, bf = pc.err + floor, rho(pc.err) + 3 * floor
        ratio = max(rA / bA, rf / bf)
        if ratio > worst:
            worst = ratio
            cex = {"beta": beta, "eps": eps, "n": n, "d": d, "seed": ctx.seed} if ratio > 1 else None
        r = U0.shape[1]
        ok_rank = r == rank_of(d, len(coeffs) - 1) <= math.comb(2 * (len(coeffs) - 1 + d), 2 * (len(coeffs) - 1))
        rows.append(
            dict(
                beta=beta_mode,
                eps=eps,
                R=R,
                degree=len(coeffs) - 1,
                rank=r,
                rank_ok=ok_rank,
                relerr_A=rA,
                cert=pc.err,
                relerr_f=rf,
            )
        )
    ok = worst <= 1 and all(r["rank_ok"] for r in rows)
    fig = f"max over A~ and f~ of relative error / certified bound = {worst:.2f}; rank = C(d+g,g)"
    return Result(
        ok,
        fig,
        {"rows": rows},
        observed=worst,
        bound=1.0,
        precision="float64 (certificate in mpmath)",
        counterexample=cex,
    )


def _taylor_relerr(S: np.ndarray, g: int) -> float:
    """Measured max relative error of the degree-g Taylor polynomial of exp on the logits S (fastpath.poly)."""
    P = np.polynomial.polynomial.polyval(S, taylor_coeffs(g))
    return float((np.abs(P - np.exp(S)) * np.exp(-S)).max())


@check(id="fast.C13.beta1_range", label="Lemma C.13 (beta = 1)",
       name="Without 1/d the logit range grows like d R^2: degree grows with d at fixed entry bound",
       kind="ASYM", expected="GAP", spec=(36,), mutants=("1/d kept",))  # fmt: skip
def check_C13_beta1(ctx: Context) -> Result:
    r"""Lemma C.13's hypothesis $R = o(\sqrt{\log n})$ bounds the logits by $R^2$ only with the $1/d$ scale.

    Measured, for entries of X and W in [-1, 1] and d = 2..8: the logit range of $X W X^\top$ with $\beta = 1$
    (the appendix convention), and the smallest Taylor degree whose *measured* relative error on those logits is
    $\le 10^{-6}$. With $\beta = 1$ the degree grows with d; the gap is shown when the degree that suffices at d = 2
    leaves a measured error above $10^{-6}$ at d = 8 (and the degree grows by >= 4). Mutant: the $1/d$ kept.
    """
    rng = ctx.rng(102)
    eps, n = 1e-6, 64  # float64 evaluates the Taylor sum at x = -12 to about 1e-7 relative: 1e-6 is reachable
    beta_of = (lambda d: 1.0 / d) if ctx.mutated("1/d kept") else (lambda d: 1.0)
    rows = []
    for d in (2, 4, 8):
        X, W = rng.uniform(-1, 1, (n, d)), rng.uniform(-1, 1, (d, d))
        S = logits(X, W, beta_of(d))  # (n, n) logits with entries of X, W bounded by 1
        g = smallest_degree(lambda g, S=S: _taylor_relerr(S, g), eps, 169)
        rows.append(dict(d=d, logit_range=mx(S), degree=g, S=S))
    g0 = rows[0]["degree"]
    err_at_g0 = _taylor_relerr(rows[-1].pop("S"), g0)
    for r in rows:
        r.pop("S", None)
    degs = [r["degree"] for r in rows]
    ok = None not in degs and err_at_g0 > eps and degs[-1] >= degs[0] + 4
    fig = (
        f"measured Taylor degree for 1e-6 on the logits, d=2..8: {degs} (logit range "
        f"{rows[0]['logit_range']:.1f} -> {rows[-1]['logit_range']:.1f}); degree {g0} at d=8 leaves "
        f"{err_at_g0:.1e}"
    )
    return Result(
        ok,
        fig,
        {"rows": rows, "beta": "1/d" if ctx.mutated("1/d kept") else "1"},
        observed=err_at_g0,
        bound=eps,
        precision="float64 (measured on the logits)",
    )


@check(id="fast.C14.output", label="Lemma C.14",
       name="Fast forward U1(V1^T h): within n delta_f |h| (paper) and 2eps/(1-eps)|h| (relative)",
       kind="INEQ", expected="OK", spec=(37, 13), uses=("fast.C13.relative_error",),
       mutants=("f~ transposed",))  # fmt: skip
def check_C14(ctx: Context) -> Result:
    r"""Lemma C.14 / #13: the shipped fast forward $\tilde s$ against the exact s (masked and unmasked); the paper's
    bound $n\,\delta_f\|h\|$ (unmasked, where $\delta_f$ is measured) and the relative one $2\varepsilon/(1-\varepsilon)
    \|h\|$. Mutant: $\tilde f^\top h = V_1(U_1^\top h)$ in place of $U_1(V_1^\top h)$."""
    rng = ctx.rng(103)
    rows = []
    for causal, eps in itertools.product((False, True), (1e-4, 1e-10)):
        L = one_head(rng, 96 if ctx.quick else 384, 4, causal=causal, eps=eps)
        st, s_fast = fast_forward(L, eps=eps, causal=causal)
        c = L["c"]
        if ctx.mutated("f~ transposed"):
            s_fast = L["V1"] @ (L["U1"].T @ c.h)  # (n, d)
        err = mx(s_fast - c.s)
        H = mx(c.h)
        n = c.f.shape[0]
        floor = 1e-13 * H  # float64 rounding of the O(n r) sums (|h| <= 2), far below every bound used
        paper = None if causal else err / (n * mx(L["ft"] - c.f) * H + floor)
        rows.append(
            dict(causal=causal, eps=eps, err=err, paper=paper, relative=err / (rho(st[0].cert.err) * H + floor))
        )
    worst_p = max(r["paper"] for r in rows if r["paper"] is not None)
    worst_r = max(r["relative"] for r in rows)
    fig = f"|s~ - s| / (n delta_f |h|) = {worst_p:.2e} (unmasked), / (2eps/(1-eps)|h|) = {worst_r:.2f}"
    return Result(
        worst_p <= 1 and worst_r <= 1,
        fig,
        {"rows": rows},
        observed=max(worst_p, worst_r),
        bound=1.0,
        precision="float64",
    )


@check(id="fast.C15.p1", label="Lemma C.15",
       name="p1 = f.(G h^T) from U3 = U1./G, V3 = V1./h: identity and |dp1| <= delta_f |q|", kind="INEQ",
       expected="OK", spec=(38, 24), uses=("fast.C13.relative_error",), mutants=("factors of p1^T",))  # fmt: skip
def check_C15(ctx: Context) -> Result:
    r"""Lemma C.15: $U_3 V_3^\top = \tilde f \odot (G h^\top)$ (Fact C.2, TOL_ID) and $|U_3V_3^\top - p_1| \le
    \delta_f\|q\|_\infty \le d\,\delta_f \|G\|\|h\|$. Mutant: $U_3 = U_1 \oslash h$, $V_3 = V_1 \oslash G$ (the
    factors of $p_1^\top$'s construction, the paper's z7)."""
    L = one_head(ctx.rng(104), 80, 4, eps=1e-6)
    G, h, f, ft, q, K = p_parts(L)
    d = G.shape[1]
    a, b = (h, G) if ctx.mutated("factors of p1^T") else (G, h)
    U3, V3 = row_kron(L["U1"], a), row_kron(L["V1"], b)  # (n, r d) each
    ident = float(rel_err(U3 @ V3.T, ft * q))
    p1 = logit_gradient(G, f, h, L["c"].s)[1]  # (n, n)  exact p1 = f . q (reference)
    err = mx(U3 @ V3.T - p1)
    bound = mx(ft - f) * mx(q)
    paper = d * mx(ft - f) * mx(G) * mx(h)
    ok = ident < TOLERANCES["ID_float64"] and within(err, bound) and bound <= paper
    fig = f"Fact C.2 identity {ident:.1e}; |U3V3^T - p1| / (delta_f |q|) = {err / bound:.2f} (<= d delta_f |G||h|)"
    return Result(
        ok,
        fig,
        {"identity": ident, "err": err, "bound": bound, "paper_bound": paper},
        observed=err,
        bound=bound,
        precision="float64",
    )


@check(id="fast.C16.p2", label="Lemma C.16",
       name="p2 = diag(K) f from U4 = diag(K)U1, V4 = V1: |dp2| <= delta_f |K|; r~ = U3(V3^T 1) variant",
       kind="INEQ", expected="OK", spec=(39,), uses=("fast.C13.relative_error", "fast.C15.p1"),
       mutants=("K on the columns",))  # fmt: skip
def check_C16(ctx: Context) -> Result:
    r"""Lemma C.16: $|\mathrm{diag}(K)\tilde f - p_2| \le \delta_f\|K\|$ with exact K, and with
    $\tilde r = U_3(V_3^\top 1)$ the bound of spec #39. Mutant: $\tilde f\,\mathrm{diag}(K)$ (K scaling the columns,
    the paper's z6) as the approximation of $p_2$."""
    L = one_head(ctx.rng(105), 80, 4, eps=1e-6)
    G, h, f, ft, q, K = p_parts(L)
    U4, V4 = K[:, None] * L["U1"], L["V1"]  # (n, r) each
    if ctx.mutated("K on the columns"):
        U4, V4 = L["U1"], K[:, None] * L["V1"]
    p2 = logit_gradient(G, f, h, L["c"].s)[2]  # (n, n)  exact p2 = diag(K) f (reference)
    delta_f = mx(ft - f)
    err = mx(U4 @ V4.T - p2)
    bound = delta_f * mx(K)
    r_t = (ft * q).sum(axis=1)  # r~ = U3 (V3^T 1) = p1~ 1
    err_r = mx(r_t[:, None] * ft - p2)
    bound_r = mx(r_t - K) * mx(ft) + bound
    paper = G.shape[1] * delta_f * mx(G) * mx(L["c"].s)
    ok = within(err, bound) and within(err_r, bound_r) and bound <= paper
    fig = f"exact K: ratio {err / bound:.2f}; r~ variant: ratio {err_r / bound_r:.2f} (spec #39 bound)"
    return Result(
        ok,
        fig,
        {
            "err": err,
            "bound": bound,
            "err_r": err_r,
            "bound_r": bound_r,
            "R": logit_range(L["X"] @ L["WQ"], L["X"] @ L["WK"], L["beta"]),
        },
        observed=err,
        bound=bound,
        precision="float64",
    )
