r"""Products with the computed attention matrix: $\tilde f Y$ and $\tilde f^\top Z$ for any thin Y, Z, never n×n.

Paper: Lemma C.14 order $U_1 (V_1^\top Y)$, Lemma I.3/I.4 (prefix sums) and the suffix-sum variant of spec §2.7.
The a-posteriori certificate (:mod:`fastpath.certificate`) needs the *magnitudes* $\tilde f |Y|$ and
$\tilde f^\top |Z|$ of the quantities the fast backward contracts; since $\tilde f \ge 0$ entrywise once its
certified relative error is below 1, these are exactly the products of this module applied to non-negative inputs.
They use the same factors, blocks and diagonal kernel as :mod:`fastpath.layer`:

.. math::
    \tilde f Y = \tilde D^{-1} \Phi(q) \big(a \odot \Psi(k)^\top Y\big),\qquad
    \tilde f^\top Z = \Psi(k) \big(a \odot \Phi(q)^\top (\tilde D^{-1} Z)\big)

(non-causal), the causal forms with a running k×w state and the exact c×c diagonal block, and the dense f of the
reference for method ``"exact"``. Re-centred heads carry the key factor w in $\Psi$ and the diagonal blocks
(:mod:`fastpath.head`), so these are the products with the same $\tilde f$. Cost O(n r (w_Y + w_Z))
multiply-adds, counted in the returned :class:`fastpath.work.Work`, plus the feature blocks it builds again.
Since issue 10's cost item the low-rank heads' certificate products ride in the fast path's own passes instead
(:mod:`fastpath.certificate`, *Fused products*); this module serves the heads whose passes do not carry them
(the dense f of method ``"exact"`` and of an exact forward, the clustered operator), direct calls of the bounds,
and the checks that compare the two routes.

Shape legend: n tokens, r rank, c tokens per block, w_Y, w_Z columns of Y and Z.
"""

from __future__ import annotations

import numpy as np

from fastpath.causal import blocks
from fastpath.dense import dense_products
from fastpath.head import Feats, HeadState, _kernel_block, right
from fastpath.rowdegree import key_blocks, scaled
from fastpath.work import Work, mm


def _products_rows(st: HeadState, Y: np.ndarray, ZD: np.ndarray, work: Work):
    r"""Non-causal $(\tilde f Y, \tilde f^\top Z)$ with per-row degrees (:mod:`fastpath.rowdegree`): key blocks in
    order at rank r, query groups at their own rank and scale; ZD = $\tilde D^{-1} Z$."""
    c, rows = st.block, st.rows
    SY, SZ = np.zeros((st.rank, Y.shape[1])), np.zeros((st.rank, ZD.shape[1]))  # (r, w_Y), (r, w_Z)
    for t0, t1, slabs in key_blocks(st, work):  # key features degree by degree
        for lo, hi, Fk in slabs:
            SY[lo:hi] += mm(work, Fk, Y[t0:t1])
    FY, FZ = np.empty_like(Y), np.empty_like(ZD)
    for g in rows.groups:
        SYg, SZg = scaled(g.a, SY, SY.shape[1], work), np.zeros((g.rank, ZD.shape[1]))  # (r_g, w_Y), (r_g, w_Z)
        for ix, Fq in rows.blocks(g, st.qf, c, work):
            FY[ix] = right(work, Fq, SYg) / st.D[ix, None]
            SZg += mm(work, Fq, ZD[ix])
        SZ[: g.rank] += scaled(g.a, SZg, SZg.shape[1], work)
    SZt = np.ascontiguousarray(SZ.T)  # (w_Z, r)
    for t0, t1, slabs in key_blocks(st, work):
        FZt = np.zeros((SZt.shape[0], t1 - t0))  # (w_Z, c)
        for lo, hi, Fk in slabs:
            FZt += mm(work, SZt[:, lo:hi], Fk)
        FZ[t0:t1] = FZt.T
    return FY, FZ


def f_products(st: HeadState, Y: np.ndarray, Z: np.ndarray, work: Work, dense: bool = False):
    r"""$(\tilde f Y, \tilde f^\top Z)$ for one head: Y (n, w_Y), Z (n, w_Z) -> (n, w_Y), (n, w_Z).

    ``dense=True`` (or method ``"exact"``) uses the exact head (:attr:`HeadState.dense`, :mod:`fastpath.dense`: its
    f kept, or recomputed in blocks of rows). Each
    feature block is built once and reused by the second pass while it fits (:class:`fastpath.head.Feats`).
    """
    n = Y.shape[0]
    if dense or st.method == "exact":
        return dense_products(st.dense, Y, Z, work)  # fastpath.dense: in row blocks when f is not kept
    if st.method == "clustered":  # fastpath.clustered: the cluster-pair operator, same normaliser
        return st.op.products(Y, Z, work)
    c, a, D = st.block, st.a, st.D
    F = Feats(st, work)
    FY, FZ = np.empty_like(Y), np.empty_like(Z)
    ZD = Z / D[:, None]  # (n, w_Z)
    if not st.causal and st.rows is not None:
        return _products_rows(st, Y, ZD, work)
    if not st.causal:
        SY, SZ = np.zeros((st.rank, Y.shape[1])), np.zeros((st.rank, Z.shape[1]))
        for t0, t1 in blocks(n, c):
            Fq, Fk = F.both(t0, t1)
            SY += mm(work, Fk, Y[t0:t1])  # (r, w_Y)
            SZ += mm(work, Fq, ZD[t0:t1])  # (r, w_Z)
        SY *= a[:, None]
        SZ *= a[:, None]
        for t0, t1 in blocks(n, c):
            Fq, Fk = F.both(t0, t1)
            FY[t0:t1] = right(work, Fq, SY) / D[t0:t1, None]
            FZ[t0:t1] = right(work, Fk, SZ)
        return FY, FZ
    rows = st.rows  # fastpath.rowdegree: the block's query rows by group, each at its rank and scale
    state = np.zeros((st.rank, Y.shape[1]))  # (r, w_Y) V0^T Y over earlier blocks
    for t0, t1 in blocks(n, c):
        fb = _kernel_block(st, t0, t1, work) / D[t0:t1, None]  # (c, c) diagonal block of f~
        if rows is None:
            Fq, Fk = F.both(t0, t1)
            FY[t0:t1] = right(work, Fq, a[:, None] * state) / D[t0:t1, None]
        else:
            Fk = F.k(t0, t1)
            for g, ix, Fq in rows.split(t0, t1, st.qf, work):
                FY[ix] = right(work, Fq, scaled(g.a, state, state.shape[1], work)) / D[ix, None]
        FY[t0:t1] += mm(work, fb, Y[t0:t1])
        state += mm(work, Fk, Y[t0:t1])
    state = np.zeros((st.rank, Z.shape[1]))  # (r, w_Z) U1^T Z over later blocks (with rows: scaled as it enters)
    for t0, t1 in blocks(n, c, reverse=True):
        fb = _kernel_block(st, t0, t1, work) / D[t0:t1, None]  # (c, c)
        if rows is None:
            Fq, Fk = F.both(t0, t1)
            FZ[t0:t1] = right(work, Fk, a[:, None] * state) + mm(work, fb.T, Z[t0:t1])
            state += mm(work, Fq, ZD[t0:t1])
        else:
            Fk = F.k(t0, t1)
            FZ[t0:t1] = right(work, Fk, state) + mm(work, fb.T, Z[t0:t1])
            for g, ix, Fq in rows.split(t0, t1, st.qf, work):
                state[: g.rank] += scaled(g.a, mm(work, Fq, ZD[ix]), state.shape[1], work)
    return FY, FZ


__all__ = ["f_products"]
