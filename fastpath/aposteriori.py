r"""The a-posteriori certificate across layers (default): entrywise error matrices through the computed maps.

Paper: Lemmas H.2–H.4 (the reverse loop and its error), J.3 (residual), K.2 (heads); spec §2.6, §2.8, §2.10.
Lemma H.4 (spec §2.10) multiplies worst-case Lipschitz constants $C_i$ of the layers; here every error is an
(n, d) matrix $E$ with $|\tilde Y - Y| \le E$ entrywise, pushed through the *computed* maps with absolute values:

* attention (per head, :mod:`fastpath.certificate`): forward $E_{A}$ from $(\tilde X, E_X)$; backward the five
  terms, dW, dW_V from $(\tilde X, E_X, \tilde G, E_G, E_s)$, all with the low-rank magnitudes;
* the block $g(Z) = \varphi(Z W_g)$ (Lemma H.1/H.2): $E_U = E_Z|W_g|$, $E_T = \sup_{[\tilde U \pm E_U]}
  |\varphi'| \odot E_U$; backward $Y = gT \odot \varphi'(U)$ with
  $E_Y = E_{gT} \odot |\varphi'(\tilde U)| + (|\tilde{gT}| + E_{gT}) \odot \Delta\varphi'$,
  $\Delta\varphi' = \sup|\varphi''| E_U$ with the sup taken on the interval $[\tilde U \pm E_U]$ for tanh (relu: 1
  where the kink may lie in it), then
  $E_{G} = E_Y |W_g|^\top$, $E_{dW_g} = E_Z^\top|\tilde Y| + \hat Z^\top E_Y$;
* residual sums add their errors (Lemma J.3).

Each is a rigorous triangle-inequality bound in which the products of errors are *kept* (e.g. $|\tilde G||E_h| +
E_G \hat h$), so no second-order remainder is neglected; the nonlinearity $\varphi$ enters through its sup on the
whole interval, and the kernel through the exact $e^{2\sigma}$ of Step 1. Every step adds float64 rounding
($\gamma$ terms, both the fast path's and the reference's) on the computed magnitudes.

**Tightness, and its limit.** For an error known only through $|e| \le E$ entrywise, $\max_{|e| \le E} |J e|
= |J| E$ (take $e = E \odot \mathrm{sign}$ of a row of J): absolute-value propagation through the exact map is the
tightest entrywise bound there is. The measured errors are far from that worst case (their signs cancel over
tokens and through $W_g$, $W_V$), so the ratio error/bound falls by a roughly constant factor per layer: measured
(d = 4, uniform inputs, residual tanh, ``benchmarks/fastpath_bench.py`` records ``tightness``) median ratios of
$10^{-3}$ to $3 \cdot 10^{-3}$ for dX at one layer, about 10 times less per further layer, mostly from the
forward errors feeding the logits of the layers above (with ``exact_forward=True`` the backward alone loses about
2 to 5 times per layer). The a-priori bound of :mod:`fastpath.apriori` is $10^2$ (one layer) to $10^{9}$ (four
layers) times looser on the same cases. docs/certificate.md writes every step out and measures where the bound
loses (the bound of the upstream gradient grows 4 to 26 times per layer while its error does not grow).

Shape legend: n tokens, d width.
"""

from __future__ import annotations

import math

import numpy as np

from fastpath.bounds import activation_lipschitz
from fastpath.certificate import backward_bound, backward_columns, forward_bound, forward_columns, head_kernel
from fastpath.directed import TINY, own_up
from fastpath.lowrank import U_ROUND, gamma
from fastpath.work import Work
from reference.attention import TERM_NAMES

_ACT_ROUND = 4 * gamma(16) + 8 * U_ROUND  # relative rounding of one activation evaluation (fast and reference)


def dphi_sup(act: str, U: np.ndarray, E: np.ndarray) -> np.ndarray:
    r"""Entrywise $\sup |\varphi'|$ on $[\tilde U - E, \tilde U + E]$ (proved per activation; gelu and the
    constants from :func:`fastpath.bounds.activation_lipschitz`)."""
    lo = np.maximum(np.abs(U) - E, 0.0)  # smallest |x| in the interval
    hi = np.abs(U) + E  # largest |x|
    if act == "tanh":
        return _sech2_up(lo)  # sech^2 decreases in |x|
    if act == "softplus":
        return 1 / (1 + np.exp(-(U + E))) * (1 + 8 * U_ROUND)  # sigmoid increases
    if act == "cube":
        return 3 * hi * hi * (1 + 8 * U_ROUND)
    return np.full(U.shape, activation_lipschitz(act, 0.0)[0])  # identity, relu: 1; gelu: 1.129


def _sech2_up(x: np.ndarray) -> np.ndarray:
    r"""An upper bound of $\mathrm{sech}^2 x = 1 - \tanh^2 x$ for $x \ge 0$: as $1/\cosh^2 x$ (no cancellation;
    $1 - \tanh^2$ loses about $u/\mathrm{sech}^2 x$ relative, $10^{-8}$ at x = 10), moved up past the rounding and
    cosh's error (:func:`fastpath.directed.own_up`), and at least the smallest subnormal where cosh overflows."""
    with np.errstate(over="ignore"):
        return np.maximum(own_up(1 / np.cosh(x) ** 2, 3, 1), TINY)


def dphi_change(act: str, U: np.ndarray, E: np.ndarray) -> np.ndarray:
    r"""Entrywise bound of $|\varphi'(x) - \varphi'(\tilde U)|$ for $|x - \tilde U| \le E$."""
    if act == "relu":
        return (np.abs(U) <= E).astype(float)  # the kink may lie in the interval
    if act == "cube":
        return 6 * (np.abs(U) + E) * E * (1 + 8 * U_ROUND)
    if act == "tanh":
        return _tanh_d2_sup(U, E) * E
    return activation_lipschitz(act, 0.0)[1] * E


def _tanh_d2_sup(U: np.ndarray, E: np.ndarray) -> np.ndarray:
    r"""Entrywise $\sup |\tanh''|$ on $[\tilde U - E, \tilde U + E]$: $|\tanh''(x)| = g(t) = 2t(1 - t^2)$ with
    $t = \tanh|x|$ increasing in $|x|$, and g increases on $[0, 1/\sqrt3]$, decreases after; so the sup is
    $g(1/\sqrt3) = 4/(3\sqrt3)$ where $[\tanh lo, \tanh hi]$ contains $1/\sqrt3$, else g at the end nearer to it.
    The float64 tanh and g are covered by a relative $10^{-12}$ and an absolute $10^{-15}$ (|g'| <= 2, tanh to a
    few ulps), and the test against $1/\sqrt3$ by the same margin."""
    lo = np.tanh(np.maximum(np.abs(U) - E, 0.0))
    hi = np.tanh(np.abs(U) + E)
    ts = 1 / math.sqrt(3)
    near = np.where(hi < ts, hi, lo)  # below the peak: the upper end; above it: the lower end
    g = 2 * near * (1 - near * near) * (1 + 1e-12) + 1e-15
    peak = (lo <= ts * (1 + 1e-12)) & (hi >= ts * (1 - 1e-12))
    return np.minimum(np.where(peak, _TANH_PEAK, g), _TANH_PEAK)


_TANH_PEAK = activation_lipschitz("tanh", 0.0)[1]  # 4 / (3 sqrt 3), the global sup of |tanh''|


def forward_columns_fn(T: np.ndarray, E_T: np.ndarray):
    """The callback ``cert_cols`` of :func:`fastpath.layer.head_forward`: for a low-rank head (not exact-forward,
    whose forward certificate uses the dense f) with a finite Step 1, the columns of
    :func:`fastpath.certificate.forward_columns` at the layer input (T, E_T), carried by the forward's passes."""

    def cols(st):
        if st.exact_forward or st.method != "lowrank":
            return None
        with np.errstate(all="ignore"):  # a bound may overflow to inf (then refused as vacuous), never NaN
            hk = head_kernel(st, T, E_T)
            return forward_columns(st, hk) if hk.ok else None

    return cols


def forward_step(states, T, E_T, A, Z, blk, act: str, residual: bool, W_g, work: Work) -> dict:
    """Entrywise bounds of one layer's forward (module docstring). Heads whose forward carried the certificate's
    columns (``st.fused``, :func:`forward_columns_fn`) reuse their Step 1 and products; the others compute both."""
    d = T.shape[1]
    kern = [st.fused.hk if st.fused is not None else head_kernel(st, T, E_T, dense=st.exact_forward)
            for st in states]  # fmt: skip
    work.add(sum(st.fused.madds for st in states if st.fused is not None))
    if not all(hk.ok for hk in kern):  # rho >= 1 somewhere: no relative structure left, the certificate is vacuous
        inf = np.full_like(T, math.inf)
        return dict(kern=kern, E_s=None, e_in=E_T, e_attn=inf, e_inner=inf, e_U=inf, e_out=inf)
    E_s = [forward_bound(st, hk, work, st.fused) for st, hk in zip(states, kern, strict=True)]  # (n, d_h) each
    E_A = E_s[0] if len(E_s) == 1 else np.concatenate(E_s, axis=1)  # (n, d); one head: its own array, not a copy
    for st in states:  # the carried columns and products are used: the trace keeps only their Step 1 and info
        if st.fused is not None:
            st.fused.Y = st.fused.FY = None
    if residual:
        E_inner = own_up(E_T + E_A + 2 * U_ROUND * np.abs(Z), 8)  # Step 0': the certificate's own arithmetic
    else:
        E_inner = E_A
    E_U, E_out = np.zeros_like(T), E_inner
    if blk is not None:
        Wa = np.abs(W_g)
        E_U = own_up(E_inner @ Wa + 2 * gamma(d + 2) * ((np.abs(blk.Z) + E_inner) @ Wa), 2 * d + 16)
        E_g = dphi_sup(act, blk.U, E_U) * E_U + _ACT_ROUND * (np.abs(blk.T) + np.abs(blk.U) + E_U)
        E_out = own_up(E_inner + E_g + 2 * U_ROUND * np.abs(blk.T + Z) if residual else E_g, 32)
    # the states need the dense kernel's tau only for the forward; the backward uses the low-rank one
    back = [head_kernel(st, T, E_T) if st.exact_forward else hk for st, hk in zip(states, kern, strict=True)]
    # E_s: each head's own bound, the column block of E_A (one head: E_A itself)
    return dict(kern=back, E_s=E_s, e_in=E_T, e_attn=E_A, e_inner=E_inner, e_U=E_U, e_out=E_out)


def backward_prepare(c, L, act: str, residual: bool, gT, E_gT, G, dphi) -> dict | None:
    """What one layer's backward certificate needs before the fast backward runs: ``E_G`` (the bound of the
    upstream gradient of the attention), the block's ``dW_g`` bound, and per head the columns of
    :func:`fastpath.certificate.backward_columns` (``cols``, for :func:`fastpath.layer.attention_backward` to carry
    in its passes). None when the upstream certificate is already vacuous."""
    if c.cert["E_s"] is None or not np.isfinite(E_gT).all():
        return None
    n, d = gT.shape
    b_dWg = None
    if L.W_g is not None:
        blk, E_U, E_in = c.blk, c.cert["e_U"], c.cert["e_inner"]
        Y = gT * dphi  # (n, d)
        Ya = np.abs(Y)
        E_Y = E_gT * np.abs(dphi) + (np.abs(gT) + E_gT) * dphi_change(act, blk.U, E_U)
        E_Y = own_up(E_Y + _ACT_ROUND * (np.abs(dphi) + 1 + np.abs(blk.U)) * (np.abs(gT) + E_gT), 32)
        Wa = np.abs(L.W_g)
        E_gin = own_up(E_Y @ Wa.T + 2 * gamma(d + 2) * ((Ya + E_Y) @ Wa.T), 2 * d + 16)
        Za = np.abs(blk.Z)
        b_dWg = own_up(E_in.T @ Ya + (Za + E_in).T @ E_Y + 2 * gamma(n + 2) * ((Za + E_in).T @ (Ya + E_Y)), n + 16)
    if residual:
        E_G = own_up(E_gT + (E_gin if L.W_g is not None else 0.0) + 2 * U_ROUND * np.abs(G), 8)
    else:
        E_G = E_gin if L.W_g is not None else E_gT
    d_h = d // len(c.heads)
    cols = [backward_columns(st, hk, c.T_in, c.cert["e_in"], G[:, l * d_h : (l + 1) * d_h],
                             E_G[:, l * d_h : (l + 1) * d_h], c.cert["E_s"][l])
            for l, (st, hk) in enumerate(zip(c.heads, c.cert["kern"], strict=True))]  # fmt: skip
    return dict(E_G=E_G, dW_g=b_dWg, cols=cols, carry=[(f.Y, f.Z) for f in cols])


def backward_step(c, L, act: str, residual: bool, gT, E_gT, G, g_in, ag, dphi, work: Work,
                  prep: dict | None = None) -> dict:  # fmt: skip
    """Entrywise bounds of one layer's backward; returns the bound fields and the new ``E_gT``. ``prep``: the
    result of :func:`backward_prepare` whose columns ``ag`` carried (``ag.cert``); without it, computed here and
    the products formed by :func:`fastpath.apply.f_products`."""
    n, d = gT.shape
    if prep is None:
        prep = backward_prepare(c, L, act, residual, gT, E_gT, G, dphi)
    if prep is None:  # vacuous upstream: everything below is too
        inf = np.full((n, d), math.inf)
        return dict(dW_h=[np.full((d, d), math.inf)] * len(c.heads), dW_V=np.full((d, d), math.inf),
                    dW_g=None if L.W_g is None else np.full((d, d), math.inf), G=inf,
                    terms=dict.fromkeys(TERM_NAMES, inf), e_gT=inf, dT=inf)  # fmt: skip
    E_G, b_dWg, d_h = prep["E_G"], prep["dW_g"], d // len(c.heads)
    carried = ag.cert if ag.cert is not None else [None] * len(c.heads)
    for fz, FYZ in zip(prep["cols"], carried, strict=True):
        if FYZ is not None and fz.FY is None:
            fz.FY, fz.FZ = FYZ
    work.add(ag.cert_madds)
    hb = [backward_bound(st, hk, c.T_in, c.cert["e_in"], G[:, l * d_h : (l + 1) * d_h],
                         E_G[:, l * d_h : (l + 1) * d_h], c.cert["E_s"][l], work, prep["cols"][l])
          for l, (st, hk) in enumerate(zip(c.heads, c.cert["kern"], strict=True))]  # fmt: skip
    E_dX = sum(b.dX for b in hb)
    terms_b = {t: sum(b.terms[t] for b in hb) for t in TERM_NAMES}
    if len(hb) > 1:  # the sums over heads, the fast sum's rounding, and the bounds' own (Step 0')
        E_dX = own_up(E_dX + gamma(len(hb)) * sum(np.abs(t) for t in ag.terms.values()), len(hb) + 4)
        terms_b = {t: own_up(v, len(hb)) for t, v in terms_b.items()}
    b_dWV = np.concatenate([b.dW_V for b in hb], axis=1)  # (d, d)
    E_new = own_up(E_dX + E_G + 2 * U_ROUND * np.abs(ag.dX + G), 8) if residual else E_dX
    return dict(dW_h=[b.dW for b in hb], dW_V=b_dWV, dW_g=b_dWg, G=E_G, terms=terms_b, e_gT=E_new, dT=E_new)


__all__ = ["backward_prepare", "backward_step", "dphi_change", "dphi_sup", "forward_columns_fn", "forward_step"]
