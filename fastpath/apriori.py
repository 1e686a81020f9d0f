r"""The a-priori certificate across layers (``certificate="a-priori"``): scalar bounds, spec §2.10 made explicit.

Paper: Lemmas H.2–H.4, J.3 (propagation); spec §2.6, §2.8, §2.10 (the recursion $e_{i-1} \le \delta_i + C_i e_i$),
with the per-head constants of :mod:`fastpath.bounds` (column sums $c_f$ per spec §0.5 item 2 under the mask).
Scalar entrywise error bounds are carried through the layers. Forward: $e_{T_0} = 0$; layer i gets input error
$e_{T_{i-1}}$, attention output error $e_{A_i}$ from :func:`fastpath.bounds.forward_bound` (which already contains
the propagated input error through $\sigma$ and $e_h$), and through $g_i$: $e_{U} = e\,\max_c\|W_{g,:c}\|_1$,
$e_{T} = \sup|\varphi'|\,e_U$. Backward: $e_{gT_m} = 0$; through $g_i$ (Lemma H.2), with $Y = gT \odot
\varphi'(U)$, $e_Y = e_{gT}\sup|\varphi'| + (\|gT\|_\infty + e_{gT}) \sup|\varphi''| e_U$ (relu: entries with
$|U| \le e_U$ may flip, and get $|gT| + e_{gT}$), $e_G = e_Y \max_c\|W_{g,c:}\|_1$; attention (Lemma E.11
generalised, :func:`fastpath.bounds.backward_bound`) with $(e_X, e_G) = (e_{T_{i-1}}, e_{G_i})$; residual adds the
skip path (Lemma J.3). Every bound includes a float64 rounding term. This is the paper's style of argument
(products of worst-case constants), kept because it is the paper's claim; :mod:`fastpath.aposteriori` is the
informative default.

Shape legend: n tokens, d width, d_h head width.
"""

from __future__ import annotations

import math

import numpy as np

from fastpath.bounds import (
    activation_lipschitz,
    backward_bound,
    block_round,
    forward_bound,
    head_rho,
)
from fastpath.directed import own_up
from reference.attention import TERM_NAMES


def forward_step(states, T, e_T: float, A, Z, blk, act_name: str, residual: bool, W_g) -> dict:
    """Scalar bounds of one layer's forward: attention, inner (Z or Attn), pre-activation U and output."""
    d = T.shape[1]
    rhos = [head_rho(st, T, e_T) for st in states]
    e_A = max(forward_bound(st, hr, e_T) for st, hr in zip(states, rhos, strict=True))
    inner = Z if residual else A
    e_inner = own_up(e_T + e_A + block_round(float(np.abs(Z).max()), 2), 8) if residual else e_A  # Step 0'
    e_U, e_out = 0.0, e_inner
    if blk is not None:
        e_U = e_inner * float(np.abs(W_g).sum(axis=0).max())
        e_U = own_up(e_U + block_round(float((np.abs(inner) @ np.abs(W_g)).max()), d), 2 * d + 16)
        M = float(np.abs(blk.U).max()) + e_U
        e_g = activation_lipschitz(act_name, M)[0] * e_U + block_round(float(np.abs(blk.T).max()) + M, 8)
        e_out = own_up(e_inner + e_g if residual else e_g, 32)
    return dict(rho=rhos, e_in=e_T, e_attn=e_A, e_inner=e_inner, e_U=e_U, e_out=e_out)


def g_backward_bound(gT, e_gT: float, c, W_g, act_name: str, dphi: np.ndarray):
    """Lemma H.2 error transfer: (bound of dL/d inner, (d, d) bound of dL/dW_g)."""
    n, d = gT.shape
    U, e_U = c.blk.U, c.cert["e_U"]
    M = float(np.abs(U).max()) + e_U
    L1, L2 = activation_lipschitz(act_name, M)
    Y = gT * dphi  # (n, d)
    gmax = float(np.abs(gT).max())
    if math.isinf(L2):  # relu: phi' in {0, 1} may flip where |U~| <= e_U
        flip = np.abs(U) <= e_U
        e_Y = e_gT * L1 + (float(np.abs(gT[flip]).max()) + e_gT if flip.any() else 0.0)
    else:
        e_Y = e_gT * L1 + (gmax + e_gT) * L2 * e_U
    e_Y = own_up(e_Y + block_round(float(np.abs(Y).max()), 4), 32)
    e_in = e_Y * float(np.abs(W_g).sum(axis=1).max()) + block_round(float((np.abs(Y) @ np.abs(W_g).T).max()), d)
    e_in = own_up(e_in, 2 * d + 16)
    Ia, Ya = np.abs(c.blk.Z), np.abs(Y)
    e_inner = c.cert["e_inner"]
    e_dWg = e_inner * Ya.sum(axis=0)[None, :] + (Ia.sum(axis=0)[:, None] + n * e_inner) * e_Y
    e_dWg = own_up(e_dWg + block_round(1.0, n) * ((Ia + e_inner).T @ (Ya + e_Y)), n + 16)  # (d, d)
    return e_in, e_dWg


def backward_step(c, L, act_name: str, residual: bool, gT, e_gT: float, G, g_in, ag, dphi) -> dict:
    """Scalar bounds of one layer's backward; returns the bound fields and the new ``e_gT``."""
    n, d = gT.shape
    b_dWg = None
    if L.W_g is not None:
        e_gin, b_dWg = g_backward_bound(gT, e_gT, c, L.W_g, act_name, dphi)
    else:
        e_gin = 0.0
    if residual:
        e_G = own_up(e_gT + e_gin + block_round(float(np.abs(gT).max()), 2), 8)
    else:
        e_G = e_gin if L.W_g is not None else e_gT
    d_h = d // len(c.heads)
    hb = [backward_bound(st, hr, c.T_in, G[:, l * d_h : (l + 1) * d_h], c.cert["e_in"], e_G)
          for l, (st, hr) in enumerate(zip(c.heads, c.cert["rho"], strict=True))]  # fmt: skip
    e_dX = own_up(sum(b.dX for b in hb), len(hb))  # Step 0': the sum over heads
    terms_b = {t: np.full((n, d), own_up(sum(b.terms[t] for b in hb), len(hb))) for t in TERM_NAMES}
    b_dW_h = [b.dW for b in hb]
    b_dWV = np.concatenate([b.dW_V for b in hb], axis=1)  # (d, d)
    if residual:
        e_new = own_up(e_dX + e_G + block_round(float(np.abs(ag.dX).max() + np.abs(G).max()), 6), 8)
    else:
        e_new = e_dX
    return dict(dW_h=b_dW_h, dW_V=b_dWV, dW_g=b_dWg, G=np.full((n, d), e_G), terms=terms_b, e_gT=e_new,
                dT=np.full((n, d), e_new))  # fmt: skip


__all__ = ["backward_step", "forward_step", "g_backward_bound"]
