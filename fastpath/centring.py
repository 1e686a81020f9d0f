r"""Exact re-centring as the layer carries it: the polynomial covers $\beta (q - a)\cdot(k - c)$, not $\beta q\cdot k$.

Issue 14 item 2. For any centres $a, c \in \mathbb R^{d_h}$,

.. math::
    e^{\beta q_i \cdot k_j} = e^{\beta q_i \cdot c}\; e^{\beta (q_i - a)\cdot(k_j - c)}\; e^{\beta a \cdot k_j}\;
    e^{-\beta a \cdot c},

the first factor depends on the query only and cancels in the softmax normaliser, the last is a constant, and the
per-key factor moves to the value side exactly: with $B_{ij} = e^{\beta (q_i - a)\cdot(k_j - c)}$ and
$w_j = e^{\beta a \cdot k_j - m}$ ($m = \max_l \beta a\cdot k_l$, so $0 < w_j \le 1$),

.. math::
    f_{ij} = \frac{B_{ij} w_j}{\sum_l B_{il} w_l}.

A polynomial with entrywise relative error $\varepsilon$ on B therefore gives $\tilde A_{ij} = P(\cdot) w_j$ with
the same relative error on $A_{ij}$ up to a row constant, and the certificate of spec §2.5 (Step 1 of
:mod:`fastpath.certificate`) holds unchanged with the polynomial certified on the *re-centred* range
$R_c \ge \max|\beta (q_i - a)\cdot(k_j - c)|$. The centres are :func:`fastpath.recentre.centres` (the range
helper's choice among 0, the mean and the box centre, key spread capped) and $R_c$ is
:func:`fastpath.recentre.recentred_range` (rigorous for the exact and the float64 differences). The rounding
terms of the fast products scale with $\beta\sum_e|q'_e||k'_e|$, which a tight $R_c$ need not bound: they use the
Cauchy-Schwarz $R_{abs}$ below (:attr:`fastpath.head.HeadState.R_cs`). The layer folds $w$ into the key features
(row 0 of :func:`fastpath.features.monomials` is $w$ instead of 1, so every key monomial carries it at no extra
multiply) and into the exact diagonal blocks of the causal path.

**Rounding of the re-centring itself** (:attr:`Recentring.err`, folded into the kernel's relative error). With
$q' = fl(q - a)$, $k' = fl(k - c)$ (one rounding each), the logit the polynomial sees differs from
$\beta(q-a)\cdot(k-c)$ by at most $\beta(2u + u^2)\sum_e|q-a|_e|k-c|_e \le \gamma_3 R_{abs}$
($R_{abs} = \beta\max_i\|q'_i\|_2 \max_j\|k'_j\|_2$, Cauchy-Schwarz on the magnitudes). The key factor is
evaluated as $\exp(fl(fl(\beta\, fl(k_j \cdot a)) - m))$: the dot product and the scaling are off by
$\gamma_{d_h+1}\beta|a|\cdot|k_j|$, the subtraction by $u|s_j - m| \le 2u(1+\gamma_{d_h+1}) S$ with
$S = \beta\max_j |a|\cdot|k_j|$, together at most $\gamma_{d_h+4} S$; exp adds at most 2u relative, and folding
$w_j$ into the features one multiplication (u). Hence every kernel entry carries the extra relative factor
$(1+\eta)^{\pm1}$ with

.. math::
    \eta = \exp(\gamma_3 R_{abs} + \gamma_{d_h+4} S + \gamma_4) - 1 .

Weights that would underflow ($\min_j \beta a\cdot k_j - m < -700$) lose their relative accuracy; such a centring
is refused, and so is one whose own rounding term would reach $e^{1/2} - 1$ (both only possible where the uncentred
range is already beyond any certifiable degree).

Shape legend: n tokens, d_h head width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fastpath.lowrank import U_ROUND, gamma
from fastpath.ranges import cs_bound
from fastpath.recentre import centres, recentred_range

RECENTRE = (True, False, "auto")
_UNDERFLOW = -700.0  # exp(x) keeps full relative accuracy above this (float64 normal range ends near -708)


@dataclass
class Recentring:
    """The centres, the centred q and k fed to the polynomial, the key factor w, the range and the rounding term."""

    a: np.ndarray  # (d_h,) query centre
    c: np.ndarray  # (d_h,) key centre
    qc: np.ndarray  # (n, d_h) fl(q - a)
    kc: np.ndarray  # (n, d_h) fl(k - c)
    w: np.ndarray | None  # (n,) key factor exp(beta a.k_j - m), in (0, 1]; None when a = 0 (all ones)
    R: float  # bound of |beta (q_i - a).(k_j - c)|, exact and float differences: the polynomial's range
    R_abs: float  # Cauchy-Schwarz beta max|qc_i| max|kc_j| >= beta sum_e |qc_ie||kc_je|: the rounding scale
    err: float  # eta: extra relative error per kernel entry from this arithmetic


def recentre(q: np.ndarray, k: np.ndarray, beta: float) -> Recentring | None:
    r"""Centre q and k (module docstring) about :func:`fastpath.recentre.centres`, the range certified by
    :func:`fastpath.recentre.recentred_range`; None when no centring helps ((a, c) = (0, 0)), when the key factors
    would underflow or when the centring's own rounding would reach $e^{1/2} - 1$."""
    d_h = q.shape[1]
    a, c = centres(q, k, beta)  # (d_h,), (d_h,)
    if not (a.any() or c.any()):
        return None
    qc, kc = q - a, k - c  # (n, d_h) each
    R, R_abs = recentred_range(q, k, beta, a, c), cs_bound(qc, kc, beta)
    w, S = None, 0.0
    if a.any():  # a = 0: no key factor (only the per-query one, which softmax cancels)
        s = beta * (k @ a)  # (n,)
        m = float(s.max())
        if not (float(s.min()) - m > _UNDERFLOW):
            return None
        w = np.exp(s - m)  # (n,)
        S = abs(beta) * float((np.abs(k) @ np.abs(a)).max()) * (1 + gamma(d_h + 2))
    x = gamma(3) * R_abs + gamma(d_h + 4) * S + gamma(4)
    if not (x < 0.5 and math.isfinite(R)):
        return None
    return Recentring(a, c, qc, kc, w, R, R_abs, math.expm1(x))


def centred_cs_floor(q: np.ndarray, k: np.ndarray, beta: float) -> float:
    r"""A lower bound of ``cs_bound(q - q.mean(axis=0), k - k.mean(axis=0), beta)``
    (:func:`fastpath.ranges.cs_bound` on the float differences) from the row norms and a cheaper mean: O(n d_h),
    no (n, d_h) temporary, no directed rounding.

    With $m_q$ the float mean numpy returns, cs_bound returns at least $|\beta| \max_i\|\mathrm{fl}(q_i - m_q)\|
    \max_j\|\mathrm{fl}(k_j - m_k)\|$ (exact norms of its float operands). Each entry of $\mathrm{fl}(x - y)$ is
    $(x - y)(1 + \delta)$, $|\delta| \le u$ (exact where the difference is subnormal), so
    $\|\mathrm{fl}(q_i - m_q)\| \ge (1 - u)(\|q_i\| - \|m_q\|)$. The float row norms
    $\hat\nu_i = \mathrm{fl}(\sqrt{\sum_e q_{ie}^2})$ (any order) give
    $\hat\nu_i (1 - \gamma_{d_h + 2}) - \sqrt{d_h 2^{-1074}} \le \|q_i\| \le \hat\nu_i(1 + \gamma_{d_h+2}) +
    \sqrt{d_h 2^{-1074}}$ (underflow absolute). $m_q$ and the BLAS mean $\tilde m = \mathrm{fl}(1^\top q)/n$ are
    both float sums of n terms divided by n, each within $(\gamma_{n-1}(1+u) + u)\,\overline{|q_e|} \le
    \gamma_{n+1}\max_i\|q_i\|$ of the exact mean per coordinate, so $\|m_q\| \le \|\tilde m\| + 2\sqrt{d_h}
    \gamma_{n+1} \max_i\|q_i\|$. The factors $1 \mp 10^{-10}$ and the term $10^{-150}$ cover the norms' rounding
    and underflow for $d_h \le 10^5$; the final factor $1 - 10^{-10}$ covers $(1 - u)^2$ and the roundings of the
    differences and the product. Returns 0 for $d_h > 10^5$ or $n u > 10^{-3}$. q (n, d_h), k (m, d_h)."""
    d_h = q.shape[1]
    if d_h > 100_000 or max(q.shape[0], k.shape[0]) * U_ROUND > 1e-3:
        return 0.0
    lo, hi = 1 - 1e-10, 1 + 1e-10

    def radius(Z) -> float:  # lower bound of max_i ||Z_i|| - ||mean of Z||
        top = math.sqrt(float(np.einsum("ij,ij->i", Z, Z).max()))
        m = (np.ones(Z.shape[0]) @ Z) / Z.shape[0]  # (d_h,)
        mean_hi = (
            math.sqrt(float(m @ m)) * hi + 1e-150 + 2 * math.sqrt(d_h) * gamma(Z.shape[0] + 1) * (top * hi + 1e-150)
        )
        return max((top * lo - 1e-150) - mean_hi * hi, 0.0)

    return abs(float(beta)) * radius(q) * radius(k) * lo


__all__ = ["RECENTRE", "Recentring", "centred_cs_floor", "recentre"]
