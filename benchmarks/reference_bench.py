"""Benchmarks of the exact reference (issue 2). Prints one JSON object per line; ratios are measured in one run.

1. exact float64 one-layer gradient (reference.forward + backward, five named terms) at n = 4096, d = 64 against a
   plain numpy forward followed by the same backward core (spec Appendix A ``exact_backward``): the ratio is the
   cost of the reference's validation and traces, target <= 2.
2. the row-blocked exact path at n = 65536, d = 4: peak resident memory (measured in a fresh subprocess with
   ru_maxrss) target < 8 GB, and its time.
3. the mpmath gradient of a 2-layer model at n = 16, d = 4, dps = 50: target < 30 s.

Usage: python benchmarks/reference_bench.py [--quick] [--repeat K]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

import numpy as np


def plain_numpy(X, W, WV, G, beta):
    """Spec Appendix A ``exact_backward``: plain-numpy forward, then the one home of the dense backward formulas
    (:func:`reference.attention.dense_head_backward`) without the reference's validation, traces and dataclasses."""
    from reference.attention import dense_head_backward

    S = beta * X @ W @ X.T  # (n, n)
    A = np.exp(S - S.max(axis=1, keepdims=True))  # (n, n)
    f = A / A.sum(axis=1, keepdims=True)  # (n, n)
    h = X @ WV  # (n, d)
    s = f @ h  # (n, d)
    hg = dense_head_backward(G, f, h, s, X, X, W, WV, beta)
    return s, hg.dX, hg.dW, hg.dW_V


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bench_dense(n, d, repeat):
    from reference import Layer, backward, forward

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (n, d))
    WQ, WK, WV = (rng.uniform(-1, 1, (d, d)) / np.sqrt(d) for _ in range(3))
    G = rng.uniform(-1, 1, (n, d))
    beta = 1.0 / d

    def ours():
        tr = forward(X, [Layer(WQ, WK, WV)])
        return tr, backward(tr, G)

    t_ours, (tr, g) = best_of(ours, repeat)
    t_plain, (s, dX, dW, dWV) = best_of(lambda: plain_numpy(X, WQ @ WK.T, WV, G, beta), repeat)
    agree = max(
        float(np.abs(g.dX - dX).max() / np.abs(dX).max()),
        float(np.abs(g.layers[0].dW - dW).max() / np.abs(dW).max()),
        float(np.abs(g.layers[0].dW_V - dWV).max() / np.abs(dWV).max()),
    )
    return {"bench": "dense_one_layer", "n": n, "d": d, "t_reference_s": t_ours, "t_plain_numpy_s": t_plain,
            "ratio": t_ours / t_plain, "target_ratio_max": 2.0, "max_rel_diff": agree}  # fmt: skip


_BLOCKED_CHILD = """
import json, resource, sys, time
import numpy as np
from reference.blocked import layer_gradient_blocked
n, d, block = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
X = rng.uniform(-1, 1, (n, d)); Ws = [rng.uniform(-1, 1, (d, d)) / np.sqrt(d) for _ in range(3)]
G = rng.uniform(-1, 1, (n, d))
t0 = time.perf_counter(); out = layer_gradient_blocked(X, *Ws, G, block=block); t = time.perf_counter() - t0
print(json.dumps({"t": t, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "finite": bool(all(np.isfinite(o).all() for o in out))}))
"""


def bench_blocked(n, d, block):
    r = subprocess.run([sys.executable, "-c", _BLOCKED_CHILD, str(n), str(d), str(block)], capture_output=True,
                       text=True, check=True)  # fmt: skip
    child = json.loads(r.stdout.strip().splitlines()[-1])
    peak_gb = child["maxrss_kb"] * 1024 / 1e9  # ru_maxrss is in KiB on Linux
    return {"bench": "blocked_one_layer", "n": n, "d": d, "block": block, "t_s": child["t"],
            "peak_rss_gb": peak_gb, "target_peak_gb_max": 8.0, "finite": child["finite"]}  # fmt: skip


def bench_mpmath(n, d, m, dps):
    from reference import Layer, backward, forward

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (n, d))
    layers = [Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(4))) for _ in range(m)]
    t0 = time.perf_counter()
    tr = forward(X, layers, activation="tanh", backend="mpmath", dps=dps)
    backward(tr, rng.uniform(-1, 1, (n, d)))
    t = time.perf_counter() - t0
    return {"bench": "mpmath_gradient", "n": n, "d": d, "m": m, "dps": dps, "t_s": t, "target_s_max": 30.0}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, a smoke run (< 10 s)")
    ap.add_argument("--repeat", type=int, default=3, help="best-of-K timing (default 3)")
    args = ap.parse_args(argv)
    print(json.dumps({"machine": platform.machine(), "python": platform.python_version(), "numpy": np.__version__,
                      "cpus": __import__("os").cpu_count()}))  # fmt: skip
    if args.quick:
        rows = [bench_dense(512, 16, args.repeat), bench_blocked(4096, 4, 256), bench_mpmath(6, 4, 2, 50)]
    else:
        rows = [bench_dense(4096, 64, args.repeat), bench_blocked(65536, 4, 256), bench_mpmath(16, 4, 2, 50)]
    for r in rows:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
