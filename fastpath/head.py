r"""What one head keeps from the fast forward, and the streamed blocks every pass over it uses.

Paper: Lemma C.13/I.1 (the factors $U_0 = \Phi(q)$, $V_0 = \Psi(k)$ of :mod:`fastpath.features`), Lemma I.4 (the
exact diagonal block of the causal path); spec §2.5, §2.7; issue 14 items 2 and 4. With the exact re-centring of
:mod:`fastpath.centring` the features are those of the centred $q' = q - a$, $k' = k - c$, and the key factor
$w_j$ rides on the key side:

.. math::
    \tilde A_{ij} = \Phi(q'_i)^\top \big(w_j \Psi(k'_j)\big), \qquad
    \text{diagonal block: } \exp(\beta\, q'_i \cdot k'_j)\, w_j \ (j \le i),

so every pass (forward, backward, :func:`fastpath.apply.f_products`) uses the same $\tilde A$ up to one row
constant, which $\tilde D^{-1}$ removes. The key factor costs nothing in the features: it is row 0 of the monomial
block (:func:`fastpath.features.monomials` with ``scale``), so every key monomial is built as $w_j k'^\alpha$.

**Feature blocks** (:class:`Feats`): within one call, each (r, c) block of $\Phi(q')$ or $w \odot \Psi(k')$ is built
(r c multiplications, counted: the recurrence of :mod:`fastpath.features`, one multiplication per monomial) and
kept for the later passes of the same call while the kept blocks fit ``HeadState.cache_bytes``; blocks beyond that
are rebuilt (and counted again) when a later pass needs them. The default budget is :data:`FEATURE_CACHE_BYTES` = 0,
by measurement (``benchmarks/gemm_rate.py``, 2-core AMD EPYC, one BLAS thread, d_h = 4, r = 330, c = 595): a block
rebuilt from its c×d_h inputs costs about as much as reading a kept block back from main memory (a pass over
$2^{15}$ tokens: 54–70 ms rebuilt + GEMM vs 60–65 ms kept + GEMM), and keeping blocks needs fresh memory whose first
touch cost 4–5× the build itself (141–166 ms vs 27–35 ms), so the whole backward ran 1.2–2× slower with every
block kept, from $n = 2^{12}$ to $2^{16}$. A pass that uses each block once (the non-causal forward's key and query
passes) builds :data:`FORWARD_SPAN` blocks per :func:`fastpath.features.monomials` call (:meth:`Feats.spans`: half
the numpy calls, the same products, so the same values) and still multiplies block by block, so its sums are
those of the single blocks bit for bit.

Shape legend: n tokens, d width, d_h head width, r rank, c tokens per block.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from fastpath.centring import Recentring
from fastpath.features import MonomialPlan, monomials, row_kron
from fastpath.poly import PolyCert
from fastpath.ranges import cs_bound
from fastpath.work import Work, mm
from reference import attention as ref_attention

FEATURE_CACHE_BYTES = 0  # default per-call feature cache (module docstring: rebuilding measured faster)
FORWARD_SPAN = 2  # blocks per feature build in Feats.spans (half the numpy calls; the same values, block GEMMs)


@dataclass
class HeadState:
    """What one head keeps from the fast forward for its backward (and for the certificate)."""

    W_Q: np.ndarray  # (d, d_h)
    W_K: np.ndarray  # (d, d_h)
    W_V: np.ndarray  # (d, d_h)
    W: np.ndarray  # (d, d) merged W_Q W_K^T
    beta: float
    causal: bool
    q: np.ndarray  # (n, d_h)
    k: np.ndarray  # (n, d_h)
    h: np.ndarray  # (n, d_h)
    R: float  # bound of |beta q_i . k_j| for the computed q, k (uncentred)
    cert: PolyCert  # method "exact": kind "exact", err = the float64 rounding of the dense kernel
    plan: MonomialPlan | None  # None for method "exact"
    a: np.ndarray  # (r,) feature scale a_alpha
    block: int
    method: str = "lowrank"  # "lowrank" (f~ = U1 V1^T) or "exact" (dense f of reference.attention)
    exact_forward: bool = False  # lowrank factors kept for the backward, s is the exact (dense) output
    dense: ref_attention.HeadCache | None = None  # the dense head (method "exact" or exact_forward)
    madds: int = 0  # counted multiply-adds of this head's forward (fastpath.work)
    D: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n,) normalizer D~
    s: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))  # (n, d_h) output f~ h
    SV: np.ndarray | None = None  # unused since issue 14 (the backward forms V_1^T [X | h ./ X] itself)
    centring: Recentring | None = None  # exact re-centring (fastpath.centring); None: the polynomial sees q, k
    R_signed: float | None = None  # bound of the signed |beta q_i . k_j| (fastpath.ranges.logit_bound), <= R
    cache_bytes: int = FEATURE_CACHE_BYTES  # feature blocks kept within one call up to this many bytes (Feats)
    fused: object | None = None  # the forward certificate's columns and their products f~Y (fastpath.certificate)
    back_block: int = 0  # tokens per block of the non-causal backward (0: ``block``); fastpath.layer.backward_block
    rows: object | None = None  # fastpath.rowdegree.RowDegrees: per-row degrees (low-rank heads), or None
    cs: float | None = None  # cs_bound(q, k, beta) when already known (fastpath.ranges.Ranges.cs), else None

    @property
    def rank(self) -> int:
        """Rank of f~: C(d_h + g, g) on the low-rank path, n (the dense kernel) on the exact one (clustered heads:
        :attr:`fastpath.clustered.ClusterHeadState.rank`, the largest rank of a polynomial cluster pair)."""
        return self.q.shape[0] if self.plan is None else self.plan.rank

    @property
    def recentred(self) -> bool:
        return self.centring is not None

    @property
    def qf(self) -> np.ndarray:
        """The queries the polynomial sees, shape (n, d_h); q - a when re-centred, else q."""
        return self.q if self.centring is None else self.centring.qc

    @property
    def kf(self) -> np.ndarray:
        """The keys the polynomial sees, shape (n, d_h); k - c when re-centred, else k."""
        return self.k if self.centring is None else self.centring.kc

    @property
    def w(self) -> np.ndarray | None:
        """The key factor exp(beta a.k_j - m), shape (n,), when re-centred; else None (all ones)."""
        return None if self.centring is None else self.centring.w

    @property
    def R_poly(self) -> float:
        """The range the polynomial is certified on: the centred range when re-centred, else R."""
        if self.centring is not None:
            return self.centring.R
        return self.R if self.R_signed is None else self.R_signed

    @property
    def R_cs(self) -> float:
        r"""Cauchy-Schwarz $\beta \max_i\|q'_i\| \max_j\|k'_j\| \ge \beta\sum_e |q'_{ie}||k'_{je}|$ of the polynomial's
        inputs: the scale of the rounding of the fast products and of the diagonal blocks' logits (R and R_poly
        may be tighter bounds of the logits themselves, :mod:`fastpath.ranges`); uncentred, the value ``cs`` kept
        from the range computation when given (the same number), else computed."""
        if self.centring is not None:
            return self.centring.R_abs
        return cs_bound(self.q, self.k, self.beta) if self.cs is None else self.cs

    @property
    def kernel_err(self) -> float:
        """Relative error per off-diagonal kernel entry: the polynomial's certified error and the re-centring's
        (with per-row degrees, :mod:`fastpath.rowdegree`, ``cert.err`` is the largest over the rows)."""
        return self.cert.err + self.centre_err * (1 + self.cert.err)

    @property
    def row_kernel_err(self) -> float | np.ndarray:
        """:attr:`kernel_err` per query row, (n,), with per-row degrees (:mod:`fastpath.rowdegree`); else the
        same number for every row, as a float."""
        if self.rows is None:
            return self.kernel_err
        e = self.rows.err  # (n,)
        return e + self.centre_err * (1 + e)

    @property
    def centre_err(self) -> float:
        """Extra relative error per kernel entry from the re-centring arithmetic (0 when not re-centred)."""
        return 0.0 if self.centring is None else self.centring.err


@functools.lru_cache(maxsize=8)
def _upper(c: int) -> np.ndarray:
    """The strict upper triangle of a (c, c) block, boolean (cached, read only)."""
    U = np.triu(np.ones((c, c), dtype=bool), 1)
    U.flags.writeable = False
    return U


def _kernel_block(st: HeadState, t0: int, t1: int, work: Work) -> np.ndarray:
    """Exact masked kernel on a diagonal block: tril(exp(beta q'_b k'_b^T) w_b), (c, c) (module docstring); built in
    place in one (c, c) array (the same operations in the same order as exp, scale, tril), the strict upper
    triangle zeroed through a cached mask."""
    A = mm(work, st.qf[t0:t1], st.kf[t0:t1].T)  # (c, c)
    A *= st.beta
    np.exp(A, out=A)
    if st.w is not None:
        A *= st.w[None, t0:t1]
        work.add(A.size)
    np.copyto(A, 0.0, where=_upper(t1 - t0))
    return A


def _features(Z: np.ndarray, st: HeadState, buf: np.ndarray, work: Work, scale: np.ndarray | None = None):
    """Monomial features of a block (:func:`fastpath.features.monomials`), counting r c multiplications."""
    work.add(st.plan.rank * Z.shape[0])
    return monomials(Z, st.plan, buf, scale)


class Feats:
    r"""Feature blocks of one head for one call (module docstring): ``q(t0, t1)`` is $\Phi$ without the scale
    $a_\alpha$ (r, c), ``k(t0, t1)`` is $w \odot \Psi$ (r, c); built once, kept while within ``st.cache_bytes``
    (``keep=False``: a call whose passes use each block once keeps nothing)."""

    def __init__(self, st: HeadState, work: Work, keep: bool = True, block: int | None = None):
        self.st, self.work, self.kept, self.store = st, work, 0 if keep else st.cache_bytes + 1, {}
        self.block = st.block if block is None else block  # the largest block this call asks for
        self.buf = {side: np.empty((st.rank, self.block)) for side in "qk"}
        self.buf2 = None  # (r, 2c) for both()

    def both(self, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray]:
        r"""(``q(t0, t1)``, ``k(t0, t1)``) built in one pass over the stacked block $[q'_b; k'_b]$ (half the numpy
        calls of two builds, measured 25–30 % faster; the same 2 r c multiplications, counted)."""
        if ("q", t0) in self.store or ("k", t0) in self.store:
            return self.q(t0, t1), self.k(t0, t1)
        st, c = self.st, t1 - t0
        nbytes = 16 * st.rank * c
        keep = self.kept + nbytes <= st.cache_bytes
        if keep:
            out = np.empty((st.rank, 2 * c))
        else:
            if self.buf2 is None:
                self.buf2 = np.empty((st.rank, 2 * self.block))
            out = self.buf2
        Z = np.concatenate([st.qf[t0:t1], st.kf[t0:t1]])  # (2c, d_h)
        scale = None if st.w is None else np.concatenate([np.ones(c), st.w[t0:t1]])  # (2c,)
        F = _features(Z, st, out, self.work, scale)  # (r, 2c)
        Fq, Fk = F[:, :c], F[:, c:]
        if keep:
            self.store[("q", t0)], self.store[("k", t0)] = Fq, Fk
            self.kept += nbytes
        return Fq, Fk

    def _get(self, side: str, t0: int, t1: int) -> np.ndarray:
        F = self.store.get((side, t0))
        if F is not None:
            return F
        st = self.st
        Z, scale = (st.qf, None) if side == "q" else (st.kf, st.w)
        nbytes = 8 * st.rank * (t1 - t0)
        keep = self.kept + nbytes <= st.cache_bytes
        out = np.empty((st.rank, t1 - t0)) if keep else self.buf[side]  # kept blocks are built in place
        F = _features(Z[t0:t1], st, out, self.work, None if scale is None else scale[t0:t1])
        if keep:
            self.store[(side, t0)] = F
            self.kept += nbytes
        return F

    def spans(self, side: str, n: int, span: int = FORWARD_SPAN):
        r"""Yield ``(t0, t1, F)`` over the blocks of ``self.block`` tokens in order, F = ``side``'s features of the
        block (r, t1 - t0), built ``span`` blocks at a time into one reused (r, span c) buffer (fewer numpy calls
        per token; each entry is the same product, so the same value) and counted r c per block as before. F is a
        column slice of that buffer: use it before the next. Nothing is kept (a pass that uses each block once)."""
        st, c = self.st, self.block
        Z, scale = (st.qf, None) if side == "q" else (st.kf, st.w)
        wide = np.empty((st.rank, span * c))
        for T0 in range(0, n, span * c):
            T1 = min(n, T0 + span * c)
            F = monomials(Z[T0:T1], st.plan, wide, None if scale is None else scale[T0:T1])  # (r, T1 - T0)
            for t0 in range(T0, T1, c):
                t1 = min(T1, t0 + c)
                self.work.add(st.rank * (t1 - t0))
                yield t0, t1, F[:, t0 - T0 : t1 - T0]

    def q(self, t0: int, t1: int) -> np.ndarray:
        return self._get("q", t0, t1)

    def k(self, t0: int, t1: int) -> np.ndarray:
        return self._get("k", t0, t1)


def right(work: Work, F: np.ndarray, S: np.ndarray, cwork: Work | None = None, w0: int = 0,
          transposed: bool = False) -> np.ndarray:  # fmt: skip
    r"""$F^\top S$ for a feature block F (r, c) and a k-side matrix S (r, w) -> (c, w), counted.

    Formed as $(S^\top F)^\top$: the feature block is then read row-major by BLAS (measured faster than the
    transposed operand for the thin widths used here). With ``cwork``, the columns of S from ``w0`` on are the
    certificate's (:func:`mm_fused`). ``transposed=True``: S is given as the contiguous $S^\top$ (w, r) already
    (a caller with one S for many blocks transposes it once; the same GEMM operands, so the same values)."""
    St = S if transposed else np.ascontiguousarray(S.T)  # (w, r)
    if cwork is None:
        return mm(work, St, F).T  # (c, w)
    return mm_fused(work, cwork, St, F, w0, rows=True).T  # (c, w)


def mm_fused(work: Work, cwork: Work, A: np.ndarray, B: np.ndarray, w0: int, rows: bool = False) -> np.ndarray:
    r"""``A @ B`` as one GEMM whose columns of B from ``w0`` on (rows of A with ``rows=True``) are the a-posteriori
    certificate's extra columns (:mod:`fastpath.certificate`, fused into the fast path's passes): their multiply-adds
    are counted in ``cwork``, the fast path's own in ``work``, so each keeps its count of the unfused route."""
    p, q = A.shape
    s = B.shape[1]
    own, extra = (w0 * q * s, (p - w0) * q * s) if rows else (p * q * w0, p * q * (s - w0))
    work.add(own)
    cwork.add(extra)
    return A @ B


def _kron(A: np.ndarray, B: np.ndarray, work: Work) -> np.ndarray:
    """:func:`fastpath.features.row_kron`, counting its c p s products."""
    work.add(A.shape[0] * A.shape[1] * B.shape[1])
    return row_kron(A, B)


def _value_side(Xb: np.ndarray, hb: np.ndarray, work: Work) -> np.ndarray:
    r"""$[X \mid h \oslash X]$ for a block: (c, d), (c, d_h) -> (c, d + d_h d)."""
    return np.concatenate([Xb, _kron(hb, Xb, work)], axis=1)


def _contract(Gb: np.ndarray, Rb: np.ndarray, d: int, work: Work) -> np.ndarray:
    r"""$\sum_b G_{:,b} \odot R_{:, b d:(b+1) d}$: (c, d_h), (c, d_h d) -> (c, d)."""
    work.add(Rb.shape[0] * Rb.shape[1])
    return np.einsum("cb,cbe->ce", Gb, Rb.reshape(Rb.shape[0], Gb.shape[1], d))


__all__ = ["FEATURE_CACHE_BYTES", "Feats", "HeadState", "mm_fused", "right"]
