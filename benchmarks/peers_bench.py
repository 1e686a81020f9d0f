r"""Peers in one benchmark (issue 14, item 5): one attention head, forward + backward, one process, one table.

The head: $s = \mathrm{softmax}(\beta\, X W_Q (X W_K)^\top)\, X W_V$ (causal: mask includes the diagonal), loss
$\langle G, s\rangle$ with a fixed seeded G ~ U[-1, 1]; every method returns s and dL/dX. Single thread
(OMP/OPENBLAS/MKL_NUM_THREADS = 1 before numpy is imported, ``torch.set_num_threads(1)``), float64 unless stated.

Methods (one row each per cell = distribution x d x n x causal):

* ``altgrad``: ``fastpath.forward(X, [Layer(W_Q, W_K, W_V)], eps, beta, causal, method)`` + ``fastpath.backward``,
  eps in {1e-8, 1e-6}, method ``auto`` and ``lowrank`` (the lowrank row is not re-timed where auto chose it);
  records degree, rank, R, the method used, the certified bounds of s and dX and whether every entry is within them;
* ``torch-f64``, ``torch-f32``: ``torch.nn.functional.scaled_dot_product_attention`` with autograd (4-D inputs, so
  the CPU flash kernel is used); skipped with a message when torch is not installed (``pip install torch==2.13.0``);
* ``favor+``: Performer positive orthogonal random features at altgrad's rank (eps = 1e-8) (non-causal);
* ``degree2``: the authors' degree-2 polynomial, rank 1 + d + d^2, correct normaliser (non-causal);
* ``reference.dense`` (n <= 4096): ``reference.attention.head_forward`` + ``head_vjp``; ``reference.blocked``
  (n <= ``EXACT_MAX_N``): the row-blocked exact gradient, which is also the exact result the errors are measured
  against; above that n the exact result is torch float64 (its own row then shows no error), stated per record.

Inputs: ``small`` (X ~ U[-1, 1], W ~ U[+-1/sqrt d], beta = 1/d) and ``authors`` (X ~ N(0, 1), W_Q, W_K, W_V the Q
factors of Gaussian d x d matrices, beta = 1/d). Cells ``--tiny`` (n = 256), ``--quick`` (n = 2^10, 2^12, 2^14),
``--full`` (n = 2^10 ... 2^16, d = 4 and 8); plus the authors' settings n = 10 * 2^d (d = 4..8 quick, 4..12 full),
non-causal, where altgrad also runs at eps = 1e-4 (forward-only times ``t_fwd`` are recorded for every method).
Per row: median time over repeats (3, taken round-robin over the cell's methods so that they share the load's
swings; 1 once a run takes > 2 s), max abs error of s and of dX against the exact result, and ``x_torch64`` /
``x_torch32`` = torch time / this row's time in the same cell. A method whose previous n took more than ``--cap``
seconds (a refusal's time included; a forced lowrank row also follows its auto row) is skipped at larger n (said
in the record). Timings are reported, never asserted. Output: JSON lines (``--out FILE`` keeps them);
``--markdown`` prints the table, ``--results FILE`` writes it with its header (:mod:`benchmarks.peers_tables`);
``--render FILE... [--compact]`` redraws the tables (or README.md's short ones) of earlier runs.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import fastpath  # noqa: E402
from benchmarks.peers_kernels import (  # noqa: E402
    degree2_features,
    favor_features,
    favor_weights,
    feature_backward,
    feature_forward,
)
from benchmarks.peers_tables import compact, header, markdown  # noqa: E402
from reference.attention import head_forward, head_vjp  # noqa: E402
from reference.blocked import layer_gradient_blocked  # noqa: E402
from reference.model import Layer  # noqa: E402

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # optional extra
    torch = None

SEED = 20240826
EXACT_MAX_N = 2**14
DENSE_MAX_N = 2**12
REPEAT_BELOW_S = 2.0  # a method whose first run took longer is timed once
FEATURE_BYTES = 2**31  # n * r * 8 bytes per feature matrix above which FAVOR+ is skipped (four such live at once)
SIZES = {"tiny": ((256,), (4,), (4,)), "quick": ((2**10, 2**12, 2**14), (4,), (4, 5, 6, 7, 8)),
         "full": ((2**10, 2**12, 2**14, 2**16), (4, 8), (4, 5, 6, 7, 8, 9, 10, 11, 12))}  # fmt: skip
TORCH_MISSING = "torch not installed: pip install torch==2.13.0 (the CPU wheel on disk; never an unpinned torch)"


def problem(dist: str, n: int, d: int):
    """Seeded (X, W_Q, W_K, W_V, G, beta) of one distribution."""
    rng = np.random.default_rng([SEED, n, d, 0 if dist == "small" else 1])
    if dist == "small":
        X = rng.uniform(-1, 1, (n, d))
        W = [rng.uniform(-1 / math.sqrt(d), 1 / math.sqrt(d), (d, d)) for _ in range(3)]
    elif dist == "authors":
        X = rng.normal(size=(n, d))
        W = [np.linalg.qr(rng.normal(size=(d, d)))[0] for _ in range(3)]
    else:
        raise ValueError(f"dist: expected 'small' or 'authors', got {dist!r}")
    return X, *W, rng.uniform(-1, 1, (n, d)), 1.0 / d


def medians(times) -> dict:
    t_fwd = None if times[0][0] is None else statistics.median(x[0] for x in times)
    return dict(t=statistics.median(x[1] for x in times), t_fwd=t_fwd, repeats=len(times))


def run_altgrad(P, causal, eps, method):
    X, W_Q, W_K, W_V, G, beta = P
    t0 = time.perf_counter()
    tr = fastpath.forward(X, [Layer(W_Q, W_K, W_V)], eps=eps, beta=beta, causal=causal, method=method)
    t1 = time.perf_counter()
    g = fastpath.backward(tr, G)
    t2 = time.perf_counter()
    info = dict(method_used=tr.method, degree=tr.degree, rank=tr.rank, R=tr.R, cert_err=tr.cert_err,
                bound_s=tr.bound_T[-1], bound_dX=g.bound.dX)  # fmt: skip
    return t1 - t0, t2 - t0, tr.output, g.dX, info


def run_torch(P, causal, dtype):
    X, W_Q, W_K, W_V, G, beta = P
    Xt = torch.tensor(X, dtype=dtype, requires_grad=True)
    Ws = [torch.tensor(w, dtype=dtype, requires_grad=True) for w in (W_Q, W_K, W_V)]
    Gt = torch.tensor(G, dtype=dtype)
    t0 = time.perf_counter()
    q, k, v = ((Xt @ w)[None, None] for w in Ws)  # (1, 1, n, d): 4-D selects the CPU flash kernel
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=beta)[0, 0]  # (n, d)
    t1 = time.perf_counter()
    (out * Gt).sum().backward()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0, out.detach().double().numpy(), Xt.grad.double().numpy(), {}


def run_features(P, feat_q, feat_k, rank):
    X, W_Q, W_K, W_V, G, beta = P
    t0 = time.perf_counter()
    s, state = feature_forward(X, W_Q, W_K, W_V, beta, feat_q, feat_k)
    t1 = time.perf_counter()
    dX = feature_backward(G, state)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0, s, dX, dict(rank=rank)


def run_blocked(P, causal):
    X, W_Q, W_K, W_V, G, beta = P
    t0 = time.perf_counter()
    s, dX, *_ = layer_gradient_blocked(X, W_Q, W_K, W_V, G, beta=beta, causal=causal, block=512)
    t = time.perf_counter() - t0
    return None, t, s, dX, {}  # no separate forward: the blocked routine interleaves both


def run_dense(P, causal):
    X, W_Q, W_K, W_V, G, beta = P
    t0 = time.perf_counter()
    c = head_forward(X, W_Q @ W_K.T, W_V, beta, causal)
    t1 = time.perf_counter()
    dX = head_vjp(G, c).dX
    return t1 - t0, time.perf_counter() - t0, c.s, dX, {}


def error_fields(rec, s, dX, exact, info):
    s_ex, dX_ex, source = exact
    rec["exact"] = source
    if s is s_ex:
        rec.update(err_s=None, err_dX=None)
        return
    es, ed = np.abs(s - s_ex), np.abs(dX - dX_ex)
    rec.update(err_s=float(es.max()), err_dX=float(ed.max()), rel_err_s=float(es.max() / np.abs(s_ex).max()),
               rel_err_dX=float(ed.max() / np.abs(dX_ex).max()))  # fmt: skip
    if "bound_dX" in info:
        bs, bd = info.pop("bound_s"), info.pop("bound_dX")
        rec.update(bound_s=float(bs.max()), bound_dX=float(bd.max()),
                   within_bound=bool((es <= bs).all() and (ed <= bd).all()))  # fmt: skip


def cell(dist, n, d, causal, eps_list, args, slow, emit, kind="cell"):
    """Every method on one (dist, n, d, causal); emits one record per method, ratios to torch filled in last."""
    P = problem(dist, n, d)
    kd = d if kind == "cell" else "settings"  # the settings sweep grows n with d: its --cap runs across d
    base = dict(kind=kind, dist=dist, n=n, d=d, causal=causal)
    rows, outputs, jobs = [], {}, []  # outputs: slot -> (s, dX, info); jobs: (record, run, times)

    def go(name, key, fn, slot=None, also=(), **extra):  # also: keys whose slowness skips this row too
        rec = dict(base, method=name, **extra)
        prev = max((slow.get(k, 0.0) for k in ([key] if key is not None else []) + list(also)), default=0.0)
        if prev > args.cap:
            rec["skipped"] = f"previous n took {prev:.1f} s > --cap {args.cap:g} s"
        else:
            t0 = time.perf_counter()
            try:
                t_fwd, t, s, dX, info = fn()  # every run_*: (t_fwd or None, t, s, dX, info)
            except (ValueError, MemoryError) as e:  # a refusal by the method itself (memory budget, certificate)
                rec["refused"] = f"{type(e).__name__}: {str(e)[:300]}"
                if key is not None:  # a refusal can come after the whole computation (a vacuous certificate)
                    slow[key] = time.perf_counter() - t0
            else:
                if key is not None:  # None: never skipped (the exact result the errors need)
                    slow[key] = t
                rec.update(t=t, **{k: v for k, v in info.items() if not k.startswith("bound")})
                outputs[slot or name] = (s, dX, info)
                rec["_slot"] = slot or name
                jobs.append((rec, fn, [(t_fwd, t)]))
        rows.append(rec)
        return rec

    if torch is None:
        rows.append(dict(base, method="torch", skipped=TORCH_MISSING))
    else:
        for dt, nm in ((torch.float64, "torch-f64"), (torch.float32, "torch-f32")):
            go(nm, (nm, dist, kd, causal), lambda dt=dt: run_torch(P, causal, dt))
    if n <= EXACT_MAX_N or "torch-f64" not in outputs:
        go("reference.blocked", None, lambda: run_blocked(P, causal))
        exact = (*outputs["reference.blocked"][:2], "reference.blocked")
    else:
        exact = (*outputs["torch-f64"][:2], "torch-f64")
    if n <= DENSE_MAX_N:
        go("reference.dense", ("dense", dist, kd, causal), lambda: run_dense(P, causal))
    ranks = {}
    for eps in eps_list:
        a = go("altgrad", ("alt", dist, kd, causal, eps, "auto"), lambda e=eps: run_altgrad(P, causal, e, "auto"),
               slot=f"altgrad@{eps}/auto", eps=eps, mode="auto")  # fmt: skip
        if a.get("method_used") == "lowrank":
            ranks[eps] = a["rank"]
            rows.append(dict(base, method="altgrad", eps=eps, mode="lowrank", same_as="auto (it chose lowrank)"))
            continue
        r = go("altgrad", ("alt", dist, kd, causal, eps, "lowrank"), lambda e=eps: run_altgrad(P, causal, e, "lowrank"),
               slot=f"altgrad@{eps}/lowrank", also=[("alt", dist, kd, causal, eps, "auto")], eps=eps,
               mode="lowrank")  # fmt: skip
        if "rank" in r:
            ranks[eps] = r["rank"]
    if causal:
        rows.append(dict(base, method="favor+, degree2", skipped="non-causal only (no prefix-sum variant built)"))
    else:
        m = ranks.get(1e-8) or (ranks[min(ranks)] if ranks else None)
        if m is None:
            rows.append(dict(base, method="favor+", skipped="no altgrad rank to match"))
        elif n * m * 8 > FEATURE_BYTES:
            rows.append(dict(base, method="favor+", rank=m, skipped=f"n * rank * 8 B > {FEATURE_BYTES} B"))
        else:
            W = favor_weights(d, m, [SEED, n, d, 7])
            go("favor+", ("favor", dist, kd), lambda: run_features(P, favor_features(W, True),
                                                                   favor_features(W, False), m))  # fmt: skip
        go("degree2", ("deg2", dist, kd), lambda: run_features(P, degree2_features, degree2_features, 1 + d + d * d))
    for _ in range(args.repeats - 1):  # repeats round-robin over the methods, so that they share the load's swings
        for _rec, fn, times in jobs:
            if times[0][1] <= REPEAT_BELOW_S:
                times.append(fn()[:2])
    for rec, _fn, times in jobs:
        rec.update(medians(times))
    t64 = next((r["t"] for r in rows if r["method"] == "torch-f64" and "t" in r), None)
    t32 = next((r["t"] for r in rows if r["method"] == "torch-f32" and "t" in r), None)
    for rec in rows:
        slot = rec.pop("_slot", None)
        if slot is not None:
            error_fields(rec, *outputs[slot][:2], exact, outputs[slot][2])
            rec["x_torch64"] = None if t64 is None else t64 / rec["t"]
            rec["x_torch32"] = None if t32 is None else t32 / rec["t"]
        emit(rec)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = p.add_mutually_exclusive_group()
    for size in SIZES:
        g.add_argument(f"--{size}", dest="size", action="store_const", const=size, help=f"the {size} size set")
    p.add_argument("--n", help="comma-separated n of the cells (overrides the size set's)")
    p.add_argument("--d", help="comma-separated d of the cells (overrides the size set's)")
    p.add_argument("--settings-d", help="comma-separated d of the authors' settings n = 10 * 2^d (overrides)")
    p.add_argument("--dists", default="small,authors", help="comma-separated input distributions")
    p.add_argument("--no-settings", action="store_true", help="skip the authors' settings n = 10 * 2^d")
    p.add_argument("--settings-only", action="store_true", help="only the authors' settings n = 10 * 2^d")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per row (1 once a run takes > 2 s)")
    p.add_argument("--cap", type=float, default=60.0, help="skip a method at larger n once it took this long (s)")
    p.add_argument("--markdown", action="store_true", help="print the Markdown table after the JSON lines")
    p.add_argument("--out", metavar="FILE", help="also write the JSON lines to FILE")
    p.add_argument("--results", metavar="FILE", help="write the header and the Markdown table to FILE")
    p.add_argument("--compact", action="store_true", help="with --render: the README's two short tables instead")
    p.add_argument(
        "--render",
        metavar="FILE",
        nargs="+",
        help="only render previous runs' JSON lines, one header and table per file (to stdout or --results)",
    )
    a = p.parse_args(argv)
    if a.render:
        parts = []
        for f in a.render:
            recs = [json.loads(x) for x in Path(f).read_text().splitlines() if x.strip()]
            parts.append(header(recs) + (compact(recs) if a.compact else markdown(recs)))
        Path(a.results or "/dev/stdout").write_text("\n".join(parts))
        return 0
    size = a.size or "quick"
    ns, ds, gds = SIZES[size]
    ns = tuple(int(x) for x in a.n.split(",")) if a.n else ns
    ds = tuple(int(x) for x in a.d.split(",")) if a.d else ds
    gds = tuple(int(x) for x in a.settings_d.split(",")) if a.settings_d else gds
    dists = tuple(a.dists.split(","))
    recs = []
    out = open(a.out, "w") if a.out else None  # noqa: SIM115

    def emit(rec):
        recs.append(rec)
        line = json.dumps(rec)
        print(line, flush=True)
        if out is not None:
            out.write(line + "\n")
            out.flush()

    t_start = time.perf_counter()
    emit(dict(kind="config", size=size, seed=SEED, date=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              command=" ".join(["python", "benchmarks/peers_bench.py", *(argv if argv is not None else sys.argv[1:])]),
              cpus=os.cpu_count(), loadavg_1min=os.getloadavg()[0], numpy=np.__version__,
              torch=None if torch is None else torch.__version__, threads=1, exact_max_n=EXACT_MAX_N))  # fmt: skip
    if torch is None:
        print(f"peers_bench: {TORCH_MISSING}; the torch rows are skipped", file=sys.stderr)
    slow: dict = {}
    for dist in () if a.settings_only else dists:
        for d in ds:
            for n in ns:
                for causal in (False, True):
                    cell(dist, n, d, causal, (1e-8, 1e-6), a, slow, emit)
    if not a.no_settings:
        slow = {}
        for dist in dists:
            for d in gds:
                cell(dist, 10 * 2**d, d, False, (1e-4, 1e-6, 1e-8), a, slow, emit, kind="authors_setting")
    emit(dict(kind="summary", wall_s=time.perf_counter() - t_start, loadavg_1min=os.getloadavg()[0]))
    if out is not None:
        out.close()
    if a.markdown:
        print(markdown(recs))
    if a.results:
        Path(a.results).write_text(header(recs) + markdown(recs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
