r"""The degree formula of Lemma I.1: inner log with R or with R^2? (spec §4 W14, §2.5; Lemma I.1 / C.13, [AA22]).

Paper: Lemma I.1 prints $g = O(\max\{\log(1/\varepsilon)/\log(\log(1/\varepsilon)/R),\ R^2\})$. For entries
bounded by R and the $1/d$ scale the logits lie in $[-R^2, R^2]$, and [AA22] on an interval of length
$\Theta(R^2)$ gives $\log(\log(1/\varepsilon)/R^2)$ in the inner log (AMBIG).

Measured: for each R and $\varepsilon$ the smallest degree g whose polynomial has a *certified* relative error
$\le \varepsilon$ on $[-R^2, R^2]$, for the Taylor polynomial and for Chebyshev interpolation
(:func:`fastpath.poly.certified_poly`; a target float64 cannot reach on that range is recorded as None). Then
least-squares fits $g = a + b F$ for the two candidate $F$ (printed R, and R^2), with the RMS residual of each.
Where the inner ratio is below e the log is clamped at 1 (the O(.) formula has no meaning there; recorded).
"""

from __future__ import annotations

import math

import numpy as np

from fastpath.poly import certified_poly
from proofs_check.experiments.stats import fit_line, jsonable, save_plot


def sizes(quick: bool) -> dict:
    return {"Rs": [0.5, 1.0, 2.0] if quick else [0.5, 1.0, 2.0, 3.0], "eps": [1e-3, 1e-6, 1e-9, 1e-12]}


def min_degree(R: float, eps: float, kind: str, square: bool = True) -> int | None:
    """Certified minimal degree on $[-R^2, R^2]$ ($[-R, R]$ unless ``square``; fastpath.poly), None when refused."""
    try:
        return certified_poly(R * R if square else R, eps, kind).degree
    except ValueError:
        return None


def _F(R: float, eps: float, square: bool) -> float:
    L = math.log(1 / eps)
    inner = L / (R * R if square else R)
    return max(L / max(math.log(inner), 1.0), R * R)


def run(quick: bool = True, seed: int = 0, square: bool = True) -> dict:
    """The degree table and both fits; ``square=False`` certifies on $[-R, R]$ (the range the printed R reads)."""
    sz = sizes(quick)
    rows = []
    for R in sz["Rs"]:
        for eps in sz["eps"]:
            row = {
                "R": R,
                "eps": eps,
                "F_printed_R": _F(R, eps, False),
                "F_R2": _F(R, eps, True),
                "inner_clamped_R2": math.log(math.log(1 / eps) / (R * R)) < 1,
            }
            for kind in ("taylor", "chebyshev"):
                row[f"g_{kind}"] = min_degree(R, eps, kind, square)
            rows.append(row)
    fits = {}
    for kind in ("taylor", "chebyshev"):
        rs = [r for r in rows if r[f"g_{kind}"] is not None]
        y = [r[f"g_{kind}"] for r in rs]
        for key in ("F_printed_R", "F_R2"):
            f = fit_line([r[key] for r in rs], y)
            pred = [f["intercept"] + f["slope"] * r[key] for r in rs]
            f["rms"] = float(np.sqrt(np.mean((np.array(y) - np.array(pred)) ** 2)))
            fits[f"{kind}:{key}"] = f
    better = {
        k: ("R^2" if fits[f"{k}:F_R2"]["rms"] <= fits[f"{k}:F_printed_R"]["rms"] else "R (printed)")
        for k in ("taylor", "chebyshev")
    }
    return jsonable(
        {
            "settings": {**sz, "seed": seed, "degrees": "certified (fastpath.poly)", "clamp": "log(inner) >= 1"},
            "rows": rows,
            "fits": fits,
            "better_fit": better,
        }
    )


def plot(data: dict, path: str) -> str | None:
    def draw(ax) -> None:
        for a, key in zip(ax, ("F_printed_R", "F_R2"), strict=True):
            for kind, mk in (("taylor", "o"), ("chebyshev", "s")):
                rs = [r for r in data["rows"] if r[f"g_{kind}"] is not None]
                a.plot([r[key] for r in rs], [r[f"g_{kind}"] for r in rs], mk, label=kind)
            a.set_xlabel(key)
            a.set_ylabel("minimal degree")
            a.legend()

    return save_plot(path, draw, 1, 2, figsize=(10, 4))
