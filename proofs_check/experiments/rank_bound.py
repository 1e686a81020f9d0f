r"""Rank of the polynomial lift against the paper's bound (spec §4 W20; Lemma I.1, C.13).

Paper: Lemma I.1 bounds the rank by $r \le \binom{2(g+d)}{2g}$. The monomial lift of spec §2.5 has exactly
$\binom{d+g}{g}$ columns. Measured: the number of columns of the Taylor lift, its numerical rank (SVD of
$U_0$ for random tokens, where $n > r$; the measured quantity), the paper's bound, and the ratio actual/bound.
"""

from __future__ import annotations

import math

import numpy as np

from fastpath.features import lift, rank_of
from fastpath.poly import taylor_coeffs
from proofs_check.experiments.stats import jsonable, save_plot


def sizes(quick: bool) -> dict:
    return {
        "ds": [2, 4] if quick else [2, 4, 8],
        "gs": list(range(1, 7)) if quick else list(range(1, 11)),
        "svd_max_rank": 300 if quick else 800,
    }


def run(quick: bool = True, seed: int = 0) -> dict:
    sz = sizes(quick)
    rng = np.random.default_rng([seed, 7601])
    rows = []
    for d in sz["ds"]:
        for g in sz["gs"]:
            r = rank_of(d, g)
            bound = math.comb(2 * (g + d), 2 * g)
            num = None
            if r <= sz["svd_max_rank"]:
                Q = rng.uniform(-1, 1, (r + 50, d))
                U0, _ = lift(Q, Q, taylor_coeffs(g), 1.0 / d)  # (r + 50, r)
                num = int(np.linalg.matrix_rank(U0 / np.abs(U0).max(axis=0)))
            rows.append(
                {
                    "d": d,
                    "g": g,
                    "columns": r,
                    "numerical_rank": num,
                    "paper_bound": bound,
                    "degree_g_monomials_only": math.comb(d + g - 1, g),
                    "ratio": r / bound,
                    "holds": r <= bound,
                }
            )
    return jsonable(
        {
            "settings": {**sz, "seed": seed},
            "rows": rows,
            "all_hold": all(r["holds"] for r in rows),
            "max_ratio": max(r["ratio"] for r in rows),
        }
    )


def plot(data: dict, path: str) -> str | None:
    def draw(ax) -> None:
        for d in data["settings"]["ds"]:
            rs = [r for r in data["rows"] if r["d"] == d]
            ax.semilogy([r["g"] for r in rs], [r["columns"] for r in rs], "o-", label=f"C(d+g,g), d={d}")
            ax.semilogy([r["g"] for r in rs], [r["paper_bound"] for r in rs], "s--", label=f"C(2(g+d),2g), d={d}")
        ax.set_xlabel("degree g")
        ax.set_ylabel("rank")
        ax.legend(fontsize=7)

    return save_plot(path, draw, figsize=(6, 4))
