r"""Benchmark of the certified logit ranges (issue 14 items 1-2): bound / true max, and the degree and rank they buy.

One JSON object per line. Inputs (seeded, the two distributions of issue 14), beta = 1/d:

* ``small``: X ~ U[-1, 1]^{n x d}, W_Q, W_K ~ U[-1/sqrt d, 1/sqrt d] (d x d);
* ``authors``: X ~ N(0, 1)^{n x d}, W_Q, W_K orthogonal (Q of the QR of a Gaussian d x d matrix).

q = X W_Q, k = X W_K. For d in {4, 8, 12} and n in {1024, 4096}, each record (``"kind": "range"``) holds the true
max |beta q_i . k_j| by brute force (n^2 d, float64, rounding far below the ratios reported), the ratio bound / true
max of every bound of :func:`fastpath.ranges.all_bounds`, of :func:`fastpath.ranges.logit_bound` (the signed range,
``R``) and of :func:`fastpath.lowrank.logit_range` (the absolute range :func:`fastpath.ranges.abs_logit_bound`,
``R_abs``, what the fast path uses today), the same after re-centring (:func:`fastpath.ranges.centres`, bound
:func:`fastpath.ranges.recentred_range`, true max of the re-centred logits by brute force), and the degree and rank
(:func:`fastpath.features.rank_of`) :func:`fastpath.poly.certified_poly` needs at eps = 1e-6 and 1e-8 for the
Cauchy-Schwarz R (the old logit_range), R_abs, R and the re-centred R (``null`` where no polynomial certifies).
``blocks``: :func:`fastpath.ranges.block_bounds` over blocks of 256 tokens against each pair's true maximum
(median, max, min of the ratio). Times of the bounds are reported beside them (wall clock; no verdict rests on them).

``--timing`` (``"kind": "timing"``): for d in {4, 8}, n in {2^14, 2^16, 2^18} (``--quick``: 2^14), the seconds of
:func:`fastpath.ranges.logit_bound`, :func:`fastpath.ranges.abs_logit_bound` and of the fast path's joint call
:func:`fastpath.ranges.logit_ranges` (``rtol`` = :data:`fastpath.ranges.FAST_RTOL`, what
:func:`fastpath.layer.head_forward` runs), their values, the exact logits each evaluated (``pairs``, the counted
work) and, for n <= 2^14, the true maxima by brute force (row blocks, n^2 d).

Usage: ``python benchmarks/range_bench.py [--quick] [--timing] [--out FILE.jsonl]`` (``--quick``: n = 1024 only).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastpath.features import rank_of  # noqa: E402
from fastpath.lowrank import logit_range  # noqa: E402
from fastpath.poly import certified_poly  # noqa: E402
from fastpath.ranges import (  # noqa: E402
    FAST_RTOL,
    abs_logit_bound,
    all_bounds,
    block_bounds,
    centres,
    key_spread,
    logit_bound,
    logit_ranges,
    recentred_range,
)

SEED = 20240826
BLOCK = 256  # tokens per block for the per-pair bounds (this benchmark's; fastpath.layer.CAUSAL_BLOCK is 128)
EPS = (1e-6, 1e-8)


def inputs(dist: str, n: int, d: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Seeded q, k, beta of the distribution ``dist`` (module docstring)."""
    rng = np.random.default_rng([SEED, d, n, dist == "authors"])
    if dist == "small":
        X = rng.uniform(-1, 1, (n, d))
        WQ, WK = (rng.uniform(-(d**-0.5), d**-0.5, (d, d)) for _ in range(2))
    else:
        X = rng.normal(size=(n, d))
        WQ, WK = (np.linalg.qr(rng.normal(size=(d, d)))[0] for _ in range(2))
    return X @ WQ, X @ WK, 1.0 / d  # (n, d), (n, d)


def degree_rank(R: float, d: int) -> dict:
    """Degree and rank of the certified Chebyshev polynomial on [-R, R] per eps (None where refused)."""
    out = {}
    for eps in EPS:
        try:
            g = certified_poly(R, eps).degree
            out[f"{eps:g}"] = {"degree": g, "rank": rank_of(d, g)}
        except ValueError:
            out[f"{eps:g}"] = None
    return out


def record(dist: str, n: int, d: int) -> dict:
    q, k, beta = inputs(dist, n, d)
    S = np.abs(beta * (q @ k.T))  # (n, n) brute force
    true = float(S.max())
    B = n // BLOCK
    block_true = S.reshape(B, BLOCK, B, BLOCK).max(axis=(1, 3))  # (B, B) per pair of blocks
    block_ratio = block_bounds(q, k, beta, BLOCK, BLOCK) / block_true
    t0 = time.perf_counter()
    bounds = all_bounds(q, k, beta)
    t_all = time.perf_counter() - t0
    t0 = time.perf_counter()
    R = logit_bound(q, k, beta)
    t_R = time.perf_counter() - t0
    R_abs = logit_range(q, k, beta)  # the absolute range the current consumers need (fastpath.ranges.abs_logit_bound)
    t0 = time.perf_counter()
    a, c = centres(q, k, beta)
    Rc = recentred_range(q, k, beta, a, c)
    t_c = time.perf_counter() - t0
    true_c = float(np.abs(beta * ((q - a) @ (k - c).T)).max())
    return {
        "kind": "range", "dist": dist, "n": n, "d": d, "beta": beta, "true_max": true,
        "ratio": {name: b / true for name, b in bounds.items()}, "R_cs": bounds["cs"], "R": R, "ratio_R": R / true,
        "R_abs": R_abs, "ratio_R_abs": R_abs / true,
        "recentred": {"a_norm": float(np.linalg.norm(a)), "c_norm": float(np.linalg.norm(c)),
                      "spread": key_spread(k, beta, a), "true_max": true_c, "R": Rc, "ratio_R": Rc / true_c},
        "blocks": {"block": BLOCK, "ratio_median": float(np.median(block_ratio)), "ratio_max": float(block_ratio.max()),
                   "ratio_min": float(block_ratio.min())},
        "poly": {"cs": degree_rank(bounds["cs"], d), "R_abs": degree_rank(R_abs, d), "R": degree_rank(R, d),
                 "recentred": degree_rank(Rc, d)},
        "seconds": {"all_bounds": t_all, "logit_bound": t_R, "centres+recentred_range": t_c},
    }  # fmt: skip


def _brute_max(q: np.ndarray, k: np.ndarray, beta: float) -> float:
    """max |beta q_i . k_j| by brute force in row blocks of 1024 (n m d work, (1024, m) memory)."""
    return max(float(np.abs(beta * (q[i : i + 1024] @ k.T)).max()) for i in range(0, q.shape[0], 1024))


def timing_record(dist: str, n: int, d: int) -> dict:
    """Seconds, values and counted exact logits of the range calls (module docstring, ``--timing``)."""
    q, k, beta = inputs(dist, n, d)
    out = {"kind": "timing", "dist": dist, "n": n, "d": d}
    for name, fn in (("logit_bound", logit_bound), ("abs_logit_bound", abs_logit_bound)):
        t0 = time.perf_counter()
        out[name] = {"R": fn(q, k, beta), "seconds": time.perf_counter() - t0}
    t0 = time.perf_counter()
    fast = logit_ranges(q, k, beta, rtol=FAST_RTOL)
    out["logit_ranges_fast"] = {
        "signed": fast.signed,
        "absolute": fast.absolute,
        "pairs": fast.pairs,
        "pairs_per_d_n_plus_m": fast.pairs / (2 * d * n),
        "seconds": time.perf_counter() - t0,
    }
    full = logit_ranges(q, k, beta)
    out["logit_ranges_exact_mode_pairs"] = full.pairs
    if n <= 2**14:
        out["true_max"] = {"signed": _brute_max(q, k, beta), "absolute": _brute_max(np.abs(q), np.abs(k), beta)}
    return out  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="n = 1024 only")
    ap.add_argument("--out", type=Path, help="also write the JSON lines to this file")
    ap.add_argument("--timing", action="store_true", help="the cost of the range calls at n = 2^14 .. 2^18 instead")
    args = ap.parse_args(argv)
    out = args.out.open("w") if args.out else None
    if args.timing:  # (record, d values, n values)
        plan = (timing_record, (4, 8), (2**14,) if args.quick else (2**14, 2**16, 2**18))
    else:
        plan = (record, (4, 8, 12), (1024,) if args.quick else (1024, 4096))
    make, ds, ns = plan
    for dist in ("small", "authors"):
        for d in ds:
            for n in ns:
                line = json.dumps(make(dist, n, d))
                print(line, flush=True)
                if out:
                    out.write(line + "\n")
    if out:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
