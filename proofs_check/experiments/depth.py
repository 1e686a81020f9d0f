r"""Depth experiment: Lemma H.4 / 5.5 / J.5, error against the number of layers m (spec §2.10, §4 W7, W9, W17, W22).

Paper: Lemma H.4 ("Theorem H.4" in Lemma 5.5), Lemma J.5 (residual), Theorem 4.2. The proof's step 3.2 says the
error of the upstream gradient "is not magnified by more than poly(n)" per layer. Spec §2.10 makes the recursion
explicit: with the exact linear backward maps $\mathfrak B_i: gT_i \mapsto \partial L/\partial T_{i-1}$,

.. math::
    e_{i-1} \le \delta_i + C_i e_i \quad\Rightarrow\quad e_0 \le \sum_{i=1}^{m} \Big(\prod_{j<i} C_j\Big)\delta_i ,
    \qquad C_i = \|\mathfrak B_i\|_{\infty\to\infty}.

What is measured (residual stacks $Z_i = T_{i-1} + \mathrm{Attn}_i$, $T_i = Z_i + \tanh(Z_i W_g)$, $\beta = 1/d$,
exact forward, corrected fast backward at a **fixed** Taylor degree g, loss $\langle C, T_m\rangle$):

* the error of dL/dX and of every layer's dL/dW and dL/dW_V against m (absolute, relative, cosine; W9, W19);
* $\|G_i\|_\infty$ per layer (W22);
* per layer: the exact $\|\mathfrak B_j\|_{\infty\to\infty}$ (max row sum of the matrix, built from basis vectors),
  the spectral radius by power iteration, and the bound of spec §2.10; the exact norm of the product
  $\|\mathfrak B_1 \cdots \mathfrak B_m\|_{\infty\to\infty}$ against $\prod_j C_j$; the local errors $\delta_i$ and
  the unrolled prediction $\sum_i (\prod_{j<i} C_j) \delta_i$ against the observed $e_0$;
* the smallest degree g that keeps the relative error of dL/dX at or below 1e-8, against m;
* fits with 95% t-intervals: log(error) against m (per-layer growth factor), g_needed against m.
"""

from __future__ import annotations

import math

import numpy as np

from proofs_check.experiments import _common as cm
from reference import backward, forward

TARGET = 1e-8  # the relative error the degree scan aims at (issue 5: "the degree needed to keep 1e-8")


def sizes(quick: bool) -> dict:
    """Quick: n <= 128, m <= 4 (seconds). Full: m up to 16, n up to 1024 (a few minutes)."""
    if quick:
        return {
            "ns": [64, 128],
            "depths": [1, 2, 3, 4],
            "degrees": [4, 6],
            "n_C": 48,
            "n_scan": 64,
            "g_scan": list(range(2, 17)),
            "d": 4,
            "scale": 1.0,
        }
    return {
        "ns": [256, 1024],
        "depths": [1, 2, 3, 4, 6, 8, 12, 16],
        "degrees": [4, 6, 8],
        "n_C": 256,
        "n_scan": 1024,
        "g_scan": list(range(2, 21)),
        "d": 4,
        "scale": 1.0,
    }


def _stack(rng, n, d, m, scale, heads=1):
    X, layers = cm.residual_stack(rng, n, d, m, scale=scale)
    tr = forward(X, layers, residual=True, activation="tanh", heads=heads)
    C = rng.uniform(-1, 1, X.shape)  # loss <C, T_m>: dL/dT_m = C
    return tr, C


def error_vs_depth(tr, C, depths, degrees) -> list[dict]:
    """Rows (m, g): errors of dL/dX and per-layer dW, dW_V, with ||G_i|| and the logit range per layer."""
    rows = []
    for m in depths:
        t = cm.truncate(tr, m)
        ex = backward(t, C)
        for g in degrees:
            fb = cm.fast_backward(t, C, g)
            per = []
            for i in range(m):
                dW_ex = ex.layers[i].dW if ex.layers[i].dW.ndim == 2 else ex.layers[i].dW.sum(axis=0)
                per.append(
                    {
                        "layer": i + 1,
                        "dW": cm.errs(fb.dW[i], dW_ex),
                        "dW_V": cm.errs(fb.dW_V[i], ex.layers[i].dW_V),
                        "dT_in": cm.errs(fb.dT[i], ex.dT[i]),
                        "G_norm": float(np.abs(ex.layers[i].G).max()),
                        "logit_max": fb.logit_max[i],
                    }
                )
            rows.append({"m": m, "g": g, "dX": cm.errs(fb.dT[0], ex.dX), "layers": per})
    return rows


def amplification(tr, C, g: int, rng) -> dict:
    r"""Per layer $C_j$ (exact, power iteration, §2.10 bound), local errors $\delta_j$, products, the unrolled bound."""
    m = len(tr.layers)
    ex = backward(tr, C)
    fb = cm.fast_backward(tr, C, g)
    per = []
    for j in range(m):
        C_exact = cm.linf_operator_norm(tr, [j])
        rho = cm.power_iteration(tr, j, rng)
        bnd = cm.lip_bound(tr, j)
        # local error at the approximate input actually used: (B~_j - B_j)(gT~_j)
        fast_out = cm.fast_layer(tr, j, fb.dT[j + 1], g)[0]
        exact_out = cm.layer_vjp_batch(tr, j, fb.dT[j + 1][None])[0]
        delta = float(np.abs(fast_out - exact_out).max())
        per.append({"layer": j + 1, "C_exact": C_exact, "rho_power": rho, **bnd, "delta": delta})
    # e_0 <= sum_i (prod_{j<i} C_j) delta_i   (layers indexed 1..m, C_j of the layers below i)
    pred, prod = 0.0, 1.0
    for j in range(m):
        pred += prod * per[j]["delta"]
        prod *= per[j]["C_exact"]
    e0 = float(np.abs(fb.dT[0] - ex.dX).max())
    prods = []
    for k in range(1, m + 1):  # depth-k model: B_1 ... B_k, applied top (k) first
        prods.append(
            {
                "m": k,
                "prod_C_exact": math.prod(p["C_exact"] for p in per[:k]),
                "prod_C_bound": math.prod(p["C_bound"] for p in per[:k]),
                "norm_of_product": cm.linf_operator_norm(tr, list(reversed(range(k)))),
            }
        )
    return {
        "g": g,
        "layers": per,
        "products": prods,
        "e0_observed": e0,
        "e0_unrolled_bound": pred,
        "unrolled_bound_holds": bool(e0 <= pred * (1 + 1e-9) + 1e-14),
    }


def degree_needed(tr, C, depths, g_scan, target=TARGET) -> list[dict]:
    """Smallest g in ``g_scan`` with relative error of dL/dX <= target, per depth (None when none reaches it)."""
    out = []
    for m in depths:
        t = cm.truncate(tr, m)
        ex = backward(t, C).dX
        need, last = None, None
        for g in g_scan:
            last = cm.errs(cm.fast_backward(t, C, g).dT[0], ex)["rel"]
            if last <= target:
                need = g
                break
        lmax = max(cm.logit_max(t, i) for i in range(m))
        out.append(
            {
                "m": m,
                "g_needed": need,
                "rel_err_at_stop": last,
                "rank": None if need is None else cm.rank(tr.X.shape[1], need),
                "logit_max": lmax,
                "g_taylor_bound_worst_layer": cm.min_taylor_degree(lmax, target),
            }
        )
    return out


def run(quick: bool = True, seed: int = 0) -> dict:
    """The whole depth experiment; JSON-serialisable tables plus the verdict text."""
    sz = sizes(quick)
    rng = np.random.default_rng([seed, 7001])
    d, mmax = sz["d"], max(sz["depths"])
    sweeps, fits = [], []
    for n in sz["ns"]:
        tr, C = _stack(rng, n, d, mmax, sz["scale"])
        rows = error_vs_depth(tr, C, sz["depths"], sz["degrees"])
        T_norms = [float(np.abs(T).max()) for T in tr.T]
        sweeps.append({"n": n, "rows": rows, "T_norm": T_norms})
        for g in sz["degrees"]:
            pts = [(r["m"], r["dX"]["rel"]) for r in rows if r["g"] == g and r["dX"]["rel"] > 0]
            f = cm.fit_line([p[0] for p in pts], np.log([p[1] for p in pts]))
            fits.append(
                {
                    "n": n,
                    "g": g,
                    "log_rel_err_vs_m": f,
                    "growth_per_layer": math.exp(f["slope"]),
                    "growth_interval": [math.exp(f["lo"]), math.exp(f["hi"])],
                }
            )
    trC, CC = _stack(rng, sz["n_C"], d, mmax, sz["scale"])
    amp = amplification(trC, CC, min(sz["degrees"]), rng)
    n_scan = sz["n_scan"]
    trS, CS = _stack(np.random.default_rng([seed, 7002]), n_scan, d, mmax, sz["scale"])
    need = degree_needed(trS, CS, sz["depths"], sz["g_scan"])
    reached = [r for r in need if r["g_needed"] is not None]
    g_fit = cm.fit_line([r["m"] for r in reached], [r["g_needed"] for r in reached]) if len(reached) >= 3 else None
    data = {
        "settings": {
            **sz,
            "stack": "residual, tanh, beta=1/d, W_Q,W_K~U[-s,s], W_V,W_g~U[-s/4,s/4]",
            "seed": seed,
            "target": TARGET,
        },
        "sweeps": sweeps,
        "fits": fits,
        "amplification": amp,
        "degree_needed": {"n": n_scan, "rows": need, "fit_g_vs_m": g_fit},
    }
    data["conclusion"] = conclude(data)
    return cm.jsonable(data)


SEPARATE = 0.8  # one growth model "fits clearly better" when its RMS residual is below 0.8 x the other's (stated)


def conclude(data: dict) -> dict:
    """The honest reading of the measurements (issue 5): do they support 1/poly(n) for m = n^{o(1)}?

    Three separate findings: (1) the proof's route (spec §2.10) multiplies per-layer norms, (2) what the error really
    sees is the norm of the product of the exact backward maps, (3) the degree a fixed accuracy needs as m grows.
    """
    grows = [f for f in data["fits"] if f["log_rel_err_vs_m"]["lo"] > 0]
    amp = data["amplification"]
    C = [p["C_exact"] for p in amp["layers"]]
    Cb = [p["C_bound"] for p in amp["layers"]]
    pr = amp["products"]
    f_prod = cm.fit_line([p["m"] for p in pr], np.log([p["norm_of_product"] for p in pr]))
    f_prodC = cm.fit_line([p["m"] for p in pr], np.log([p["prod_C_exact"] for p in pr]))
    gam = [math.exp(f_prod[k]) for k in ("slope", "lo", "hi")]
    ms = np.array([p["m"] for p in pr], dtype=float)
    ly = np.log([p["norm_of_product"] for p in pr])
    f_pow = cm.fit_line(np.log(ms), ly)
    rms_geo = float(np.sqrt(np.mean((ly - f_prod["intercept"] - f_prod["slope"] * ms) ** 2)))
    rms_pow = float(np.sqrt(np.mean((ly - f_pow["intercept"] - f_pow["slope"] * np.log(ms)) ** 2)))
    gamC = math.exp(f_prodC["slope"])
    need = data["degree_needed"]["rows"]
    g_vals = [r["g_needed"] for r in need]
    deg_grows = (g_vals[-1] is None and g_vals[0] is not None) or (
        None not in (g_vals[0], g_vals[-1]) and g_vals[-1] > g_vals[0]
    )
    fits_txt = (
        f"c^m with c = {gam[0]:.2f} (95% [{gam[1]:.2f}, {gam[2]:.2f}], RMS {rms_geo:.2f}) or m^p with p = "
        f"{f_pow['slope']:.2f} (95% [{f_pow['lo']:.2f}, {f_pow['hi']:.2f}], RMS {rms_pow:.2f})"
    )
    if rms_geo < SEPARATE * rms_pow and gam[1] > 1:
        amp_txt = f"geometric fits clearly better: {fits_txt}"
    elif rms_pow < SEPARATE * rms_geo:
        amp_txt = f"a power of m fits clearly better: {fits_txt}"
    else:
        amp_txt = f"these depths do not separate {fits_txt}"
    text = (
        f"(1) Proof route (spec §2.10): exact per-layer norms ||B_j||_inf->inf lie in [{min(C):.2f}, {max(C):.2f}] "
        f"(the §2.10 bound {min(Cb):.0f}..{max(Cb):.0f}), "
        f"so prod_j C_j grows by {gamC:.2f} per layer and the unrolled bound {amp['e0_unrolled_bound']:.2e} is far "
        f"above the observed error {amp['e0_observed']:.2e}: an induction that multiplies per-layer constants gives "
        f"c^m, poly(n) only for m = O(log n), not for m = n^o(1) (m = log^2 n gives n^(Theta(log n))). "
        f"(2) Actual amplification, the norm of the product ||B_1...B_m|| (what the error sees): {amp_txt}; far "
        f"below the product of the norms. (3) At fixed degree the relative error of dL/dX grows with depth in "
        f"{len(grows)}/{len(data['fits'])} (n, g) sweeps (per-layer factors "
        + ", ".join(f"{f['growth_per_layer']:.2f} (n={f['n']}, g={f['g']})" for f in data["fits"])
        + f"); the degree for {data['settings']['target']:g} goes {g_vals[0]} -> {g_vals[-1]} from m={need[0]['m']} "
        f"to m={need[-1]['m']} (rank {need[0]['rank']} -> {need[-1]['rank']}), tracking the logit range "
        f"{need[0]['logit_max']:.2f} -> {need[-1]['logit_max']:.2f} of the worst layer (weak point W6). "
    )
    supports = None if not (deg_grows or grows) else False
    if supports is False:
        text += (
            "Answer: the data do not support 1/poly(n) at n^(1+o(1)) cost for m = n^o(1) as stated: the proof's "
            "bound compounds geometrically, and the accuracy at a fixed cost degrades with depth"
            + (" because the activations (hence the logits) grow" if deg_grows else "")
            + "; they support it for m = O(1), and deeper only under an extra hypothesis bounding the logits at every "
            "layer and the product of the backward maps."
        )
    else:
        text += (
            "Answer: at these depths neither the error nor the degree grows measurably, so the data do not decide "
            "the m = n^o(1) claim; the proof still covers only m = O(1) (or m = O(log n) with bounded factors)."
        )
    return {
        "error_grows_with_depth": len(grows) > 0,
        "degree_grows_with_depth": bool(deg_grows),
        "product_norm_fit": f_prod,
        "product_of_norms_fit": f_prodC,
        "product_norm_growth_per_layer": gam,
        "product_norm_power_fit": f_pow,
        "rms_geometric": rms_geo,
        "rms_power": rms_pow,
        "amplification_reading": amp_txt,
        "min_C_exact": min(C),
        "supports_1_over_poly_for_m_n_o1": supports,
        "text": text,
    }


def plot(data: dict, path: str) -> str | None:
    """log error of dL/dX against m per (n, g); returns the path, or None when matplotlib is missing."""

    def draw(ax) -> None:
        for sw in data["sweeps"]:
            for g in data["settings"]["degrees"]:
                pts = [(r["m"], r["dX"]["rel"]) for r in sw["rows"] if r["g"] == g]
                ax[0].semilogy(*zip(*pts, strict=True), marker="o", label=f"n={sw['n']}, g={g}")
        ax[0].set_xlabel("depth m")
        ax[0].set_ylabel("rel. error of dL/dX")
        ax[0].legend()
        pr = data["amplification"]["products"]
        ax[1].semilogy([p["m"] for p in pr], [p["prod_C_exact"] for p in pr], marker="o", label="prod ||B_j||")
        ax[1].semilogy([p["m"] for p in pr], [p["norm_of_product"] for p in pr], marker="s", label="||B_1...B_m||")
        ax[1].semilogy([p["m"] for p in pr], [p["prod_C_bound"] for p in pr], marker="^", label="prod bound §2.10")
        ax[1].set_xlabel("depth m")
        ax[1].legend()

    return cm.save_plot(path, draw, 1, 2, figsize=(10, 4))
