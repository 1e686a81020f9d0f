r"""Exact re-centring of the logits (issue 14 item 2): choose a, c so the polynomial covers a smaller range.

Paper: Lemma I.1 / C.13 (the range R of spec §2.5), issue 14 item 2. For any vectors a, c,

.. math::
    e^{\beta q\cdot k} = e^{\beta q\cdot c}\; e^{\beta (q-a)\cdot(k-c)}\; e^{\beta a\cdot k}\; e^{-\beta a\cdot c}:

softmax cancels the per-query factor $e^{\beta q_i \cdot c}$ (and the constant), the per-key factor
$e^{\beta a\cdot k_j}$ moves to the value side as a weight, and the polynomial only has to cover
$\max_{ij} |\beta (q_i - a)\cdot(k_j - c)|$ (:func:`recentred_range`). :func:`centres` picks (a, c); the weights'
spread is bounded by :func:`key_spread` and capped at :data:`SPREAD_MAX` (derivation there). The bounds are those of
:mod:`fastpath.ranges`; :mod:`fastpath.ranges` also re-exports these names.

Shape legend: n, m tokens (queries, keys), d head width.
"""

from __future__ import annotations

import math

import numpy as np

from fastpath.directed import down, gam, matmul_encl, overflow_safe, up
from fastpath.ranges import _check, abs_logit_bound, box_bound, cs_bound, logit_bound, tail_bound

SPREAD_MAX = 64 * math.log(2)  # largest key-weight spread centres() accepts (see key_spread)


@overflow_safe
def key_spread(k, beta, a) -> float:
    r"""Upper bound of $\max_j \beta a\cdot k_j - \min_j \beta a \cdot k_j$: the log-range of the key weights.

    Re-centring writes $e^{\beta q\cdot k} = e^{\beta q\cdot c}\, e^{\beta (q-a)\cdot(k-c)}\, e^{\beta a\cdot k}\,
    e^{-\beta a\cdot c}$; the per-key factor goes to the value side as $w_j = e^{\beta a \cdot k_j - M}$,
    $M = \max_j \beta a\cdot k_j$, so $w_j \in [e^{-s}, 1]$ with s this spread. **Threshold**
    :data:`SPREAD_MAX` $= 64 \ln 2$: then $w_j \ge 2^{-64}$, so a weight times any float64 y with
    $|y| \ge 2^{-958}$ is a normal number (relative rounding u, no underflow), and the normaliser
    $\sum_j w_j P_{ij} \ge 2^{-64} e^{-R}(1-\varepsilon)$ stays far above the subnormal range for every R the
    fast path accepts; a larger spread is refused by :func:`centres` (it returns a = 0).
    """
    k = np.asarray(k, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    if not a.any():
        return 0.0  # a = 0: every weight is 1
    ka, dka = matmul_encl(k, a[:, None])  # (m, 1) each
    hi, lo = up(ka + dka).max(), down(ka - dka).min()
    return float(up(abs(float(beta)) * float(up(hi - lo))))


@overflow_safe
def recentred_range(q, k, beta, a, c, absolute: bool = False) -> float:
    r"""Rigorous bound of $\max_{ij} |\beta (q_i - a)\cdot(k_j - c)|$, for the exact differences *and* for the
    float64 ones $\widehat{q - a}$, $\widehat{k - c}$ the fast path evaluates; with ``absolute``, of
    $\max_{ij} |\beta|\, |q_i - a|\cdot|k_j - c|$ instead (what rounding terms need, see
    :func:`fastpath.ranges.abs_logit_bound`).

    $\widehat{x_t - a_t} = (x_t - a_t)(1 + \delta)$, so the exact product differs from the float one by at most
    $((1 + u/(1-u))^2 - 1) \sum_t |\hat q_t||\hat k_t| \le 4u \|\hat q\|\|\hat k\|$: the bound is
    :func:`logit_bound` (or :func:`abs_logit_bound`) of the float differences plus $4u$ times their CS bound.
    q (n, d), k (m, d), a, c (d,).
    """
    q, k, _ = _check(q, k, beta)
    d = q.shape[1]
    for name, v in (("a", a), ("c", c)):
        if np.shape(v) != (d,) or not np.isfinite(np.asarray(v, dtype=np.float64)).all():
            raise ValueError(f"{name}: expected a finite vector of shape ({d},), got shape {np.shape(v)}")
    qa, kc = q - np.asarray(a, dtype=np.float64), k - np.asarray(c, dtype=np.float64)  # (n, d), (m, d)
    main = abs_logit_bound(qa, kc, beta) if absolute else logit_bound(qa, kc, beta)
    return float(up(main + up(gam(2) * cs_bound(qa, kc, beta))))


def candidate_centres(q: np.ndarray, k: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(a, c) pairs tried by :func:`centres`: each of 0, the mean and the box centre for a and for c."""
    opts_q = [np.zeros(q.shape[1]), q.mean(axis=0), (q.min(axis=0) + q.max(axis=0)) / 2]  # (d,) each
    opts_k = [np.zeros(k.shape[1]), k.mean(axis=0), (k.min(axis=0) + k.max(axis=0)) / 2]
    return [(a, c) for a in opts_q for c in opts_k]


def centres(q, k, beta, screen: int = 2, absolute: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""Re-centring $(a, c)$ (issue 14 item 2) minimising the range over :func:`candidate_centres`.

    Only candidates whose key-weight spread (:func:`key_spread`) is at most :data:`SPREAD_MAX` are considered;
    a = 0 has spread 0, so $(0, 0)$ (no re-centring) is always available, and it is kept unless another candidate
    is strictly smaller. With a = 0 only the per-query factor $e^{\beta q\cdot c}$ appears, which softmax cancels.
    Candidates are ranked by the O(n d) bounds (:func:`fastpath.ranges.cs_bound`, :func:`fastpath.ranges.box_bound`);
    the ``screen`` best of them and (0, 0) are compared by the least of those and
    :func:`fastpath.ranges.tail_bound` (rigorous, usually within rounding of the maximum). The caller certifies
    the chosen pair with :func:`recentred_range`. With ``absolute`` the ranges compared are those of
    $|q - a|, |k - c|$ (:func:`fastpath.ranges.abs_logit_bound`, what the rounding terms need). Returns float64
    vectors a, c of shape (d,).
    """
    q, k, _ = _check(q, k, beta)
    cheap, spread = [], {}
    for a, c in candidate_centres(q, k):
        if a.tobytes() not in spread:
            spread[a.tobytes()] = key_spread(k, beta, a) if a.any() else 0.0
        if spread[a.tobytes()] > SPREAD_MAX:
            continue
        qa, kc = q - a, k - c  # (n, d), (m, d)
        if absolute:
            qa, kc = np.abs(qa), np.abs(kc)
        cheap.append((min(cs_bound(qa, kc, beta), box_bound(qa, kc, beta)), len(cheap), a, c, qa, kc))
    best, best_R = (np.zeros(q.shape[1]), np.zeros(q.shape[1])), math.inf  # kept when every range overflows
    for bound, _, a, c, qa, kc in [cheap[0]] + sorted(cheap[1:], key=lambda x: x[:2])[:screen]:  # cheap[0]: (0, 0)
        rr = min(bound, tail_bound(qa, kc, beta))
        if rr < best_R:
            best, best_R = (a, c), rr
    return best


__all__ = ["SPREAD_MAX", "candidate_centres", "centres", "key_spread", "recentred_range"]
