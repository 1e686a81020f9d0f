r"""Shared helpers of the ``fast_*`` check modules (no check is registered here).

* report plumbing: :func:`series` (the report's ``series`` record key), :func:`slope_txt`, :func:`exp` (one cached
  run of a weak-point experiment per (name, profile, seed));
* the one-head fixture of the fast-path checks (:func:`one_head`), built on the shipped :mod:`fastpath` and the
  exact :mod:`reference`;
* the [INEQ] rule of spec §0.1, :func:`within`: ``lhs <= rhs (1 + 1e-9) + 1e-14``;
* the counted-work rule of the [ASYM] checks (spec §0.5 item 7) lives in :mod:`proofs_check.experiments.scaling`.

Shape legend: n tokens, d width, r rank.
"""

from __future__ import annotations

import math

import numpy as np

from fastpath.layer import attention_backward, attention_forward
from fastpath.lowrank import MEMORY_BUDGET, lowrank_attention
from proofs_check import experiments as ex
from proofs_check.decide import tolerance
from proofs_check.registry import Context, Result
from reference.attention import head_forward, logit_gradient
from reference.backend import FLOAT64

BLOCK = 32  # tokens per block of the fast causal path in these checks
REL_SLACK, ABS_SLACK = 1e-9, 1e-14  # spec §0.1 [INEQ]: lhs <= rhs (1 + 1e-9) + 1e-14
TOL_ID = tolerance("eq", FLOAT64)  # 2^20 u: the derived identity tolerance of proofs_check.decide (= SPEC TOL_ID)


def counted_result(ok: bool, figure: str, data: dict, rule: dict) -> Result:
    """The Result of an [ASYM] check decided from counted work (spec §0.5 item 7): ``rule`` is the decision of
    :func:`proofs_check.experiments.scaling.decide`; observed is its exponent, bound the rule's limit."""
    return Result(
        bool(ok), figure, data, observed=rule["exponent"], bound=rule["exponent_ok"], precision="counted work"
    )


def within(observed: float, bound: float) -> bool:
    """The [INEQ] rule of spec §0.1: ``observed <= bound (1 + 1e-9) + 1e-14``."""
    return bool(observed <= bound * (1 + REL_SLACK) + ABS_SLACK)


def mx(a) -> float:
    """Entrywise max norm (spec §0.2)."""
    return float(np.abs(a).max())


def exp(ctx: Context, name: str) -> dict:
    """The weak-point experiment ``name`` for this context (computed once per process and profile)."""
    return ex.result(name, ctx.quick, ctx.seed)


def finite(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def series(curves: dict, xlabel: str, ylabel: str, logx: bool = False, logy: bool = True) -> dict:
    """The report's ``series`` record key (proofs_check.report): {name: {x, y, labels, log flags}}, finite points."""
    out = {}
    for name, (xs, ys) in curves.items():
        pts = [(float(x), float(y)) for x, y in zip(xs, ys, strict=True) if finite(x) and finite(y)]
        if pts:
            out[name] = {
                "x": [p[0] for p in pts],
                "y": [p[1] for p in pts],
                "xlabel": xlabel,
                "ylabel": ylabel,
                "logx": logx,
                "logy": logy,
            }
    return out


def slope_txt(f: dict) -> str:
    return f"{f['slope']:.2f} [{f['lo']:.2f}, {f['hi']:.2f}]"


def rho(err: float) -> float:
    r"""Relative error of $\tilde f$ from a relative error ``err`` of $\tilde A$: $2\varepsilon/(1-\varepsilon)$."""
    return 2 * err / (1 - err)


def one_head(
    rng: np.random.Generator,
    n: int,
    d: int,
    *,
    scale: float = 1.0,
    causal: bool = False,
    beta: float | None = None,
    eps: float = 1e-8,
) -> dict:
    r"""One head: inputs, the exact HeadCache (masked when ``causal``), the fast low-rank factors of the unmasked
    $\tilde f = U_1 V_1^\top$ (:func:`fastpath.lowrank.lowrank_attention`) and $\tilde f$ itself (dense, small n only).
    """
    w = scale / math.sqrt(d)
    X = rng.uniform(-1, 1, (n, d))
    WQ, WK, WV = (rng.uniform(-w, w, (d, d)) for _ in range(3))
    G = rng.uniform(-1, 1, (n, d))
    beta = 1.0 / d if beta is None else beta
    c = head_forward(X, WQ @ WK.T, WV, beta, causal)
    U1, V1, D, cert, R = lowrank_attention(X @ WQ, X @ WK, beta, eps)
    ft = U1 @ V1.T  # (n, n)  f~ (unmasked)
    return dict(X=X, WQ=WQ, WK=WK, WV=WV, G=G, beta=beta, c=c, U1=U1, V1=V1, D=D, cert=cert, R=R, ft=ft)


def p_parts(L: dict):
    """(G, h, f, f~, q = G h^T, K = (G . s) 1) of a :func:`one_head` fixture (exact K, from
    :func:`reference.attention.logit_gradient`)."""
    c = L["c"]
    K = logit_gradient(L["G"], c.f, c.h, c.s)[0]  # (n,)
    return L["G"], c.h, c.f, L["ft"], L["G"] @ c.h.T, K


def fast_forward(L: dict, *, eps: float, causal: bool = False, block: int = BLOCK):
    """The shipped fast forward of a :func:`one_head` fixture's head (:func:`fastpath.layer.attention_forward`, one
    head, Chebyshev polynomial for ``eps``): (head states, s~ (n, d))."""
    return attention_forward(L["X"], L["WQ"], L["WK"], L["WV"], beta=L["beta"], causal=causal, heads=1, eps=eps,
                             kind="chebyshev", budget=MEMORY_BUDGET, block=block)  # fmt: skip


def fast_backward(L: dict, *, eps: float, causal: bool = False):
    """The shipped corrected fast backward (:func:`fastpath.layer.attention_backward`) of :func:`fast_forward` with
    the fixture's upstream G: ``AttentionGradsFast`` (terms, dX, dW, dW_V)."""
    st, _ = fast_forward(L, eps=eps, causal=causal)
    return attention_backward(st, L["X"], L["G"])


def ineq_result(observed: float, bound: float, figure: str, data: dict, precision: str = "float64") -> Result:
    """The Result of an [INEQ] check: ok when :func:`within` (spec §0.1), observed and bound as given."""
    return Result(within(observed, bound), figure, data, observed=observed, bound=bound, precision=precision)
