r"""How close the fast path runs to this machine's single-thread float64 GEMM rate (issue 14 item 4).

Flop counting: both sides are counted in **multiply-adds** (one multiply and one add = 1). The GEMM rate is
$2048^3$ multiply-adds per square 2048 float64 matmul (numpy, BLAS pinned to one thread), best of ``--reps``.
The fast path's work is the count of :mod:`fastpath.work`, taken as the code executes it: every product of a
(p, q) and a (q, s) operand is $p q s$, every feature block of r monomials for c tokens is $r c$ (one multiply
per monomial, counted as a multiply-add although it has no add), a row-Kronecker product of (c, p) and (c, s)
factors $c p s$; elementwise scalings that are not products of this kind (divisions by $\tilde D$, the exp of the
diagonal blocks) are not counted. The ratio is (counted multiply-adds / wall time) / (GEMM multiply-adds / s).

Two scopes, both one layer, one head, non-causal: ``layer`` is :func:`fastpath.layer.attention_forward` and
:func:`fastpath.layer.attention_backward` (the polynomial path itself); ``api`` is :func:`fastpath.forward` and
:func:`fastpath.backward` with the a-posteriori certificate, its counted work (``cert_madds``) included. Inputs:
X ~ U[-1, 1], weights U[±1/√d], β = 1/d, d = 4, eps = 1e-8 (small logits). Times are best of ``--reps``; the
verdict "ratio >= 0.5" is a measurement of this machine at this load, reported beside the counts, not a check.
The certified logit ranges (:func:`fastpath.ranges.logit_ranges` at :data:`fastpath.ranges.FAST_RTOL` and the
degree rule at eps, as :func:`fastpath.layer.head_forward` calls it) are uncounted work inside the forward (their own
count of exact logits is ``range_pairs``); ``t_range`` times them alone on the same q, k, and the
``*_without_range`` ratios subtract it.
``--profile`` adds a cProfile split of one forward + backward (time in the BLAS products, the feature builds, the
ranges (cumulative) and everything else) and its :func:`ceiling`: the ratio the products alone reach at their
shapes, and how much time all the rest may take for the 0.5 target. Prints one JSON object.

Run: ``python benchmarks/gemm_rate.py [--n 65536 262144] [--reps 3] [--profile]``.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy is imported
    os.environ[_v] = "1"

import argparse  # noqa: E402
import cProfile  # noqa: E402
import json  # noqa: E402
import pstats  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import fastpath  # noqa: E402
from fastpath import layer  # noqa: E402
from fastpath.compare import random_layers  # noqa: E402
from fastpath.lowrank import MEMORY_BUDGET  # noqa: E402
from fastpath.ranges import FAST_RTOL, logit_ranges  # noqa: E402

D, EPS = 4, 1e-8


def gemm_rate(size: int = 2048, reps: int = 3) -> float:
    """Single-thread float64 multiply-adds per second of a square ``size`` matmul (best of ``reps``)."""
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((size, size)), rng.standard_normal((size, size))
    A @ B  # warm-up
    best = min(_timed(lambda: A @ B)[0] for _ in range(reps))
    return size**3 / best


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _problem(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, D))
    layers = random_layers(rng, D, 1, with_g=False)
    return X, layers, rng.uniform(-1, 1, (n, D))


def _layer_run(X, L, dL):
    states, _ = layer.attention_forward(X, L.W_Q, L.W_K, L.W_V, beta=1 / D, causal=False, heads=1, eps=EPS,
                                        kind="chebyshev", budget=MEMORY_BUDGET, recentre="auto")  # fmt: skip
    return states


def measure(n: int, reps: int) -> dict:
    """Counted multiply-adds and best wall times of the ``layer`` and ``api`` scopes (module docstring) at n."""
    X, layers, dL = _problem(n)
    L = layers[0]
    out = {"n": n}
    t_f, t_fb = [], []
    for _ in range(reps):
        tf, states = _timed(lambda: _layer_run(X, L, dL))
        tb, g = _timed(lambda st=states: layer.attention_backward(st, X, dL))
        t_f.append(tf)
        t_fb.append(tf + tb)
    st = states[0]
    mf, mb = sum(s.madds for s in states), g.madds
    rng_ = lambda: logit_ranges(st.q, st.k, st.beta, rtol=FAST_RTOL, eps=EPS, kind="chebyshev")  # noqa: E731
    t_range = min(_timed(rng_)[0] for _ in range(reps))
    out["layer"] = {"degree": st.cert.degree, "rank": st.rank, "R": st.R, "R_poly": st.R_poly,
                    "recentred": st.recentred, "block": st.block, "madds_forward": mf, "madds_backward": mb,
                    "t_forward": min(t_f), "t_forward_backward": min(t_fb), "t_range": t_range,
                    "range_pairs": rng_().pairs}  # fmt: skip
    t_f, t_fb = [], []
    for _ in range(reps):
        tf, tr = _timed(lambda: fastpath.forward(X, layers, eps=EPS, method="lowrank"))
        tb, gr = _timed(lambda t=tr: fastpath.backward(t, dL))
        t_f.append(tf)
        t_fb.append(tf + tb)
    out["api"] = {"madds_forward": tr.madds + tr.cert_madds,
                  "madds_backward": gr.madds + gr.cert_madds, "t_forward": min(t_f),
                  "t_forward_backward": min(t_fb)}  # fmt: skip
    return out


def profile_split(n: int) -> dict:
    """cProfile of one layer forward + backward at n: seconds in BLAS products, feature builds, the logit ranges
    (cumulative, their products included), the rest."""
    X, layers, dL = _problem(n)
    L = layers[0]
    prof = cProfile.Profile()
    prof.enable()
    states = _layer_run(X, L, dL)
    g = layer.attention_backward(states, X, dL)
    prof.disable()
    madds = sum(s.madds for s in states) + g.madds
    stats = pstats.Stats(prof).stats
    total = sum(v[2] for v in stats.values())  # own times add up to the profiled wall time
    own = {}
    for (file, _, name), v in stats.items():
        own[f"{os.path.basename(file)}:{name}"] = own.get(f"{os.path.basename(file)}:{name}", 0.0) + v[2]
    top = dict(sorted(own.items(), key=lambda kv: -kv[1])[:8])
    gemm = own.get("work.py:mm", 0.0) + own.get("head.py:mm_fused", 0.0)  # the BLAS products
    feats = own.get("features.py:monomials", 0.0)
    ranges = sum(v[3] for (file, _, name), v in stats.items() if file.endswith("ranges.py") and name == "_ranges")
    return {"n": n, "total_s": total, "gemm_s": gemm, "features_s": feats, "ranges_s": ranges,
            "other_s": total - gemm - feats - ranges, "top_own_time_s": top, "madds": madds}  # fmt: skip


def ceiling(p: dict, rate: float, target: float = 0.5) -> dict:
    """From a :func:`profile_split`: the ratio the run would reach if its BLAS products were all it did
    (``gemm_only_ratio``: counted multiply-adds, the feature builds' included, over the products' time), and the
    time every other part together may take for ``target`` (``non_gemm_budget_s``, against ``non_gemm_s``
    measured). cProfile's overhead is in both times."""
    need = p["madds"] / (target * rate)  # the whole run's time at the target ratio
    return {"gemm_only_ratio": p["madds"] / p["gemm_s"] / rate, "target": target,
            "non_gemm_budget_s": need - p["gemm_s"], "non_gemm_s": p["total_s"] - p["gemm_s"]}  # fmt: skip


def with_ratios(m: dict, rate: float) -> dict:
    """Adds to a :func:`measure` result its ratios (counted multiply-adds / wall time) / GEMM rate, per scope."""
    for scope in ("layer", "api"):
        s = m[scope]
        s["ratio_forward"] = s["madds_forward"] / s["t_forward"] / rate
        s["ratio_forward_backward"] = (s["madds_forward"] + s["madds_backward"]) / s["t_forward_backward"] / rate
    s, tr = m["layer"], m["layer"]["t_range"]  # the same ratios without the logit range (fastpath.ranges)
    s["ratio_forward_without_range"] = s["madds_forward"] / max(s["t_forward"] - tr, 1e-9) / rate
    s["ratio_forward_backward_without_range"] = (s["madds_forward"] + s["madds_backward"]) / max(
        s["t_forward_backward"] - tr, 1e-9) / rate  # fmt: skip
    return m


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[2**16, 2**18])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    rate = gemm_rate(reps=args.reps)
    res = {"gemm_madds_per_s": rate, "d": D, "eps": EPS, "runs": []}
    for n in args.n:
        res["runs"].append(with_ratios(measure(n, args.reps), rate))
    if args.profile:
        res["profile"] = profile_split(args.n[0])
        res["profile"]["ceiling"] = ceiling(res["profile"], rate)
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
