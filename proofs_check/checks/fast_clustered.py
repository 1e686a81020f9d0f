r"""The clustered kernel (``method="clustered"``, issue 14 items 2-3) against the exact softmax, and its gradients.

Paper: Lemma I.1 applied per cluster pair (:mod:`fastpath.clustered`, :mod:`fastpath.cluster_tree`). One seeded
case, the authors' inputs (X ~ N(0, 1), orthogonal weights from the QR of a Gaussian, $\beta = 1/d$, d = 4, n = 300),
with the plan forced *by parameters* so that the evidence reaches the polynomial pairs: 4 clusters per side
(``level=2``), every pair on its certified polynomial (``rule="polynomial"``) and no dense fallback
(``dense_fallback=False``; the cost model alone would keep the dense head at this n). Nothing global is patched:
the run is thread-safe and side-effect free. Two kinds of rows, both against the exact model (float64 first; a
float64 failure is re-decided with the 50-digit mpmath reference by :func:`proofs_check.decide.judge`):

* **kernel**: $\max_{ij} |\tilde f_{ij}/f_{ij} - 1| / (\rho_i + r_r(1 + \rho_i) + e_{ref}) \le 1$ for $\tilde f$
  and for the transposed product, where $\rho_i$ is the normalised per-row error of the operator's certified
  ``row_eps`` (:func:`fastpath.certificate.head_kernel`), $r_r$ the product rounding
  (:func:`fastpath.bounds.rounding_rel`) and $e_{ref}$ the float64 reference's own kernel error
  (:func:`fastpath.lowrank.exact_kernel_cert`; 0 in mpmath), as in tests/test_fastpath_clustered.py;
* **gradients**: one head's fast forward and corrected backward (:func:`fastpath.layer.head_backward`) at the
  clustered state, s, the five terms, dX, dW and dW_V each within the a-posteriori certificate
  (:mod:`fastpath.certificate`, the exact input of a first layer).

Shape legend: n tokens, d width.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from fastpath.bounds import rounding_rel
from fastpath.certificate import head_kernel
from fastpath.cluster_tree import pair_ranges
from fastpath.clustered import ClusterOp, head_forward_clustered
from fastpath.lowrank import exact_kernel_cert
from fastpath.ranges import FAST_RTOL, logit_ranges
from fastpath.work import Work, mm
from proofs_check.checks.fast_certificate import Case, _claim, exact_head, head_fields
from proofs_check.decide import decide
from proofs_check.registry import Context, Result, check
from reference import attention as ref_attention

N, D, LEVEL, EPS = 300, 4, 2, 1e-6
MUTANTS = ("pair range from RMS radii", "column factor dropped")


def rms_ranges(qs, ks, beta):
    r"""Mutant: $R_{IJ}$ from the clusters' RMS radii $\sqrt{\mathrm{mean}\|\delta\|^2}$, not the largest offsets
    (a ``pair_range`` of :func:`fastpath.cluster_tree.plan_pairs`)."""
    rq = np.array([np.sqrt((x * x).sum(axis=1).mean()) for x in qs.delta])
    rk = np.array([np.sqrt((x * x).sum(axis=1).mean()) for x in ks.delta])
    return abs(beta) * np.outer(rq, rk)  # (P_Q, P_K)


def without_column_factor(op: ClusterOp) -> ClusterOp:
    r"""Mutant: a copy of the operator with the column factor $e^{\beta c_I\cdot k_j - \bar b_{IJ}}$ replaced by 1
    (a wrong kernel); the original is left as it was."""
    return dataclasses.replace(op, colf=[np.ones_like(c) for c in op.colf], D=op.D.copy())


def clustered_head(X, W_Q, W_K, W_V, beta: float, mutant: str | None):
    """The clustered head state at the forced plan (module docstring); ``mutant`` builds the named wrong variant."""
    work = Work()
    q, k, h = mm(work, X, W_Q), mm(work, X, W_K), mm(work, X, W_V)  # (n, d_h) each
    R = logit_ranges(q, k, beta, rtol=FAST_RTOL).absolute
    rng_fn = rms_ranges if mutant == "pair range from RMS radii" else pair_ranges
    st = head_forward_clustered(X, W_Q, W_K, W_V, beta, q, k, h, R, work, eps=EPS, kind="chebyshev", causal=False,
                                budget=2**31, level=LEVEL, rule="polynomial", pair_range=rng_fn,
                                dense_fallback=False)  # fmt: skip
    if mutant == "column factor dropped":
        op = without_column_factor(st.op)
        st = dataclasses.replace(st, op=op)
        st.s = op.forward(h, Work())  # (n, d_h) the mutated operator's output and normaliser
        st.D = op.D
    return st


def _claim_kernel(bk, X, W_Q, W_K, W_V, beta, f_fast, f_fastT, tol, e_ref, causal=False):
    """|f~/f - 1| / the row's bound, max over the unmasked entries; with ``causal`` an entry above the diagonal
    counts as inf unless f~ is 0 there (the mask kept exactly)."""
    n = X.shape[0]
    f = ref_attention.head_forward(X, W_Q @ W_K.T, W_V, beta, causal, bk).f  # (n, n) exact softmax
    t = tol + (0 if bk.is_mp else e_ref)  # (n, 1) per-row certified relative error
    for name, F in (("f", f_fast), ("fT", f_fastT)):
        # a nonzero entry where the mask has none (compared entry by entry: a ball's truth value is not its value)
        outside = causal and any(F[i, j] != 0 for i in range(n) for j in range(i + 1, n))
        if bk.is_mp:
            worst = max(abs(bk.scalar(float(F[i, j])) / f[i, j] - 1) / bk.scalar(float(t[i, 0]))
                        for i in range(n) for j in range(i + 1 if causal else n))  # fmt: skip
        else:
            keep = np.tril(np.ones((n, n), dtype=bool)) if causal else np.ones((n, n), dtype=bool)
            with np.errstate(invalid="ignore", divide="ignore"):
                worst = float(np.where(keep, np.abs(F / f - 1) / t, 0.0).max())
        yield ("le", f"kernel:{name} rel.err/row bound", math.inf if outside else worst, 1.0)


def authors_inputs(rng, n: int, d: int):
    """The authors' inputs of the module docstring: X ~ N(0, 1), orthogonal weights (QR of a Gaussian), G ~ U[-1, 1],
    beta = 1/d, drawn in this order from ``rng``."""
    X = rng.standard_normal((n, d))
    W_Q, W_K, W_V = (np.linalg.qr(rng.standard_normal((d, d)))[0] for _ in range(3))
    return X, W_Q, W_K, W_V, rng.uniform(-1, 1, (n, d)), 1.0 / d


def head_evidence(st, X, W_Q, W_K, W_V, G, beta: float, eps: float, f_fast, f_fastT, label: str,
                  causal: bool = False):  # fmt: skip
    """The kernel inputs of :func:`_claim_kernel` and the gradient :class:`Case` of one first-layer head state
    (module docstring), given its $\tilde f$ and the transposed product's (n, n); returns (kernel, grads, rr, e_ref)."""
    n, d = X.shape
    zero = np.zeros_like(X)
    hk = head_kernel(st, X, zero)
    _, rr = rounding_rel(st, n, d)
    rho = hk.rho[:, None]  # (n, 1)
    e_ref = exact_kernel_cert(X, W_Q, W_K, beta, st.R, eps).err
    kernel = dict(X=X, W_Q=W_Q, W_K=W_K, W_V=W_V, beta=beta, f_fast=f_fast, f_fastT=f_fastT,
                  tol=rho + rr * (1 + rho), e_ref=e_ref, causal=causal)  # fmt: skip
    fast, bound = head_fields(st, hk, X, zero, G, np.zeros_like(G), Work())
    return kernel, Case(label, exact_head(X, W_Q, W_K, W_V, G, beta, causal), fast, bound), float(rr), float(e_ref)


def decide_head(ctx: Context, kernels: list[dict], grads: list[Case]):
    """Both claims of the module docstring decided over the cases; returns (kernel result, gradient result, the one
    nearer its bound)."""
    res = decide(lambda bk, **kw: _claim_kernel(bk, **kw), kernels, ctx=ctx)
    res2 = decide(_claim, [{"case": g} for g in grads], ctx=ctx)
    worst = res if (res.observed or 0) / (res.bound or 1) >= (res2.observed or 0) / (res2.bound or 1) else res2
    return res, res2, worst


def cases(ctx: Context, mutant: str | None) -> tuple[dict, Case, dict]:
    """The kernel inputs, the gradient case and a summary of the plan (module docstring)."""
    X, W_Q, W_K, W_V, G, beta = authors_inputs(ctx.rng(1414), N, D)
    st = clustered_head(X, W_Q, W_K, W_V, beta, mutant)
    op = st.op  # its normaliser D is the (possibly mutated) operator's own row sum, set by its forward
    f_fast = op.dense()  # (n, n)
    f_fastT = op.applyT(np.eye(N), Work()).T  # (n, n) the transposed product
    kernel, grads, rr, e_ref = head_evidence(st, X, W_Q, W_K, W_V, G, beta, EPS, f_fast, f_fastT,
                                             f"clustered(n={N},d={D},level={LEVEL},eps={EPS:g})")  # fmt: skip
    info = dict(clusters=(len(op.qs.idx), len(op.ks.idx)), poly_pairs=int(op.plan.poly.sum()),
                max_rank=int(op.plan.rank.max()), row_eps_max=float(op.row_eps.max()), rr=rr, e_ref=e_ref,
                method=st.method)  # fmt: skip
    return kernel, grads, info


@check(
    id="fast.clustered.certificate",
    label="Lemma I.1",
    name="Clustered kernel (Lemma I.1 per cluster pair): |f~/f - 1| <= the operator's certified per-row error, "
    "and fast gradients within their bound, on the authors' inputs with 4 x 4 polynomial pairs",
    kind="INEQ",
    expected="OK",
    spec=(84,),
    uses=("fast.cert.aposteriori",),
    mutants=MUTANTS,
)
def check_clustered(ctx: Context) -> Result:
    r"""Module docstring: one ``le`` row per product ($\tilde f$, $\tilde f^\top$) and one per gradient field.

    Mutants, on the same case and plan, passed as parameters (no global is patched): the pair ranges $R_{IJ}$ from
    the clusters' RMS radii instead of their largest offsets (``pair_range=rms_ranges``: the polynomials are
    certified on too short an interval, the entrywise error exceeds the certificate); the column factor
    $e^{\beta c_I\cdot k_j - \bar b_{IJ}}$ replaced by 1 in a copy of the operator (a wrong kernel).
    """
    kernel, grads, info = cases(ctx, ctx.mutant)
    res, res2, worst = decide_head(ctx, [kernel], [grads])
    ok = res.ok and res2.ok and info["method"] == "clustered" and info["poly_pairs"] > 0
    fig = (f"{info['clusters'][0]}x{info['clusters'][1]} clusters, {info['poly_pairs']} polynomial pairs (rank <= "
           f"{info['max_rank']}), row_eps <= {info['row_eps_max']:.2e}; max rel.err/row bound {res.observed:.2g} "
           f"(kernel), max error/bound {res2.observed:.2g} (s, terms, dX, dW, dW_V; {res2.precision})")  # fmt: skip
    return dataclasses.replace(worst, ok=ok, figure=fig, data={"kernel": res.data, "gradients": res2.data, **info})
