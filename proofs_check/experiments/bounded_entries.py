r"""Bounded-entry hypothesis across depth (spec §4 W6; Lemma C.13 / I.1 hypotheses, Theorems 1.4, 4.1, 4.2).

Paper: Lemma C.13 needs $\|T_{i-1} W_i\|_\infty, \|T_{i-1}\|_\infty \le R = o(\sqrt{\log n})$ (with the $1/d$
scale the logits then lie in $[-R^2, R^2]$, $R^2 = o(\log n)$) at **every** layer; the theorems assume only
"O(log n)-bit entries", and [AS23] show $R = \Theta(\sqrt{\log n})$ is already hard under SETH.

Measured, per layer i of residual stacks (and a plain stack for contrast), with weight scales 1x, 2x, 4x:
$\|T_{i-1}\|_\infty$, $\|T_{i-1} W_i\|_\infty$, the logit range $\bar R_i = \max|\beta q\cdot k|$, the ratios
$R_i/\sqrt{\log n}$ (entry level, $R_i = \max(\|T_{i-1}\|, \|T_{i-1}W_i\|)$) and $\bar R_i / \log n$ (logit level);
the Taylor degree and rank that $\varepsilon = n^{-2}$ needs on $[-\bar R_i, \bar R_i]$ (spec §2.5 bound,
:func:`fastpath.poly.min_taylor_degree`); and the measured error of the shipped fast attention at a fixed degree.
"Leaves the regime" is reported at two stated thresholds, $R_i \ge \sqrt{\log n}$ and $\bar R_i \ge \log n$ (constant
1 in both: o(.) has no finite-n test, so this is a convention, recorded in the data).
"""

from __future__ import annotations

import math

import numpy as np

from fastpath.features import rank_of
from fastpath.poly import min_taylor_degree
from proofs_check.experiments import stacks as sk
from proofs_check.experiments.stats import fit_line, jsonable, save_plot
from reference import forward

FIXED_G = 4


def sizes(quick: bool) -> dict:
    if quick:
        return {"n": 128, "d": 4, "m": 4, "scales": [1.0, 2.0, 4.0]}
    return {"n": 1024, "d": 4, "m": 16, "scales": [1.0, 2.0, 4.0]}


def layer_table(tr, g: int = FIXED_G) -> list[dict]:
    n = tr.X.shape[0]
    eps = float(n) ** -2
    rows = []
    for i, (c, L) in enumerate(zip(tr.caches, tr.layers, strict=True)):
        T = c.T_in
        W = L.W_Q @ L.W_K.T
        Rbar = sk.logit_max(tr, i)
        R_entry = max(float(np.abs(T).max()), float(np.abs(T @ W).max()))
        fast = sk.fast_trace(T, [L], g, **sk.cfg_of(tr)).attn[0]  # (n, d) shipped fast attention at degree g
        exact = c.attn.out
        g_need = min_taylor_degree(Rbar, eps)
        rows.append(
            {
                "layer": i + 1,
                "T_norm": float(np.abs(T).max()),
                "TW_norm": float(np.abs(T @ W).max()),
                "logit_max": Rbar,
                "entry_ratio": R_entry / math.sqrt(math.log(n)),
                "logit_ratio": Rbar / math.log(n),
                "g_for_eps_n^-2": g_need,
                "rank_for_eps_n^-2": rank_of(L.W_Q.shape[1] // tr.heads, g_need),
                "attn_err_fixed_g": float(np.abs(fast - exact).max()),
                "rel_attn_err_fixed_g": float(np.abs(fast - exact).max() / np.abs(exact).max()),
            }
        )
    return rows


def _first(rows, key):
    return next((r["layer"] for r in rows if r[key] >= 1), None)


def run(quick: bool = True, seed: int = 0) -> dict:
    sz = sizes(quick)
    n, d, m = sz["n"], sz["d"], sz["m"]
    stacks = []
    for scale in sz["scales"]:
        for residual in (True, False):
            if not residual and scale != 1.0:
                continue
            rng = np.random.default_rng([seed, 7101, int(scale * 10)])
            X, layers = sk.residual_stack(rng, n, d, m, scale=scale)
            tr = forward(X, layers, residual=residual, activation="tanh")
            rows = layer_table(tr)
            fit = fit_line([r["layer"] for r in rows], np.log([r["logit_max"] for r in rows]))
            stacks.append(
                {
                    "scale": scale,
                    "residual": residual,
                    "rows": rows,
                    "first_layer_entry_ratio_ge_1": _first(rows, "entry_ratio"),
                    "first_layer_logit_ratio_ge_1": _first(rows, "logit_ratio"),
                    "logit_growth_per_layer": math.exp(fit["slope"]),
                    "logit_fit": fit,
                    "max_g_for_eps": max(r["g_for_eps_n^-2"] for r in rows),
                }
            )
    res = [s for s in stacks if s["residual"]]
    left = [s["scale"] for s in res if s["first_layer_logit_ratio_ge_1"] is not None]
    text = (
        f"n={n}, sqrt(log n)={math.sqrt(math.log(n)):.2f}, log n={math.log(n):.2f}. Residual stacks: logit range "
        + "; ".join(
            f"{s['scale']:g}x: {s['rows'][0]['logit_max']:.2f} -> {s['rows'][-1]['logit_max']:.2f} "
            f"(x{s['logit_growth_per_layer']:.2f}/layer, leaves logit regime at layer "
            f"{s['first_layer_logit_ratio_ge_1']}, degree for n^-2 up to {s['max_g_for_eps']})"
            for s in res
        )
        + ". Nothing in the residual architecture keeps the entries bounded; the hypothesis of C.13 must be "
        "assumed at every layer and is not implied by O(log n)-bit entries."
    )
    return jsonable(
        {
            "settings": {
                **sz,
                "seed": seed,
                "fixed_g": FIXED_G,
                "eps": f"n^-2 = {n**-2.0:.3g}",
                "thresholds": "entry: R >= sqrt(log n); logit: Rbar >= log n",
            },
            "stacks": stacks,
            "scales_leaving_logit_regime": left,
            "text": text,
        }
    )


def plot(data: dict, path: str) -> str | None:
    def draw(ax) -> None:
        n = data["settings"]["n"]
        for s in data["stacks"]:
            lab = f"{s['scale']:g}x {'residual' if s['residual'] else 'plain'}"
            ax.semilogy([r["layer"] for r in s["rows"]], [r["logit_max"] for r in s["rows"]], marker="o", label=lab)
        ax.axhline(math.log(n), ls="--", color="k", label="log n")
        ax.set_xlabel("layer")
        ax.set_ylabel("max |beta q.k|")
        ax.legend()

    return save_plot(path, draw, figsize=(6, 4))
