r"""Benchmark of the Arb (ball arithmetic) reference against mpmath at equal precision (issue 11), one JSON per line.

Inputs (seeded): X ~ Uniform[-1, 1]^{n x d}, weights Uniform[-1/sqrt d, 1/sqrt d] (``fastpath.compare.random_layers``,
tanh blocks), residual, causal, upstream gradient Uniform[-1, 1]; d = 4, m = 2. "fwd+bwd" is
``reference.forward(..., backend=B, dps=50)`` then ``reference.backward``. Records (``"kind"``):

* ``speed``: for n in {16, 64, 256, 1024}: Arb time and mpmath time at 50 digits, measured alternately in this run
  (best of ``repeats``), and their ratio (target: >= 20x at n = 64). mpmath is skipped where its n^2 extrapolation
  from the previous size exceeds ``--mp-cap`` seconds (the record says so).
* ``largest_n``: the largest n (doubling from 64, then one step of 1.41x) for which the full 2-layer gradient is
  enclosed with every radius <= 1e-30 relative to its field within 60 s.
* ``certify``: ``fastpath.certify.certify_fast`` on the held-out n = 1024 rows of the fast-path benchmark grid
  (``--quick``: two of them): wall time (target < 60 s each) and whether the certificate was proved.

Usage: ``python benchmarks/arb_bench.py [--quick] [--out FILE.jsonl]``. Needs ``pip install "altgrad[certify]"``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import reference  # noqa: E402
from fastpath.compare import random_layers  # noqa: E402
from reference import arb as A  # noqa: E402
from reference.testing import grad_fields  # noqa: E402

SEED = 20241129
CFG = dict(residual=True, causal=True, activation="tanh")


def emit(rec: dict, out) -> None:
    line = json.dumps(rec)
    print(line, flush=True)
    if out is not None:
        out.write(line + "\n")
        out.flush()


def problem(n: int, d: int = 4, m: int = 2):
    rng = np.random.default_rng([SEED, n, d, m])
    return rng.uniform(-1, 1, (n, d)), random_layers(rng, d, m), rng.uniform(-1, 1, (n, d))


def fwd_bwd(backend: str, n: int, dps: int = 50):
    X, layers, G = problem(n)
    t0 = time.perf_counter()
    g = reference.backward(reference.forward(X, layers, backend=backend, dps=dps, **CFG), G)
    return time.perf_counter() - t0, g


def max_rel_radius(g) -> float:
    worst = 0.0
    for v in grad_fields(g).values():
        scale = float(np.abs(A.midpoints(v)).max())
        if scale > 0:
            worst = max(worst, float(A.radii(v).max()) / scale)
    return worst


def speed(ns, repeats: int, mp_cap: float, out) -> None:
    prev = None  # (n, mpmath seconds)
    for n in ns:
        t_arb, t_mp = [], []
        est = None if prev is None else prev[1] * (n / prev[0]) ** 2
        run_mp = est is None or est <= mp_cap
        for _ in range(repeats):  # alternate, so both see the same machine load
            t_arb.append(fwd_bwd("arb", n)[0])
            if run_mp:
                t_mp.append(fwd_bwd("mpmath", n)[0])
        rec = {"kind": "speed", "n": n, "d": 4, "m": 2, "dps": 50, "arb_s": min(t_arb)}
        if run_mp:
            rec.update(mpmath_s=min(t_mp), ratio=min(t_mp) / min(t_arb))
            prev = (n, min(t_mp))
        else:
            rec.update(mpmath_s=None, ratio=None, note=f"mpmath skipped: n^2 extrapolation {est:.0f} s > {mp_cap} s")
        emit(rec, out)


def largest_n(limit_s: float, out, n_max: int) -> None:
    best, n, tried = None, 64, []
    while n <= n_max:
        t, g = fwd_bwd("arb", n, dps=40)
        r = max_rel_radius(g)
        tried.append({"n": n, "seconds": t, "max_rel_radius": r})
        if t > limit_s or r > 1e-30:
            break
        best = n
        n = int(n * 2) if n < 1024 else int(n * 1.41)
    emit({"kind": "largest_n", "limit_s": limit_s, "radius_target": 1e-30, "largest_n": best, "tried": tried}, out)


def certify(quick: bool, out) -> None:
    from fastpath.certify import certify_fast

    grid = list(itertools.product((2, 4, 6), (1, 2, 4), (False, True), (1, 2), (False, True), (1e-4, 1e-8, 1e-12)))
    rows = grid[::27] if quick else grid[::9]  # a spread of the held-out n = 1024 rows
    for idx, (dd, m, causal, heads, residual, eps) in enumerate(rows):
        if dd % heads:
            continue
        rng = np.random.default_rng([SEED, 1024, idx])
        X, layers, dL = rng.uniform(-1, 1, (1024, dd)), random_layers(rng, dd, m), rng.uniform(-1, 1, (1024, dd))
        t0 = time.perf_counter()
        try:
            c = certify_fast(X, layers, dL, eps=eps, causal=causal, heads=heads, residual=residual, activation="tanh")
            res = {"proved": c.proved, "summary": c.summary()}
        except ValueError as exc:  # a documented refusal of the fast path
            res = {"proved": None, "refused": str(exc)}
        emit({"kind": "certify", "n": 1024, "d": dd, "m": m, "causal": causal, "heads": heads, "residual": residual,
              "eps": eps, "seconds": time.perf_counter() - t0, **res}, out)  # fmt: skip


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (about a minute)")
    ap.add_argument("--out", type=Path, help="also write the JSON lines to this file")
    ap.add_argument("--mp-cap", type=float, default=120.0, help="skip an mpmath run estimated above this (s)")
    args = ap.parse_args(argv)
    A.flint_module()
    out = args.out.open("w") if args.out else None
    try:
        emit({"kind": "config", "seed": SEED, "quick": args.quick, "model": CFG}, out)
        speed((16, 64) if args.quick else (16, 64, 256, 1024), 1 if args.quick else 3, args.mp_cap, out)
        largest_n(60.0, out, 256 if args.quick else 4096)
        certify(args.quick, out)
    finally:
        if out is not None:
            out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
