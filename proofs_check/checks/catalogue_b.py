r"""Catalogue checks, part B (spec §3 #5, #10, #11, #14–#16, #18–#20, #60, #82, #83, #87, #88, #97, #100) and one
check per weak-point experiment of spec §4 (ids ``exp.W*``: W5–W11, W14, W18–W20, W22).

Part B's ranges are #5, #10, #11, #13–#21, #60–#70, #80–#100; entries another module already covered
(reference_checks, symbolic_checks, catalogue_a, fastpath_checks: #13, #17, #21, #61–#70, #80, #81, #84–#86,
#89–#96, #98, #99) are not repeated. Algorithm 2 (#87) and Lemma I.4 (#88) were uncovered when this module was
written; fastpath_checks' Lemma I.3 check now names them too. [ASYM] checks fit exponents with 95% t-intervals
(:func:`proofs_check.experiments._common.fit_line`); timing slopes use min-of-k samples and are judged on the
interval with a loose stated threshold (:data:`proofs_check.experiments.scaling.SLOPE_OK`), so timing noise on a
shared machine widens the interval instead of failing the run. The sweeps live in :mod:`proofs_check.experiments`
and are computed once per process and shared by the checks that read them.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from proofs_check import experiments as ex
from proofs_check.experiments import _common as cm
from proofs_check.experiments.scaling import SLOPE_OK, consistent_linear
from proofs_check.registry import Context, Result, check
from reference import backward, forward
from reference.compare import TOLERANCES
from reference.model import Layer


def _exp(ctx: Context, name: str) -> dict:
    return ex.result(name, ctx.quick, ctx.seed)


def _series(curves: dict, xlabel: str, ylabel: str, logx: bool = False, logy: bool = True) -> dict:
    """The report's ``series`` record key (proofs_check.report): {name: {x, y, labels, log flags}}, finite points."""
    out = {}
    for name, (xs, ys) in curves.items():
        pts = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True) if _finite(x) and _finite(y)]
        if pts:
            out[name] = {
                "x": [p[0] for p in pts],
                "y": [p[1] for p in pts],
                "xlabel": xlabel,
                "ylabel": ylabel,
                "logx": logx,
                "logy": logy,
            }
    return out


def _finite(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v > -math.inf


def _slope_txt(f: dict) -> str:
    return f"{f['slope']:.2f} [{f['lo']:.2f}, {f['hi']:.2f}]"


def _time_series(sc: dict, curves: dict[str, str]) -> dict:
    """Seconds against n from the scaling experiment's rows: {curve name: timing key}, rows that have the key."""
    rows = sc["rows"]
    return _series(
        {
            name: ([r["n"] for r in rows if key in r], [r[key] for r in rows if key in r])
            for name, key in curves.items()
        },
        "n",
        "seconds (min of k)",
        logx=True,
    )


# -- a single-layer degree sweep (error against g), shared by #10, #14, #15, #16 -----------------------------------
@functools.lru_cache(maxsize=8)
def _degree_sweep(quick: bool, seed: int) -> dict:
    r"""One layer, exact forward and upstream G: relative errors of $g_t, g_w, g_v$ against the degree g."""
    rng = np.random.default_rng([seed, 8101])
    n, d = (256, 4) if quick else (1024, 4)
    X = rng.uniform(-1, 1, (n, d))
    L = Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(3)))
    G = rng.uniform(-1, 1, (n, d))
    tr = forward(X, [L])
    exact = backward(tr, G)
    rows = []
    for g in range(1, 9 if quick else 11):
        fb = cm.fast_backward(tr, G, g)
        rows.append(
            {
                "g": g,
                "gt": cm.errs(fb.dT[0], exact.dX)["rel"],
                "gw": cm.errs(fb.dW[0], exact.layers[0].dW)["rel"],
                "gv": cm.errs(fb.dW_V[0], exact.layers[0].dW_V)["rel"],
            }
        )
    fits = {}
    for key in ("gt", "gw", "gv"):
        pts = [(r["g"], r[key]) for r in rows if r[key] > 1e-14]  # above float64 rounding only
        fits[key] = cm.fit_line([p[0] for p in pts], np.log10([p[1] for p in pts]))
    return {"n": n, "d": d, "logit_max": cm.logit_max(tr, 0), "rows": rows, "fits": fits}


def _lemma5(ctx: Context, key: str, label: str) -> Result:
    sw = _degree_sweep(ctx.quick, ctx.seed)
    sc = _exp(ctx, "scaling")
    f_err, f_t = sw["fits"][key], sc["fits"]["fast"]
    ok = f_err["hi"] < 0 and consistent_linear(f_t)
    fig = (
        f"{label}: log10 rel. error vs degree slope {_slope_txt(f_err)} (decays); time vs n slope "
        f"{_slope_txt(f_t)} (fast), {_slope_txt(sc['fits']['naive'])} (naive); ok if <= {SLOPE_OK} is inside"
    )
    series = _series(
        {f"{k} rel. error": ([r["g"] for r in sw["rows"]], [r[k] for r in sw["rows"]]) for k in ("gt", "gw", "gv")},
        "degree g",
        "relative error",
    )
    return Result(
        ok, fig, {"degree_sweep": sw, "time_fit_fast": f_t, "time_fit_naive": sc["fits"]["naive"], "series": series}
    )


@check(
    id="cat.L5.1.fast_dT",
    label="Lemma 5.1",
    name="dL/dT_{i-1} in n^{1+o(1)} with error decaying in the degree",
    kind="ASYM",
    expected="OK",
    spec=(14,),
    uses=("ref.D17.five_terms",),
)
def check_lemma_5_1(ctx: Context) -> Result:
    r"""Lemma 5.1 (informal E.11), spec #14: error of the corrected $g_t$ against g, and time against n."""
    return _lemma5(ctx, "gt", "g_t")


@check(
    id="cat.L5.2.fast_dW",
    label="Lemma 5.2",
    name="dL/dW in n^{1+o(1)} with error decaying in the degree",
    kind="ASYM",
    expected="OK",
    spec=(15,),
    uses=("ref.F4.dW",),
)
def check_lemma_5_2(ctx: Context) -> Result:
    r"""Lemma 5.2 (informal F.5), spec #15: $g_w = \beta[(X^\top U_3)(V_3^\top X) - (X^\top U_4)(V_4^\top X)]$."""
    return _lemma5(ctx, "gw", "g_w")


@check(
    id="cat.L5.3.fast_dWV",
    label="Lemma 5.3",
    name="dL/dW_V in n^{1+o(1)} (corrected X^T f^T G)",
    kind="ASYM",
    expected="OK",
    spec=(16,),
    uses=("ref.G3.dWV",),
)
def check_lemma_5_3(ctx: Context) -> Result:
    r"""Lemma 5.3 (informal G.4), spec #16: $g_v = (X^\top V_1)(U_1^\top G)$."""
    return _lemma5(ctx, "gv", "g_v")


@check(
    id="cat.T4.1.single_layer",
    label="Theorem 4.1",
    name="Single layer: fast and accurate only with bounded entries",
    kind="ASYM",
    expected="GAP",
    spec=(10,),
    uses=("cat.L5.1.fast_dT", "cat.L5.2.fast_dW", "cat.L5.3.fast_dWV"),
)
def check_theorem_4_1(ctx: Context) -> Result:
    r"""Theorem 4.1, spec #10: holds with bounded entries; the gap is the missing $R = o(\sqrt{\log n})$.

    With the entries of X scaled by t the logit range grows like $t^2$; the Taylor degree that $\varepsilon = n^{-2}$
    needs (spec §2.5 bound on the measured range) and the rank $\binom{d+g}{g}$ grow with it, past n (no speed-up).
    """
    sw = _degree_sweep(ctx.quick, ctx.seed)
    sc = _exp(ctx, "scaling")
    rng = ctx.rng(8102)
    n, d = sw["n"], sw["d"]
    X0 = rng.uniform(-1, 1, (n, d))
    W_Q, W_K = rng.uniform(-1, 1, (d, d)), rng.uniform(-1, 1, (d, d))
    rows = []
    for t in (0.5, 1.0, 2.0, 3.0, 4.0):
        Rbar = float(np.abs((t * X0 @ W_Q) @ (t * X0 @ W_K).T).max()) / d
        g = cm.min_taylor_degree(Rbar, float(n) ** -2)
        rows.append({"t": t, "logit_max": Rbar, "g_for_n^-2": g, "rank": cm.rank(d, g)})
    degs = [r["g_for_n^-2"] for r in rows]
    bounded_ok = all(f["hi"] < 0 for f in sw["fits"].values()) and consistent_linear(sc["fits"]["fast"])
    gap = all(a < b for a, b in zip(degs, degs[1:], strict=False)) and rows[-1]["rank"] >= n
    fig = (
        f"bounded entries: errors decay in g, time slope {_slope_txt(sc['fits']['fast'])}; entries x t: "
        + ", ".join(f"t={r['t']:g}: logit {r['logit_max']:.1f}, g {r['g_for_n^-2']}, rank {r['rank']}" for r in rows)
        + f" (n={n})"
    )
    series = _series(
        {
            "rank for eps = n^-2": ([r["t"] for r in rows], [r["rank"] for r in rows]),
            "n": ([r["t"] for r in rows], [n] * len(rows)),
        },
        "entry scale t",
        "rank C(d+g, g)",
    )
    return Result(
        bounded_ok and gap, fig, {"degree_sweep": sw, "entry_scaling": rows, "time_fits": sc["fits"], "series": series}
    )


def _depth_gap(ctx: Context) -> tuple[bool, dict]:
    dd = _exp(ctx, "depth")
    return dd["conclusion"]["supports_1_over_poly_for_m_n_o1"] is False, dd


def _deepest_row(dd: dict) -> dict:
    """The depth experiment's row at its largest depth m, in its last sweep."""
    return [r for r in dd["sweeps"][-1]["rows"] if r["m"] == max(dd["settings"]["depths"])][0]


@check(
    id="cat.T4.2.multi_layer",
    label="Theorem 4.2",
    name="m layers: error compounds with depth (1/poly(n) unproven)",
    kind="ASYM",
    expected="GAP",
    spec=(11,),
    uses=("cat.T4.1.single_layer", "cat.H4.multi_layer"),
)
def check_theorem_4_2(ctx: Context) -> Result:
    r"""Theorem 4.2, spec #11: multi-layer harness; per-component per-layer errors, growth with m, time slope."""
    gap, dd = _depth_gap(ctx)
    sc = _exp(ctx, "scaling")
    c = dd["conclusion"]
    pf = c["product_norm_fit"]
    fig = (
        f"||B_1..B_m|| grows x{math.exp(pf['slope']):.2f}/layer [{math.exp(pf['lo']):.2f}, {math.exp(pf['hi']):.2f}]; "
        f"degree for 1e-8 grows with m: {c['degree_grows_with_depth']}; time slope {_slope_txt(sc['fits']['fast'])}"
    )
    return Result(
        gap and consistent_linear(sc["fits"]["fast"]),
        fig,
        {"conclusion": c, "fits": dd["fits"], "time_fit": sc["fits"]["fast"]},
    )


@check(
    id="cat.T1.4.main",
    label="Theorem 1.4",
    name="Main result: needs bounded entries at every layer and depth control",
    kind="ASYM",
    expected="GAP",
    spec=(5,),
    uses=("cat.T4.2.multi_layer", "exp.W6.bounded_entries"),
)
def check_theorem_1_4(ctx: Context) -> Result:
    r"""Theorem 1.4, spec #5 (informal 4.2): both missing hypotheses shown (bounded entries, depth compounding)."""
    gap, dd = _depth_gap(ctx)
    be = _exp(ctx, "bounded_entries")
    left = be["scales_leaving_logit_regime"]
    fig = f"weight scales leaving the logit regime (>= log n) in residual stacks: {left}; depth gap shown: {gap}"
    return Result(gap and bool(left), fig, {"bounded_entries": be["text"], "depth": dd["conclusion"]["text"]})


@check(
    id="cat.L5.5.multi_layer",
    label="Lemma 5.5",
    name="Informal H.4: only dL/dX is bounded; errors compound",
    kind="ASYM",
    expected="GAP",
    spec=(18,),
    uses=("cat.H4.multi_layer",),
)
def check_lemma_5_5(ctx: Context) -> Result:
    r"""Lemma 5.5, spec #18: part (ii) covers dL/dX only; the weight gradients of lower layers carry errors too."""
    gap, dd = _depth_gap(ctx)
    last = _deepest_row(dd)
    w = max(max(p["dW"]["rel"], p["dW_V"]["rel"]) for p in last["layers"])
    fig = (
        f"m={last['m']}, g={last['g']}: dL/dX rel {last['dX']['rel']:.1e}, worst weight gradient rel {w:.1e}; gap {gap}"
    )
    return Result(gap and w > 0, fig, {"row": last, "conclusion": dd["conclusion"]["text"]})


@check(
    id="cat.H4.multi_layer",
    label="Lemma H.4",
    name="Error against depth, C_j against the §2.10 bound, degree for 1e-8",
    kind="ASYM",
    expected="GAP",
    spec=(83,),
    uses=("ref.J3.residual", "ref.H2.G_i"),
)
def check_lemma_H4(ctx: Context) -> Result:
    r"""Lemma H.4, spec #83 (a)–(d) and §2.10: the unrolled bound $e_0 \le \sum_i (\prod_{j<i} C_j)\delta_i$ holds
    with the measured $C_j$, the measured $C_j$ exceed 1, and the error or the degree grows with depth."""
    gap, dd = _depth_gap(ctx)
    amp = dd["amplification"]
    C = [p["C_exact"] for p in amp["layers"]]
    Cb = [p["C_bound"] for p in amp["layers"]]
    fig = (
        f"C_j exact {min(C):.2f}..{max(C):.2f} vs bound {min(Cb):.0f}..{max(Cb):.0f}; e0 {amp['e0_observed']:.1e} "
        f"<= unrolled {amp['e0_unrolled_bound']:.1e}: {amp['unrolled_bound_holds']}; degree for 1e-8: "
        + " ".join(f"m{r['m']}:{r['g_needed']}" for r in dd["degree_needed"]["rows"])
    )
    pr = amp["products"]
    ms = [p["m"] for p in pr]
    series = _series(
        {
            "prod_j ||B_j|| (exact)": (ms, [p["prod_C_exact"] for p in pr]),
            "||B_1 ... B_m|| (exact)": (ms, [p["norm_of_product"] for p in pr]),
            "prod_j C_j (spec §2.10 bound)": (ms, [p["prod_C_bound"] for p in pr]),
        },
        "depth m",
        "amplification (inf -> inf norm)",
    )
    return Result(
        gap and amp["unrolled_bound_holds"],
        fig,
        {"amplification": amp, "degree_needed": dd["degree_needed"], "conclusion": dd["conclusion"], "series": series},
    )


@check(
    id="cat.J5.residual_layers",
    label="Lemma J.5",
    name="m residual layers: activations grow, errors compound",
    kind="ASYM",
    expected="GAP",
    spec=(97,),
    uses=("cat.H4.multi_layer", "exp.W6.bounded_entries"),
)
def check_lemma_J5(ctx: Context) -> Result:
    r"""Lemma J.5, spec #97: as #83 on residual stacks, also tracking $\|T_i\|_\infty$ and the logit range."""
    gap, dd = _depth_gap(ctx)
    be = _exp(ctx, "bounded_entries")
    res = [s for s in be["stacks"] if s["residual"]]
    grows = [s["scale"] for s in res if s["rows"][-1]["logit_max"] > s["rows"][0]["logit_max"]]
    T = dd["sweeps"][-1]["T_norm"]
    fig = f"|T_i| {T[0]:.2f} -> {T[-1]:.2f} over {len(T) - 1} layers; logit range grows at scales {grows}; gap {gap}"
    return Result(
        gap and bool(grows), fig, {"T_norm": T, "logit_growth": {s["scale"]: s["logit_growth_per_layer"] for s in res}}
    )


@check(
    id="cat.K.multi_head_layers",
    label="Claim §K",
    name="Multi-head multi-layer inherits the H.4 gap",
    kind="ASYM",
    expected="GAP",
    spec=(100,),
    uses=("cat.H4.multi_layer", "ref.K2.multihead"),
)
def check_claim_K(ctx: Context) -> Result:
    r"""Closing claim of §K, spec #100: with h in {1, 2, 4} heads the per-layer maps still amplify ($C_j > 1$)."""
    rng = ctx.rng(8103)
    n, d, m = (32, 4, 3) if ctx.quick else (64, 4, 6)
    rows = []
    for h in (1, 2, 4):
        X, layers = cm.residual_stack(rng, n, d, m)
        tr = forward(X, layers, residual=True, activation="tanh", heads=h)
        C = rng.uniform(-1, 1, X.shape)
        exact = backward(tr, C)
        fb = cm.fast_backward(tr, C, 4)
        Cj = [cm.linf_operator_norm(tr, [j]) for j in range(m)]
        rows.append(
            {
                "heads": h,
                "C_exact": Cj,
                "norm_of_product": cm.linf_operator_norm(tr, list(reversed(range(m)))),
                "dX_rel_err_g4": cm.errs(fb.dT[0], exact.dX)["rel"],
            }
        )
    ok = all(min(r["C_exact"]) > 1 for r in rows)
    fig = "; ".join(
        f"h={r['heads']}: C_j {min(r['C_exact']):.2f}..{max(r['C_exact']):.2f}, ||prod|| "
        f"{r['norm_of_product']:.2f}, err {r['dX_rel_err_g4']:.1e}"
        for r in rows
    )
    return Result(ok, fig, {"n": n, "d": d, "m": m, "rows": rows})


@check(
    id="cat.B1.multi_head_cost",
    label="Claim §B.1",
    name="h heads cost h n^{1+o(1)}; slope in n about 1",
    kind="ASYM",
    expected="OK",
    spec=(19,),
    uses=("cat.L5.1.fast_dT",),
)
def check_claim_B1(ctx: Context) -> Result:
    r"""Claim §B.1, spec #19: time against n at fixed h (slope interval) and against h at fixed n."""
    sc = _exp(ctx, "scaling")
    hs = sc["settings"]["heads"]
    fits = {h: sc["fits"][f"fast_h{h}"] for h in hs}
    big = sc["rows"][-1]
    ok = all(consistent_linear(f) for f in fits.values())
    fig = (
        "time vs n slope "
        + ", ".join(f"h={h}: {_slope_txt(f)}" for h, f in fits.items())
        + f"; at n={big['n']}: "
        + ", ".join(f"h={h} {1e3 * big[f'fast_h{h}']:.1f} ms" for h in hs)
    )
    series = _time_series(sc, {f"h={h}": f"fast_h{h}" for h in hs})
    return Result(ok, fig, {"fits": fits, "largest_n": big, "series": series})


@check(
    id="cat.B2.residual_cost",
    label="Claim §B.2",
    name="Residual adds O(nd) per layer",
    kind="ASYM",
    expected="OK",
    spec=(20,),
    uses=("cat.L5.1.fast_dT", "ref.J3.residual"),
)
def check_claim_B2(ctx: Context) -> Result:
    r"""Claim §B.2, spec #20: slope of the residual fast layer in n, and its time over the plain layer's."""
    sc = _exp(ctx, "scaling")
    f = sc["fits"]["fast_residual"]
    ratios = [r["fast_residual"] / r["fast"] for r in sc["rows"]]
    fig = f"residual slope {_slope_txt(f)}; residual/plain time {min(ratios):.2f}..{max(ratios):.2f}"
    return Result(consistent_linear(f), fig, {"fit": f, "ratios": ratios})


@check(
    id="cat.H3.single_layer",
    label="Lemma H.3",
    name="g_1 o Attn_1: |g1 - dL/dX| <= the E.11 bound",
    kind="INEQ",
    expected="OK",
    spec=(82,),
    uses=("ref.H2.G_i",),
)
def check_lemma_H3(ctx: Context) -> Result:
    r"""Lemma H.3, spec #82: one layer with $g_1(Z) = \tanh(Z W_g)$, $T_0 = X$; $G_1$ exact (H.2), then E.11.

    Bound: $\sum_{k \in \{2,4,6,7\}} \beta n d \|\tilde z_k - z_k\|_\infty \|X\|_\infty \|W\|_\infty
    + n d \delta_f \|G_1\|_\infty \|W_V\|_\infty$ (spec §2.4, corrected kernels), with the measured $\tilde z_k$.
    """
    rng = ctx.rng(8104)
    rows = []
    for n in (32, 128) if ctx.quick else (64, 256, 1024):
        d, g = 4, 3
        X = rng.uniform(-1, 1, (n, d))
        L = Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(4)))
        tr = forward(X, [L], activation="tanh")
        C = rng.uniform(-1, 1, (n, d))
        exact = backward(tr, C)
        got = cm.fast_backward(tr, C, g).dT[0]
        hc = tr.caches[0].attn.heads[0]
        beta, W, G = float(hc.beta), hc.W, exact.layers[0].G
        lr = cm.lowrank_head(X @ L.W_Q, X @ L.W_K, beta, g)
        f, ft = hc.f, lr.dense()
        q = G @ hc.h.T
        K = (G * hc.s).sum(axis=1)
        dz_p1 = float(np.abs((ft - f) * q).max())  # z4 = p1, z7* = p1^T
        dz_p2 = float(np.abs(K[:, None] * (ft - f)).max())  # z2 = p2, z6* = p2^T
        mx = lambda a: float(np.abs(a).max())  # noqa: E731
        bound = beta * n * d * mx(X) * mx(W) * 2 * (dz_p1 + dz_p2) + n * d * mx(ft - f) * mx(G) * mx(L.W_V)
        err = mx(got - exact.dX)
        rows.append({"n": n, "error": err, "bound": bound, "slack": bound / err if err else float("inf")})
    ok = all(r["error"] <= r["bound"] * (1 + 1e-9) + 1e-14 for r in rows)
    fig = "; ".join(f"n={r['n']}: {r['error']:.1e} <= {r['bound']:.1e} (slack {r['slack']:.0f})" for r in rows)
    return Result(ok, fig, {"rows": rows, "degree": 3})


@check(
    id="cat.E1.K_cost",
    label="Lemma E.1",
    name="K = (G . s) 1_d = p1 1_n in O(nd); its error from a fast s",
    kind="ASYM",
    expected="OK",
    spec=(60,),
    uses=("ref.C4.closed_form",),
)
def check_lemma_E1(ctx: Context) -> Result:
    r"""Lemma E.1, spec #60: $K = (G \odot s) 1_d$ equals $p_1 1_n$ (TOL_ID), costs O(nd) (time slope in n, min of k),
    and with a fast forward $\tilde s$ carries $|\tilde K - K| \le d \|G\|_\infty \|\tilde s - s\|_\infty$.
    """
    rng = ctx.rng(8106)
    n0, d = 200, 4
    X = rng.uniform(-1, 1, (n0, d))
    L = Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(3)))
    G = rng.uniform(-1, 1, (n0, d))
    hc = forward(X, [L]).caches[0].attn.heads[0]
    K = (G * hc.s).sum(axis=1)
    e_id = cm.errs(K, (hc.f * (G @ hc.h.T)).sum(axis=1))["rel"]
    lr = cm.lowrank_head(X @ L.W_Q, X @ L.W_K, float(hc.beta), 3)
    s_t = lr.f_mul(hc.h)
    e_K = float(np.abs((G * s_t).sum(axis=1) - K).max())
    b_K = d * float(np.abs(G).max()) * float(np.abs(s_t - hc.s).max())
    ns = [2**k for k in (range(12, 16) if ctx.quick else range(12, 19))]
    times = []
    for n in ns:
        Gn, Sn = rng.uniform(-1, 1, (n, d)), rng.uniform(-1, 1, (n, d))
        times.append(cm.min_time(lambda Gn=Gn, Sn=Sn: (Gn * Sn).sum(axis=1), 3 if ctx.quick else 5))
    f = cm.loglog_fit(ns, times)
    ok = e_id < TOLERANCES["ID_float64"] and e_K <= b_K * (1 + 1e-9) + 1e-14 and consistent_linear(f)
    fig = f"K vs p1 1_n {e_id:.1e}; fast-s error {e_K:.1e} <= {b_K:.1e}; time slope {_slope_txt(f)}"
    return Result(ok, fig, {"identity": e_id, "K_error": e_K, "K_bound": b_K, "ns": ns, "times": times, "fit": f})


# -- Appendix I: the prefix-sum tool -----------------------------------------------------------------------------
def algorithm2_literal(U0: np.ndarray, V0: np.ndarray, v: np.ndarray) -> np.ndarray:
    r"""Algorithm 2 (CausalMask) line by line: $c_j = c_{j-1} + V_0[j]^\top v_j$, $Y_j = \langle U_0[j], c_j\rangle$."""
    n, k = U0.shape
    c = np.zeros(k)
    Y = np.empty(n)
    cs = []
    for j in range(n):  # lines 2-5: prefix sums
        c = c + V0[j] * v[j]
        cs.append(c)
    for j in range(n):  # lines 6-8
        Y[j] = U0[j] @ cs[j]
    return Y


@check(
    id="cat.alg2.causal_mask",
    label="Algorithm 2",
    name="CausalMask(U0, V0, v) = (M . U0 V0^T) v by prefix sums",
    kind="ALG",
    expected="OK",
    spec=(87,),
    uses=("ref.I5.causal",),
)
def check_algorithm_2(ctx: Context) -> Result:
    r"""Algorithm 2, spec #87: the literal listing against the dense masked product; the suffix variant (§2.7)."""
    rng = ctx.rng(8105)
    n, k = 50, 4
    U0, V0, v = rng.uniform(-1, 1, (n, k)), rng.uniform(-1, 1, (n, k)), rng.uniform(-1, 1, n)
    dense = np.tril(U0 @ V0.T) @ v
    e = cm.errs(algorithm2_literal(U0, V0, v), dense)["rel"]
    suffix = np.cumsum((U0 * v[:, None])[::-1], axis=0)[::-1]  # c'_j = sum_{l >= j} U0[l] v_l
    e_t = cm.errs((V0 * suffix).sum(axis=1), np.tril(U0 @ V0.T).T @ v)["rel"]
    tol = TOLERANCES["ID_float64"]
    return Result(
        e < tol and e_t < tol,
        f"literal vs dense {e:.1e}; suffix-sum transpose {e_t:.1e} (n={n}, k={k})",
        {"literal": e, "transpose": e_t},
    )


@check(
    id="cat.I4.masked_thin",
    label="Lemma I.4",
    name="(M . U0 V0^T) H by prefix sums: exact, time linear in n",
    kind="ID",
    expected="OK",
    spec=(88,),
    uses=("cat.alg2.causal_mask",),
)
def check_lemma_I4(ctx: Context) -> Result:
    r"""Lemma I.4, spec #88: identity against dense (TOL_ID) and the time slope in n against the dense product."""
    sc = _exp(ctx, "scaling")
    e = sc["checks"]["prefix_vs_dense_rel"]
    f, fd = sc["fits"]["causal_prefix"], sc["fits"]["causal_dense"]
    ok = e < TOLERANCES["ID_float64"] and consistent_linear(f)
    series = _time_series(sc, {k: k for k in ("causal_prefix", "causal_dense")})
    return Result(
        ok,
        f"vs dense {e:.1e}; time slope prefix {_slope_txt(f)}, dense {_slope_txt(fd)}",
        {"error": e, "fit_prefix": f, "fit_dense": fd, "series": series},
    )


# -- weak-point experiments (spec §4) ----------------------------------------------------------------------------
@check(
    id="exp.W5.beta",
    label="Weak point W5",
    name="The beta-free appendix formulas hold only for beta = 1",
    kind="ID",
    expected="AMBIG",
    spec=(29,),
    uses=("ref.F4.dW",),
)
def check_W5(ctx: Context) -> Result:
    r"""Weak point W5 (spec §4, catalogue #29): $\beta$-free forms against mpmath FD for $\beta \in \{1, 1/d\}$.

    Second part: with $\beta = 1$ the logits reach $d R^2$, not $R^2$.
    """
    b = _exp(ctx, "beta_scale")
    r1, rd = b["rows"]
    lr = b["logit_range"][-1]
    fig = (
        f"beta=1: beta-free dX {r1['dX_beta_free']:.0e}; beta=1/d: beta-free dX {rd['dX_beta_free']:.2f}, dW "
        f"{rd['dW_beta_free']:.2f}, with beta {rd['dX_with_beta']:.0e}; d={lr['d']}: logit {lr['max_logit_beta1']:.1f}"
        f" (beta=1) vs {lr['max_logit_beta1/d']:.2f} (1/d)"
    )
    return Result(b["beta_free_only_for_beta_1"], fig, b)


@check(
    id="exp.W6.bounded_entries",
    label="Weak point W6",
    name="Logit range across depth leaves the C.13 regime",
    kind="ASYM",
    expected="GAP",
    spec=(36,),
    uses=("ref.J3.residual",),
)
def check_W6(ctx: Context) -> Result:
    r"""Weak point W6 (spec §4; Lemma C.13 / I.1 hypotheses).

    $\|T_i\|$, $\|T_iW\|$, max logit per layer for residual stacks at 1x, 2x, 4x weights (and a plain stack)."""
    be = _exp(ctx, "bounded_entries")
    res = [s for s in be["stacks"] if s["residual"]]
    grows = any(s["logit_fit"]["slope"] > 0 for s in res)
    ok = bool(be["scales_leaving_logit_regime"]) and grows
    fig = "; ".join(
        f"{s['scale']:g}x: logit {s['rows'][0]['logit_max']:.1f}->{s['rows'][-1]['logit_max']:.1f}, "
        f"leaves at layer {s['first_layer_logit_ratio_ge_1']}"
        for s in res
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
    return Result(ok, fig, {**be, "series": _series(curves, "layer", "max |beta q.k|")})


@check(
    id="exp.W7.depth",
    label="Weak point W7",
    name="Error compounding over layers: C_j, products, degree vs m",
    kind="ASYM",
    expected="GAP",
    spec=(83, 97),
    uses=("cat.H4.multi_layer",),
)
def check_W7(ctx: Context) -> Result:
    r"""Weak point W7 (spec §4; Lemma H.4, J.5, §2.10).

    Also W17 (J.3's residual factor compounding over 2m wrappers): the depth experiment's reading and its factors.
    """
    gap, dd = _depth_gap(ctx)
    c = dd["conclusion"]
    fig = (
        "per-layer growth of the error at fixed g: "
        + ", ".join(f"{f['growth_per_layer']:.2f} (n={f['n']},g={f['g']})" for f in dd["fits"])
        + f"; product norm x{math.exp(c['product_norm_fit']['slope']):.2f}/layer; supports 1/poly for m=n^o(1): "
        f"{c['supports_1_over_poly_for_m_n_o1']}"
    )
    curves = {}
    for sw in dd["sweeps"]:
        for g in dd["settings"]["degrees"]:
            rs = [r for r in sw["rows"] if r["g"] == g]
            curves[f"n={sw['n']}, g={g}"] = ([r["m"] for r in rs], [r["dX"]["rel"] for r in rs])
    return Result(gap, fig, {**dd, "series": _series(curves, "depth m", "rel. error of dL/dX")})


@check(
    id="exp.W8.looseness",
    label="Weak point W8",
    name="observed/bound per lemma (C.13-C.19, E.2-E.11, F.5, G.4, H.2)",
    kind="INEQ",
    expected="OK",
    spec=(37, 38, 39, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 75, 79, 81),
    uses=("ref.D17.five_terms",),
)
def check_W8(ctx: Context) -> Result:
    r"""Weak point W8 (spec §4; spec §2.4 bounds).

    every explicit bound holds; the table records observed/bound (paper constant and tight constant)."""
    lo = _exp(ctx, "looseness")
    worst = min((t for t in lo["table"] if all(t["ratio_paper"])), key=lambda t: max(t["ratio_paper"]))
    fig = (
        f"{len(lo['table'])} bounds hold at n={lo['ns']}: {lo['all_hold']}; loosest {worst['lemma']} observed/bound "
        f"{max(worst['ratio_paper']):.1e}; "
        + ", ".join(f"{t['lemma'][6:]} {max(t['ratio_paper']):.0e}" for t in lo["table"] if all(t["ratio_paper"]))
    )
    curves = {t["lemma"]: (lo["ns"], t["ratio_paper"]) for t in lo["table"] if all(t["ratio_paper"])}
    return Result(lo["all_hold"], fig, {**lo, "series": _series(curves, "n", "observed / paper bound", logx=True)})


@check(
    id="exp.W18.constants",
    label="Weak point W18",
    name="Loose constants (C.18, C.19, E.2, E.7): tight and printed",
    kind="INEQ",
    expected="OK",
    spec=(41, 42, 61, 66),
    uses=("exp.W8.looseness",),
)
def check_W18(ctx: Context) -> Result:
    r"""Weak point W18 (spec §4; Lemmas C.18, C.19, E.2, E.7).

    the printed constants (factor n) and the tight ones (d, 1, no n) both hold; both slacks recorded."""
    lo = _exp(ctx, "looseness")
    keys = ("Lemma C.18", "Lemma C.19", "Lemma E.2", "Lemma E.7")
    rows = [r for r in lo["rows"] if r["lemma"] in keys]
    ok = all(r["holds_paper"] and r["holds_tight"] for r in rows)
    tab = [t for t in lo["table"] if t["lemma"] in keys]
    fig = "; ".join(
        f"{t['lemma'][6:]}: printed {max(t['ratio_paper']):.0e}, tight {max(t['ratio_tight']):.2f}" for t in tab
    )
    return Result(ok, fig, {"rows": rows, "table": tab})


@check(
    id="exp.W9.weight_grads",
    label="Weak point W9",
    name="Weight-gradient errors of lower layers are unbounded by H.4",
    kind="ASYM",
    expected="GAP",
    spec=(18, 83),
    uses=("cat.H4.multi_layer",),
)
def check_W9(ctx: Context) -> Result:
    r"""Weak point W9 (spec §4; Lemma H.4, Theorem 4.2).

    per-layer errors of $g_w$, $g_v$ at the largest depth, against the error of dL/dX."""
    dd = _exp(ctx, "depth")
    last = _deepest_row(dd)
    w = [max(p["dW"]["rel"], p["dW_V"]["rel"]) for p in last["layers"]]
    ok = min(w) > 0 and max(w) >= 0.1 * last["dX"]["rel"]
    fig = (
        f"m={last['m']}, g={last['g']}: weight-gradient rel. errors per layer {min(w):.1e}..{max(w):.1e} vs "
        f"dL/dX {last['dX']['rel']:.1e} (no lemma bounds them)"
    )
    lay = [p["layer"] for p in last["layers"]]
    series = _series(
        {
            "dL/dW rel. error": (lay, [p["dW"]["rel"] for p in last["layers"]]),
            "dL/dW_V rel. error": (lay, [p["dW_V"]["rel"] for p in last["layers"]]),
            "dL/dX rel. error": (lay, [last["dX"]["rel"]] * len(lay)),
        },
        "layer",
        "relative error",
    )
    return Result(ok, fig, {"row": last, "series": series})


@check(
    id="exp.W10.forward",
    label="Weak point W10",
    name="Forward-induced error (fast forward) is not analysed",
    kind="ASYM",
    expected="GAP",
    spec=(12, 83),
    uses=("cat.H4.multi_layer",),
)
def check_W10(ctx: Context) -> Result:
    r"""Weak point W10 (spec §4; Algorithm 1, Lemma H.4).

    exact/fast forward x exact/fast backward; the forward-induced part is real and unanalysed."""
    fe = _exp(ctx, "forward_error")
    r = max(fe["rows"], key=lambda r: r["forward_induced"]["abs"])
    fig = (
        f"m={r['m']}, g={r['g']}: forward-induced {r['forward_induced']['abs']:.1e}, backward-induced "
        f"{r['backward_induced']['abs']:.1e}, total {r['total']['abs']:.1e}, |T_m~ - T_m| {r['T_m_forward_error']:.1e}"
    )
    g0 = fe["settings"]["degrees"][0]
    rs = [r for r in fe["rows"] if r["g"] == g0]
    series = _series(
        {
            f"{k} (g={g0})": ([r["m"] for r in rs], [r[k]["abs"] for r in rs])
            for k in ("backward_induced", "forward_induced", "total")
        },
        "depth m",
        "|error of dL/dX|",
    )
    return Result(fe["forward_error_significant"], fig, {**fe, "series": series})


@check(
    id="exp.W11.phi_prime",
    label="Weak point W11",
    name="Error transfer through g_i grows with unbounded phi'",
    kind="ASYM",
    expected="GAP",
    spec=(81, 82),
    uses=("ref.H2.G_i",),
)
def check_W11(ctx: Context) -> Result:
    r"""Weak point W11 (spec §4; Lemma H.2, §2.6).

    transfer factor against $\|\mathrm{Attn}W_g\|_\infty$ for tanh and $x^3$ (log–log slope with interval)."""
    pp = _exp(ctx, "phi_prime")
    f = pp["fits"]
    fig = f"transfer vs |U| slope: cube {_slope_txt(f['cube'])}, tanh {_slope_txt(f['tanh'])}"
    series = _series(
        {
            a: (
                [r["U_norm"] for r in pp["rows"] if r["activation"] == a],
                [r["transfer_exact"] for r in pp["rows"] if r["activation"] == a],
            )
            for a in ("tanh", "cube")
        },
        "||Attn W_g||_inf",
        "error transfer through g_i",
        logx=True,
    )
    return Result(pp["unbounded_growth_shown"], fig, {**pp, "series": series})


@check(
    id="exp.W14.degree_formula",
    label="Weak point W14",
    name="Lemma I.1 degree: inner log with R^2 fits better",
    kind="ASYM",
    expected="AMBIG",
    spec=(84,),
    uses=(),
)
def check_W14(ctx: Context) -> Result:
    r"""Weak point W14 (spec §4; Lemma I.1, §2.5).

    minimal Taylor/Chebyshev degree for relative eps on $[-R^2, R^2]$, fitted against both readings."""
    df = _exp(ctx, "degree_formula")
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
    return Result(ok, fig, {**df, "series": _series(curves, "F(R, eps)", "minimal degree", logy=False)})


@check(
    id="exp.W19.relative_error",
    label="Weak point W19",
    name="Absolute 1/poly(n) met while the relative error is large",
    kind="ASYM",
    expected="GAP",
    spec=(11,),
    uses=("cat.H4.multi_layer",),
)
def check_W19(ctx: Context) -> Result:
    r"""Weak point W19 (spec §4; Theorem 4.2).

    absolute, relative error and cosine per component, for the sum loss and the 1/(nd)-normalized loss."""
    re_ = _exp(ctx, "relative_error")
    rows = re_["losses"]["normalized_1/(nd)"]
    worst = max(rows, key=lambda r: r["rel"])
    fig = (
        f"normalized loss: {len(re_['absolute_ok_relative_bad'])} components with abs <= 1/n and rel >= 1e-2; "
        f"worst {worst['field']}: abs {worst['abs']:.1e}, rel {worst['rel']:.1e}, cos {worst['cos']:.5f}"
    )
    return Result(re_["gap_shown"], fig, re_)


@check(
    id="exp.W20.rank",
    label="Weak point W20",
    name="Rank C(d+g,g) against the paper's C(2(g+d),2g)",
    kind="INEQ",
    expected="OK",
    spec=(84, 36),
    uses=(),
)
def check_W20(ctx: Context) -> Result:
    r"""Weak point W20 (spec §4; Lemma I.1).

    the lift's column count (= numerical rank) is at most the paper's bound; ratio recorded."""
    rb = _exp(ctx, "rank_bound")
    num_ok = all(r["numerical_rank"] in (None, r["columns"]) for r in rb["rows"])
    fig = f"{len(rb['rows'])} (d, g): all within the bound {rb['all_hold']}; largest actual/bound {rb['max_ratio']:.2f}"
    d0 = rb["settings"]["ds"][-1]
    rs = [r for r in rb["rows"] if r["d"] == d0]
    series = _series(
        {
            f"C(d+g, g), d={d0}": ([r["g"] for r in rs], [r["columns"] for r in rs]),
            f"C(2(g+d), 2g), d={d0}": ([r["g"] for r in rs], [r["paper_bound"] for r in rs]),
        },
        "degree g",
        "rank",
    )
    return Result(rb["all_hold"] and num_ok, fig, {**rb, "series": series})


@check(
    id="exp.W22.G_norms",
    label="Weak point W22",
    name="|G_i| per layer: computed, not an input; varies with depth (measured)",
    kind="ASYM",
    expected="GAP",
    spec=(61,),
    uses=("cat.H4.multi_layer",),
)
def check_W22(ctx: Context) -> Result:
    r"""Weak point W22 (spec §4; Lemmas E.2 ff.).

    $\|G_i\|_\infty$ per layer for the deepest stack; the E-lemmas assume it is an input of O(log n) bits."""
    dd = _exp(ctx, "depth")
    last = _deepest_row(dd)
    G = [p["G_norm"] for p in last["layers"]]
    ok = max(G) > G[-1]
    fig = f"|G_i| from the top layer down: {' '.join(f'{x:.2f}' for x in reversed(G))} (max/top {max(G) / G[-1]:.2f})"
    series = _series({"||G_i||_inf": (list(range(1, len(G) + 1)), G)}, "layer", "||G_i||_inf", logy=False)
    return Result(ok, fig, {"G_norm": G, "product_norms": dd["amplification"]["products"], "series": series})
