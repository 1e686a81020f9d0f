r"""The streamed exact head (:mod:`fastpath.dense`) at large n: time, peak memory, counted work, torch beside it.

Cases (one process, single thread, float64; X ~ N(0, 1), W_Q, W_K, W_V the Q factors of Gaussian d×d matrices,
beta = 1/d, G ~ U[-1, 1], ``np.random.default_rng(seed)`` with seed 0):

* ``repro``: d = 8, n = 2^16, eps = 1e-6, ``fastpath.forward`` (method "auto", which picks "exact") + ``backward``
  with the default memory budget (issue 14's d = 8 acceptance; before :mod:`fastpath.dense` it asked numpy for
  32 GiB), beside torch float64 ``scaled_dot_product_attention`` with autograd on the same inputs;
* ``d4``: d = 4, n = 2^12 and 2^14, method "exact": with the default budget (b = n at 2^12, streamed at 2^14),
  streamed in blocks of 512 rows, and the dense head that keeps f (``memory_budget`` large enough for b = n: the
  path before the streaming) when the machine has the memory.

Peak memory: ``tracemalloc`` (numpy reports its allocations to it) around the fast forward + backward, certificate
included. Timings are medians of round-robin repeats and decide nothing (counted work does, ``madds``).
Run: ``OMP_NUM_THREADS=1 python benchmarks/dense_bench.py [--quick]``; one JSON line per measurement.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"  # before numpy is imported: single-thread BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import fastpath  # noqa: E402
from fastpath.dense import working_set  # noqa: E402
from fastpath.lowrank import MEMORY_BUDGET  # noqa: E402
from reference.model import Layer  # noqa: E402

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # optional extra
    torch = None


def problem(n: int, d: int, seed: int = 0):
    """The authors' inputs: (X, W_Q, W_K, W_V, G, beta)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = [np.linalg.qr(rng.standard_normal((d, d)))[0] for _ in range(3)]
    return X, *W, rng.uniform(-1, 1, (n, d)), 1.0 / d


def run_fast(P, eps, method, budget):
    X, W_Q, W_K, W_V, G, beta = P
    tracemalloc.start()
    t0 = time.perf_counter()
    tr = fastpath.forward(X, [Layer(W_Q, W_K, W_V)], eps=eps, beta=beta, method=method, memory_budget=budget)
    t1 = time.perf_counter()
    g = fastpath.backward(tr, G)
    t2 = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    st = tr.caches[0].heads[0]
    info = dict(method_used=st.method, block=None if st.dense is None else st.dense.block, madds_fwd=tr.madds,
                madds_bwd=g.madds, peak_bytes=peak, cert_err=tr.cert_err, bound_s=float(np.max(tr.bound_T[-1])),
                bound_dX=float(np.max(g.bound.dX)))  # fmt: skip
    return t1 - t0, t2 - t0, tr.output, g.dX, info


def run_torch(P):
    X, W_Q, W_K, W_V, G, beta = P
    Xt = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    Ws = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in (W_Q, W_K, W_V)]
    Gt = torch.tensor(G, dtype=torch.float64)
    t0 = time.perf_counter()
    q, k, v = ((Xt @ w)[None, None] for w in Ws)  # (1, 1, n, d): 4-D selects the CPU flash kernel
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, scale=beta)[0, 0]  # (n, d)
    t1 = time.perf_counter()
    (out * Gt).sum().backward()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0, out.detach().numpy(), Xt.grad.numpy(), {}


def available_bytes() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def compare(case: str, runs: dict, repeats: int) -> None:
    """Round-robin ``repeats`` times over ``runs`` (name -> thunk); print one JSON line per run, relative
    differences of s and dX against the first run."""
    times = {k: [] for k in runs}
    out = {}
    for _ in range(repeats):
        for name, fn in runs.items():
            tf, t, s, dX, info = fn()
            times[name].append((tf, t))
            out[name] = (s, dX, info)
    s0, dX0, _ = next(iter(out.values()))
    for name, (s, dX, info) in out.items():
        rec = dict(case=case, method=name, t_fwd=statistics.median(x[0] for x in times[name]),
                   t=statistics.median(x[1] for x in times[name]), repeats=repeats,
                   rel_s=float(np.abs(s - s0).max() / np.abs(s0).max()),
                   rel_dX=float(np.abs(dX - dX0).max() / np.abs(dX0).max()), **info)  # fmt: skip
        print(json.dumps(rec), flush=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="n / 16 everywhere (a smoke run)")
    p.add_argument("--repeats", type=int, default=3, help="round-robin repeats below n = 2^16 (2^16: one)")
    p.add_argument("--only", choices=("repro", "d4"), help="one case only")
    a = p.parse_args(argv)
    k = 4 if a.quick else 0
    if a.only in (None, "d4"):
        for n in (2**12 >> k, 2**14 >> k):
            P = problem(n, 4)
            runs = {"exact default budget": lambda P=P: run_fast(P, 1e-6, "exact", MEMORY_BUDGET)}
            b512 = working_set(n, 4, 4, 512)
            runs["exact streamed b=512"] = lambda P=P, b512=b512: run_fast(P, 1e-6, "exact", b512)
            keep = working_set(n, 4, 4, n)  # b = n: f kept, the dense head of the reference
            if 3 * n * n * 8 * 6 < available_bytes():  # the dense head's (n, n) arrays, with a margin of 3
                runs["exact dense (f kept)"] = lambda P=P, keep=keep: run_fast(P, 1e-6, "exact", keep)
            else:
                print(json.dumps(dict(case=f"d4 n={n}", method="exact dense (f kept)", skipped="not enough memory",
                                      available=available_bytes())))  # fmt: skip
            if torch is not None:
                runs["torch float64"] = lambda P=P: run_torch(P)
            compare(f"d4 n={n}", runs, a.repeats)
    if a.only in (None, "repro"):
        n = 2**16 >> k
        P = problem(n, 8)
        runs = {"altgrad auto": lambda: run_fast(P, 1e-6, "auto", MEMORY_BUDGET)}
        if torch is not None:
            runs["torch float64"] = lambda: run_torch(P)
        compare(f"repro d=8 n={n}", runs, 1 if not a.quick else a.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
