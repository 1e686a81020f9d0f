r"""Benchmark of the clustered kernel (issue 14 item 3) against the global polynomial and the exact gradient.

One JSON object per line. Inputs (seeded): the authors' ("authors": X ~ N(0, 1), W_Q, W_K, W_V orthogonal from the
QR of a Gaussian d×d) and small logits ("small": X ~ U[-1, 1], W ~ U[±1/√d]); β = 1/d, one head, upstream
G ~ U[-1, 1], eps = 1e-6. Per (inputs, d, n), one layer forward + backward with certificates
(``fastpath.forward`` then ``fastpath.backward``) for ``method="clustered"`` and ``method="lowrank"`` (the global
polynomial; its memory-budget refusal is recorded), and the exact gradient ``reference.blocked.layer_gradient_blocked``
(float64, row-blocked; also the reference for the achieved errors). Fields:

* ``madds``: counted multiply-adds of the fast forward + backward (``trace.madds + grads.madds``, certificates
  excluded, ``cert_madds`` beside it). A global polynomial of rank above ``--max-rank`` (default 20000) is
  ``skipped`` (run time), which is not a refusal; refusals by the memory budget are recorded as ``refused``.
  For the exact method: ``fastpath`` with ``method="exact"`` counted at n <= 2^12, and that count times
  (n / 2^12)^2 above (``madds_extrapolated``: true; its terms are all n^2 or less).
* ``seconds``: wall time of that method in this process (single-threaded BLAS, see below); not a verdict. The fast
  methods' time includes their certificates; the exact baseline's has none.
* ``err_s``, ``err_dX``: max |fast - exact| / max |exact| of the attention output and of dL/dX; ``cert_ok``: every
  entry of both within the certificate (``trace.bound_attn``, ``grads.bound.dX``).
* clustered only: ``clusters`` (per side), ``poly_pairs`` (fraction of pairs on a polynomial), ``max_rank``; or
  ``fallback`` when no pair is on a polynomial (the head then runs the dense kernel, ``method="exact"``).

* ``kind: model`` rows (``--model-sizes 14,16``, authors' inputs, d = 4): the level search's cost model at every
  level, as a ratio to all-dense tiles (counted multiply-adds of the model, nothing run).

Usage: ``python benchmarks/clustered_bench.py [--sizes 12,14] [--dims 4,8] [--model-sizes 14,16] [--out FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as benchmarks/fastpath_bench.py: one thread, recorded

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastpath  # noqa: E402
from fastpath.cluster_tree import MAX_LEVEL, choose_level  # noqa: E402
from fastpath.features import rank_of  # noqa: E402
from fastpath.lowrank import MEMORY_BUDGET, check_budget, logit_range  # noqa: E402
from fastpath.poly import certified_poly  # noqa: E402
from fastpath.work import Work  # noqa: E402
from reference.blocked import layer_gradient_blocked  # noqa: E402
from reference.model import Layer  # noqa: E402

SEED = 14
EPS = 1e-6


def problem(dist: str, n: int, d: int):
    rng = np.random.default_rng([SEED, n, d, dist == "authors"])
    if dist == "authors":
        X = rng.standard_normal((n, d))
        W = [np.linalg.qr(rng.standard_normal((d, d)))[0] for _ in range(3)]
    else:
        X = rng.uniform(-1, 1, (n, d))
        W = [rng.uniform(-1, 1, (d, d)) / np.sqrt(d) for _ in range(3)]
    return X, W, rng.uniform(-1, 1, (n, d))


def rel(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def run_fast(method: str, X, W, G, exact, max_rank: int) -> dict:
    d = X.shape[1]
    if method == "lowrank":  # a rank beyond max_rank is skipped (too slow for this run), said so in the record
        R = logit_range(X @ W[0], X @ W[1], 1.0 / d)
        r = rank_of(d, certified_poly(R, EPS).degree)
        if r > max_rank:
            try:  # the path's own budget rule (fastpath.lowrank.check_budget) decides refusal
                check_budget(R, EPS, certified_poly(R, EPS), d, d, MEMORY_BUDGET)
            except ValueError as e:
                return {"refused": str(e)[:300]}
            return {"skipped": f"rank {r} > --max-rank {max_rank} (R = {R:.4g}); within the memory budget"}
    t0 = time.perf_counter()
    try:
        tr = fastpath.forward(X, [Layer(*W)], eps=EPS, beta=1.0 / d, method=method)
        g = fastpath.backward(tr, G)
    except ValueError as e:
        return {"refused": str(e)[:300], "seconds": round(time.perf_counter() - t0, 3)}
    sec = time.perf_counter() - t0
    s, dX = exact[0], exact[1]
    rec = {"madds": tr.madds + g.madds, "cert_madds": tr.cert_madds + g.cert_madds, "seconds": round(sec, 3),
           "err_s": rel(tr.output, s), "err_dX": rel(g.dX, dX),
           "cert_ok": bool((np.abs(tr.output - s) <= tr.bound_attn[0]).all()
                           and (np.abs(g.dX - dX) <= g.bound.dX).all())}  # fmt: skip
    st = tr.caches[0].heads[0]
    if method == "clustered" and st.method == "exact":
        rec.update(fallback="exact: the dense head is modelled cheaper", R_global=st.R)
    elif method == "clustered":
        rec.update(clusters=[len(st.op.qs.idx), len(st.op.ks.idx)], poly_pairs=float(st.op.plan.poly.mean()),
                   max_rank=int(st.op.plan.rank.max()), R_global=st.R)  # fmt: skip
    elif method == "lowrank":
        rec.update(rank=st.rank, degree=st.cert.degree, R_global=st.R)
    return rec


def exact_count(X, W, G, n_full: int) -> tuple[int, bool]:
    """Counted madds of method "exact" at min(n, 2^12) tokens, scaled by (n/2^12)^2 above (module docstring)."""
    m = min(X.shape[0], 2**12)
    tr = fastpath.forward(X[:m], [Layer(*W)], eps=EPS, beta=1.0 / X.shape[1], method="exact")
    g = fastpath.backward(tr, G[:m])
    return int((tr.madds + g.madds) * (n_full / m) ** 2), n_full > m


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def model_rows(dist: str, d: int, n: int) -> list[dict]:
    """The cost model of :mod:`fastpath.cluster_tree` at every level (counted, nothing timed): its ratio to the
    all-dense tiles n^2 (w + 3(d_h + 2)), w the product columns of the forward and the backward."""
    X, W, _ = problem(dist, n, d)
    q, k = X @ W[0], X @ W[1]
    w = (1 + d) + (d + d * d) + (d + d + d * d)
    dense = n * n * (w + 3 * (d + 2))
    rows = []
    for lev in range(MAX_LEVEL + 1):
        qs, _, pl = choose_level(q, k, 1.0 / d, EPS, "chebyshev", Work(), level=lev, width=w)
        rows.append({"kind": "model", "inputs": dist, "d": d, "n": n, "level": lev, "clusters": len(qs.idx),
                     "poly_pairs": round(float(pl.poly.mean()), 4), "max_rank": int(pl.rank.max()),
                     "cost_ratio": round(pl.cost / dense, 4)})  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="12,14")
    ap.add_argument("--dims", default="4,8")
    ap.add_argument("--dists", default="authors,small")
    ap.add_argument("--methods", default="clustered,lowrank")
    ap.add_argument("--out", default=None)
    ap.add_argument("--max-rank", type=int, default=20000)
    ap.add_argument("--model-sizes", default="", help="log2 n for the cost-model rows (authors inputs, d = 4)")
    a = ap.parse_args()
    out = open(a.out, "a") if a.out else None  # noqa: SIM115
    cfg = {
        "kind": "config",
        "eps": EPS,
        "seed": SEED,
        "OPENBLAS_NUM_THREADS": os.environ["OPENBLAS_NUM_THREADS"],
        "commit": _commit(),
    }
    print(json.dumps(cfg), flush=True)
    if out:
        out.write(json.dumps(cfg) + "\n")
    for lg in (int(x) for x in a.model_sizes.split(",") if x):
        for r in model_rows("authors", 4, 2**lg):
            print(json.dumps(r), flush=True)
            if out:
                out.write(json.dumps(r) + "\n")
    for dist in (x for x in a.dists.split(",") if x):
        for d in (int(x) for x in a.dims.split(",")):
            for lg in (int(x) for x in a.sizes.split(",") if x):
                n = 2**lg
                X, W, G = problem(dist, n, d)
                t0 = time.perf_counter()
                exact = layer_gradient_blocked(X, *W, G, beta=1.0 / d)
                sec = round(time.perf_counter() - t0, 3)
                base = {"inputs": dist, "d": d, "n": n}
                em, extra = exact_count(X, W, G, n)
                rows = [dict(base, method="exact", madds=em, madds_extrapolated=extra, seconds=sec)]
                rows += [dict(base, method=m, **run_fast(m, X, W, G, exact, a.max_rank)) for m in a.methods.split(",")]
                for r in rows:
                    line = json.dumps(r)
                    print(line, flush=True)
                    if out:
                        out.write(line + "\n")
                        out.flush()


if __name__ == "__main__":
    main()
