r"""The corrected fast backward of one head (the orders of :mod:`fastpath.layer`'s docstring), streamed in blocks.

Paper: Lemmas E.2–E.11 (the five terms), F.5 (dL/dW), G.4 (dL/dW_V, corrected), I.6–I.8 (causal, corrected);
spec §2.3, §2.4, §2.7; issue 14 item 4. The backward does its own V-side work: the non-causal pass 1 accumulates
both left products, $V_1^\top [X \mid h \oslash X]$ and $U_1^\top [G \mid K X \mid G \oslash X]$, reading each
block's key and query features once; pass 2 reuses the same feature blocks (:class:`fastpath.head.Feats`, kept
while they fit the head's cache budget, rebuilt and counted again otherwise). The causal prefix and suffix passes
share the feature blocks the same way. Re-centred heads (:mod:`fastpath.centring`) carry $w$ in the key features
and the diagonal blocks, so $V_1 = w \odot \Psi(k')$ everywhere below. With per-row degrees
(:mod:`fastpath.rowdegree`) the non-causal passes run in another order that builds each key block's features once
(:func:`_backward_rows`): the query groups' left products first, then one key pass forming both the V-side left
products and the key-side right products, then the query groups' right products.

Shape legend: n tokens, d width, d_h = d/heads, r rank, c tokens per block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastpath.causal import blocks
from fastpath.dense import dense_backward
from fastpath.head import Feats, HeadState, _contract, _kernel_block, _kron, _value_side, mm_fused, right
from fastpath.rowdegree import key_blocks, scaled
from fastpath.work import Work, mm
from reference.attention import TERM_NAMES


@dataclass
class HeadGradsFast:
    terms: dict[str, np.ndarray]  # D2, D4, D6, D7, D8, each (n, d)
    dX: np.ndarray  # (n, d)
    dW: np.ndarray  # (d, d)
    dW_V: np.ndarray  # (d, d_h)
    madds: int = 0  # counted multiply-adds (fastpath.work)
    cert: tuple[np.ndarray, np.ndarray] | None = None  # (f~Y, f~^T Z) of the certificate's fused columns
    cert_madds: int = 0  # their counted multiply-adds


def _exact_head_backward(st: HeadState, G: np.ndarray) -> HeadGradsFast:
    """Method "exact": :func:`fastpath.dense.dense_backward` (the reference's dense backward, streamed in row
    blocks when f is not kept), contractions counted."""
    hg, madds = dense_backward(st.dense, G)
    return HeadGradsFast(hg.terms, hg.dX, hg.dW, hg.dW_V, madds)


def _u_side(st: HeadState, SU: np.ndarray, d: int, wU: int, work: Work):
    r"""From the U-side left products $U_1^\top [G \mid K X \mid G \oslash X]$ (r, wU + w_Z): U1G (r, d_h),
    U4X (r, d), U3X (r d_h, d) and the k-side matrices M8 (r, d), M7 (r, d_h d), M6 (r, d) (module docstring)."""
    r, d_h = SU.shape[0], st.q.shape[1]
    U1G, U4X = SU[:, :d_h], SU[:, d_h : d_h + d]  # (r, d_h), (r, d)
    U3X = SU[:, d_h + d : wU].reshape(r * d_h, d)  # (r d_h, d)
    M8 = mm(work, U1G, st.W_V.T)  # (r, d)  Lemma E.6 order, corrected
    M7 = mm(work, U3X, st.W).reshape(r, d_h * d)  # (r, d_h d)  Lemma E.5, corrected (p1^T, W)
    M6 = mm(work, U4X, st.W)  # (r, d)  Lemma E.3, corrected (p2^T, W)
    return U1G, U4X, U3X, M8, M7, M6


def _v_side(st: HeadState, SV: np.ndarray, d: int, wV: int, work: Work):
    r"""From the V-side left products $V_1^\top [X \mid h \oslash X]$ (r, wV + w_Y): V1X (r, d), V3X (r d_h, d)
    and the k-side matrices M4 (r, d_h d), M2 (r, d) (module docstring)."""
    r, d_h = SV.shape[0], st.q.shape[1]
    V1X, V3X = SV[:, :d], SV[:, d:wV].reshape(r * d_h, d)  # (r, d), (r d_h, d)
    M4 = mm(work, V3X, st.W.T).reshape(r, d_h * d)  # (r, d_h d)  Lemma E.10, corrected (W^T)
    M2 = mm(work, V1X, st.W.T)  # (r, d)  Lemma E.8, corrected (W^T)
    return V1X, V3X, M4, M2


def _weight_grads(st: HeadState, U1G, U3X, U4X, V1X, V3X, work: Work):
    """dW (d, d) (Lemma F.5 with the p2 part) and dW_V (d, d_h) (Lemma G.4 corrected) from the left products."""
    dW = st.beta * (mm(work, U3X.T, V3X) - mm(work, U4X.T, V1X))  # (d, d)
    dW_V = mm(work, V1X.T, U1G)  # (d, d_h)  (X^T V1)(U1^T G)
    return dW, dW_V


def _backward_rows(st, rows, G, K, HV, HU, wV, wU, shapes, c, work, cw):
    r"""The non-causal passes of :func:`head_backward` with per-row degrees (:mod:`fastpath.rowdegree`); returns
    (T, dW, dW_V, FY, FZ). The same products per row as the single-degree passes, with the row's polynomial, in
    another order that builds the key features once: (1) the query groups' left products $U_1^	op[\ldots]$
    (gathered by index, each at its rank with $\mathrm{diag}(a^{(g)})$); (2) M8, M7, M6 from them; (3) one pass
    over the key blocks, degree by degree, forming both $V_1^	op[X \mid h \oslash X]$ and the key-side right
    products $V_1 M$ (D8, D7, D6); (4) M4, M2 and the query groups' right products (D4, D2), scattered back.
    ``shapes`` = (n, d, r, w_Y, w_Z)."""
    n, d, r, wY, wZ = shapes
    d_h, beta, D = G.shape[1], st.beta, st.D
    T = {t: np.empty((n, d)) for t in TERM_NAMES}
    FY, FZ = np.empty((n, wY)), np.empty((n, wZ))
    SU = np.zeros((r, wU + wZ))  # (r, wU + w_Z)
    for g in rows.groups:  # (1)
        SUg = np.zeros((g.rank, SU.shape[1]))  # (r_g, wU + w_Z)
        for ix, Fq in rows.blocks(g, st.qf, c, work):
            SUg += mm_fused(work, cw, Fq, HU(ix) / D[ix, None], wU)
        SU[: g.rank] += scaled(g.a, SUg, wU, work, cw)  # diag(a^(g)) Phi_g^T (HU / D~), first r_g rows
    U1G, U4X, U3X, M8, M7, M6 = _u_side(st, SU, d, wU, work)  # (2)
    MVt = np.ascontiguousarray(np.concatenate([M8, M7, M6, SU[:, wU:]], axis=1).T)  # (2 d + d_h d + w_Z, r)
    w2 = 2 * d + d_h * d
    SV = np.zeros((r, wV + wY))  # (r, wV + w_Y)
    for t0, t1, slabs in key_blocks(st, work):  # (3)
        Hb = HV(t0, t1)  # (c, wV + w_Y)
        RVt = np.zeros((MVt.shape[0], t1 - t0))  # (2 d + d_h d + w_Z, c)
        for lo, hi, Fk in slabs:
            SV[lo:hi] += mm_fused(work, cw, Fk, Hb, wV)  # (hi - lo, wV + w_Y)
            RVt += mm_fused(work, cw, MVt[:, lo:hi], Fk, w2, rows=True)
        RV = RVt.T  # (c, 2 d + d_h d + w_Z)
        FZ[t0:t1] = RV[:, w2:]
        T["D8"][t0:t1] = RV[:, :d]
        T["D7"][t0:t1] = beta * _contract(st.h[t0:t1], RV[:, d : d + d_h * d], d, work)
        T["D6"][t0:t1] = -beta * RV[:, d + d_h * d : w2]
    V1X, V3X, M4, M2 = _v_side(st, SV, d, wV, work)  # (4)
    dW, dW_V = _weight_grads(st, U1G, U3X, U4X, V1X, V3X, work)
    MU = np.concatenate([M4, M2, SV[:, wV:]], axis=1)  # (r, d_h d + d + w_Y)
    for g in rows.groups:
        MUg = scaled(g.a, MU, d_h * d + d, work, cw)  # (r_g, d_h d + d + w_Y)
        for ix, Fq in rows.blocks(g, st.qf, c, work):
            RU = right(work, Fq, MUg, cw, d_h * d + d) / D[ix, None]  # (c_b, d_h d + d + w_Y)
            FY[ix] = RU[:, d_h * d + d :]
            T["D4"][ix] = beta * _contract(G[ix], RU[:, : d_h * d], d, work)
            T["D2"][ix] = -beta * K[ix, None] * RU[:, d_h * d : d_h * d + d]
    return T, dW, dW_V, FY, FZ


def head_backward(st: HeadState, X: np.ndarray, G: np.ndarray, cert_cols=None) -> HeadGradsFast:
    r"""Corrected fast backward of one head (module docstring). X (n, d); G (n, d_h) = dL/ds for this head.

    ``cert_cols`` = (Y (n, w_Y), Z (n, w_Z)), the a-posteriori certificate's columns
    (:func:`fastpath.certificate.backward_columns`): Y rides on the V-side $[X \mid h \oslash X]$ and Z on the
    U-side $[G \mid K X \mid G \oslash X]$ of every pass, and ``.cert`` returns $(\tilde f Y, \tilde f^\top Z)$
    with their multiply-adds in ``.cert_madds`` (methods ``"exact"`` and ``"clustered"`` ignore them: the
    certificate then calls :func:`fastpath.apply.f_products`, the dense f or the cluster-pair operator)."""
    if st.method == "exact":
        return _exact_head_backward(st, G)
    n, d = X.shape
    d_h = G.shape[1]
    work = Work()
    r, c, a, beta, D = st.rank, st.block, st.a, st.beta, st.D
    if not st.causal and st.back_block:  # f~ does not depend on the blocking without the mask (pass 1 and 2 below)
        c = st.back_block
    K = (G * st.s).sum(axis=1)  # (n,)  K~ = (G . s~) 1  (Def. D.16 with the fast s)
    work.add(n * d_h)
    F = None if st.method == "clustered" else Feats(st, work, block=c)
    wV, wU = d + d_h * d, d_h + d + d_h * d
    if st.method == "clustered":  # its operator streams its own cluster pairs: the certificate calls it separately
        cert_cols = None
    Yc, Zc = (np.zeros((n, 0)), np.zeros((n, 0))) if cert_cols is None else cert_cols  # (n, w_Y), (n, w_Z)
    cw = Work()  # the certificate's share of the fused GEMMs (fastpath.head.mm_fused)

    def HV(t0, t1=None):  # (c, d + d_h d + w_Y)  [X | h ./ X | Y_c]; rows t0:t1, or the index array t0
        ix = slice(t0, t1) if t1 is not None else t0
        return np.concatenate([_value_side(X[ix], st.h[ix], work), Yc[ix]], axis=1)

    def HU(t0, t1=None):  # (c, d_h + d + d_h d + w_Z)  [G | K X | G ./ X | Z_c]; rows t0:t1, or the index array t0
        ix = slice(t0, t1) if t1 is not None else t0
        Xb = X[ix]
        work.add(Xb.shape[0] * d)
        return np.concatenate([G[ix], K[ix, None] * Xb, _kron(G[ix], Xb, work), Zc[ix]], axis=1)

    rows = st.rows if st.method == "lowrank" else None  # fastpath.rowdegree: query row groups
    if rows is not None and not st.causal:  # per-row degrees: the key features built once (_backward_rows)
        T, dW, dW_V, FY, FZ = _backward_rows(st, rows, G, K, HV, HU, wV, wU, (n, d, r, Yc.shape[1], Zc.shape[1]), c,
                                             work, cw)  # fmt: skip
    elif not st.causal and st.method != "clustered":
        SV, SU = np.zeros((r, wV + Yc.shape[1])), np.zeros((r, wU + Zc.shape[1]))
        for t0, t1 in blocks(n, c):  # pass 1: V-side and U-side left products, one feature build per block
            Fq, Fk = F.both(t0, t1)
            SV += mm_fused(work, cw, Fk, HV(t0, t1), wV)  # (r, wV + w_Y)
            SU += mm_fused(work, cw, Fq, HU(t0, t1) / D[t0:t1, None], wU)  # (r, wU + w_Z)
        SU *= a[:, None]
        U1G, U4X, U3X, M8, M7, M6 = _u_side(st, SU, d, wU, work)
        V1X, V3X, M4, M2 = _v_side(st, SV, d, wV, work)
        dW, dW_V = _weight_grads(st, U1G, U3X, U4X, V1X, V3X, work)
        MU = a[:, None] * np.concatenate([M4, M2, SV[:, wV:]], axis=1)  # (r, d_h d + d + w_Y)
        MV = np.concatenate([M8, M7, M6, SU[:, wU:]], axis=1)  # (r, 2 d + d_h d + w_Z)
        T = {t: np.empty((n, d)) for t in TERM_NAMES}
        FY, FZ = np.empty_like(Yc), np.empty_like(Zc)
        for t0, t1 in blocks(n, c):  # pass 2: right products
            Fq, Fk = F.both(t0, t1)
            RU = right(work, Fq, MU, cw, d_h * d + d) / D[t0:t1, None]  # (c, d_h d + d + w_Y)
            RV = right(work, Fk, MV, cw, 2 * d + d_h * d)  # (c, 2 d + d_h d + w_Z)
            FY[t0:t1], FZ[t0:t1] = RU[:, d_h * d + d :], RV[:, 2 * d + d_h * d :]
            T["D4"][t0:t1] = beta * _contract(G[t0:t1], RU[:, : d_h * d], d, work)
            T["D2"][t0:t1] = -beta * K[t0:t1, None] * RU[:, d_h * d : d_h * d + d]
            T["D8"][t0:t1] = RV[:, :d]
            T["D7"][t0:t1] = beta * _contract(st.h[t0:t1], RV[:, d : d + d_h * d], d, work)
            T["D6"][t0:t1] = -beta * RV[:, d + d_h * d : 2 * d + d_h * d]
    elif st.method == "clustered":  # the same two products with fastpath.clustered's operator
        Y, Z = st.op.products(HV(0, n), HU(0, n), work)  # (n, wV), (n, wU)  (no certificate columns: Yc, Zc empty)
    else:
        Y, Z = np.empty((n, wV + Yc.shape[1])), np.empty((n, wU + Zc.shape[1]))
        state = np.zeros((r, Y.shape[1]))
        for t0, t1 in blocks(n, c):  # prefix sums (Lemma I.3/I.4): f [X | h ./ X | Y_c]
            kb = _kernel_block(st, t0, t1, work)  # (c, c)  diagonal block of D~ f~ (divided after the product)
            Hb = HV(t0, t1)
            if rows is None:
                Fq, Fk = F.both(t0, t1)
                Y[t0:t1] = right(work, Fq, a[:, None] * state, cw, wV)
            else:  # per-row degrees (fastpath.rowdegree): the block's rows by group, at their rank and scale
                Fk = F.k(t0, t1)
                for g, ix, Fq in rows.split(t0, t1, st.qf, work):
                    Y[ix] = right(work, Fq, scaled(g.a, state, wV, work, cw), cw, wV)  # (c_g, wV + w_Y)
            Y[t0:t1] = (Y[t0:t1] + mm_fused(work, cw, kb, Hb, wV)) / D[t0:t1, None]
            state += mm_fused(work, cw, Fk, Hb, wV)
        state = np.zeros((r, Z.shape[1]))  # the scale a applied as rows enter it (a group's own on its r_g rows)
        for t0, t1 in blocks(n, c, reverse=True):  # suffix sums (spec §2.7): f^T [G | K X | G ./ X | Z_c]
            kb = _kernel_block(st, t0, t1, work)  # (c, c)  diagonal block of D~ f~
            HbD = HU(t0, t1) / D[t0:t1, None]  # (c, wU + w_Z)  the rows' 1/D~ applied to the thin side
            if rows is None:
                Fq, Fk = F.both(t0, t1)
                Z[t0:t1] = right(work, Fk, a[:, None] * state, cw, wU) + mm_fused(work, cw, kb.T, HbD, wU)
                state += mm_fused(work, cw, Fq, HbD, wU)
            else:
                Fk = F.k(t0, t1)
                Z[t0:t1] = right(work, Fk, state, cw, wU) + mm_fused(work, cw, kb.T, HbD, wU)
                for g, ix, Fq in rows.split(t0, t1, st.qf, work):  # diag(a^(g)) Phi_g^T (HU / D~) into r_g rows
                    state[: g.rank] += scaled(g.a, mm_fused(work, cw, Fq, HbD[ix - t0], wU), wU, work, cw)
        FY, FZ = Y[:, wV:], Z[:, wU:]
    if st.causal or st.method == "clustered":
        fX = Y[:, :d]  # (n, d)
        p1X = _contract(G, Y[:, d:wV], d, work)  # (n, d)  (f . G h^T) X      Lemma I.8 Part 2, corrected
        fTG, fTKX = Z[:, :d_h], Z[:, d_h : d_h + d]  # (n, d_h), (n, d)
        p1TX = _contract(st.h, Z[:, d_h + d : wU], d, work)  # (n, d)  (f . G h^T)^T X   Lemma I.8 Part 1, corrected
        T = {
            "D8": mm(work, fTG, st.W_V.T),  # Lemma I.7 Part 3, corrected (f^T)
            "D4": beta * mm(work, p1X, st.W.T),
            "D2": -beta * mm(work, K[:, None] * fX, st.W.T),  # Lemma I.7 Part 2, corrected (W^T)
            "D7": beta * mm(work, p1TX, st.W),
            "D6": -beta * mm(work, fTKX, st.W),  # Lemma I.7 Part 1, corrected (f^T, W)
        }
        dW = beta * mm(work, X.T, p1X - K[:, None] * fX)  # (d, d)  Lemma I.8 Part 3
        dW_V = mm(work, X.T, fTG)  # (d, d_h)  Lemma I.7 Part 4, corrected: X^T f^T G
    dX = T["D2"] + T["D4"] + T["D6"] + T["D7"] + T["D8"]  # (n, d)  Lemma E.11
    cert = None if cert_cols is None else (FY, FZ)
    return HeadGradsFast(T, dX, dW, dW_V, work.madds, cert, cw.madds)


__all__ = ["HeadGradsFast", "head_backward"]
