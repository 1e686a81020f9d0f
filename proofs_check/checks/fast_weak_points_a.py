r"""Weak points W5–W9 and W18 of spec §4 (arXiv:2408.13233v2): beta, bounded entries, depth, looseness, weights.

* W5: the appendix's $\beta$-free formulas (Def. C.6 on) hold only for $\beta = 1$ (#29).
* W6: the logit range across depth leaves the regime of Lemma C.13 (#36).
* W7 (and W17): errors compound over layers (Lemma H.4, J.5, §2.10).
* W8: observed/bound for the explicit bounds of spec §2.4 (every bound holds; fitted exponents with intervals).
* W18: the printed constants (factor n) and the tight ones both hold.
* W9: the weight-gradient errors of lower layers, which Lemma 5.5 (ii) leaves unbounded (illustration).

The sweeps live in :mod:`proofs_check.experiments`. Shape legend: n tokens, d width, m layers.
"""

from __future__ import annotations

import math

from proofs_check.checks.fast_common import exp, series, within
from proofs_check.checks.fast_main_text import PLAIN, deepest_row, depth_gap
from proofs_check.experiments.beta_scale import beta_free_only_for_beta_1
from proofs_check.registry import Context, Result, check


@check(id="exp.W5.beta", label="Weak point W5",
       name="The beta-free appendix formulas hold only for beta = 1", kind="ID", expected="AMBIG",
       spec=(29,), uses=("ref.F4.dW",), mutants=("beta kept in the appendix forms",))  # fmt: skip
def check_W5(ctx: Context) -> Result:
    r"""Weak point W5 (spec §4, catalogue #29): $\beta$-free forms against mpmath FD for $\beta \in \{1, 1/d\}$.

    Second part: with $\beta = 1$ the logits reach $d R^2$, not $R^2$. Mutant: the forms read with $\beta$ kept
    (then nothing is ambiguous and the check must fail)."""
    b = exp(ctx, "beta_scale")
    r1, rd = (dict(r) for r in b["rows"])
    if ctx.mutated("beta kept in the appendix forms"):
        for r in (r1, rd):
            r["dX_beta_free"], r["dW_beta_free"] = r["dX_with_beta"], r["dW_with_beta"]
    tol, wrong = b["settings"]["tol"], b["settings"]["wrong"]
    shown = beta_free_only_for_beta_1([r1, rd], tol, wrong)
    lr = b["logit_range"][-1]
    fig = (
        f"beta=1: beta-free dX {r1['dX_beta_free']:.0e}; beta=1/d: beta-free dX {rd['dX_beta_free']:.2f}, dW "
        f"{rd['dW_beta_free']:.2f}, with beta {rd['dX_with_beta']:.0e}; d={lr['d']}: logit {lr['max_logit_beta1']:.1f}"
        f" (beta=1) vs {lr['max_logit_beta1/d']:.2f} (1/d)"
    )
    return Result(
        bool(shown),
        fig,
        b,
        observed=rd["dX_beta_free"],
        bound=wrong,
        precision="mpmath dps=50",
        counterexample={"beta": "1/d", "n": b["settings"]["n"], "d": b["settings"]["d"], "seed": ctx.seed},
    )


@check(id="exp.W6.bounded_entries", label="Weak point W6",
       name="Logit range across depth leaves the C.13 regime", kind="ASYM", expected="GAP", spec=(36,),
       uses=("ref.J3.residual",), mutants=("skip connection removed",))  # fmt: skip
def check_W6(ctx: Context) -> Result:
    r"""Weak point W6 (spec §4; Lemma C.13 / I.1 hypotheses).

    $\|T_i\|$, $\|T_iW\|$, max logit per layer for residual stacks at 1x, 2x, 4x weights (and a plain stack): in
    residual stacks the logit range leaves $[-\log n, \log n]$ at some scale and at least doubles over the stack.
    Mutant: the same reading on the plain stack (skip removed), whose range does not grow."""
    be = exp(ctx, "bounded_entries")
    plain = ctx.mutated("skip connection removed")
    stacks = [s for s in be["stacks"] if s["residual"] != plain]
    left = [s["scale"] for s in stacks if s["first_layer_logit_ratio_ge_1"] is not None]
    grows = [
        s["scale"] for s in stacks if s["rows"][-1]["logit_max"] >= 2 * s["rows"][0]["logit_max"]
    ]  # at least doubles
    fig = "; ".join(
        f"{s['scale']:g}x {'plain' if plain else 'residual'}: logit {s['rows'][0]['logit_max']:.1f}->"
        f"{s['rows'][-1]['logit_max']:.1f}, leaves at layer {s['first_layer_logit_ratio_ge_1']}"
        for s in stacks
    )
    curves = {
        f"{st['scale']:g}x {'residual' if st['residual'] else 'plain'}": (
            [r["layer"] for r in st["rows"]],
            [r["logit_max"] for r in st["rows"]],
        )
        for st in be["stacks"]
    }
    lay = [r["layer"] for r in be["stacks"][0]["rows"]]
    curves["log n (regime edge)"] = (lay, [math.log(be["settings"]["n"])] * len(lay))
    top = max(r["logit_ratio"] for s in stacks for r in s["rows"])
    return Result(
        bool(left) and bool(grows),
        fig,
        {**be, "series": series(curves, "layer", "max |beta q.k|")},
        observed=top,
        bound=1.0,
        precision="float64",
    )


@check(id="exp.W7.depth", label="Weak point W7",
       name="Error compounding over layers: C_j, products, growth per cell", kind="ASYM", expected="GAP",
       spec=(83, 97), uses=("cat.H4.multi_layer",), mutants=(PLAIN,))  # fmt: skip
def check_W7(ctx: Context) -> Result:
    r"""Weak point W7 (spec §4; Lemma H.4, J.5, §2.10; also W17).

    The per-layer growth factor of the error with its 95% interval per (n, beta, weight scale, g) cell, the
    measured per-layer norms (the gap: they exceed 1 and their product grows), and the observed error against the
    unrolled bound. Mutant: the same weights without the skip connection (maps that contract: no gap to show)."""
    gap, dd = depth_gap(ctx)
    c, amp = dd["conclusion"], dd["amplification"]
    pred = amp["e0_unrolled_bound"]
    holds = within(amp["e0_observed"], pred)
    fig = (
        "per-layer growth of the error at fixed g: "
        + ", ".join(
            f"{f['growth_per_layer']:.2f} [{f['growth_interval'][0]:.2f}, {f['growth_interval'][1]:.2f}] "
            f"(n={f['n']}, s={f['scale']:g}, g={f['g']})"
            for f in dd["fits"]
        )
        + f"; e0 {amp['e0_observed']:.1e} <= {pred:.1e}: {holds}; data support 1/poly for m=n^o(1): "
        f"{c['supports_1_over_poly_for_m_n_o1']}"
    )
    curves = {}
    for sw in dd["sweeps"]:
        for g in dd["settings"]["degrees"]:
            rs = [r for r in sw["rows"] if r["g"] == g]
            curves[f"n={sw['n']}, s={sw['scale']:g}, g={g}"] = ([r["m"] for r in rs], [r["dX"]["rel"] for r in rs])
    return Result(
        gap and holds,
        fig,
        {**dd, "series": series(curves, "depth m", "rel. error of dL/dX")},
        observed=amp["e0_observed"],
        bound=pred,
        precision="float64",
    )


N_SMALLER = "bounds one power of n smaller"
# the paper bounds of spec §2.4 that carry a factor n (C.15, E.4, E.9, H.2 carry d instead)
WITH_N = {
    f"Lemma {k}"
    for k in ("C.14", "C.16", "C.18", "C.19", "E.2", "E.3", "E.5", "E.6", "E.7", "E.8", "E.10", "E.11", "F.5", "G.4")
}


@check(id="exp.W8.looseness", label="Weak point W8",
       name="observed/bound per lemma (C.13-C.19, E.2-E.11, F.5, G.4, H.2); fitted exponents with intervals",
       kind="INEQ", expected="OK", spec=(37, 38, 39, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 75, 79, 81),
       uses=("ref.D17.five_terms",), mutants=(N_SMALLER,))  # fmt: skip
def check_W8(ctx: Context) -> Result:
    r"""Weak point W8 (spec §4; spec §2.4 bounds; spec §0.5 item 5).

    Every explicit bound holds; per lemma the fitted exponent of bound/observed against n with its 95% interval is
    reported (no "about n" is asserted). Mutant: every paper bound that carries a factor n divided by n."""
    lo = exp(ctx, "looseness")
    rows = lo["rows"]
    if ctx.mutated(N_SMALLER):
        ok = all(within(r["observed"], r["bound_paper"] / r["n"]) for r in rows if r["lemma"] in WITH_N)
    else:
        ok = lo["all_hold"]
    fitted = [t for t in lo["table"] if "looseness_vs_n" in t]
    fig = ", ".join(
        f"{t['lemma'][6:]} {t['looseness_vs_n']['slope']:.2f} [{t['looseness_vs_n']['lo']:.1f}, "
        f"{t['looseness_vs_n']['hi']:.1f}]"
        for t in fitted
    )
    fig = f"{len(lo['table'])} bounds hold at n={lo['ns']}: {lo['all_hold']}; exponent of bound/observed in n: " + fig
    curves = {t["lemma"]: (lo["ns"], t["ratio_paper"]) for t in lo["table"] if all(t["ratio_paper"])}
    worst = max(r["ratio_paper"] for r in rows if r["ratio_paper"])
    return Result(
        bool(ok),
        fig,
        {**lo, "series": series(curves, "n", "observed / paper bound", logx=True)},
        observed=worst,
        bound=1.0,
        precision="float64",
    )


@check(id="exp.W18.constants", label="Weak point W18",
       name="Loose constants (C.18, C.19, E.2, E.7): tight and printed", kind="INEQ", expected="OK",
       spec=(41, 42, 61, 66), uses=("exp.W8.looseness",), mutants=("d dropped from C.18",))  # fmt: skip
def check_W18(ctx: Context) -> Result:
    r"""Weak point W18 (spec §4; Lemmas C.18, C.19, E.2, E.7): the printed constants (factor n) and the tight ones
    ($\|h\| \le d\|X\|\|W_V\|$, $\|s\| \le \|h\|$, no n for a diagonal scaling) both hold; slacks recorded.
    Mutant: C.18's tight constant without its d ($\|h\| \le \|X\|\|W_V\|$)."""
    lo = exp(ctx, "looseness")
    keys = ("Lemma C.18", "Lemma C.19", "Lemma E.2", "Lemma E.7")
    rows = [dict(r) for r in lo["rows"] if r["lemma"] in keys]
    if ctx.mutated("d dropped from C.18"):
        d = lo["settings"]["d"]
        for r in rows:
            if r["lemma"] == "Lemma C.18":
                r["holds_tight"] = within(r["observed"], r["bound_tight"] / d)
    ok = all(r["holds_paper"] and r["holds_tight"] for r in rows)
    tab = [t for t in lo["table"] if t["lemma"] in keys]
    fig = "; ".join(
        f"{t['lemma'][6:]}: printed {max(t['ratio_paper']):.0e}, tight {max(t['ratio_tight']):.2f}" for t in tab
    )
    worst = max(r["ratio_tight"] for r in rows)
    return Result(ok, fig, {"rows": rows, "table": tab}, observed=worst, bound=1.0, precision="float64")


@check(id="exp.W9.weight_grads", label="Weak point W9",
       name="Weight-gradient errors of lower layers (unbounded by H.4; illustration: no bound exists to test)",
       kind="ASYM", expected="GAP", spec=(18, 83), uses=("cat.H4.multi_layer",), illustration=True)  # fmt: skip
def check_W9(ctx: Context) -> Result:
    r"""Weak point W9 (spec §4; Lemma H.4, Theorem 4.2): per-layer errors of $g_w$, $g_v$ at the largest depth,
    against the error of dL/dX. Illustration: Lemma 5.5 (ii) states no bound for them, so nothing measured here can
    contradict the paper; the falsifiable part (they reach a tenth of dL/dX's error) is in ``cat.L5.5``."""
    dd = exp(ctx, "depth")
    last = deepest_row(dd)
    w = [max(p["dW"]["rel"], p["dW_V"]["rel"]) for p in last["layers"]]
    fig = (
        f"m={last['m']}, g={last['g']}: weight-gradient rel. errors per layer {min(w):.1e}..{max(w):.1e} vs "
        f"dL/dX {last['dX']['rel']:.1e} (no lemma bounds them)"
    )
    lay = [p["layer"] for p in last["layers"]]
    ser = series(
        {
            "dL/dW rel. error": (lay, [p["dW"]["rel"] for p in last["layers"]]),
            "dL/dW_V rel. error": (lay, [p["dW_V"]["rel"] for p in last["layers"]]),
            "dL/dX rel. error": (lay, [last["dX"]["rel"]] * len(lay)),
        },
        "layer",
        "relative error",
    )
    return Result(
        True,
        fig,
        {"row": last, "series": ser, "illustration": "no bound to violate"},
        observed=max(w),
        bound=None,
        precision="float64",
    )
