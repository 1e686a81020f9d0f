r"""Exact re-centring of the logits: the polynomial covers $\beta (q - a)\cdot(k - c)$ instead of $\beta q \cdot k$.

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
$R_c \ge \max|\beta (q_i - a)\cdot(k_j - c)|$. The layer folds $w$ into the key features (row 0 of
:func:`fastpath.features.monomials` is $w$ instead of 1, so every key monomial carries it at no extra multiply)
and into the exact diagonal blocks of the causal path.

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

from fastpath.lowrank import gamma, logit_range

RECENTRE = (True, False, "auto")
_UNDERFLOW = -700.0  # exp(x) keeps full relative accuracy above this (float64 normal range ends near -708)


@dataclass
class Recentring:
    """The centres, the centred q and k fed to the polynomial, the key factor w, the range and the rounding term."""

    a: np.ndarray  # (d_h,) query centre
    c: np.ndarray  # (d_h,) key centre
    qc: np.ndarray  # (n, d_h) fl(q - a)
    kc: np.ndarray  # (n, d_h) fl(k - c)
    w: np.ndarray  # (n,) key factor exp(beta a.k_j - m), in (0, 1]
    R: float  # bound of |beta qc_i . kc_j|: the range the polynomial is certified on
    R_abs: float  # beta max_i |qc_i|_2 max_j |kc_j|_2 >= beta sum_e |qc_ie||kc_je|: the scale of rounding terms
    err: float  # eta: extra relative error per kernel entry from this arithmetic


def choose_centres(q: np.ndarray, k: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """The centres (a, c): the token means of q and k (the one place to swap in a better choice)."""
    return q.mean(axis=0), k.mean(axis=0)  # (d_h,), (d_h,)


def centred_range(qc: np.ndarray, kc: np.ndarray, beta: float) -> float:
    r"""A rigorous bound of $\max_{ij}|\beta\, qc_i \cdot kc_j|$ for the centred q, k as computed (one place to
    swap; :func:`fastpath.bounds.rounding_rel` also needs it to bound $\beta\sum_e |qc_{ie}||kc_{je}|$)."""
    return logit_range(qc, kc, beta)


def recentre(q: np.ndarray, k: np.ndarray, beta: float) -> Recentring | None:
    r"""Centre q and k (module docstring); None when the key factors would underflow."""
    d_h = q.shape[1]
    a, c = choose_centres(q, k, beta)
    qc, kc = q - a, k - c  # (n, d_h) each
    R, R_abs = centred_range(qc, kc, beta), logit_range(qc, kc, beta)
    s = beta * (k @ a)  # (n,)
    m = float(s.max())
    if not (float(s.min()) - m > _UNDERFLOW) or not math.isfinite(R):
        return None
    w = np.exp(s - m)  # (n,)
    S = abs(beta) * float((np.abs(k) @ np.abs(a)).max()) * (1 + gamma(d_h + 2))
    x = gamma(3) * R_abs + gamma(d_h + 4) * S + gamma(4)
    if not x < 0.5:  # the centring's own rounding would swamp any kernel accuracy (logits far beyond float64 use)
        return None
    err = math.expm1(x)
    return Recentring(a, c, qc, kc, w, R, R_abs, err)


__all__ = ["RECENTRE", "Recentring", "centred_range", "choose_centres", "recentre"]
