r"""The degree formula of Lemma I.1: inner log with R or with R^2? (spec §4 W14, §2.5; Lemma I.1 / C.13, [AA22]).

Paper: Lemma I.1 prints $g = O(\max\{\log(1/\varepsilon)/\log(\log(1/\varepsilon)/R),\ R^2\})$. For entries
bounded by R and the $1/d$ scale the logits lie in $[-R^2, R^2]$, and [AA22] on an interval of length
$\Theta(R^2)$ gives $\log(\log(1/\varepsilon)/R^2)$ in the inner log (AMBIG).

Measured: for each R and $\varepsilon$ the smallest degree g whose polynomial reaches relative error
$\le \varepsilon$ on $[-R^2, R^2]$, for the Taylor polynomial and for Chebyshev interpolation (error evaluated in
mpmath at 40 digits inside ``workdps`` on a grid of Chebyshev-extrema points plus the endpoints: sampled, not
certified; fastpath.poly has the certified version). Then least-squares fits $g = a + b F$ for the two candidate
$F$ (printed R, and R^2), with the RMS residual of each. Where the inner ratio is below e the log is clamped at 1
(the O(.) formula has no meaning there; recorded in the data).
"""

from __future__ import annotations

import math

import mpmath
import numpy as np

from proofs_check.experiments import _common as cm

DPS = 40


def sizes(quick: bool) -> dict:
    return {"Rs": [0.5, 1.0, 2.0] if quick else [0.5, 1.0, 2.0, 3.0], "eps": [1e-3, 1e-6, 1e-9, 1e-12], "g_max": 60}


def _grid(B, g):
    k = max(64, 4 * g)
    pts = [B * mpmath.cos(mpmath.pi * j / (k - 1)) for j in range(k)]
    return pts


def errors_by_degree(R: float, g_max: int, stop: float) -> dict[str, list[float]]:
    """Max relative error on $[-R^2, R^2]$ for g = 0..g_max (stops once below ``stop``) for Taylor and Chebyshev."""
    out = {"taylor": [], "chebyshev": []}
    with mpmath.workdps(DPS):
        B = mpmath.mpf(R) ** 2
        for g in range(g_max + 1):
            xs = _grid(B, g)
            if not out["taylor"] or out["taylor"][-1] > stop:
                tay = max(
                    abs(1 - mpmath.fsum(x**j / mpmath.factorial(j) for j in range(g + 1)) * mpmath.exp(-x)) for x in xs
                )
                out["taylor"].append(float(tay))
            if not out["chebyshev"] or out["chebyshev"][-1] > stop:
                nodes = [B * mpmath.cos(mpmath.pi * (j + 0.5) / (g + 1)) for j in range(g + 1)]
                fv = [mpmath.exp(t) for t in nodes]
                # Chebyshev coefficients of the interpolant (discrete cosine transform at the g+1 nodes)
                cs = [
                    2
                    * mpmath.fsum(fv[j] * mpmath.cos(mpmath.pi * kk * (j + 0.5) / (g + 1)) for j in range(g + 1))
                    / (g + 1)
                    for kk in range(g + 1)
                ]
                cs[0] /= 2
                che = max(
                    abs(1 - mpmath.fsum(c * mpmath.chebyt(kk, x / B) for kk, c in enumerate(cs)) * mpmath.exp(-x))
                    for x in xs
                )
                out["chebyshev"].append(float(che))
    return out


def _F(R: float, eps: float, square: bool) -> float:
    L = math.log(1 / eps)
    inner = L / (R * R if square else R)
    return max(L / max(math.log(inner), 1.0), R * R)


def run(quick: bool = True, seed: int = 0) -> dict:
    sz = sizes(quick)
    rows = []
    for R in sz["Rs"]:
        errs = errors_by_degree(R, sz["g_max"], min(sz["eps"]))
        for eps in sz["eps"]:
            row = {
                "R": R,
                "eps": eps,
                "F_printed_R": _F(R, eps, False),
                "F_R2": _F(R, eps, True),
                "inner_clamped_R2": math.log(math.log(1 / eps) / (R * R)) < 1,
            }
            for kind, e in errs.items():
                row[f"g_{kind}"] = next((g for g, v in enumerate(e) if v <= eps), None)
            rows.append(row)
    fits = {}
    for kind in ("taylor", "chebyshev"):
        rs = [r for r in rows if r[f"g_{kind}"] is not None]
        y = [r[f"g_{kind}"] for r in rs]
        for key in ("F_printed_R", "F_R2"):
            f = cm.fit_line([r[key] for r in rs], y)
            pred = [f["intercept"] + f["slope"] * r[key] for r in rs]
            f["rms"] = float(np.sqrt(np.mean((np.array(y) - np.array(pred)) ** 2)))
            fits[f"{kind}:{key}"] = f
    better = {
        k: ("R^2" if fits[f"{k}:F_R2"]["rms"] <= fits[f"{k}:F_printed_R"]["rms"] else "R (printed)")
        for k in ("taylor", "chebyshev")
    }
    return cm.jsonable(
        {
            "settings": {**sz, "seed": seed, "dps": DPS, "clamp": "log(inner) >= 1"},
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

    return cm.save_plot(path, draw, 1, 2, figsize=(10, 4))
