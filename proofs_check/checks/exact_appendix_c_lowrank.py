r"""Exact checks of the low-rank lemmas of Appendix C, SPEC §3 #36–#39: Lemma C.13 (a polynomial low-rank f and
the entry-bound gap), C.14 (s), C.15 (p1) and C.16 (p2).

The factors are the paper's construction (spec §2.5): a Taylor polynomial of e^x lifted to symmetric monomial
features (:func:`fastpath.features.lift`), normalised by $\tilde D = \mathrm{diag}(U_0 V_0^\top 1)$, at the smallest
degree with a proved relative error below 1e-4 (so every low-rank error is far above rounding and the inequalities
are tested where they bite). Claims are decided by :mod:`proofs_check.decide`.

Shape legend: n tokens, d width, r = k1 = rank of the factors.
"""

from __future__ import annotations

import math

import numpy as np

from fastpath.poly import exact_taylor_coeffs
from proofs_check.checks.exact_common import (
    degree_for,
    lowrank,
    lowrank_cases,
    lr_errors,
    lr_inputs,
    p_parts,
    rowkron,
    smallest_degree,
    taylor_bound,
)
from proofs_check.decide import decide
from proofs_check.registry import Context, Result, check
from reference.backend import mp_context
from reference.compare import max_abs


def taylor_error(Rbar: float, g: int, points: int = 64) -> float:
    r"""*Measured* relative error $\max_x |P_g(x) e^{-x} - 1|$ of the exact degree-g Taylor polynomial of $e^x$ on
    $[-\bar R, \bar R]$: at ``points`` Chebyshev extrema, in a private 40-digit mpmath context (the worst point is
    $x = -\bar R$, SPEC §0.5 item 1)."""
    mp = mp_context(40)
    coeffs = exact_taylor_coeffs(g, mp)[::-1]  # highest degree first (polyval)
    xs = [mp.mpf(Rbar) * mp.cos(mp.pi * i / points) for i in range(points + 1)]
    return float(max(abs(mp.polyval(coeffs, x) * mp.exp(-x) - 1) for x in xs))


def measured_degree(Rbar: float, eps: float) -> int:
    """The smallest degree whose *measured* Taylor error on [-Rbar, Rbar] is at most ``eps``, searched up to the
    proved degree :func:`degree_for` (which always passes: measured <= proved)."""
    return smallest_degree(lambda g: taylor_error(Rbar, g), eps, degree_for(Rbar, eps))


@check(id="cat.C13.lowrank_f", label="Lemma C.13",
       name="Low-rank f: error bounds hold; entry bound needs dR^2 = o(log n)", kind="INEQ", expected="GAP",
       spec=(36,), uses=("cat.C7.alpha", "cat.C2.hadamard_lowrank"),
       mutants=("degree_one_lower", "one_over_d_scale"))  # fmt: skip
def check_C13(ctx: Context) -> Result:
    r"""Lemma C.13 (spec #36): for $\|XW\|_\infty, \|X\|_\infty \le R$ there are $U_1, V_1 \in \mathbb R^{n\times k_1}$
    with $\|U_1V_1^\top - f\|_\infty \le \varepsilon/\mathrm{poly}(n)$. Checked: (a) $\hat\varepsilon = \max|\tilde A -
    A|/A \le \bar R^{g+1}e^{\bar R}/(g+1)!$ (and SPEC's looser $e^{2\bar R}$), $\|U_1V_1^\top - f\|_\infty \le
    \frac{2\hat\varepsilon}{1-\hat\varepsilon}\max f$; (b) rank $\binom{d+g}{g} \le \binom{2(g+d)}{2g}$.
    GAP, measured: under the lemma's own convention (no 1/d) the logits of the input $X = R 1$, $W = 1 1^\top/d$
    (which meets the hypothesis with equality) reach $dR^2$, and the degree a Taylor polynomial needs for a relative
    error of 1e-8 on that range, measured in mpmath, grows with d at fixed R; with the 1/d scale it does not. The
    hypothesis $R = o(\sqrt{\log n})$ is therefore not enough when $d = \Theta(\log n)$; one needs $dR^2 = o(\log n)$.
    Mutants: factors one degree too low for the bound they are held against; the gap series run with the 1/d scale."""
    cases = lowrank_cases(ctx, 111, (64,) if ctx.quick else (64, 128))
    meta = [c.pop("meta") for c in cases]
    for c, m in zip(cases, meta, strict=True):
        for k in ("WV", "G"):
            c.pop(k)
        if ctx.mutated("degree_one_lower"):
            c.update({k: v for k, v in lowrank(c["X"], c["W"], c["beta"], m["g"] - 1).items() if k in c})
        c.update(g=m["g"], Rbar=m["Rbar"])

    def claim(bk, X, W, beta, U0, V0, U1, V1, g, Rbar):
        A, f, eps, df = lr_errors(bk, X, W, beta, U0, V0, U1, V1)
        d, r = X.shape[1], U0.shape[1]
        return [
            ("le", "eps_hat <= Rbar^(g+1) e^Rbar/(g+1)!", eps, taylor_bound(Rbar, g)),
            ("le", "eps_hat <= SPEC's Rbar^(g+1) e^(2Rbar)/(g+1)!", eps, taylor_bound(Rbar, g, 2.0)),
            ("le", "delta_f <= 2eps/(1-eps) max f", df, 2 * eps / (1 - eps) * max_abs(f)),
            ("eq", "rank = C(d+g, g)", bk.scalar(r), bk.scalar(math.comb(d + g, g))),
            ("le", "C(d+g,g) <= C(2(g+d),2g)", bk.scalar(r), bk.scalar(math.comb(2 * (g + d), 2 * g))),
        ]

    gap = measured_gap(ctx)
    g1, gd = gap["beta=1 (C.13)"]["degree_for_1e-8"], gap["beta=1/d (I.1)"]["degree_for_1e-8"]
    gap_shown = all(a < b for a, b in zip(g1, g1[1:], strict=False)) and len(set(gd)) == 1
    series = {k: {"x": gap["d"], "y": gap[k]["degree_for_1e-8"], "xlabel": "d (R = 1)",
                  "ylabel": "measured Taylor degree for eps=1e-8"}
              for k in ("beta=1 (C.13)", "beta=1/d (I.1)")}  # fmt: skip
    note = (f"gap (measured): at R=1 the degree for eps=1e-8 grows {g1[0]}->{g1[-1]} (rank "
            f"{gap['beta=1 (C.13)']['rank'][-1]:.1e}) as d = {gap['d'][0]}..{gap['d'][-1]} with beta=1, "
            f"{'stays ' + str(gd[0]) if len(set(gd)) == 1 else 'varies ' + str(gd)} with beta=1/d")  # fmt: skip
    res = decide(claim, cases, ctx=ctx, note=note, data={"gap": gap, "series": series, "cases": meta})
    res.ok = res.ok and gap_shown
    return res


def measured_gap(ctx: Context, R: float = 1.0, eps: float = 1e-8, ds=(2, 4, 8, 16)) -> dict:
    """Max logit (reference attention input X = R 1, W = 1 1^T / d) and measured degree per d, for beta = 1 and 1/d."""
    from fastpath.lowrank import logit_range

    scales = {"beta=1 (C.13)": lambda d: 1.0, "beta=1/d (I.1)": lambda d: 1.0 / d}
    if ctx.mutated("one_over_d_scale"):
        scales["beta=1 (C.13)"] = scales["beta=1/d (I.1)"]
    gap: dict = {"d": list(ds)}
    for name, scale in scales.items():
        logit, degs = [], []
        for d in ds:
            X, W = np.full((3, d), R), np.full((d, d), 1.0 / d)
            logit.append(round(logit_range(X @ W, X, scale(d)), 12))  # Cauchy-Schwarz is attained here
            degs.append(measured_degree(logit[-1], eps))
        gap[name] = {"max_logit": logit, "degree_for_1e-8": degs,
                     "rank": [math.comb(d + g, g) for d, g in zip(ds, degs, strict=True)]}  # fmt: skip
    return gap


def claim_lowrank_product(ctx: Context, reorder: bool):
    """The claim of §5.1 / Lemma C.14: the fast product and its two error bounds (mutant ``factors_swapped``)."""

    def claim(bk, X, W, WV, beta, U0, V0, U1, V1):
        A, f, eps, df = lr_errors(bk, X, W, beta, U0, V0, U1, V1)
        V = X @ WV  # (n, d)  h(X)
        L, R = (V1, U1) if ctx.mutated("factors_swapped") else (U1, V1)
        fast = L @ (R.T @ V)  # (n, d), O(n k1 d)
        err = max_abs(fast - f @ V)
        rows = [("eq", "U1(V1^T V) = (U1 V1^T)V", fast, (U1 @ V1.T) @ V)] if reorder else []
        return rows + [
            ("le", "err <= n delta_f ||V||", err, X.shape[0] * df * max_abs(V)),
            ("le", "err <= 2eps/(1-eps) ||V||", err, 2 * eps / (1 - eps) * max_abs(V)),
        ]

    return claim


@check(id="cat.C14.lowrank_s", label="Lemma C.14", name="||U1 V1^T h - s|| <= n delta_f ||h|| (and the relative bound)",
       kind="INEQ", expected="OK", spec=(37,), uses=("cat.C13.lowrank_f", "cat.C9.values"),
       mutants=("factors_swapped",))  # fmt: skip
def check_C14(ctx: Context) -> Result:
    r"""Lemma C.14 (spec #37): $\|U_1V_1^\top h - s\|_\infty \le n\|U_1V_1^\top - f\|_\infty\|h\|_\infty$ (the paper's
    constant); also the tighter $\frac{2\hat\varepsilon}{1-\hat\varepsilon}\|h\|_\infty$ for a relative-error $\tilde
    A$. Mutant: the factors swapped, $V_1 U_1^\top h$ (the transposed approximation of f)."""
    return decide(claim_lowrank_product(ctx, reorder=False), lr_inputs(ctx, 113, ("WV",)), ctx=ctx)


@check(id="cat.C15.lowrank_p1", label="Lemma C.15", name="p1 ~ U3 V3^T with U3 = U1⊘G, V3 = V1⊘h",
       kind="INEQ", expected="OK", spec=(38,), uses=("cat.C2.hadamard_lowrank", "cat.C13.lowrank_f", "cat.C11.q"),
       mutants=("G_and_h_swapped",))  # fmt: skip
def check_C15(ctx: Context) -> Result:
    r"""Lemma C.15 (spec #38): $U_3 = U_1\oslash U_2$, $V_3 = V_1 \oslash V_2$ with $U_2 = G$, $V_2 = h$ ($k_3 = k_1
    d$). [ID] $U_3V_3^\top = (U_1V_1^\top)\odot(U_2V_2^\top)$; [INEQ] $\|U_3V_3^\top - p_1\|_\infty \le
    \delta_f\|q\|_\infty \le d\,\delta_f\|G\|_\infty\|h\|_\infty$; with an approximate $\tilde q = \tilde U_2
    V_2^\top$: $\le \delta_f\|q\|_\infty + \|f\|_\infty\delta_q + \delta_f\delta_q$. Mutant: G and h exchanged in the
    factors ($U_1 \oslash h$, $V_1 \oslash G$, i.e. $q^\top$ for q)."""
    cases = lr_inputs(ctx, 114, ("WV", "G"))
    rng = ctx.rng(115)
    for c in cases:
        c["Gn"] = c["G"] + 1e-3 * rng.uniform(-1, 1, c["G"].shape)  # an approximate U2

    def claim(bk, X, W, WV, G, Gn, beta, U0, V0, U1, V1):
        f, h, q, p1, p2, K, U3, V3 = p_parts(bk, X, W, WV, G, beta, U1, V1)
        if ctx.mutated("G_and_h_swapped"):
            U3, V3 = rowkron(U1, h), rowkron(V1, G)
        df = max_abs(U1 @ V1.T - f)
        e1 = max_abs(U3 @ V3.T - p1)
        dq = max_abs(Gn @ h.T - q)
        e1n = max_abs(rowkron(U1, Gn) @ V3.T - p1)
        return [
            ("eq", "U3 V3^T = (U1 V1^T)⊙(G h^T)", U3 @ V3.T, (U1 @ V1.T) * (G @ h.T)),
            ("le", "||U3V3^T - p1|| <= delta_f ||q||", e1, df * max_abs(q)),
            ("le", "delta_f ||q|| <= d delta_f ||G|| ||h||", df * max_abs(q),
             X.shape[1] * df * max_abs(G) * max_abs(h)),
            ("le", "approx q: <= delta_f||q|| + ||f|| delta_q + delta_f delta_q", e1n,
             df * max_abs(q) + max_abs(f) * dq + df * dq),
        ]  # fmt: skip

    return decide(claim, cases, ctx=ctx)


@check(id="cat.C16.lowrank_p2", label="Lemma C.16", name="p2 ~ U4 V4^T with U4 = diag(U3 V3^T 1) U1, V4 = V1",
       kind="INEQ", expected="OK", spec=(39,), uses=("cat.C15.lowrank_p1",),
       mutants=("transposed_row_sums",))  # fmt: skip
def check_C16(ctx: Context) -> Result:
    r"""Lemma C.16 (spec #39): $\tilde r = U_3(V_3^\top 1_n) \approx p_1 1_n = K$, $U_4 = \mathrm{diag}(\tilde r) U_1$,
    $V_4 = V_1$ ($k_4 = k_1$). [INEQ] $\|\tilde r - K\|_\infty \le n\|\tilde p_1 - p_1\|_\infty$ and $\|U_4V_4^\top -
    p_2\|_\infty \le \|\tilde r - K\|_\infty\|\tilde f\|_\infty + \|K\|_\infty\delta_f$; with the exact K (E.7's
    $U_9 = \mathrm{diag}(K) U_1$): $\le \|K\|_\infty \delta_f$. Mutant: the column sums $V_3(U_3^\top 1_n)$ of
    $\tilde p_1$ for its row sums."""

    def claim(bk, X, W, WV, G, beta, U0, V0, U1, V1):
        f, h, q, p1, p2, K, U3, V3 = p_parts(bk, X, W, WV, G, beta, U1, V1)
        n = X.shape[0]
        ft = U1 @ V1.T
        df = max_abs(ft - f)
        L, R = (V3, U3) if ctx.mutated("transposed_row_sums") else (U3, V3)
        rt = L @ (R.T @ bk.ones((n,)))  # (n,)
        U4 = rt[:, None] * U1
        return [
            ("le", "||r~ - K|| <= n ||p1~ - p1||", max_abs(rt - K), n * max_abs(U3 @ V3.T - p1)),
            ("le", "||U4V4^T - p2|| <= ||r~-K|| ||f~|| + ||K|| delta_f", max_abs(U4 @ V1.T - p2),
             max_abs(rt - K) * max_abs(ft) + max_abs(K) * df),
            ("le", "exact K: ||diag(K) U1V1^T - p2|| <= ||K|| delta_f", max_abs((K[:, None] * U1) @ V1.T - p2),
             max_abs(K) * df),
        ]  # fmt: skip

    return decide(claim, lr_inputs(ctx, 116, ("WV", "G")), ctx=ctx)
