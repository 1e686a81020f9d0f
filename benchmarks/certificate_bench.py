r"""Tightness and cost of the a-posteriori certificate (issue 10), measured: one JSON object per line.

Inputs (seeded, as in issue 10): X, dL/dout ~ Uniform[-1, 1]^{n x 4}, weights :func:`fastpath.compare.random_layers`
(entries Uniform[-1/2, 1/2]), beta = 1/d_h, residual, tanh blocks, the polynomial path forced
(``method="lowrank"``), causal blocks of 32 tokens where n <= 256 (the default 256 would make f one exact diagonal
block). Grid: n in {256, 4096, 65536}, m in {1, 2, 4, 8, 16}, causal on/off, eps in {1e-3, 1e-6, 1e-9}, heads
1 and 2; ``--quick``: n = 256, m in {1, 2, 4}, eps 1e-6. n = 65536 is skipped unless ``--large`` (the exact
reference is O(n^2): 206 s for one layer there, benchmarks/README.md), and then only m = 1.

Per case (record ``"kind": "case"``):

* ``fields``: for the output T_m, dL/dX, and dW, dW_V of layer 1 and of layer m: error/bound max and median over
  entries (error against the exact float64 reference, evaluated layer by layer so that memory stays one layer's
  n×n; entries where error and bound are both 0 count as 0), the max error, max bound, max |value|;
* ``vacuous``: the fields whose largest bound reaches max |value| of the field while the actual relative error
  (max error / max |value|) is at most 1e-2 (issue 10's acceptance: there should be none);
* ``refused``: the fields with a non-finite bound (kernel rho >= 1 somewhere: fastpath refuses them);
* cost: ``madds_fraction = cert_madds / madds`` (counted, :mod:`fastpath.work`: the certificate's columns carried
  by the fast path's own GEMMs, :func:`fastpath.head.mm_fused`, plus its O(n d^2) closing products) and
  ``time_fraction = (t_post - t_prior) / t_prior`` where t_post is fastpath forward + backward with the
  a-posteriori certificate and t_prior with the a-priori one (the baseline "fast path without the a-posteriori
  certificate": the a-priori certificate adds only O(n d (d + d_h)) scalar work, no pass over the rank, and the
  fast path's own ``madds`` are identical under both); the two are timed round-robin in one process, medians of
  ``reps`` = 5, ``load`` the 1-minute load average before and after.

``--cost``: the cost grid only (no exact reference, no tightness): n in {2^16, 2^18}, m = 1, causal on/off, heads 1
and 2, eps = 1e-8 (issue 10's cost paragraph).

A ``summary`` record gives the issue's acceptance figures. Usage:
``python benchmarks/certificate_bench.py [--quick] [--large] [--out FILE.jsonl] [--n N ...] [--m M ...]
[--eps EPS ...]`` (the last three select a part of the grid).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as benchmarks/fastpath_bench.py (skinny GEMMs on 2 cores)

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastpath  # noqa: E402
from fastpath.compare import random_layers  # noqa: E402
from proofs_check.checks.fast_certificate import exact_layerwise  # noqa: E402 (one home of the layerwise reference)

SEED = 20240826
D = 4


def grid(quick: bool, large: bool) -> list[tuple]:
    """(n, m, causal, eps, heads) of issue 10 (module docstring)."""
    if quick:
        return list(itertools.product((256,), (1, 2, 4), (False, True), (1e-6,), (1, 2)))
    g = list(itertools.product((256, 4096), (1, 2, 4, 8, 16), (False, True), (1e-3, 1e-6, 1e-9), (1, 2)))
    if large:
        g += list(itertools.product((65536,), (1,), (False, True), (1e-3, 1e-6, 1e-9), (1, 2)))
    return g


def ratios(fast, exact, bound) -> dict:
    diff = np.abs(np.asarray(fast) - np.asarray(exact))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(diff == 0, 0.0, diff / bound)
    vmax = float(np.abs(exact).max())
    return dict(max=float(r.max()), median=float(np.median(r)), err=float(diff.max()), bound=float(np.max(bound)),
                value=vmax, rel_err=float(diff.max()) / vmax if vmax > 0 else float(diff.max()))  # fmt: skip


def round_robin(fns: dict, reps: int) -> tuple[dict, dict]:
    """Median wall time of each of ``fns`` (name -> callable), called in turn ``reps`` times; and its last result."""
    times, outs = {k: [] for k in fns}, {}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            outs[k] = fn()
            times[k].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}, outs


def case(n: int, m: int, causal: bool, eps: float, heads: int, exact: bool = True) -> dict:
    rng = np.random.default_rng([SEED, n, m, int(causal), heads])
    X, layers, dL = rng.uniform(-1, 1, (n, D)), random_layers(rng, D, m), rng.uniform(-1, 1, (n, D))
    cfg = dict(causal=causal, heads=heads, residual=True, activation="tanh")
    kw = dict(eps=eps, method="lowrank", allow_vacuous=True, block=32 if (causal and n <= 256) else None, **cfg)
    reps = 5

    def run(cert):
        tr = fastpath.forward(X, layers, certificate=cert, **kw)
        return tr, fastpath.backward(tr, dL)

    rec = dict(kind="case", n=n, m=m, causal=causal, eps=eps, heads=heads, load_before=os.getloadavg()[0])
    try:
        t, outs = round_robin({"post": lambda: run("a-posteriori"), "prior": lambda: run("a-priori")}, reps)
    except ValueError as e:  # a refusal that allow_vacuous does not cover (e.g. the memory budget)
        rec["error"] = str(e)[:300]
        return rec
    (tr, g), (tp, gp) = outs["post"], outs["prior"]
    assert tr.madds == tp.madds and g.madds == gp.madds  # the fast path's own work is the same under both
    rec.update(degree=tr.degree, rank=tr.rank, R=tr.R, t_fast=t["prior"], t_post=t["post"], reps=reps,
               time_fraction=(t["post"] - t["prior"]) / t["prior"], madds=tr.madds + g.madds,
               cert_madds=tr.cert_madds + g.cert_madds, load_after=os.getloadavg()[0])  # fmt: skip
    rec["madds_fraction"] = rec["cert_madds"] / rec["madds"]
    if not exact:
        return rec
    t0 = time.perf_counter()
    T_m, dX, dW, dWV = exact_layerwise(X, layers, dL, **cfg)
    rec["t_exact"] = time.perf_counter() - t0
    pairs = {"T_m": (tr.output, T_m, tr.bound_T[-1]), "dX": (g.dX, dX, g.bound.dX),
             "dW[1]": (g.layers[0].dW, dW[0], g.bound.layers[0].dW),
             "dW_V[1]": (g.layers[0].dW_V, dWV[0], g.bound.layers[0].dW_V)}  # fmt: skip
    if m > 1:
        pairs.update({f"dW[{m}]": (g.layers[-1].dW, dW[-1], g.bound.layers[-1].dW),
                      f"dW_V[{m}]": (g.layers[-1].dW_V, dWV[-1], g.bound.layers[-1].dW_V)})  # fmt: skip
    rec["fields"] = {k: ratios(*v) for k, v in pairs.items()}
    rec["violations"] = [k for k, v in rec["fields"].items() if v["max"] > 1]
    rec["refused"] = [k for k, v in rec["fields"].items() if not np.isfinite(v["bound"])]
    rec["vacuous"] = [k for k, v in rec["fields"].items()
                      if np.isfinite(v["bound"]) and v["bound"] >= v["value"] and v["rel_err"] <= 1e-2]  # fmt: skip
    return rec


def summary(recs: list[dict]) -> dict:
    ok = [r for r in recs if "fields" in r or "madds" in r]
    out = dict(kind="summary", cases=len(recs), measured=len(ok), errors=len(recs) - len(ok),
               violations=sum(len(r.get("violations", [])) for r in ok),
               vacuous_without_large_error=[(r["n"], r["m"], r["causal"], r["eps"], r["heads"], r["vacuous"])
                                            for r in ok if r.get("vacuous")],
               refused_cases=sum(1 for r in ok if r.get("refused")))  # fmt: skip
    for f in ("dX", "dW[1]", "dW_V[1]"):
        for m in sorted({r["m"] for r in ok}):
            meds = [r["fields"][f]["median"] for r in ok if r["m"] == m and "fields" in r and not r["refused"]]
            if meds:
                out[f"median_{f}_m{m}"] = _spread(meds)
    fin = [r for r in ok if not r.get("refused")]
    if fin:
        for key in ("time_fraction", "madds_fraction"):
            out[key] = _spread([r[key] for r in fin])
    return out


def _spread(xs: list[float]) -> dict:
    """min, median and max of a list of numbers (the summary's one form)."""
    return dict(min=float(np.min(xs)), median=float(np.median(xs)), max=float(np.max(xs)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="n = 256, m <= 4, eps 1e-6 (about a minute)")
    p.add_argument("--large", action="store_true", help="also n = 65536, m = 1 (exact reference: minutes per case)")
    p.add_argument("--cost", action="store_true", help="only the cost grid n in {2^16, 2^18} (no exact reference)")
    p.add_argument("--out", metavar="FILE", help="also write the JSON lines to FILE")
    p.add_argument("--n", type=int, nargs="+", help="only these n (a part of the grid)")
    p.add_argument("--m", type=int, nargs="+", help="only these m")
    p.add_argument("--eps", type=float, nargs="+", help="only these eps")
    a = p.parse_args(argv)
    out = open(a.out, "w") if a.out else None  # noqa: SIM115
    recs = []

    def emit(rec):
        line = json.dumps(rec)
        print(line, flush=True)
        if out is not None:
            out.write(line + "\n")
            out.flush()

    emit(dict(kind="config", quick=a.quick, large=a.large, cost=a.cost, seed=SEED, d=D, numpy=np.__version__,
              blas_threads=os.environ.get("OPENBLAS_NUM_THREADS"), loadavg_1min=os.getloadavg()[0],
              date=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              skipped="n = 65536 unless --large (then m = 1 only)"))  # fmt: skip
    g = list(itertools.product((2**16, 2**18), (1,), (False, True), (1e-8,), (1, 2))) if a.cost else None
    cells = [c for c in (g or grid(a.quick, a.large)) if (not a.n or c[0] in a.n) and (not a.m or c[1] in a.m)
             and (not a.eps or c[3] in a.eps)]  # fmt: skip
    for n, m, causal, eps, heads in cells:
        rec = case(n, m, causal, eps, heads, exact=not a.cost)
        recs.append(rec)
        emit(rec)
    emit(summary(recs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
