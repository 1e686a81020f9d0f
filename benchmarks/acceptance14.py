r"""Issue 14's acceptance ratios, each measured in one run on one thread (report, never a check).

One line of JSON per acceptance item, every ratio taken between rows timed in this process, round-robin where
a row is short (median of ``--repeats``; a row over 2 s is timed once). The items, their inputs and the rows:

* ``small_2^16``, ``small_2^16_causal``, ``small_2^10``, ``small_2^10_causal``: inputs ``small`` of
  :func:`benchmarks.peers_bench.problem` (X ~ U[-1, 1], W ~ U[±1/√d], β = 1/d), d = 4, eps = 1e-8: altgrad
  (``fastpath.forward`` + ``fastpath.backward``, method ``auto``, the default a-posteriori certificate, which is
  part of the time) against torch float64 SDPA with autograd; targets 100×, 30×, ≥ 1× (non-causal).
* ``authors_2^16``: inputs ``authors`` (X ~ N(0, 1), orthogonal W, β = 1/d), d = 4, eps = 1e-6: the same rows;
  target 5×, the certificate intact (every entry of s and dX within its bound; the exact result is torch float64,
  whose own error, ~1e-16 relative, is far below the bounds).
* ``forward_d12``: inputs ``small``, d = 12, n = 40960, forward only: altgrad at ``--eps12`` (its forward time
  includes its forward certificate) against the authors' degree-2 polynomial (rank 1 + d + d², correct
  normaliser, :func:`benchmarks.peers_kernels.feature_forward`); the max-entry error of s of each against
  exact softmax attention (torch float64); target: time ≤ degree 2's, error ≥ 10× lower. altgrad's forward is also
  timed with ``certificate="a-priori"`` (the spec §2.10 constants, O(n d) work) beside the default.
* ``gemm_rate``: :func:`benchmarks.gemm_rate.measure` at n = 2^18 (counted multiply-adds over wall time against
  the square GEMM rate, both scopes); target 0.5.
* ``authors_d8`` (only with ``--d8``, about 10–20 minutes): authors' inputs, d = 8, n = 2^16, eps = 1e-6, method
  ``auto``: runs within the default memory budget (no refusal), its time and torch's.

Run: ``python benchmarks/acceptance14.py [--repeats 3] [--eps12 1e-4] [--d8] [--skip ITEM ...]``. Needs torch
(``pip install torch==2.13.0``); prints one JSON object per line, the first with the date, load and versions.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy is imported
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastpath  # noqa: E402
from benchmarks import gemm_rate  # noqa: E402
from benchmarks.peers_bench import REPEAT_BELOW_S, TORCH_MISSING, problem, run_altgrad, run_features, torch  # noqa: E402
from benchmarks.peers_kernels import degree2_features  # noqa: E402
from reference.model import Layer  # noqa: E402

ITEMS = ("small_2^16", "small_2^16_causal", "small_2^10", "small_2^10_causal", "authors_2^16", "forward_d12",
         "gemm_rate")  # fmt: skip
TARGETS = {"small_2^16": 100.0, "small_2^16_causal": 30.0, "small_2^10": 1.0, "small_2^10_causal": None,
           "authors_2^16": 5.0}  # fmt: skip


def _torch(P, causal: bool, backward: bool = True):
    X, W_Q, W_K, W_V, G, beta = P
    Xt = torch.tensor(X, requires_grad=backward)
    Ws = [torch.tensor(w) for w in (W_Q, W_K, W_V)]
    t0 = time.perf_counter()
    q, k, v = ((Xt @ w)[None, None] for w in Ws)  # (1, 1, n, d): 4-D selects the CPU flash kernel
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=beta)[0, 0]  # (n, d)
    if backward:
        (out * torch.tensor(G)).sum().backward()
    t = time.perf_counter() - t0
    return t, out.detach().numpy(), (Xt.grad.numpy() if backward else None)


def _timed(rows: dict, repeats: int) -> dict:
    """rows: name -> fn() returning (t, payload); round-robin repeats of the rows whose first run was short."""
    out = {k: [fn()] for k, fn in rows.items()}
    for _ in range(repeats - 1):
        for k, fn in rows.items():
            if out[k][0][0] <= REPEAT_BELOW_S:
                out[k].append(fn())
    return {k: (statistics.median(r[0] for r in v), v[-1][1], len(v)) for k, v in out.items()}


def fwd_bwd(name: str, dist: str, n: int, d: int, causal: bool, eps: float, repeats: int) -> dict:
    P = problem(dist, n, d)

    def alt():
        _, t, s, dX, info = run_altgrad(P, causal, eps, "auto")
        return t, (s, dX, info)

    def tor():
        t, s, dX = _torch(P, causal)
        return t, (s, dX)

    res = _timed({"torch_f64": tor, "altgrad": alt}, repeats)
    (t_t, (s_t, dX_t), _), (t_a, (s_a, dX_a, info), reps) = res["torch_f64"], res["altgrad"]
    es, ed = np.abs(s_a - s_t), np.abs(dX_a - dX_t)
    return dict(item=name, dist=dist, n=n, d=d, causal=causal, eps=eps, t_torch_f64=t_t, t_altgrad=t_a,
                repeats=reps, ratio=t_t / t_a, target=TARGETS[name], method=info["method_used"],
                degree=info["degree"], rank=info["rank"], R=info["R"], err_s=float(es.max()),
                err_dX=float(ed.max()), bound_s=float(info["bound_s"].max()), bound_dX=float(info["bound_dX"].max()),
                within_bound=bool((es <= info["bound_s"]).all() and (ed <= info["bound_dX"]).all()))  # fmt: skip


def forward_d12(eps: float, repeats: int) -> dict:
    n, d = 40960, 12
    P = problem("small", n, d)

    def alt():
        t, _, s, _, info = run_altgrad_forward(P, eps)
        return t, (s, info)

    def alt_prior():
        return run_altgrad_forward(P, eps, "a-priori")[0], None

    def deg2():
        t, _, s, _, _ = run_features(P, degree2_features, degree2_features, 1 + d + d * d)
        return t, s

    res = _timed({"altgrad": alt, "altgrad_apriori": alt_prior, "degree2": deg2}, repeats)
    _, s_ex, _ = _torch(P, False, backward=False)
    (t_a, (s_a, info), reps), (t_2, s_2, _) = res["altgrad"], res["degree2"]
    e_a, e_2 = float(np.abs(s_a - s_ex).max()), float(np.abs(s_2 - s_ex).max())
    t_p = res["altgrad_apriori"][0]
    return dict(item="forward_d12", dist="small", n=n, d=d, eps=eps, t_altgrad_forward=t_a, t_degree2_forward=t_2,
                repeats=reps, time_ratio=t_2 / t_a, err_s_altgrad=e_a, err_s_degree2=e_2, error_ratio=e_2 / e_a,
                t_altgrad_forward_apriori=t_p, time_ratio_apriori=t_2 / t_p,
                target="time_ratio >= 1 and error_ratio >= 10", **info)  # fmt: skip


def run_altgrad_forward(P, eps: float, certificate: str = "a-posteriori"):
    """Forward only (its forward certificate included), like peers_bench's ``t_fwd``."""
    X, W_Q, W_K, W_V, _, beta = P
    t0 = time.perf_counter()
    tr = fastpath.forward(X, [Layer(W_Q, W_K, W_V)], eps=eps, beta=beta, certificate=certificate)
    t = time.perf_counter() - t0
    return t, t, tr.output, None, dict(method_used=tr.method, degree=tr.degree, rank=tr.rank, R=tr.R)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--eps12", type=float, default=1e-4, help="altgrad's eps for the d = 12 forward item")
    p.add_argument("--d8", action="store_true", help="also run authors' d = 8 at n = 2^16 (10-20 minutes)")
    p.add_argument("--skip", nargs="*", default=(), choices=ITEMS, help="items to leave out")
    a = p.parse_args(argv)
    if torch is None:
        print(f"acceptance14: {TORCH_MISSING}", file=sys.stderr)
        return 2
    print(json.dumps(dict(item="config", date=time.strftime("%Y-%m-%d %H:%M:%S %Z"), loadavg_1min=os.getloadavg()[0],
                          cpus=os.cpu_count(), numpy=np.__version__, torch=torch.__version__, threads=1,
                          command=" ".join(["python", "benchmarks/acceptance14.py", *(argv or sys.argv[1:])]))),
          flush=True)  # fmt: skip
    cells = {"small_2^16": ("small", 2**16, False, 1e-8), "small_2^16_causal": ("small", 2**16, True, 1e-8),
             "small_2^10": ("small", 2**10, False, 1e-8), "small_2^10_causal": ("small", 2**10, True, 1e-8),
             "authors_2^16": ("authors", 2**16, False, 1e-6)}  # fmt: skip
    for name, (dist, n, causal, eps) in cells.items():
        if name not in a.skip:
            reps = max(a.repeats, 5) if n <= 2**10 else a.repeats
            print(json.dumps(fwd_bwd(name, dist, n, 4, causal, eps, reps) | {"load": os.getloadavg()[0]}), flush=True)
    if "forward_d12" not in a.skip:
        print(json.dumps(forward_d12(a.eps12, a.repeats) | {"load": os.getloadavg()[0]}), flush=True)
    if "gemm_rate" not in a.skip:
        rate = gemm_rate.gemm_rate(reps=a.repeats)
        m = gemm_rate.with_ratios(gemm_rate.measure(2**18, a.repeats), rate)
        print(json.dumps(dict(item="gemm_rate", gemm_madds_per_s=rate, target=0.5, **m, load=os.getloadavg()[0])),
              flush=True)  # fmt: skip
    if a.d8:
        print(json.dumps(fwd_bwd_d8() | {"load": os.getloadavg()[0]}), flush=True)
    return 0


def fwd_bwd_d8() -> dict:
    P = problem("authors", 2**16, 8)
    try:
        _, t_a, _, _, info = run_altgrad(P, False, 1e-6, "auto")
    except (ValueError, MemoryError) as e:
        return dict(item="authors_d8", refused=f"{type(e).__name__}: {str(e)[:300]}")
    t_t, _, _ = _torch(P, False)
    return dict(item="authors_d8", n=2**16, d=8, eps=1e-6, t_altgrad=t_a, t_torch_f64=t_t, ratio=t_t / t_a,
                method=info["method_used"], rank=info["rank"], refused=None)  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
