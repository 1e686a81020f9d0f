r"""One attention layer on the fast path: forward $U_1(V_1^\top h)$ and the corrected backward, never n×n.

Paper: §5.1 (low-rank forward, #13), Lemmas E.2–E.11 (the five terms), F.5 (dL/dW), G.4 (dL/dW_V, corrected),
I.6–I.8 (causal, corrected), K.1/K.2 (heads); spec §2.3, §2.4, §2.7, §2.9. One head, merged weight
$W = W_Q W_K^\top$, $q = X W_Q$, $k = X W_K$, $h = X W_V$, $\tilde f = U_1 V_1^\top$ (:mod:`fastpath.lowrank`):

* **non-causal**, the multiplication orders of spec §2.4: the left products
  $V_1^\top X,\ V_3^\top X = V_1^\top(h \oslash X)$ do not depend on G, so the forward's first pass accumulates
  them together with $V_0^\top [1 \mid h]$; one backward pass accumulates $U_1^\top G,\
  U_4^\top X = U_1^\top(K \odot X),\ U_3^\top X = U_1^\top(G \oslash X)$; then, on k-side matrices only,
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

Tokens are streamed in blocks so memory is O(r·c + n d) (r = rank); features are rebuilt per pass
(:func:`fastpath.features.monomials`), and the scale $a_\alpha$ and $\tilde D^{-1}$ are folded into the k-side
matrices and the c-row results.

Shape legend: n tokens, d width, d_h = d/heads, r rank, c tokens per block.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fastpath.causal import blocks
from fastpath.features import MonomialPlan, feature_scale, monomial_plan, monomials, rank_of, row_kron
from fastpath.lowrank import (
    block_size,
    check_budget,
    exact_kernel_cert,
    fixed_degree_poly,
    logit_range,
    precheck_budget,
)
from fastpath.poly import PolyCert, certified_poly, degree_lower_estimate, round_up_R
from fastpath.work import Work, mm
from reference import attention as ref_attention
from reference.attention import TERM_NAMES, head_blocks

CAUSAL_BLOCK = 256  # tokens per diagonal block on the causal path (c^2 d_h work per block)
METHODS = ("auto", "lowrank", "exact", "clustered")


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
    R: float  # bound of |beta q_i . k_j| for the computed q, k
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
    SV: np.ndarray | None = None  # (r, d + d_h d) V_1^T [X | h ./ X], non-causal: independent of G, so the
    # forward's first pass accumulates it with V_0^T [1 | h] (one wider GEMM, one feature pass fewer)

    @property
    def rank(self) -> int:
        """Rank of f~: C(d_h + g, g) on the low-rank path, n (the dense kernel) on the exact one."""
        return self.q.shape[0] if self.plan is None else self.plan.rank


def _kernel_block(st: HeadState, t0: int, t1: int, work: Work) -> np.ndarray:
    """Exact masked kernel on a diagonal block: tril(exp(beta q_b k_b^T)), (c, c)."""
    A = np.exp(st.beta * mm(work, st.q[t0:t1], st.k[t0:t1].T))  # (c, c)
    return np.tril(A)


def _features(Z: np.ndarray, st: HeadState, buf: np.ndarray, work: Work) -> np.ndarray:
    """Monomial features of a block (:func:`fastpath.features.monomials`), counting r c multiplications."""
    work.add(st.plan.rank * Z.shape[0])
    return monomials(Z, st.plan, buf)


def _dense_head(X, W_Q, W_K, W_V, beta: float, causal: bool, work: Work) -> ref_attention.HeadCache:
    """The dense head of :func:`reference.attention.head_forward` (one home), its contractions counted."""
    n, d = X.shape
    d_h = W_V.shape[1]
    work.add(d * d_h * d + n * d * d + n * n * d + n * n + n * n * d_h + n * d * d_h)  # W, XW, (XW)X^T, exp, fh, h
    return ref_attention.head_forward(X, W_Q @ W_K.T, W_V, beta, causal)


def choose_method(method: str, R: float, eps: float, d_h: int, n: int, degree: int | None) -> str:
    r"""``"auto"``: the exact kernel when the rank is not below n (rule: $r \ge n$, r the rank the polynomial
    needs, or its optimistic lower estimate :func:`fastpath.poly.degree_lower_estimate` before certifying), since
    the dense head then costs fewer multiply-adds than the low-rank one; otherwise the low-rank path."""
    if method != "auto":
        return method
    g = degree if degree is not None else degree_lower_estimate(round_up_R(R), eps)
    return "exact" if rank_of(d_h, g) >= n else "lowrank"


def head_forward(X, W_Q, W_K, W_V, beta: float, *, eps: float, kind: str, causal: bool, budget: int,
                 block: int | None = None, degree: int | None = None, method: str = "lowrank",
                 exact_forward: bool = False) -> HeadState:  # fmt: skip
    r"""Fast forward of one head: $\tilde s = \tilde D^{-1} U_0 (V_0^\top h)$ (#13 / Lemma C.14), or its causal form.

    X (n, d); W_Q, W_K, W_V (d, d_h). ``degree`` fixes the polynomial degree (its error is certified, not
    targeted); ``method`` is ``"lowrank"``, ``"exact"`` (dense kernel) or ``"auto"`` (:func:`choose_method`);
    ``exact_forward`` keeps the low-rank factors for the backward but returns the exact output s (spec W10).
    Raises ValueError (from :func:`fastpath.lowrank.check_budget`) when the rank for ``eps`` on this input's logit
    range exceeds ``budget`` bytes.
    """
    n, d = X.shape
    work = Work()
    q, k, h = mm(work, X, W_Q), mm(work, X, W_K), mm(work, X, W_V)  # (n, d_h) each
    d_h = q.shape[1]
    R = logit_range(q, k, beta)
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
    if choose_method(method, R, eps, d_h, n, degree) == "exact":
        dense = _dense_head(X, W_Q, W_K, W_V, beta, causal, work)
        cert = exact_kernel_cert(X, W_Q, W_K, beta, R, eps)
        st = HeadState(W_Q, W_K, W_V, dense.W, beta, causal, q, k, h, R, cert, None, np.zeros(0), n,
                       method="exact", dense=dense)  # fmt: skip
        st.D, st.s = np.ones(n), dense.s
        st.madds = work.madds
        return st
    if degree is None:
        precheck_budget(R, eps, d, d_h, budget)
        cert = certified_poly(R, eps, kind)
    else:
        cert = fixed_degree_poly(R, degree, kind)
    r = check_budget(R, eps, cert, d, d_h, budget)
    plan = monomial_plan(d_h, cert.degree)
    c = block or (min(CAUSAL_BLOCK, block_size(r, n)) if causal else block_size(r, n))
    st = HeadState(W_Q, W_K, W_V, W_Q @ W_K.T, beta, causal, q, k, h, R, cert, plan,
                   feature_scale(plan, cert.coeffs, beta), c)  # fmt: skip
    work.add(d * d_h * d)  # W = W_Q W_K^T
    w = 1 + d_h
    Y = np.empty((n, w))
    buf = np.empty((r, c))
    if not causal:
        # pass 1: V_0^T [1 | h | X | h ./ X]; the last d + d_h d columns are V_1^T [X | h ./ X] of the backward
        state = np.zeros((r, w + d + d_h * d))  # (r, 1 + d_h + d + d_h d)
        for t0, t1 in blocks(n, c):
            Hb = np.concatenate([np.ones((t1 - t0, 1)), h[t0:t1], _value_side(X[t0:t1], h[t0:t1], work)], axis=1)
            state += mm(work, _features(k[t0:t1], st, buf, work), Hb)  # (r, 1 + d_h + d + d_h d)
        st.SV = state[:, w:].copy()  # (r, d + d_h d)
        Sa = st.a[:, None] * state[:, :w]  # (r, 1 + d_h)
        for t0, t1 in blocks(n, c):
            Y[t0:t1] = mm(work, _features(q[t0:t1], st, buf, work).T, Sa)  # (c, 1 + d_h)
    else:
        H = np.concatenate([np.ones((n, 1)), h], axis=1)  # (n, 1 + d_h)
        state = np.zeros((r, w))  # (r, 1 + d_h)  V0^T [1 | h] over earlier blocks
        for t0, t1 in blocks(n, c):
            Y[t0:t1] = mm(work, _features(q[t0:t1], st, buf, work).T, st.a[:, None] * state)  # (c, 1 + d_h)
            Y[t0:t1] += mm(work, _kernel_block(st, t0, t1, work), H[t0:t1])  # diagonal block, exact kernel
            state += mm(work, _features(k[t0:t1], st, buf, work), H[t0:t1])
    st.D = Y[:, 0].copy()  # (n,)
    if not (st.D > 0).all():
        raise ValueError(
            f"X: the low-rank normalizer D~ is not positive (min {st.D.min():g}): the polynomial's certified "
            f"relative error {cert.err:.3g} at degree {cert.degree} on the logit range R = {R:.4g} is too large; "
            "expected a smaller eps, a larger degree or smaller weights"
        )
    st.s = Y[:, 1:] / st.D[:, None]  # (n, d_h)
    if exact_forward:
        st.exact_forward = True
        st.dense = _dense_head(X, W_Q, W_K, W_V, beta, causal, work)
        st.s = st.dense.s
    st.madds = work.madds
    return st


@dataclass
class HeadGradsFast:
    terms: dict[str, np.ndarray]  # D2, D4, D6, D7, D8, each (n, d)
    dX: np.ndarray  # (n, d)
    dW: np.ndarray  # (d, d)
    dW_V: np.ndarray  # (d, d_h)
    madds: int = 0  # counted multiply-adds (fastpath.work)


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


def _exact_head_backward(st: HeadState, G: np.ndarray) -> HeadGradsFast:
    """Method "exact": :func:`reference.attention.head_vjp` on the dense head (one home), contractions counted."""
    n, d = st.dense.X.shape
    d_h = G.shape[1]
    hg = ref_attention.head_vjp(G, st.dense)
    # q = G h^T, p1, p2; XW, XW^T; f^T G, (.)W_V^T; p1 XW^T, p2 XW^T, p1^T XW, p2^T XW; dX sum;
    # P Xc, X^T(.); f X, (.)^T G
    madds = n * n * d_h + 2 * n * n + 2 * n * d * d + n * n * d_h + n * d_h * d + 4 * n * n * d + 4 * n * d
    madds += n * n * d + d * n * d + n * n * d + d * n * d_h
    return HeadGradsFast(hg.terms, hg.dX, hg.dW, hg.dW_V, madds)


def head_backward(st: HeadState, X: np.ndarray, G: np.ndarray) -> HeadGradsFast:
    """Corrected fast backward of one head (module docstring). X (n, d); G (n, d_h) = dL/ds for this head."""
    if st.method == "exact":
        return _exact_head_backward(st, G)
    n, d = X.shape
    d_h = G.shape[1]
    work = Work()
    r, c, a, beta, D = st.rank, st.block, st.a, st.beta, st.D
    K = (G * st.s).sum(axis=1)  # (n,)  K~ = (G . s~) 1  (Def. D.16 with the fast s)
    work.add(n * d_h)
    buf = np.empty((r, c))
    wV, wU = d + d_h * d, d_h + d + d_h * d

    def HV(t0, t1):  # (c, d + d_h d)  [X | h ./ X]
        return _value_side(X[t0:t1], st.h[t0:t1], work)

    def HU(t0, t1):  # (c, d_h + d + d_h d)  [G | K X | G ./ X]
        Xb = X[t0:t1]
        work.add((t1 - t0) * d)
        return np.concatenate([G[t0:t1], K[t0:t1, None] * Xb, _kron(G[t0:t1], Xb, work)], axis=1)

    def feats(Z, t0, t1):
        return _features(Z[t0:t1], st, buf, work)

    if not st.causal and st.method != "clustered":
        SV, SU = st.SV, np.zeros((r, wU))  # V-side left products: accumulated by the forward pass
        for t0, t1 in blocks(n, c):  # pass 1: U-side left products
            SU += mm(work, feats(st.q, t0, t1), HU(t0, t1) / D[t0:t1, None])  # (r, wU)
        SU *= a[:, None]
        V1X, V3X = SV[:, :d], SV[:, d:].reshape(r * d_h, d)  # (r, d), (r d_h, d)
        U1G, U4X = SU[:, :d_h], SU[:, d_h : d_h + d]  # (r, d_h), (r, d)
        U3X = SU[:, d_h + d :].reshape(r * d_h, d)  # (r d_h, d)
        M8 = mm(work, U1G, st.W_V.T)  # (r, d)  Lemma E.6 order, corrected
        M4 = mm(work, V3X, st.W.T).reshape(r, d_h * d)  # (r, d_h d)  Lemma E.10, corrected (W^T)
        M2 = mm(work, V1X, st.W.T)  # (r, d)  Lemma E.8, corrected (W^T)
        M7 = mm(work, U3X, st.W).reshape(r, d_h * d)  # (r, d_h d)  Lemma E.5, corrected (p1^T, W)
        M6 = mm(work, U4X, st.W)  # (r, d)  Lemma E.3, corrected (p2^T, W)
        dW = beta * (mm(work, U3X.T, V3X) - mm(work, U4X.T, V1X))  # (d, d)  Lemma F.5 with the p2 part
        dW_V = mm(work, V1X.T, U1G)  # (d, d_h)  Lemma G.4 corrected: (X^T V1)(U1^T G)
        MU = a[:, None] * np.concatenate([M4, M2], axis=1)  # (r, d_h d + d)
        MV = np.concatenate([M8, M7, M6], axis=1)  # (r, 2 d + d_h d)
        T = {t: np.empty((n, d)) for t in TERM_NAMES}
        for t0, t1 in blocks(n, c):  # pass 2: right products
            RU = mm(work, feats(st.q, t0, t1).T, MU) / D[t0:t1, None]  # (c, d_h d + d)
            RV = mm(work, feats(st.k, t0, t1).T, MV)  # (c, 2 d + d_h d)
            T["D4"][t0:t1] = beta * _contract(G[t0:t1], RU[:, : d_h * d], d, work)
            T["D2"][t0:t1] = -beta * K[t0:t1, None] * RU[:, d_h * d :]
            T["D8"][t0:t1] = RV[:, :d]
            T["D7"][t0:t1] = beta * _contract(st.h[t0:t1], RV[:, d : d + d_h * d], d, work)
            T["D6"][t0:t1] = -beta * RV[:, d + d_h * d :]
    elif st.method == "clustered":  # the same two products with fastpath.clustered's operator
        Y, Z = st.op.products(HV(0, n), HU(0, n), work)  # (n, wV), (n, wU)
    else:
        Y, Z = np.empty((n, wV)), np.empty((n, wU))
        state = np.zeros((r, wV))
        for t0, t1 in blocks(n, c):  # prefix sums (Lemma I.3/I.4): f [X | h ./ X]
            fb = _kernel_block(st, t0, t1, work) / D[t0:t1, None]  # (c, c)  diagonal block of f~
            Hb = HV(t0, t1)
            Y[t0:t1] = mm(work, feats(st.q, t0, t1).T, a[:, None] * state) / D[t0:t1, None] + mm(work, fb, Hb)
            state += mm(work, feats(st.k, t0, t1), Hb)
        state = np.zeros((r, wU))
        for t0, t1 in blocks(n, c, reverse=True):  # suffix sums (spec §2.7): f^T [G | K X | G ./ X]
            fb = _kernel_block(st, t0, t1, work) / D[t0:t1, None]  # (c, c)
            Hb = HU(t0, t1)
            Z[t0:t1] = mm(work, feats(st.k, t0, t1).T, a[:, None] * state) + mm(work, fb.T, Hb)
            state += mm(work, feats(st.q, t0, t1), Hb / D[t0:t1, None])
    if st.causal or st.method == "clustered":
        fX = Y[:, :d]  # (n, d)
        p1X = _contract(G, Y[:, d:], d, work)  # (n, d)  (f . G h^T) X      Lemma I.8 Part 2, corrected
        fTG, fTKX = Z[:, :d_h], Z[:, d_h : d_h + d]  # (n, d_h), (n, d)
        p1TX = _contract(st.h, Z[:, d_h + d :], d, work)  # (n, d)  (f . G h^T)^T X   Lemma I.8 Part 1, corrected
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
    return HeadGradsFast(T, dX, dW, dW_V, work.madds)


def attention_forward(X, W_Q, W_K, W_V, *, beta: float, causal: bool, heads: int, eps: float, kind: str,
                      budget: int, block: int | None = None, degree: int | None = None, method: str = "lowrank",
                      exact_forward: bool = False) -> tuple[list[HeadState], np.ndarray]:  # fmt: skip
    """Multi-head fast forward (Def. K.1): heads on column blocks; returns (head states, Attn (n, d))."""
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


def attention_backward(states: list[HeadState], X: np.ndarray, G: np.ndarray) -> AttentionGradsFast:
    """Multi-head fast backward (Lemma K.2); dL/dW_Q = dL/dW W_K and dL/dW_K = (dL/dW)^T W_Q per head (#26)."""
    d_h = G.shape[1] // len(states)
    hg = [head_backward(st, X, G[:, l * d_h : (l + 1) * d_h]) for l, st in enumerate(states)]
    dW_Q = np.concatenate([g.dW @ st.W_K for g, st in zip(hg, states, strict=True)], axis=1)  # (d, d)
    dW_K = np.concatenate([g.dW.T @ st.W_Q for g, st in zip(hg, states, strict=True)], axis=1)  # (d, d)
    dW_V = np.concatenate([g.dW_V for g in hg], axis=1)  # (d, d)
    dW = hg[0].dW if len(hg) == 1 else np.stack([g.dW for g in hg])
    terms = {t: sum(g.terms[t] for g in hg[1:]) + hg[0].terms[t] for t in TERM_NAMES}
    dX = sum(g.dX for g in hg[1:]) + hg[0].dX  # (n, d)
    K = [(G[:, l * d_h : (l + 1) * d_h] * st.s).sum(axis=1) for l, st in enumerate(states)]
    d = X.shape[1]
    madds = sum(g.madds for g in hg) + len(hg) * 2 * d * d * d_h
    return AttentionGradsFast(dX, dW_Q, dW_K, dW, dW_V, terms, K, madds)


__all__ = ["CAUSAL_BLOCK", "METHODS", "AttentionGradsFast", "HeadState", "attention_backward", "attention_forward",
           "choose_method", "head_backward", "head_forward"]  # fmt: skip
