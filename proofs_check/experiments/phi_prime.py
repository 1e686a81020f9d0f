r"""Unbounded $\varphi'$ in the non-attention block (spec §4 W11; Lemma H.1, H.2, H.3 error transfer).

Paper: Lemma H.2 gives $G_i = (gT_i \odot \varphi'(\mathrm{Attn}_i W_g)) W_g^\top$; every error transfer through
$g_i$ is multiplied by the norm of this linear map, $\max_{i,c} \sum_j |\varphi'(U_{ij})| |W_{g,cj}|$ with
$U = \mathrm{Attn}_i W_g$ (exact $\infty\to\infty$ norm), which spec §2.6 bounds by
$d \|\varphi'(U)\|_\infty \|W_g\|_\infty$. The paper assumes no bound on $\varphi'$ (GAP).

Measured through the reference's block backward (:func:`reference.block.g_vjp`): with $W_g$ fixed and the block input
scaled by $t$ (so $\|U\|_\infty \propto t$), the transfer factor for $\varphi$ = tanh (bounded $\varphi'$) and
$\varphi(x) = x^3$ (unbounded), the realized amplification $\|\Delta G\|_\infty / \|\Delta gT\|_\infty$ of a random
upstream error and of the worst-case sign pattern (which attains the exact norm: the map is linear, so this is the
whole story of the error transfer), and the log–log slope of the realized worst amplification against $\|U\|_\infty$
(95% interval; cube: 2, tanh: <= 0).
"""

from __future__ import annotations

import numpy as np

from proofs_check.experiments.stats import jsonable, loglog_fit, save_plot
from reference.block import ACTIVATIONS, g_forward, g_vjp


def sizes(quick: bool) -> dict:
    return {"n": 64 if quick else 256, "d": 4, "scales": [0.5, 1.0, 2.0, 4.0, 8.0]}


def transfer(U: np.ndarray, W_g: np.ndarray, act: str) -> float:
    dphi = np.abs(ACTIVATIONS[act].dphi(U))  # (n, d)
    return float((dphi[:, None, :] * np.abs(W_g)[None]).sum(axis=2).max())


def run(quick: bool = True, seed: int = 0) -> dict:
    sz = sizes(quick)
    rng = np.random.default_rng([seed, 7401])
    n, d = sz["n"], sz["d"]
    Z0 = rng.uniform(-1, 1, (n, d))
    W_g = rng.uniform(-1, 1, (d, d))
    rows = []
    for act in ("tanh", "cube"):
        for t in sz["scales"]:
            blk = g_forward(t * Z0, W_g, ACTIVATIONS[act])  # the reference block, U = (t Z0) W_g
            U = blk.U
            dphi = ACTIVATIONS[act].dphi(U)
            dgT = rng.uniform(-1, 1, (n, d)) * 1e-6
            # the map gT -> G is linear (Lemma H.2): the error transfer of an upstream error dgT is its image
            rand = float(np.abs(g_vjp(dgT, blk, W_g, ACTIVATIONS[act])[0]).max()) / float(np.abs(dgT).max())
            M = np.abs(dphi)[:, None, :] * np.abs(W_g)[None]  # (n, d_out, d)
            i, c = np.unravel_index(M.sum(axis=2).argmax(), M.shape[:2])
            worst = np.zeros((n, d))
            worst[i] = np.sign(dphi[i] * W_g[c]) * 1e-6  # attains the infinity-norm of the linear map
            wr = float(np.abs(g_vjp(worst, blk, W_g, ACTIVATIONS[act])[0]).max()) / 1e-6
            rows.append(
                {
                    "activation": act,
                    "t": t,
                    "U_norm": float(np.abs(U).max()),
                    "transfer_exact": transfer(U, W_g, act),
                    "transfer_bound": d * float(np.abs(dphi).max()) * float(np.abs(W_g).max()),
                    "realized_random": rand,
                    "realized_worst": wr,
                }
            )
    fits = {}
    for act in ("tanh", "cube"):
        rs = [r for r in rows if r["activation"] == act]
        fits[act] = loglog_fit([r["U_norm"] for r in rs], [r["realized_worst"] for r in rs])
    return jsonable(
        {
            "settings": {**sz, "seed": seed},
            "rows": rows,
            "fits": fits,
            "unbounded_growth_shown": bool(fits["cube"]["lo"] > 1 and fits["tanh"]["hi"] < 0.5),
        }
    )


def plot(data: dict, path: str) -> str | None:
    def draw(ax) -> None:
        for act in ("tanh", "cube"):
            rs = [r for r in data["rows"] if r["activation"] == act]
            ax.loglog([r["U_norm"] for r in rs], [r["transfer_exact"] for r in rs], marker="o", label=act)
        ax.set_xlabel("||Attn W_g||_inf")
        ax.set_ylabel("error transfer through g")
        ax.legend()

    return save_plot(path, draw, figsize=(6, 4))
