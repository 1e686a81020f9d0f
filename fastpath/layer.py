r"""One attention layer on the fast path: forward $U_1(V_1^\top h)$ and the corrected backward, never n×n.

Paper: §5.1 (low-rank forward, #13), Lemmas E.2–E.11 (the five terms), F.5 (dL/dW), G.4 (dL/dW_V, corrected),
I.6–I.8 (causal, corrected), K.1/K.2 (heads); spec §2.3, §2.4, §2.7, §2.9. One head, merged weight
$W = W_Q W_K^\top$, $q = X W_Q$, $k = X W_K$, $h = X W_V$, $\tilde f = U_1 V_1^\top$ (:mod:`fastpath.lowrank`):

* **non-causal**, the multiplication orders of spec §2.4: the forward accumulates only $V_0^\top [1 \mid h]$
  (width $1 + d_h$, issue 14 item 4); the backward's first pass accumulates the left products
  $V_1^\top X,\ V_3^\top X = V_1^\top(h \oslash X)$ together with $U_1^\top G,\
  U_4^\top X = U_1^\top(K \odot X),\ U_3^\top X = U_1^\top(G \oslash X)$ (:mod:`fastpath.headgrad`); then, on
  k-side matrices only,
  $M_8 = (U_1^\top G) W_V^\top$, $M_4 = (V_3^\top X) W^\top$, $M_2 = (V_4^\top X) W^\top$,
  $M_7 = (U_3^\top X) W$, $M_6 = (U_4^\top X) W$,
  $g_w = \beta[(X^\top U_3)(V_3^\top X) - (X^\top U_4)(V_4^\top X)]$, $g_v = (X^\top V_1)(U_1^\top G)$;
  a second pass forms $D_8 = V_1 M_8$, $D_4 = \beta U_3 M_4$, $D_2 = -\beta U_4 M_2$, $D_7 = \beta V_3 M_7$,
  $D_6 = -\beta V_4 M_6$ block by block ($U_3 M_4$ as $\sum_b G_{:,b} \odot (U_1 M_{4,b})$, so the rank-k·d_h
  factors $U_3, V_3$ are never stored).
* **causal**, the orders of Lemmas I.6–I.8 with the corrected transposes (spec §2.7): prefix sums give
  $fX$ and $p_1 X = \sum_b G_{:,b} \odot f(h_{:,b} \odot X)$; suffix sums give $f^\top G$, $f^\top(K \odot X)$ and
  $p_1^\top X = \sum_b h_{:,b} \odot f^\top(G_{:,b} \odot X)$; then $D_4 = \beta (p_1X) W^\top$,
  $D_2 = -\beta (K \odot fX) W^\top$, $D_7 = \beta (p_1^\top X) W$, $D_6 = -\beta (f^\top(K\odot X)) W$,
  $D_8 = (f^\top G) W_V^\top$, $g_w = \beta X^\top(p_1X - K \odot fX)$, $g_v = X^\top (f^\top G)$.
  Blocks of c tokens (:func:`fastpath.causal.blocks`): the running k×w state carries the other blocks; the
  diagonal c×c block uses the exact kernel $\exp(\beta q_i^\top k_j)$, whose entries trivially satisfy the
  relative-error guarantee, so the certificate of spec §2.5 holds unchanged.

Tokens are streamed in blocks so memory is O(r·c + n d) (r = rank) plus the feature blocks a call may keep for its
later passes (:class:`fastpath.head.Feats`, none by default: rebuilding them measured faster); the scale $a_\alpha$ and
$\tilde D^{-1}$ are folded into the k-side matrices and the c-row results.

**Re-centring** (issue 14 item 2, :mod:`fastpath.centring`): ``recentre=True`` evaluates the polynomial on
$\beta(q - a)\cdot(k - c)$ and carries the exact key factor $w$ on the key side (:mod:`fastpath.head`);
``"auto"`` does so when it shrinks the certified range (the grid value of :func:`fastpath.poly.round_up_R`).

Shape legend: n tokens, d width, d_h = d/heads, r rank, c tokens per block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from fastpath.causal import blocks
from fastpath.centring import RECENTRE, centred_cs_floor
from fastpath.centring import recentre as make_centring
from fastpath.dense import DenseHead, dense_forward
from fastpath.features import feature_scale, monomial_plan, rank_of
from fastpath.head import Feats, HeadState, _features, _kernel_block, mm_fused, right
from fastpath.headgrad import HeadGradsFast, head_backward
from fastpath.lowrank import (
    MEMORY_BUDGET,
    block_size,
    check_budget,
    exact_kernel_cert,
    fixed_degree_poly,
    precheck_budget,
    working_set_bytes,
)
from fastpath.poly import certified_poly, degree_lower_estimate, round_up_R
from fastpath.ranges import FAST_RTOL, cs_bound, logit_ranges
from fastpath.rowdegree import check_option as check_row_degrees
from fastpath.rowdegree import key_blocks, plan_rows, scaled
from fastpath.work import Work, mm
from reference.attention import TERM_NAMES, head_blocks

CAUSAL_BLOCK = (
    128  # tokens per diagonal block on the causal path (c^2 d_h work per block; 128 measured best at rank 210)
)
METHODS = ("auto", "lowrank", "exact", "clustered")


def _dense_head(X, W_Q, W_K, W_V, beta: float, causal: bool, work: Work, budget: int = MEMORY_BUDGET) -> DenseHead:
    """The exact head (:func:`fastpath.dense.dense_forward`: the reference's dense head, streamed in row blocks
    within ``budget`` bytes), its contractions counted."""
    return dense_forward(X, W_Q, W_K, W_V, beta, causal, work, budget)


BACKWARD_BLOCK = 1024  # tokens per block of the non-causal backward, at least (module docstring of backward_block)


def backward_block(r: int, n: int, d: int, d_h: int, c: int, budget: int) -> int:
    r"""Tokens per block of the non-causal backward: at least the forward's c, at most :data:`BACKWARD_BLOCK`, n
    and what ``budget`` allows (:func:`fastpath.lowrank.working_set_bytes`). Each block adds its (c, w) products
    into (r, w) states of width $w pprox d_h d + 2d + d_h$ plus the certificate's columns, so the states are read
    and written once per block: with the cache-sized c of the forward (64 tokens at rank $10^4$) that traffic is
    about as large as the feature blocks' own. Measured (authors' inputs, d = 4, n = 2^16, rank 10626): the
    backward took 10.8–13.3 s with c = 64 and 8.3–8.9 s with c = 1024 (two alternating rounds, load 1–2). At low
    rank c is already larger (936 at rank 210). The counted work does not depend on c."""
    cb = min(n, max(c, BACKWARD_BLOCK))
    while cb > c and working_set_bytes(r, d, d_h, cb) > budget:
        cb //= 2
    return max(c, cb)


def choose_method(method: str, R: float, eps: float, d_h: int, n: int, degree: int | None) -> str:
    r"""``"auto"``: the exact kernel when the rank is not below n (rule: $r \ge n$, r the rank the polynomial
    needs, or its optimistic lower estimate :func:`fastpath.poly.degree_lower_estimate` before certifying), since
    the dense head then costs fewer multiply-adds than the low-rank one; otherwise the low-rank path.
    :func:`head_forward` applies the rule again to the certified degree, so an optimistic estimate never keeps the
    low-rank path at a rank of n or more."""
    if method != "auto":
        return method
    g = degree if degree is not None else degree_lower_estimate(round_up_R(R), eps)
    return "exact" if rank_of(d_h, g) >= n else "lowrank"


def _centring(q, k, beta: float, R: float, recentre_: bool | str):
    """The re-centring to use (:mod:`fastpath.centring`) or None: ``True`` takes the centres of
    :func:`fastpath.recentre.centres` whenever they are not (0, 0) (None also where the centring would not be
    accurate, see :func:`fastpath.centring.recentre`), ``"auto"`` only when they shrink the certified range, and
    searches for them only when the mean-centred Cauchy-Schwarz range is below R."""
    if recentre_ is False:
        return None
    if recentre_ == "auto":  # O(n d) gate: not even the mean-centred Cauchy-Schwarz range is below R (the search
        Rg = round_up_R(R)  # costs more); decided first by a lower bound of that range (round_up_R is monotone)
        if round_up_R(centred_cs_floor(q, k, beta)) >= Rg:
            return None
        if round_up_R(cs_bound(q - q.mean(axis=0), k - k.mean(axis=0), beta)) >= Rg:
            return None
    cen = make_centring(q, k, beta)
    if cen is not None and recentre_ == "auto" and round_up_R(cen.R) >= round_up_R(R):
        return None
    return cen


def head_forward(X, W_Q, W_K, W_V, beta: float, *, eps: float, kind: str, causal: bool, budget: int,
                 block: int | None = None, degree: int | None = None, method: str = "lowrank",
                 exact_forward: bool = False, recentre: bool | str = "auto", cert_cols=None,
                 row_degrees: bool | str = "auto") -> HeadState:  # fmt: skip
    r"""Fast forward of one head: $\tilde s = \tilde D^{-1} U_0 (V_0^\top h)$ (#13 / Lemma C.14), or its causal form.

    X (n, d); W_Q, W_K, W_V (d, d_h). ``degree`` fixes the polynomial degree (its error is certified, not
    targeted); ``method`` is ``"lowrank"``, ``"exact"`` (dense kernel) or ``"auto"`` (:func:`choose_method`);
    ``exact_forward`` keeps the low-rank factors for the backward but returns the exact output s (spec W10);
    ``recentre`` (True, False, ``"auto"``): exact re-centring of the logits (module docstring);
    ``cert_cols``: a callable ``st -> obj | None`` (:func:`fastpath.certificate.forward_columns`) called once the
    head's q, k, h and polynomial are known; its ``obj.Y`` (n, w) rides as extra columns of both passes, and
    ``obj.FY`` = $\tilde f$ ``obj.Y``, ``obj.madds`` (their counted multiply-adds) are set on return (low-rank
    path only; ``st.fused`` keeps obj);
    ``row_degrees`` (True, False, ``"auto"``): a polynomial per group of query rows on the low-rank path
    (:mod:`fastpath.rowdegree`; False: one polynomial for every row, as before).
    Raises ValueError (from :func:`fastpath.lowrank.check_budget`) when the rank for ``eps`` on this input's logit
    range exceeds ``budget`` bytes.
    """
    if recentre not in RECENTRE or not isinstance(recentre, bool | str):
        raise ValueError(f"recentre: expected True, False or 'auto', got {recentre!r}")
    check_row_degrees(row_degrees)
    n, d = X.shape
    work = Work()
    q, k, h = mm(work, X, W_Q), mm(work, X, W_K), mm(work, X, W_V)  # (n, d_h) each
    d_h = q.shape[1]
    rule = eps if degree is None and method in ("auto", "lowrank") else None  # the degree rule (fastpath.staircase)
    bounds = logit_ranges(q, k, beta, rtol=FAST_RTOL, eps=rule, kind=kind)  # both ranges, shared norms, early exit
    R = bounds.absolute  # the bound of fastpath.lowrank.logit_range, refined only as far as the degree grid needs
    if not math.isfinite(R):
        raise ValueError(
            f"X: the logits beta q.k overflow float64 (logit range R = {R}); expected inputs or weights small enough "
            "that |beta q_i . k_j| is finite (scale X or the weights down)"
        )
    if method == "clustered":  # issue 14 item 3: fastpath.clustered (cluster-pair re-centring)
        from fastpath.clustered import head_forward_clustered

        st = head_forward_clustered(X, W_Q, W_K, W_V, beta, q, k, h, R, work, eps=eps, kind=kind, causal=causal,
                                    budget=budget, degree=degree, exact_forward=exact_forward)  # fmt: skip
        if st is not None:
            return st
        method = "exact"  # the dense head is modelled cheaper than the clustered plan: it runs below
    # R bounds beta |q_i|.|k_j| (absolute values entrywise): every logit and the rounding scale; the polynomial only
    # has to cover the signed logits, whose certified bound (fastpath.ranges.logit_bound) may be smaller
    Rs = R if method == "exact" else min(R, bounds.signed)
    cen = None if method == "exact" else _centring(q, k, beta, Rs, recentre)
    if cen is not None:
        work.add(2 * n * d_h + n * d_h)  # q - a, k - c; beta k.a (the exp of n key factors is not a madd)
    Rp = Rs if cen is None else cen.R  # the range the polynomial must cover
    chosen = choose_method(method, Rp, eps, d_h, n, degree)
    cert = None
    if chosen == "lowrank" and method == "auto" and degree is None:  # the estimate was optimistic: certify, then
        precheck_budget(Rp, eps, d, d_h, budget)  # keep the rule r >= n -> exact with the certified degree
        cert = certified_poly(Rp, eps, kind)
        chosen = "exact" if rank_of(d_h, cert.degree) >= n else "lowrank"
    if chosen == "exact":
        dense = _dense_head(X, W_Q, W_K, W_V, beta, causal, work, budget)
        cert = exact_kernel_cert(X, W_Q, W_K, beta, R, eps)
        st = HeadState(W_Q, W_K, W_V, dense.W, beta, causal, q, k, h, R, cert, None, np.zeros(0), n,
                       method="exact", dense=dense, cs=bounds.cs)  # fmt: skip
        st.D, st.s = np.ones(n), dense.s
        st.madds = work.madds
        return st
    if cert is not None:
        pass  # certified above (method "auto")
    elif degree is None:
        precheck_budget(Rp, eps, d, d_h, budget)
        cert = certified_poly(Rp, eps, kind)
    else:
        cert = fixed_degree_poly(Rp, degree, kind)
    r = check_budget(Rp, eps, cert, d, d_h, budget)
    plan = monomial_plan(d_h, cert.degree)
    c = block or (min(CAUSAL_BLOCK, block_size(r, n)) if causal else block_size(r, n))
    st = HeadState(W_Q, W_K, W_V, W_Q @ W_K.T, beta, causal, q, k, h, R, cert, plan,
                   feature_scale(plan, cert.coeffs, beta), c, centring=cen, R_signed=Rs,
                   exact_forward=exact_forward, cs=bounds.cs)  # fmt: skip
    if not causal and block is None:
        st.back_block = backward_block(r, n, d, d_h, c, budget)
    if degree is None and row_degrees is not False:  # fastpath.rowdegree: each group of query rows its polynomial
        st.rows = plan_rows(st.qf, st.kf, beta, Rp, cert, eps, row_degrees)
        work.add(2 * n * d_h)  # the rows' and keys' norms
        if st.rows is not None:  # st.cert.err: a bound for every row (a larger bound of its own error stays valid)
            st.cert = replace(cert, err=max(cert.err, st.rows.err_max))
    work.add(d * d_h * d)  # W = W_Q W_K^T
    w0 = 1 + d_h
    fused = None if cert_cols is None else cert_cols(st)  # the certificate's columns (fastpath.certificate)
    H = np.concatenate([np.ones((n, 1)), h] + ([] if fused is None else [fused.Y]), axis=1)  # (n, 1 + d_h + w_c)
    w, cw = H.shape[1], Work()  # cw: the certificate's share of the fused GEMMs
    Y = np.empty((n, w))
    F = Feats(st, work, keep=False)  # every feature block is used once in the forward
    if not causal and st.rows is None:
        state = np.zeros((r, w))  # (r, w)  V_0^T [1 | h | Y_c], the forward's only left product
        for t0, t1, Fk in F.spans("k", n):  # features built FORWARD_SPAN blocks at a time, GEMMs block by block
            state += mm_fused(work, cw, Fk, H[t0:t1], w0)  # (r, w)
        SaT = np.ascontiguousarray((st.a[:, None] * state).T)  # (w, r), transposed once for every block
        for t0, t1, Fq in F.spans("q", n):
            Y[t0:t1] = right(work, Fq, SaT, cw, w0, transposed=True)  # (c, w)
    elif not causal:  # per-row degrees (fastpath.rowdegree): keys at rank r degree by degree, queries by group
        state = np.zeros((r, w))  # (r, w)
        for t0, t1, slabs in key_blocks(st, work):
            for lo, hi, Fk in slabs:
                state[lo:hi] += mm_fused(work, cw, Fk, H[t0:t1], w0)  # (hi - lo, w)
        for g in st.rows.groups:  # each group: its scale on its first r_g rows
            Sa = scaled(g.a, state, w0, work, cw)  # (r_g, w)
            for ix, Fq in st.rows.blocks(g, st.qf, c, work):
                Y[ix] = right(work, Fq, Sa, cw, w0)  # (c_b, w)
    else:
        state = np.zeros((r, w))  # (r, w)  V0^T [1 | h | Y_c] over earlier blocks
        for t0, t1 in blocks(n, c):
            if st.rows is None:
                Fq, Fk = F.both(t0, t1)
                Y[t0:t1] = right(work, Fq, st.a[:, None] * state, cw, w0)  # (c, w)
            else:  # per-row degrees: the block's rows by group, each reading its first r_g rows with its scale
                Fk = F.k(t0, t1)
                for g, ix, Fq in st.rows.split(t0, t1, st.qf, work):
                    Sa = scaled(g.a, state, w0, work, cw)  # (r_g, w)
                    # the own columns in a GEMM of their own: BLAS on small shapes is not column-stable, and s must
                    # not depend on whether the certificate's columns ride along
                    Y[ix, :w0] = right(work, Fq, Sa[:, :w0])  # (c_g, 1 + d_h)
                    if w > w0:
                        Y[ix, w0:] = right(cw, Fq, Sa[:, w0:])  # (c_g, w_c)
            Y[t0:t1] += mm_fused(work, cw, _kernel_block(st, t0, t1, work), H[t0:t1], w0)  # diagonal block, exact
            state += mm_fused(work, cw, Fk, H[t0:t1], w0)
    st.D = Y[:, 0].copy()  # (n,)
    if not (st.D > 0).all():
        raise ValueError(
            f"X: the low-rank normalizer D~ is not positive (min {st.D.min():g}): the polynomial's certified "
            f"relative error {cert.err:.3g} at degree {cert.degree} on the logit range R = {Rp:.4g} is too large; "
            "expected a smaller eps, a larger degree or smaller weights"
        )
    st.s = Y[:, 1:w0] / st.D[:, None]  # (n, d_h)
    if fused is not None:
        fused.FY, fused.madds, st.fused = Y[:, w0:] / st.D[:, None], cw.madds, fused  # (n, w_c)
    if exact_forward:
        st.dense = _dense_head(X, W_Q, W_K, W_V, beta, causal, work, budget)
        st.s = st.dense.s
    st.madds = work.madds
    return st


def attention_forward(X, W_Q, W_K, W_V, *, beta: float, causal: bool, heads: int, eps: float, kind: str,
                      budget: int, block: int | None = None, degree: int | None = None, method: str = "lowrank",
                      exact_forward: bool = False, recentre: bool | str = "auto", cert_cols=None,
                      row_degrees: bool | str = "auto") -> tuple[list[HeadState], np.ndarray]:  # fmt: skip
    """Multi-head fast forward (Def. K.1): heads on column blocks; returns (head states, Attn (n, d)).
    ``cert_cols`` and ``row_degrees`` are passed to every :func:`head_forward`."""
    states = [
        head_forward(
            X,
            wq,
            wk,
            wv,
            beta,
            eps=eps,
            kind=kind,
            causal=causal,
            budget=budget,
            block=block,
            degree=degree,
            method=method,
            exact_forward=exact_forward,
            recentre=recentre,
            cert_cols=cert_cols,
            row_degrees=row_degrees,
        )  # fmt: skip
        for wq, wk, wv in head_blocks(W_Q, W_K, W_V, heads)
    ]
    return states, np.concatenate([st.s for st in states], axis=1)  # (n, d)


@dataclass
class AttentionGradsFast:
    dX: np.ndarray  # (n, d)
    dW_Q: np.ndarray  # (d, d)
    dW_K: np.ndarray  # (d, d)
    dW: np.ndarray  # (d, d) one head, (heads, d, d) otherwise
    dW_V: np.ndarray  # (d, d)
    terms: dict[str, np.ndarray]  # summed over heads
    K: list[np.ndarray]  # per head K~ (n,)
    madds: int = 0  # counted multiply-adds (fastpath.work)
    cert: list | None = None  # per head (f~Y, f~^T Z) of the certificate's fused columns, or None
    cert_madds: int = 0  # their counted multiply-adds


def attention_backward(states: list[HeadState], X: np.ndarray, G: np.ndarray, cert_cols=None) -> AttentionGradsFast:
    """Multi-head fast backward (Lemma K.2); dL/dW_Q = dL/dW W_K and dL/dW_K = (dL/dW)^T W_Q per head (#26).
    ``cert_cols``: per head None or the certificate's (Y, Z) columns, fused into its passes (:func:`head_backward`)."""
    d_h = G.shape[1] // len(states)
    cols = cert_cols or [None] * len(states)
    hg = [head_backward(st, X, G[:, l * d_h : (l + 1) * d_h], cols[l]) for l, st in enumerate(states)]
    dW_Q = np.concatenate([g.dW @ st.W_K for g, st in zip(hg, states, strict=True)], axis=1)  # (d, d)
    dW_K = np.concatenate([g.dW.T @ st.W_Q for g, st in zip(hg, states, strict=True)], axis=1)  # (d, d)
    dW_V = np.concatenate([g.dW_V for g in hg], axis=1)  # (d, d)
    dW = hg[0].dW if len(hg) == 1 else np.stack([g.dW for g in hg])
    # one head: its own arrays (no 0 + D copy; equal values, a -0.0 stays -0.0); more: summed as before
    terms = {
        t: hg[0].terms[t] if len(hg) == 1 else sum(g.terms[t] for g in hg[1:]) + hg[0].terms[t] for t in TERM_NAMES
    }
    dX = sum(g.dX for g in hg[1:]) + hg[0].dX  # (n, d)
    K = [(G[:, l * d_h : (l + 1) * d_h] * st.s).sum(axis=1) for l, st in enumerate(states)]
    d = X.shape[1]
    madds = sum(g.madds for g in hg) + len(hg) * 2 * d * d * d_h
    cert = [g.cert for g in hg]
    return AttentionGradsFast(dX, dW_Q, dW_K, dW, dW_V, terms, K, madds, cert, sum(g.cert_madds for g in hg))


__all__ = ["CAUSAL_BLOCK", "METHODS", "AttentionGradsFast", "HeadGradsFast", "HeadState", "_features", "_kernel_block",
           "attention_backward", "attention_forward", "choose_method", "head_backward", "head_forward"]  # fmt: skip
