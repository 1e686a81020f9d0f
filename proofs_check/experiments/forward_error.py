r"""Forward-induced against backward-induced error (spec §4 W10; Algorithm 1, Lemma H.4, §2.10 last bullets).

Paper: Algorithm 1 takes $T_i$ and $\mathrm{Attn}_i$ as given; Lemmas E.11–H.4 analyse the backward pass only.
An exact forward pass costs $\Theta(n^2 d)$ per layer, so an almost-linear pipeline must also run the forward pass
in low rank, $\tilde s = U_1 (V_1^\top h)$ (§5.1), and then the backward pass is evaluated at the wrong point.

Four pipelines on the same residual stack at a fixed Taylor degree g (the shipped :mod:`fastpath` with
``degree=g``; ``exact_forward=True`` keeps the exact activations):

* exact forward + exact backward: the truth;
* exact forward + fast backward: the **backward-induced** error (what Lemma H.4 is about);
* fast forward + exact backward at the fast activations: the **forward-induced** error;
* fast forward + fast backward: the total.

Plus, for reference, the certified :mod:`fastpath` pipeline (fast forward and backward at a target eps) with
its error and its certificate.
"""

from __future__ import annotations

import numpy as np

import fastpath
from proofs_check.decide import tolerance
from proofs_check.experiments import stacks as sk
from proofs_check.experiments.stats import errs, jsonable, save_plot
from reference import backward, forward
from reference.backend import FLOAT64
from reference.model import Trace

# the forward-induced error is real when its relative size exceeds what float64 rounding of the exact backward can
# produce: the derived identity tolerance 2^20 u of proofs_check.decide (condition number 2^20, unit roundoff u)
SIGNIFICANT = tolerance("eq", FLOAT64)


def sizes(quick: bool) -> dict:
    return {
        "n": 128 if quick else 512,
        "d": 4,
        "depths": [1, 2, 4] if quick else [1, 2, 4, 8, 16],
        "degrees": [4, 8],
        "scale": 1.0,
    }


def at_fast_activations(X, layers, g: int, exact: bool = False) -> tuple[Trace, np.ndarray]:
    r"""The trace of the **exact** layer maps evaluated at the fast inputs $\tilde T_{i-1}$ (shipped fast forward at
    degree g), so that :func:`reference.backward` on it is "exact backward at the fast activations". With ``exact``
    the inputs are the exact $T_{i-1}$ (the forward pass the lemmas assume). Also returns the forward's $T_m$."""
    Ts = (forward(X, layers, **sk.RESIDUAL) if exact else sk.fast_trace(X, layers, g, **sk.RESIDUAL)).T
    caches = [forward(Ts[i], [L], **sk.RESIDUAL).caches[0] for i, L in enumerate(layers)]
    one = forward(X, layers[:1], **sk.RESIDUAL)
    return Trace(X, list(layers), one.beta, False, 1, True, "tanh", one.backend, caches), Ts[-1]


def run(quick: bool = True, seed: int = 0, exact_forward: bool = False) -> dict:
    """The four pipelines. ``exact_forward`` replaces the fast forward by the exact one (what the lemmas assume)."""
    sz = sizes(quick)
    rng = np.random.default_rng([seed, 7301])
    mmax = max(sz["depths"])
    X, layers = sk.residual_stack(rng, sz["n"], sz["d"], mmax, scale=sz["scale"])
    C = rng.uniform(-1, 1, X.shape)
    rows = []
    for m in sz["depths"]:
        ex_tr = forward(X, layers[:m], **sk.RESIDUAL)
        truth = backward(ex_tr, C).dX
        for g in sz["degrees"]:
            bw = sk.fast_grads(X, layers[:m], C, g, **sk.RESIDUAL).dX
            ff_tr, T_m = at_fast_activations(X, layers[:m], g, exact_forward)
            fw = backward(ff_tr, C).dX
            tot = sk.fast_grads(X, layers[:m], C, g, exact_forward=exact_forward, **sk.RESIDUAL).dX
            rows.append(
                {
                    "m": m,
                    "g": g,
                    "backward_induced": errs(bw, truth),
                    "forward_induced": errs(fw, truth),
                    "total": errs(tot, truth),
                    "T_m_forward_error": float(np.abs(T_m - ex_tr.output).max()),
                }
            )
    fp = {}
    m4 = min(mmax, 4)
    truth = backward(forward(X, layers[:m4], **sk.RESIDUAL), C).dX
    for eps in (1e-4, 1e-8):  # the certified pipeline at a target eps, for reference
        ftr = fastpath.forward(X, layers[:m4], eps=eps, allow_vacuous=True, **sk.RESIDUAL)
        fg = fastpath.backward(ftr, C)
        fp[f"eps={eps:g}"] = {
            "m": m4,
            "degree": ftr.degree,
            "rank": ftr.rank,
            "dX": errs(fg.dX, truth),
            "certificate_dX": float(np.abs(fg.bound.dX).max()),
        }
    ratio = [r["forward_induced"]["abs"] / max(r["backward_induced"]["abs"], 1e-300) for r in rows]
    return jsonable(
        {
            "settings": {**sz, "seed": seed, "stack": "residual tanh, beta=1/d"},
            "rows": rows,
            "forward_over_backward": ratio,
            "fastpath_pipeline": fp,
            "max_forward_induced_rel": max(r["forward_induced"]["rel"] for r in rows),
            "significance": f"relative forward-induced error > {SIGNIFICANT:.2g} (2^20 u) in some row",
            "forward_error_significant": bool(max(r["forward_induced"]["rel"] for r in rows) > SIGNIFICANT),
        }
    )


def plot(data: dict, path: str) -> str | None:
    def draw(ax) -> None:
        for g in data["settings"]["degrees"]:
            rs = [r for r in data["rows"] if r["g"] == g]
            for key, mk in (("backward_induced", "o"), ("forward_induced", "s"), ("total", "^")):
                ax.semilogy([r["m"] for r in rs], [r[key]["abs"] for r in rs], marker=mk, label=f"{key} g={g}")
        ax.set_xlabel("depth m")
        ax.set_ylabel("|error of dL/dX|")
        ax.legend(fontsize=7)

    return save_plot(path, draw, figsize=(6, 4))
