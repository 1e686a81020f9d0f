r"""Statistics and plumbing of the weak-point experiments: error measures, line fits with t-intervals, timing, plots.

No model algorithm lives here (those are :mod:`reference` and :mod:`fastpath`); only summaries of what they return.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from proofs_check.report import jsonable as jsonable  # one JSON conversion for the experiments and the report
from reference.backend import mp_context


def errs(approx: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """Absolute and relative entrywise max error and cosine similarity (spec W19)."""
    a, b = np.asarray(approx, dtype=float).ravel(), np.asarray(exact, dtype=float).ravel()
    diff = float(np.abs(a - b).max())
    nb = float(np.abs(b).max())
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return {"abs": diff, "rel": diff / nb if nb else diff, "cos": float(a @ b / den) if den else 1.0, "norm": nb}


def t_quantile(dof: int, p: float = 0.975) -> float:
    """Student-t quantile by bisection on the regularized incomplete beta function (a private mpmath context at
    20 digits: the global mpmath precision is never read or changed)."""
    if dof <= 0:
        return float("inf")
    mp = mp_context(20)

    def cdf(t: float) -> float:
        x = dof / (dof + t * t)
        return float(1 - mp.betainc(dof / 2, 0.5, 0, x, regularized=True) / 2)

    lo, hi = 0.0, 1000.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def fit_line(x, y, level: float = 0.95) -> dict[str, float]:
    """Least-squares y = a + b x with a two-sided t-interval for the slope b (``level``)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    k = len(x)
    A = np.stack([np.ones(k), x], axis=1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    dof = k - 2
    if dof <= 0:
        return {
            "slope": float(coef[1]),
            "intercept": float(coef[0]),
            "lo": float("-inf"),
            "hi": float("inf"),
            "n_points": k,
            "level": level,
        }
    s2 = float(resid @ resid) / dof
    sxx = float(((x - x.mean()) ** 2).sum())
    se = math.sqrt(s2 / sxx) if sxx > 0 else float("inf")
    t = t_quantile(dof, 0.5 + level / 2)
    return {
        "slope": float(coef[1]),
        "intercept": float(coef[0]),
        "lo": float(coef[1] - t * se),
        "hi": float(coef[1] + t * se),
        "se": se,
        "n_points": k,
        "level": level,
    }


def loglog_fit(x, y) -> dict[str, float]:
    """Slope of log y against log x with its 95% t-interval."""
    return fit_line(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)))


def min_time(fn, repeats: int = 5, min_sample: float = 0.02) -> float:
    """Seconds per call of ``fn()``: the minimum over ``repeats`` samples, each looping until >= ``min_sample`` s.

    The minimum is the least disturbed run on a shared machine (timeit's advice); the inner loop keeps each sample
    well above the timer's resolution and Python's call overhead.
    """
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    loops = max(1, int(min_sample / max(one, 1e-7)))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - t0) / loops)
    return best


def save_plot(path: str, draw: Callable[[Any], None], *args: Any, **kwargs: Any) -> str | None:
    """The ``plot(data, path)`` of every experiment: ``draw(ax)`` on ``plt.subplots(*args, **kwargs)``, saved to
    ``path`` with the Agg backend (byte-stable PNG metadata). Returns the path, or None when matplotlib (optional)
    is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(*args, **kwargs)
    draw(ax)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path
