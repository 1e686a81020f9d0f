r"""The lift: symmetric monomial features with $\Phi(Q)\,\Psi(K)^\top = P(\beta Q K^\top)$ exactly.

Paper: Lemma I.1 step 2 / Lemma C.13 (the polynomial method of [ACSS20, AS23]); spec §2.5 step 2. For
$P(x) = \sum_{t \le g} c_t x^t$ and the multinomial theorem,

.. math::
    P(\beta \langle q, k\rangle) = \sum_{t=0}^{g} c_t \beta^t \sum_{|\alpha| = t} \binom{t}{\alpha} q^\alpha k^\alpha
    = \sum_{\alpha} \underbrace{a_\alpha q^\alpha}_{\Phi(q)_\alpha}\ \underbrace{k^\alpha}_{\Psi(k)_\alpha},
    \qquad a_\alpha = c_{|\alpha|} \beta^{|\alpha|} \binom{|\alpha|}{\alpha},

over all multi-indices $\alpha \in \mathbb N^{d}$ with $|\alpha| \le g$: rank $r = \binom{d+g}{g}$ (at most the paper's
$\binom{2(g+d)}{2g}$, spec W20). The scale $a_\alpha$ is kept as a separate vector so callers fold it into the small
k-side matrices instead of rescaling the n×r features.

Construction, no loop over tokens: monomials are generated degree by degree; within a degree they are grouped by
their largest variable v, so the degree-t monomials ending in v are exactly (the degree-(t-1) monomials whose largest
variable is <= v, a contiguous prefix) times $z_v$: one vectorised multiply per (t, v), the d of degree 1 in one
call, ``(g - 1) d + 1`` numpy calls per block of tokens. Features are laid out (r, c) (feature-major) so each
block is a contiguous slice.

Shape legend: d = feature input width (d_h per head), g = degree, r = rank, c = tokens in a block.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MonomialPlan:
    """Index plan of all monomials of degree <= g in d variables (ordering described in the module docstring).

    ``steps``: (dst, src_lo, src_hi, v): rows ``dst : dst + src_hi - src_lo`` are rows ``src_lo:src_hi`` times $z_v$.
    ``degree[r]`` = $|\\alpha|$; ``multinom[r]`` = $\\binom{|\\alpha|}{\\alpha}$ (float64, exact for the sizes used);
    ``exponents`` (r, d) int.
    """

    d: int
    g: int
    rank: int
    steps: tuple[tuple[int, int, int, int], ...]
    degree: np.ndarray
    multinom: np.ndarray
    exponents: np.ndarray


def rank_of(d: int, g: int) -> int:
    r"""$\binom{d+g}{g}$, the number of monomials of degree <= g in d variables."""
    return math.comb(d + g, g)


@functools.lru_cache(maxsize=64)
def monomial_plan(d: int, g: int) -> MonomialPlan:
    """Build (and cache) the plan for (d, g)."""
    steps = []
    exps = [np.zeros(d, dtype=np.int64)]
    degs = [0]
    mult = [1.0]
    last = [-1]  # largest variable of each monomial (-1 for the constant)
    block = (0, 1)  # rows of the previous degree
    for t in range(1, g + 1):
        start = len(exps)
        lo, hi = block
        for v in range(d):
            # prefix of the previous block whose largest variable is <= v (contiguous by construction)
            end = lo
            while end < hi and last[end] <= v:
                end += 1
            steps.append((len(exps), lo, end, v))
            for p in range(lo, end):
                e = exps[p].copy()
                e[v] += 1
                exps.append(e)
                degs.append(t)
                mult.append(mult[p] * t / e[v])  # t!/prod(e!) from the parent's value
                last.append(v)
        block = (start, len(exps))
    exponents = np.array(exps)
    return MonomialPlan(d, g, len(exps), tuple(steps), np.array(degs), np.round(np.array(mult)), exponents)


def monomials(Z: np.ndarray, plan: MonomialPlan, out: np.ndarray | None = None,
              scale: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    r"""All monomials $z^\alpha$ of the rows of Z, feature-major: returns (r, c) with ``[alpha, i]`` = $z_i^\alpha$.

    Z: (c, d) block of tokens. ``out`` (r, c) is reused when given (no allocation per block). ``scale`` (c,):
    row 0 (the constant monomial) is ``scale`` instead of 1, so every row is ``scale * z^alpha`` at no extra
    multiplication (the recurrence multiplies it in; one more rounding per monomial, none for the constant).
    """
    c, d = Z.shape
    if d != plan.d:
        raise ValueError(f"Z: expected {plan.d} columns, got shape {Z.shape}")
    F = np.empty((plan.rank, c)) if out is None else out[:, :c]
    F[0] = 1.0 if scale is None else scale
    if plan.g == 0:
        return F
    if scale is None:
        F[1 : 1 + d] = Z.T  # degree 1: rows 1..d are z_v (1 * z_v exactly), one transposing copy
    else:
        np.multiply(Z.T, F[0], out=F[1 : 1 + d])  # (d, c) the first d steps in one call, the same products
    Zt = F[1 : 1 + d] if scale is None else np.ascontiguousarray(Z.T)  # (d, c)
    for dst, lo, hi, v in plan.steps[d:]:
        np.multiply(F[lo:hi], Zt[v], out=F[dst : dst + hi - lo])  # (hi - lo, c)
    return F


def monomial_slabs(Z: np.ndarray, plan: MonomialPlan, bufs: tuple[np.ndarray, np.ndarray],
                   scale: np.ndarray | None = None):  # fmt: skip
    r"""The rows of :func:`monomials` degree by degree: yields ``(lo, hi, F_t)`` with ``F_t`` (hi - lo, c) = rows
    ``lo:hi`` (the monomials of degree t, t = 0..g), the same products in the same order, so the same values.

    Only two degrees are held at a time, in the two reused buffers ``bufs`` (each at least (largest degree's rows,
    c)): a consumer that uses each slab before asking for the next keeps the features of a block in cache.
    """
    c, d = Z.shape
    if d != plan.d:
        raise ValueError(f"Z: expected {plan.d} columns, got shape {Z.shape}")
    prev = bufs[0][:1, :c]  # (1, c) degree 0
    prev[0] = 1.0 if scale is None else scale
    yield 0, 1, prev
    Zt = np.ascontiguousarray(Z.T)  # (d, c)
    base_prev = 0
    for t in range(1, plan.g + 1):
        steps = plan.steps[(t - 1) * d : t * d]  # the d steps of degree t (module docstring)
        base, end = steps[0][0], steps[-1][0] + steps[-1][2] - steps[-1][1]
        cur = bufs[t % 2][: end - base, :c]  # (rows of degree t, c)
        for dst, lo, hi, v in steps:
            np.multiply(prev[lo - base_prev : hi - base_prev], Zt[v], out=cur[dst - base : dst - base + hi - lo])
        yield base, end, cur
        prev, base_prev = cur, base


def slab_rows(plan: MonomialPlan) -> int:
    """Rows of the largest degree slab of :func:`monomial_slabs` (the buffers' height)."""
    return plan.rank - plan.steps[(plan.g - 1) * plan.d][0] if plan.g else 1


def row_kron(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    r"""Row-wise Kronecker (face-splitting) product, the paper's $\oslash$ (Fact C.2): (c, p), (c, s) -> (c, p s).

    Column order: ``row_kron(A, B)[i, a * s + b] = A[i, a] * B[i, b]``, i.e. row i is ``np.kron(A[i], B[i])``
    (the first factor's index varies slowest). The paper's $(U \oslash U')_{i, l_1 + (l_2 - 1) k} = U_{i l_1}
    U'_{i l_2}$ lets the *first* index vary fastest, so it equals ``row_kron(U', U)``; either order satisfies
    $(U_1 V_1^\top) \odot (U_2 V_2^\top) = (U_1 \oslash U_2)(V_1 \oslash V_2)^\top$ as long as both factors use
    the same one. The one home of this product in the project.
    """
    if A.ndim != 2 or B.ndim != 2 or A.shape[0] != B.shape[0]:
        raise ValueError(f"row_kron: expected two 2-D arrays with the same number of rows, got {A.shape}, {B.shape}")
    return (A[:, :, None] * B[:, None, :]).reshape(A.shape[0], A.shape[1] * B.shape[1])  # (c, p s)


def feature_scale(plan: MonomialPlan, coeffs: np.ndarray, beta: float) -> np.ndarray:
    r"""$a_\alpha = c_{|\alpha|}\,\beta^{|\alpha|} \binom{|\alpha|}{\alpha}$, (r,); $\Phi(q) = a \odot q^\alpha$."""
    cb = np.asarray(coeffs, dtype=np.float64) * beta ** np.arange(plan.g + 1)  # (g+1,)
    return cb[plan.degree] * plan.multinom  # (r,)


def lift(Q: np.ndarray, K: np.ndarray, coeffs: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Dense factors $U_0 = \Phi(Q)$, $V_0 = \Psi(K)$ (n×r each) with $U_0 V_0^\top = P(\beta Q K^\top)$.

    Lemma I.1 / spec §2.5 step 2. For checks and small n only (it holds n×r matrices); the layer code streams
    blocks through :func:`monomials` instead.
    """
    plan = monomial_plan(Q.shape[1], len(coeffs) - 1)
    a = feature_scale(plan, coeffs, beta)  # (r,)
    U0 = (monomials(Q, plan) * a[:, None]).T  # (n, r)
    V0 = monomials(K, plan).T  # (n, r)
    return U0, V0


__all__ = [
    "MonomialPlan",
    "feature_scale",
    "lift",
    "monomial_plan",
    "monomial_slabs",
    "monomials",
    "rank_of",
    "row_kron",
    "slab_rows",
]
