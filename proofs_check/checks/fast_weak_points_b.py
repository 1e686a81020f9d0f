r"""Weak points W10, W11, W14, W19, W20, W22 of spec §4 (arXiv:2408.13233v2).

* W10: the forward-induced error (fast forward) is real and no lemma analyses it (Algorithm 1, Lemma H.4).
* W11: the error transfer through $g_i$ grows without bound when $\varphi'$ is unbounded (Lemma H.2, §2.6).
* W14: Lemma I.1's degree formula: the inner log should read $R^2$ (#84).
* W19: an absolute $1/\mathrm{poly}(n)$ error can hide a large relative error (Theorem 4.2).
* W20: the rank of the lift, $\binom{d+g}{g}$ measured, against the paper's $\binom{2(g+d)}{2g}$ (Lemma I.1).
* W22: $\|G_i\|_\infty$ per layer is computed, not an input (illustration).

Shape legend: n tokens, d width, g degree, m layers.
"""

from __future__ import annotations

from proofs_check import experiments as ex
from proofs_check.checks.fast_common import exp, series, slope_txt
from proofs_check.checks.fast_main_text import deepest_row
from proofs_check.experiments.forward_error import SIGNIFICANT
from proofs_check.registry import Context, Result, check


@check(id="exp.W10.forward", label="Weak point W10",
       name="Forward-induced error (fast forward) is not analysed", kind="ASYM", expected="GAP",
       spec=(12, 83), uses=("cat.H4.multi_layer",), mutants=("exact forward",))  # fmt: skip
def check_W10(ctx: Context) -> Result:
    r"""Weak point W10 (spec §4; Algorithm 1, Lemma H.4): exact/fast forward x exact/fast backward; the
    forward-induced error is far above float64 rounding (relative > 2^20 u), a real term no lemma analyses.

    Mutant: the exact forward in place of the fast one (what the lemmas assume): the forward-induced part vanishes."""
    fe = (
        ex.module("forward_error").run(ctx.quick, ctx.seed, exact_forward=True)
        if ctx.mutated("exact forward")
        else exp(ctx, "forward_error")
    )
    r = max(fe["rows"], key=lambda r: r["forward_induced"]["abs"])
    top = fe["max_forward_induced_rel"]
    fig = (
        f"m={r['m']}, g={r['g']}: forward-induced {r['forward_induced']['abs']:.1e}, backward-induced "
        f"{r['backward_induced']['abs']:.1e}, total {r['total']['abs']:.1e}, |T_m~ - T_m| {r['T_m_forward_error']:.1e};"
        f" relative forward-induced {top:.1e} (> 2^20 u = {SIGNIFICANT:.1e})"
    )
    g0 = fe["settings"]["degrees"][0]
    rs = [r for r in fe["rows"] if r["g"] == g0]
    ser = series(
        {
            f"{k} (g={g0})": ([r["m"] for r in rs], [r[k]["abs"] for r in rs])
            for k in ("backward_induced", "forward_induced", "total")
        },
        "depth m",
        "|error of dL/dX|",
    )
    return Result(
        fe["forward_error_significant"],
        fig,
        {**fe, "series": ser},
        observed=top,
        bound=SIGNIFICANT,
        precision="float64",
    )


@check(id="exp.W11.phi_prime", label="Weak point W11",
       name="Error transfer through g_i grows with unbounded phi'", kind="ASYM", expected="GAP",
       spec=(81, 82), uses=("ref.H2.G_i",), mutants=("bounded phi'",))  # fmt: skip
def check_W11(ctx: Context) -> Result:
    r"""Weak point W11 (spec §4; Lemma H.2, §2.6): the realized worst amplification through the reference's block
    backward against $\|\mathrm{Attn}W_g\|_\infty$ for tanh and $x^3$ (log–log slope with interval): the cube's grows
    (interval above 1), tanh's does not (below 0.5). Mutant: a bounded $\varphi'$ (tanh) in place of the cube."""
    pp = exp(ctx, "phi_prime")
    f = dict(pp["fits"])
    if ctx.mutated("bounded phi'"):
        f["cube"] = f["tanh"]
    shown = f["cube"]["lo"] > 1 and f["tanh"]["hi"] < 0.5
    fig = f"realized transfer vs |U| slope: cube {slope_txt(f['cube'])}, tanh {slope_txt(f['tanh'])}"
    ser = series(
        {
            a: (
                [r["U_norm"] for r in pp["rows"] if r["activation"] == a],
                [r["realized_worst"] for r in pp["rows"] if r["activation"] == a],
            )
            for a in ("tanh", "cube")
        },
        "||Attn W_g||_inf",
        "error transfer through g_i",
        logx=True,
    )
    return Result(bool(shown), fig, {**pp, "series": ser}, observed=f["cube"]["lo"], bound=1.0, precision="float64")


@check(id="exp.W14.degree_formula", label="Weak point W14",
       name="Lemma I.1 degree: inner log with R^2 fits better", kind="ASYM", expected="AMBIG", spec=(84,),
       uses=(), mutants=("logits in [-R, R]",))  # fmt: skip
def check_W14(ctx: Context) -> Result:
    r"""Weak point W14 (spec §4; Lemma I.1, §2.5): the minimal certified Taylor/Chebyshev degree for relative eps on
    $[-R^2, R^2]$, fitted against both readings; the $R^2$ reading fits better for both kinds. Mutant: the degrees
    certified on $[-R, R]$ (the range the printed R describes)."""
    df = (
        ex.module("degree_formula").run(ctx.quick, ctx.seed, square=False)
        if ctx.mutated("logits in [-R, R]")
        else exp(ctx, "degree_formula")
    )
    f = df["fits"]
    ok = all(v == "R^2" for v in df["better_fit"].values())
    fig = "; ".join(
        f"{k}: RMS R-reading {f[f'{k}:F_printed_R']['rms']:.2f}, R^2-reading {f[f'{k}:F_R2']['rms']:.2f}"
        for k in ("taylor", "chebyshev")
    )
    curves = {}
    for kind in ("taylor", "chebyshev"):
        rs = [r for r in df["rows"] if r[f"g_{kind}"] is not None]
        for key, lab in (("F_printed_R", "R (printed)"), ("F_R2", "R^2")):
            pts = sorted((r[key], r[f"g_{kind}"]) for r in rs)
            curves[f"{kind}, inner log with {lab}"] = ([p[0] for p in pts], [p[1] for p in pts])
    return Result(
        ok,
        fig,
        {**df, "series": series(curves, "F(R, eps)", "minimal degree", logy=False)},
        observed=f["taylor:F_R2"]["rms"],
        bound=f["taylor:F_printed_R"]["rms"],
        precision="certified degrees (mpmath)",
    )


ACCURATE = "degree high enough for the relative error"


@check(id="exp.W19.relative_error", label="Weak point W19",
       name="Absolute 1/poly(n) met while the relative error is large", kind="ASYM", expected="GAP",
       spec=(11,), uses=("cat.H4.multi_layer",), mutants=(ACCURATE,))  # fmt: skip
def check_W19(ctx: Context) -> Result:
    r"""Weak point W19 (spec §4; Theorem 4.2): absolute, relative error and cosine per component for the sum loss
    and the 1/(nd)-normalized loss; some component of the normalized loss meets an absolute 1/n while its relative
    error is >= 1e-2. Mutant: the same pipeline at degree 10 (an accurate method, whose small absolute error is no
    longer hiding a large relative one)."""
    re_ = (
        ex.module("relative_error").run(ctx.quick, ctx.seed, g=10)
        if ctx.mutated(ACCURATE)
        else exp(ctx, "relative_error")
    )
    name = "normalized_1/(nd)"
    rows = re_["losses"][name]
    n = re_["settings"]["n"]
    hidden = [r for r in rows if r["abs"] <= 1 / n and r["rel"] >= 1e-2]
    worst = max(rows, key=lambda r: r["rel"])
    fig = (
        f"{name} loss: {len(hidden)} components with abs <= 1/n and rel >= 1e-2; worst {worst['field']}: abs "
        f"{worst['abs']:.1e}, rel {worst['rel']:.1e}, cos {worst['cos']:.5f}"
    )
    return Result(bool(hidden), fig, re_, observed=worst["rel"], bound=1e-2, precision="float64")


@check(id="exp.W20.rank", label="Weak point W20",
       name="Measured rank of the lift against the paper's C(2(g+d),2g)", kind="INEQ", expected="OK",
       spec=(84, 36), uses=(), mutants=("bound counts degree-g monomials only",))  # fmt: skip
def check_W20(ctx: Context) -> Result:
    r"""Weak point W20 (spec §4; Lemma I.1): the numerical rank of the shipped lift (SVD, n > r) is at most the
    paper's bound; ratio recorded. Mutant: a bound that counts only the monomials of degree exactly g,
    $\binom{d+g-1}{g}$, which the measured rank $\binom{d+g}{g}$ exceeds."""
    rb = exp(ctx, "rank_bound")
    key = "degree_g_monomials_only" if ctx.mutated("bound counts degree-g monomials only") else "paper_bound"
    measured = [r for r in rb["rows"] if r["numerical_rank"] is not None]
    ok = bool(measured) and all(r["numerical_rank"] <= r[key] for r in measured)
    worst = max(r["numerical_rank"] / r[key] for r in measured)
    fig = (
        f"{len(measured)} (d, g) with a measured rank: all <= the bound {ok}; largest measured/bound {worst:.2f}; "
        f"measured = C(d+g, g): {all(r['numerical_rank'] == r['columns'] for r in measured)}"
    )
    d0 = rb["settings"]["ds"][-1]
    rs = [r for r in rb["rows"] if r["d"] == d0]
    ser = series(
        {
            f"C(d+g, g), d={d0}": ([r["g"] for r in rs], [r["columns"] for r in rs]),
            f"C(2(g+d), 2g), d={d0}": ([r["g"] for r in rs], [r["paper_bound"] for r in rs]),
        },
        "degree g",
        "rank",
    )
    return Result(ok, fig, {**rb, "series": ser}, observed=worst, bound=1.0, precision="float64 (SVD)")


@check(id="exp.W22.G_norms", label="Weak point W22",
       name="|G_i| per layer: computed, not an input (illustration: the E-lemmas state no bound on it)",
       kind="ASYM", expected="GAP", spec=(61,), uses=("cat.H4.multi_layer",), illustration=True)  # fmt: skip
def check_W22(ctx: Context) -> Result:
    r"""Weak point W22 (spec §4; Lemmas E.2 ff.): $\|G_i\|_\infty$ per layer for the deepest stack; the E-lemmas
    assume it is an input of O(log n) bits. Illustration: no stated bound to violate."""
    dd = exp(ctx, "depth")
    G = [p["G_norm"] for p in deepest_row(dd)["layers"]]
    fig = f"|G_i| from the top layer down: {' '.join(f'{x:.2f}' for x in reversed(G))} (max/top {max(G) / G[-1]:.2f})"
    ser = series({"||G_i||_inf": (list(range(1, len(G) + 1)), G)}, "layer", "||G_i||_inf", logy=False)
    return Result(
        True,
        fig,
        {
            "G_norm": G,
            "product_norms": dd["amplification"]["products"],
            "series": ser,
            "illustration": "no bound to violate",
        },
        observed=max(G) / G[-1],
        bound=None,
        precision="float64",
    )
