r"""The norm staircase: exact logits of the pairs with a large norm product, Cauchy-Schwarz for the rest.

Paper: Lemma I.1 / C.13 need every logit in $[-R, R]$ (spec §2.5 step 1); issue 14 item 1 (a tighter range in
O(n d)). Pairs with $\|q_i\|\|k_j\| \le L$ satisfy $|q_i \cdot k_j| \le L$ (Cauchy-Schwarz); with the norms sorted,
the other pairs form a staircase (:func:`staircase_counts`), computed by rectangles at most twice its area, each
float logit within $\gamma_d |q_i|\cdot|k_j| + d\,2^{-1074} \le \gamma_d \max\|q\|\max\|k\| + d\,2^{-1074}$ of its
exact value. So $\max_{ij} |q_i\cdot k_j| \le \max(E(L), L)$, E(L) the staircase's maximum rounded up
(:func:`staircase_bound`). The level L is the lowest (to $2^{-10}$ relative) whose staircase fits a **budget** of
pairs, linear in n + m; the work is O((n + m) d^2 + budget d) plus one sort of the tokens that can reach L.

**Counted work**: every call returns the number of exact logits it evaluated (``pairs``), at most
$d(n + m)$ (the top-norm rows) plus twice the largest stage budget per stage: complexity is asserted on this count
(``tests/test_fastpath_ranges.py``), never on time.

**Early exit** (``rtol > 0``, the fast path's mode): the staircase is refined in stages (budget/8, then budget) and
stops as soon as its bound, or a cheaper bound ``cap`` already known, is within ``rtol`` of a rigorous lower bound
of the true maximum, or rounds to the same point of the degree grid (:func:`fastpath.poly.round_up_R`) as that
lower bound: no tighter bound could then lower the degree.

Shape legend: n, m tokens (queries, keys), d head width.
"""

from __future__ import annotations

import math

import numpy as np

from fastpath.directed import TINY, down, gam, prod_up, up
from fastpath.poly import round_up_R

STAGES = 8  # with rtol > 0 the first stage uses budget // STAGES pairs


def default_budget(n: int, m: int, d: int) -> int:
    """Pairs the staircase may evaluate: 16 d (n + m), so its products cost O((n + m) d^2)."""
    return 16 * d * (n + m)


def staircase_counts(sq: np.ndarray, sk: np.ndarray, L: float) -> np.ndarray:
    r"""Per query (norms ``sq`` descending) the number of keys (norms ``sk`` descending) with
    $\|k_j\| > \tau_i$, $\tau_i = $ ``down``$(L / \|q_i\|) \le L/\|q_i\|$: every other pair has
    $\|q_i\|\|k_j\| \le L$. (n,), non-increasing."""
    with np.errstate(divide="ignore"):
        tau = down(L / sq)  # (n,)
    return np.searchsorted(-sk, -tau, side="left")  # (n,) count of sk_j > tau_i


def good_enough(bound: float, lo: float, b: float, rtol: float) -> bool:
    r"""Whether ``bound`` (at $\beta = 1$) needs no refinement given a rigorous lower bound ``lo`` of the true
    maximum: within ``rtol`` of it, or on the same grid point of :func:`fastpath.poly.round_up_R` after scaling by
    $|\beta|$ = ``b``. Always False for ``rtol = 0`` unless ``bound <= lo``."""
    if bound <= lo:
        return True
    if rtol <= 0 or not math.isfinite(bound) or lo <= 0:
        return False
    return bound <= lo * (1 + rtol) or round_up_R(prod_up(b, bound)) == round_up_R(float(down(b * lo)))


def staircase_bound(q, k, nq, nk, b: float, budget: int, *, cap: float = math.inf, rtol: float = 0.0):
    r"""``(bound, done, pairs)``: the staircase bound of $\max_{ij} |q_i\cdot k_j|$ (module docstring) at
    $\beta = 1$ (the caller scales), whether it needs no other bound (converged: $E(L) \ge L$, within rounding of
    the true maximum; or :func:`good_enough`), and the count of exact logits evaluated.

    q (n, d), k (m, d) checked float64; nq (n,), nk (m,) upper bounds of their row norms (:func:`norms_up`);
    ``cap``: a bound already known (Cauchy-Schwarz, box) returned instead when it is :func:`good_enough`.
    L starts at a rigorous lower bound of one exact logit (the top d queries and keys against all).
    """
    n, m, d = q.shape[0], k.shape[0], q.shape[1]
    mq, mk = float(nq.max()), float(nk.max())
    cs = prod_up(mq, mk)
    err = float(up(up(gam(d) * cs) + d * TINY))  # rounding of any one float logit q_i . k_j
    t = min(d, n, m)
    Tq, Tk = np.argpartition(-nq, t - 1)[:t], np.argpartition(-nk, t - 1)[:t]  # t largest norms (any order)
    top = max(float(np.abs(q[Tq] @ k.T).max()), float(np.abs(q @ k[Tk].T).max()))  # (t, m), (n, t)
    pairs = t * (n + m)
    lo = max(0.0, float(down(top - err)))  # a lower bound of the exact maximum
    cap = min(cap, cs)
    if good_enough(cap, lo, b, rtol):
        return cap, True, pairs
    # only tokens with ||q_i|| max||k|| > lo (resp. keys) can be in a pair above lo: sort those alone
    iq = np.flatnonzero(nq > down(lo / mk)) if mk > 0 else np.zeros(0, dtype=np.int64)
    ik = np.flatnonzero(nk > down(lo / mq)) if mq > 0 else np.zeros(0, dtype=np.int64)
    iq, ik = iq[np.argsort(-nq[iq], kind="stable")], ik[np.argsort(-nk[ik], kind="stable")]
    sq, sk = nq[iq], nk[ik]  # descending
    qs, ks = q[iq], k[ik]  # (n', d), (m', d) gathered once, rows by descending norm
    out = cap
    for stage in (max(budget // STAGES, 1), budget) if rtol > 0 else (budget,):
        L = _level(sq, sk, lo, cs, stage)
        E, p = _max_over_staircase(qs, ks, staircase_counts(sq, sk, L))
        pairs += p
        E_up = float(up(E + err))
        out = min(out, max(E_up, L))
        lo = max(lo, float(down(E - err)))  # the computed logits are exact up to err
        if E_up >= L or good_enough(out, lo, b, rtol):
            return out, True, pairs
    return out, False, pairs


def _level(sq: np.ndarray, sk: np.ndarray, lo: float, cs: float, budget: int) -> float:
    """The lowest level L >= lo (bisection, to 2^-10 of L) whose staircase holds at most ``budget`` pairs."""
    if int(staircase_counts(sq, sk, lo).sum()) <= budget:
        return lo
    hi = cs
    for _ in range(40):  # stops at 2^-10 relative width (about 10 steps from lo > 0), never past 40
        if hi - lo <= hi * 2.0**-10:
            break
        mid = 0.5 * (lo + hi)
        if int(staircase_counts(sq, sk, mid).sum()) > budget:
            lo = mid
        else:
            hi = mid
    return hi


def _max_over_staircase(qs: np.ndarray, ks: np.ndarray, cnt: np.ndarray) -> tuple[float, int]:
    """(max float |q_i . k_j| over the staircase ``cnt`` of the sorted rows qs / ks, pairs evaluated): rectangles
    of rows while the count stays above half the first row's, at most twice the staircase's area."""
    E, i0, n, pairs = 0.0, 0, qs.shape[0], 0
    while i0 < n and cnt[i0] > 0:
        c0 = int(cnt[i0])
        i1 = max(i0 + int(np.searchsorted(-cnt[i0:], -(c0 // 2), side="left")), i0 + 1)
        step = max(1, 2**20 // c0)  # rows per product: about 2^20 entries
        for r0 in range(i0, i1, step):
            P = qs[r0 : min(r0 + step, i1)] @ ks[:c0].T  # (rows, c0)
            E = max(E, float(P.max()), -float(P.min()))
            pairs += P.size
        i0 = i1
    return E, pairs


__all__ = ["STAGES", "default_budget", "good_enough", "staircase_bound", "staircase_counts"]
