r"""Absolute against relative error of every gradient component (spec §4 W19; Theorems 1.4, 4.2, Lemma H.4).

Paper: every guarantee is an absolute entrywise bound, $\|\tilde g - g\|_\infty \le 1/\mathrm{poly}(n)$. That
bound says nothing when the gradient entries are themselves small: deep layers, or a normalized loss such as
$\langle C, T_m\rangle/(nd)$, whose gradients scale like $1/(nd)$.

Measured on a residual stack at a fixed (low) degree, for the loss $\langle C, T_m\rangle$ and for its normalized
version: for dL/dT_i and every layer's dL/dW, dL/dW_V the absolute error, the relative error
$\|\tilde g - g\|_\infty / \|g\|_\infty$ and the cosine similarity. The gap is shown when a component meets an
absolute "1/poly(n)" level ($\le 1/n$) while its relative error is at least 1e-2.
"""

from __future__ import annotations

import numpy as np

from proofs_check.experiments import stacks as sk
from proofs_check.experiments.stats import errs, jsonable, save_plot
from reference import backward, forward


def sizes(quick: bool) -> dict:
    return {"n": 128 if quick else 512, "d": 4, "m": 3 if quick else 8, "g": 2}


def run(quick: bool = True, seed: int = 0, g: int | None = None) -> dict:
    """Both losses at the profile's low degree, or at degree ``g`` when given."""
    sz = sizes(quick)
    n, d, m = sz["n"], sz["d"], sz["m"]
    rng = np.random.default_rng([seed, 7501])
    X, layers = sk.residual_stack(rng, n, d, m)
    tr = forward(X, layers, **sk.RESIDUAL)
    C = rng.uniform(-1, 1, X.shape)
    out = {}
    for name, scale in (("sum", 1.0), ("normalized_1/(nd)", 1.0 / (n * d))):
        ex = backward(tr, scale * C)
        fb = sk.fast_grads(X, layers, scale * C, sz["g"] if g is None else g, **sk.RESIDUAL)
        rows = [{"field": f"dT[{i}]", **errs(fb.dT[i], ex.dT[i])} for i in range(m)]
        for i in range(m):
            rows.append({"field": f"layers[{i}].dW", **errs(fb.layers[i].dW, ex.layers[i].dW)})
            rows.append({"field": f"layers[{i}].dW_V", **errs(fb.layers[i].dW_V, ex.layers[i].dW_V)})
        out[name] = rows
    hidden = [r for r in out["normalized_1/(nd)"] if r["abs"] <= 1 / n and r["rel"] >= 1e-2]
    return jsonable(
        {
            "settings": {**sz, "seed": seed, "abs_level": "1/n", "rel_level": 1e-2},
            "losses": out,
            "absolute_ok_relative_bad": [r["field"] for r in hidden],
            "gap_shown": bool(hidden),
        }
    )


def plot(data: dict, path: str) -> str | None:
    def draw(ax) -> None:
        for name, rows in data["losses"].items():
            ax.loglog([r["abs"] for r in rows], [r["rel"] for r in rows], "o", label=name)
        ax.axvline(1 / data["settings"]["n"], ls="--", color="k")
        ax.set_xlabel("absolute error")
        ax.set_ylabel("relative error")
        ax.legend()

    return save_plot(path, draw, figsize=(7, 4))
