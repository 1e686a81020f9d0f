r"""Algorithm 1 (ALTGrad), corrected, on the fast forward: multi-layer gradients with a certificate per result.

Paper: Algorithm 1 (#12), Theorem 4.1/4.2, Lemmas H.2–H.4, J.3–J.5, K.2; spec §2.6, §2.8–2.10. The model and
its conventions are the reference's (:mod:`reference.model`): $T_0 = X$, $T_i = g_i(\mathrm{Attn}_i(T_{i-1}))$ or,
residual, $Z_i = T_{i-1} + \mathrm{Attn}_i(T_{i-1})$, $T_i = Z_i + g_i(Z_i)$, with $g_i(Z) = \varphi(Z W_g)$.

Corrections to the printed listing (spec #12): line 14 computes all five corrected terms (E.3 included), line 19
keeps the $p_2$ part of $g_w$, line 22 is $g_v = (T^\top V_1)(U_1^\top G)$; the forward activations are the fast
ones (spec W10), and dL/dW_Q = g_w W_K, dL/dW_K = g_w^T W_Q (#26).

**Certificate** (spec §2.10 made explicit, plus the forward pass): scalar entrywise error bounds are carried
through the layers. Forward: $e_{T_0} = 0$; layer i gets input error $e_{T_{i-1}}$, attention output error
$e_{A_i}$ from :func:`fastpath.bounds.forward_bound` (which already contains the propagated input error through
$\sigma$ and $e_h$), and through $g_i$: $e_{U} = e\,\max_c\|W_{g,:c}\|_1$, $e_{T} = \sup|\varphi'|\,e_U$.
Backward: $e_{gT_m} = 0$; through $g_i$ (Lemma H.2), with $Y = gT \odot \varphi'(U)$,
$e_Y = e_{gT}\sup|\varphi'| + (\|gT\|_\infty + e_{gT}) \sup|\varphi''| e_U$ (relu: entries with $|U| \le e_U$ may
flip, and get $|gT| + e_{gT}$), $e_G = e_Y \max_c\|W_{g,c:}\|_1$; attention (Lemma E.11 generalised,
:func:`fastpath.bounds.backward_bound`) with $(e_X, e_G) = (e_{T_{i-1}}, e_{G_i})$; residual adds the skip path
(Lemma J.3). Every bound includes a float64 rounding term.

Shape legend: n tokens, d width, m layers, h heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fastpath.bounds import (
    HeadRho,
    activation_lipschitz,
    backward_bound,
    block_round,
    forward_bound,
    head_rho,
    matmul_bound,
)
from fastpath.layer import METHODS, HeadState, attention_backward, attention_forward
from fastpath.lowrank import MEMORY_BUDGET
from fastpath.poly import KINDS
from reference import validate as v
from reference.attention import TERM_NAMES
from reference.backend import FLOAT64
from reference.block import ACTIVATIONS
from reference.model import Grads, Layer, LayerGrads, _check_layers, resolve_beta


@dataclass
class FastLayerCache:
    T_in: np.ndarray  # (n, d) T~_{i-1}
    heads: list[HeadState]
    rho: list[HeadRho]
    attn: np.ndarray  # (n, d) Attn~_i
    Z: np.ndarray | None  # (n, d) residual stream (residual only)
    U: np.ndarray | None  # (n, d) pre-activation (Z or Attn) W_g, when the layer has W_g
    T_out: np.ndarray  # (n, d)
    e_in: float  # bound of |T~_{i-1} - T_{i-1}|
    e_attn: float  # bound of |Attn~_i - Attn_i|
    e_inner: float  # bound of the g-block input error (Z or Attn)
    e_U: float  # bound of |U~ - U|
    e_out: float  # bound of |T~_i - T_i|


@dataclass
class FastTrace:
    """The fast forward's result. ``T``, ``attn`` as in the reference; ``bound_T``/``bound_attn`` their certificates."""

    X: np.ndarray
    layers: list[Layer]
    beta: float
    causal: bool
    heads: int
    residual: bool
    activation: str
    eps: float
    poly: str
    caches: list[FastLayerCache]
    certificate: str = "a-priori"
    allow_vacuous: bool = False
    madds: int = 0  # counted multiply-adds of the forward (fastpath.work), certificate excluded

    @property
    def method(self) -> str:
        """``"exact"`` or ``"lowrank"`` when every head of every layer used it, else ``"mixed"``."""
        ms = {st.method for c in self.caches for st in c.heads}
        return ms.pop() if len(ms) == 1 else "mixed"

    @property
    def T(self) -> list[np.ndarray]:
        return [self.X] + [c.T_out for c in self.caches]

    @property
    def attn(self) -> list[np.ndarray]:
        return [c.attn for c in self.caches]

    @property
    def output(self) -> np.ndarray:
        return self.caches[-1].T_out

    @property
    def bound_T(self) -> list[np.ndarray]:
        """Entrywise bounds of |T~_i - T_i|, i = 0..m (T_0 = X is exact)."""
        return [np.zeros_like(self.X)] + [np.full(self.X.shape, c.e_out) for c in self.caches]

    @property
    def bound_attn(self) -> list[np.ndarray]:
        return [np.full(self.X.shape, c.e_attn) for c in self.caches]

    @property
    def degree(self) -> int:
        """Largest polynomial degree over layers and heads."""
        return max(st.cert.degree for c in self.caches for st in c.heads)

    @property
    def rank(self) -> int:
        """Largest rank C(d_h + g, g) over layers and heads."""
        return max(st.rank for c in self.caches for st in c.heads)

    @property
    def R(self) -> float:
        """Largest logit range R over layers and heads (before rounding up to the certificate grid)."""
        return max(st.R for c in self.caches for st in c.heads)

    @property
    def cert_err(self) -> float:
        """Largest certified relative error of the polynomials used."""
        return max(st.cert.err for c in self.caches for st in c.heads)


@dataclass
class FastGrads(Grads):
    """The reference's :class:`reference.model.Grads` plus ``bound`` (a Grads of entrywise bounds, same fields) and
    ``madds``, the counted multiply-adds of the backward's contractions (certificate excluded)."""

    bound: Grads | None = None
    madds: int = 0


def _eps(eps) -> float:
    v.real("eps", eps)
    eps = float(eps)
    if not (0 < eps < 1):
        raise ValueError(f"eps: expected a number in (0, 1), got {eps!r}")
    return eps


CERTIFICATES = ("a-priori",)  # "a-posteriori" lands with issue 10


def _owned(a: np.ndarray | None) -> np.ndarray | None:
    """A read-only private copy: the trace owns its data, so mutating the caller's arrays cannot change backward."""
    if a is None:
        return None
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


def forward(X, layers, eps=1e-8, beta=None, causal=False, heads=1, residual=False, activation="identity", *,
            poly="chebyshev", memory_budget=MEMORY_BUDGET, block=None, degree=None, method="auto",
            exact_forward=False, certificate="a-priori", allow_vacuous=False) -> FastTrace:  # fmt: skip
    r"""Fast forward of the m-layer model (Def. 1.3, J.1–J.2, K.1) with certified low-rank attention (#13, I.1).

    Args are those of :func:`reference.forward` plus

    * ``eps``: target relative error of the polynomial (Lemma I.1); validated always, used to choose the degree
      only when ``degree`` is None;
    * ``degree``: fix the polynomial degree g (then its error is certified, ``trace.cert_err``, not targeted);
    * ``poly``: ``"chebyshev"`` or ``"taylor"``;
    * ``method``: ``"lowrank"`` (polynomial path, forced), ``"exact"`` (dense kernel, certificate = float64
      rounding only) or ``"auto"``: exact when the rank is not below n (:func:`fastpath.layer.choose_method`);
    * ``exact_forward``: the layer outputs are the exact (dense) attention while the low-rank factors are still
      built and used by :func:`backward` (separates forward- from backward-induced error, spec W10);
    * ``certificate``: ``"a-posteriori"`` (computed magnitudes) or ``"a-priori"`` (spec §2.10 constants);
    * ``allow_vacuous``: return certificates that are infinite or vacuous (bound >= scale of the field) instead
      of refusing them (for experiments);
    * ``memory_budget`` (bytes; a rank needing more is refused with a ValueError naming R, eps, degree, rank and
      the budget) and ``block`` (tokens per streamed block; None = auto).

    The trace keeps read-only copies of X and the weights.
    """
    X = _owned(v.matrix("X", X, (None, None)))
    n, d = X.shape
    eps = _eps(eps)
    method = v.choice("method", method, METHODS)
    certificate = v.choice("certificate", certificate, CERTIFICATES)
    exact_forward, allow_vacuous = v.flag("exact_forward", exact_forward), v.flag("allow_vacuous", allow_vacuous)
    if degree is not None and (isinstance(degree, bool) or not isinstance(degree, int | np.integer) or degree < 0):
        raise ValueError(f"degree: expected None or an integer >= 0, got {degree!r}")
    degree = None if degree is None else int(degree)
    heads = v.positive_int("heads", heads)
    if d % heads:
        raise ValueError(f"heads: expected a divisor of d = {d}, got {heads}")
    causal, residual = v.flag("causal", causal), v.flag("residual", residual)
    act_name = v.choice("activation", activation, tuple(ACTIVATIONS))
    act = ACTIVATIONS[act_name]
    poly = v.choice("poly", poly, KINDS)
    memory_budget = v.positive_int("memory_budget", memory_budget)
    if block is not None:
        block = v.positive_int("block", block)
    layers = [Layer(*(_owned(getattr(L, k)) for k in ("W_Q", "W_K", "W_V", "W_g")))
              for L in _check_layers(layers, d, FLOAT64)]  # fmt: skip
    beta = float(resolve_beta(beta, d, heads, FLOAT64))
    T, e_T = X, 0.0
    caches = []
    madds = 0
    for L in layers:
        states, A = attention_forward(T, L.W_Q, L.W_K, L.W_V, beta=beta, causal=causal, heads=heads, eps=eps,
                                      kind=poly, budget=memory_budget, block=block, degree=degree, method=method,
                                      exact_forward=exact_forward)  # fmt: skip
        madds += sum(st.madds for st in states)
        rhos = [head_rho(st, T, e_T) for st in states]
        e_A = max(forward_bound(st, hr, e_T) for st, hr in zip(states, rhos, strict=True))
        Z = T + A if residual else None  # (n, d)
        inner, e_inner = (Z, e_T + e_A + block_round(float(np.abs(Z).max()), 2)) if residual else (A, e_A)
        U, e_U = None, 0.0
        if L.W_g is not None:
            U = inner @ L.W_g  # (n, d)
            madds += n * d * d
            e_U = e_inner * float(np.abs(L.W_g).sum(axis=0).max())
            e_U += block_round(float((np.abs(inner) @ np.abs(L.W_g)).max()), d)
            M = float(np.abs(U).max()) + e_U
            Tg = act.phi(U)  # (n, d)
            e_g = activation_lipschitz(act_name, M)[0] * e_U + block_round(float(np.abs(Tg).max()) + M, 8)
            T_out, e_out = (Z + Tg, e_inner + e_g) if residual else (Tg, e_g)
        else:
            T_out, e_out = inner, e_inner
        caches.append(FastLayerCache(T, states, rhos, A, Z, U, T_out, e_T, e_A, e_inner, e_U, e_out))
        T, e_T = T_out, e_out
    return FastTrace(X, layers, beta, causal, heads, residual, act_name, eps, poly, caches, certificate,
                     allow_vacuous, madds)  # fmt: skip


def _g_backward(gT, e_gT: float, c: FastLayerCache, W_g, act_name: str):
    """Lemma H.2 with its error transfer: returns (dL/d inner, its bound, dL/dW_g, its (d, d) bound)."""
    act = ACTIVATIONS[act_name]
    n, d = gT.shape
    U, e_U = c.U, c.e_U
    M = float(np.abs(U).max()) + e_U
    L1, L2 = activation_lipschitz(act_name, M)
    dphi = act.dphi(U)  # (n, d)
    Y = gT * dphi  # (n, d)
    gmax = float(np.abs(gT).max())
    if math.isinf(L2):  # relu: phi' in {0, 1} may flip where |U~| <= e_U
        flip = np.abs(U) <= e_U
        e_Y = e_gT * L1 + (float(np.abs(gT[flip]).max()) + e_gT if flip.any() else 0.0)
    else:
        e_Y = e_gT * L1 + (gmax + e_gT) * L2 * e_U
    e_Y += block_round(float(np.abs(Y).max()), 4)
    g_in = Y @ W_g.T  # (n, d)
    e_in = e_Y * float(np.abs(W_g).sum(axis=1).max()) + block_round(float((np.abs(Y) @ np.abs(W_g).T).max()), d)
    inner = c.Z if c.Z is not None else c.attn
    dW_g = inner.T @ Y  # (d, d)
    Ia, Ya = np.abs(inner), np.abs(Y)
    e_dWg = c.e_inner * Ya.sum(axis=0)[None, :] + (Ia.sum(axis=0)[:, None] + n * c.e_inner) * e_Y
    e_dWg = e_dWg + block_round(1.0, n) * ((Ia + c.e_inner).T @ (Ya + e_Y))  # (d, d)
    return g_in, e_in, dW_g, e_dWg


def backward(trace: FastTrace, dL_dout) -> FastGrads:
    r"""Corrected ALTGrad (Algorithm 1, MultiGrad): one reverse loop over layers, fast per-layer gradients.

    Returns the reference's :class:`reference.model.Grads` fields (dX, dT, layers with dW_Q, dW_K, dW, dW_V, dW_g,
    G, terms) and ``bound``: a Grads of entrywise bounds on |fast - exact| for every one of them.
    """
    if not isinstance(trace, FastTrace):
        raise TypeError(f"trace: expected a FastTrace from fastpath.forward, got {type(trace).__name__}")
    n, d = trace.X.shape
    gT = v.matrix("dL_dout", dL_dout, (n, d))
    e_gT = 0.0
    dT, bT = [gT], [np.zeros((n, d))]
    lg, lb = [], []
    madds = 0
    for i in reversed(range(len(trace.layers))):
        c, L = trace.caches[i], trace.layers[i]
        dW_g = b_dWg = None
        if L.W_g is not None:
            g_in, e_gin, dW_g, b_dWg = _g_backward(gT, e_gT, c, L.W_g, trace.activation)
        else:
            g_in, e_gin = np.zeros_like(gT), 0.0
        if trace.residual:
            G, e_G = gT + g_in, e_gT + e_gin + block_round(float(np.abs(gT).max()), 2)
        else:
            G, e_G = (g_in, e_gin) if L.W_g is not None else (gT, e_gT)
        ag = attention_backward(c.heads, c.T_in, G)
        madds += ag.madds + (2 * n * d * d if L.W_g is not None else 0)
        d_h = d // len(c.heads)
        hb = [backward_bound(st, hr, c.T_in, G[:, l * d_h : (l + 1) * d_h], c.e_in, e_G)
              for l, (st, hr) in enumerate(zip(c.heads, c.rho, strict=True))]  # fmt: skip
        e_dX = sum(b.dX for b in hb)
        terms_b = {t: np.full((n, d), sum(b.terms[t] for b in hb)) for t in TERM_NAMES}
        b_dW_h = [b.dW for b in hb]
        b_dW = b_dW_h[0] if len(hb) == 1 else np.stack(b_dW_h)
        dWh = [ag.dW] if len(hb) == 1 else list(ag.dW)
        b_dWQ = np.concatenate([matmul_bound(B, st.W_K, np.abs(w) + B)
                                for B, st, w in zip(b_dW_h, c.heads, dWh, strict=True)], axis=1)  # fmt: skip
        b_dWK = np.concatenate([matmul_bound(B.T, st.W_Q, np.abs(w.T) + B.T)
                                for B, st, w in zip(b_dW_h, c.heads, dWh, strict=True)], axis=1)  # fmt: skip
        b_dWV = np.concatenate([b.dW_V for b in hb], axis=1)  # (d, d)
        if trace.residual:
            gT, e_gT = ag.dX + G, e_dX + e_G + block_round(float(np.abs(ag.dX).max() + np.abs(G).max()), 6)
        else:
            gT, e_gT = ag.dX, e_dX
        dT.append(gT)
        bT.append(np.full((n, d), e_gT))
        lg.append(LayerGrads(ag.dW_Q, ag.dW_K, ag.dW, ag.dW_V, dW_g, G, ag.terms))
        lb.append(LayerGrads(b_dWQ, b_dWK, b_dW, b_dWV, b_dWg, np.full((n, d), e_G), terms_b))
    dT.reverse()
    bT.reverse()
    lg.reverse()
    lb.reverse()
    return FastGrads(dT[0], dT, lg, bound=Grads(bT[0], bT, lb), madds=madds)


__all__ = ["CERTIFICATES", "FastGrads", "FastLayerCache", "FastTrace", "backward", "forward"]
