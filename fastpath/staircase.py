r"""The norm staircase: exact logits of the pairs with a large norm product, Cauchy-Schwarz for the rest.

Paper: Lemma I.1 / C.13 need every logit in $[-R, R]$ (spec §2.5 step 1); issue 14 item 1 (a tighter range in
O(n d)). Pairs with $\|q_i\|\|k_j\| \le L$ satisfy $|q_i \cdot k_j| \le L$ (Cauchy-Schwarz); with the norms sorted,
the other pairs form a staircase (:func:`staircase_counts`), computed by rectangles at most 4/3 of its area, each
float logit within $\gamma_d |q_i|\cdot|k_j| + d\,2^{-1074} \le \gamma_d \max\|q\|\max\|k\| + d\,2^{-1074}$ of its
exact value. So $\max_{ij} |q_i\cdot k_j| \le \max(E(L), L)$, E(L) the staircase's maximum rounded up
(:func:`staircase_bound`). The level L is the lowest (to $2^{-10}$ relative) whose staircase fits a **budget** of
pairs, linear in n + m; the work is O((n + m) d^2 + budget d) plus one sort of the tokens that can reach L.

**Counted work**: every call returns the number of exact logits it evaluated (``pairs``), at most
$d(n + m)$ (the top-norm rows) plus 4/3 of each stage's budget: complexity is asserted on this count
(``tests/test_fastpath_ranges.py``), never on time.

**Early exit** (``rtol > 0``, the fast path's mode): the staircase is refined in stages (budget/8, then budget) and
stops as soon as its bound, or a cheaper bound ``cap`` already known, is within ``rtol`` of a rigorous lower bound
of the true maximum, or rounds to the same point of the degree grid (:func:`fastpath.poly.round_up_R`) as that
lower bound: no tighter bound could then lower the degree. The last stage is skipped when its level L already
rounds to the grid point of the bound in hand (it can only give bounds $\ge \min(\text{bound}, L)$).

**Degree rule** (``degree`` given, issue 14): the range matters to the fast path only through the degree
:func:`fastpath.poly.certified_poly` picks for it (:func:`certified_degree`), so the refinement also stops once the
bound in hand takes the same degree as the lower bound (for a degree non-decreasing in R no refinement could lower
it; the bound stays a rigorous upper bound, only its grid point may be higher, within the same degree), and each
stage's level is raised to the top of the lower bound's degree band (:func:`_band_level`): the staircase then holds
only the pairs above that band. The price is accuracy: the polynomial is then certified on a wider interval at the
same degree (a larger certified error, still at most eps), so the rule applies only where it may save many exact
logits: when the staircase from the lower bound on holds at least :data:`DEGREE_RULE_MIN_PAIRS` pairs (counted
before any is evaluated: ``min(budget, staircase_counts(lower bound).sum())``; each certification it asks for costs
about 20 ms of mpmath once per grid point, about the time of 2^22 exact logits at d = 4).

Shape legend: n, m tokens (queries, keys), d head width.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from fastpath.directed import TINY, down, gam, prod_up, up
from fastpath.poly import GRID_STEPS_PER_OCTAVE, certified_poly, degree_lower_estimate, round_up_R

STAGES = 8  # with rtol > 0 the first stage uses budget // STAGES pairs
DEGREE_RULE_MIN_PAIRS = 2**22  # the rule saves at most the staircase's pairs: off below (module docstring)
DEGREE_RULE_MAX = 24  # no certification for ranges whose optimistic degree exceeds this (their rank is refused)


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


def certified_degree(R: float, eps: float, kind: str = "chebyshev") -> int | None:
    """The degree :func:`fastpath.poly.certified_poly` returns for (R, eps, kind), or None when it refuses or when
    even the optimistic :func:`fastpath.poly.degree_lower_estimate` exceeds :data:`DEGREE_RULE_MAX` (then nothing
    is certified). Cached per grid point (both depend on R only through :func:`fastpath.poly.round_up_R`)."""
    return _grid_degree(round_up_R(R), float(eps), kind)


@functools.lru_cache(maxsize=1024)
def _grid_degree(Rg: float, eps: float, kind: str) -> int | None:
    if degree_lower_estimate(Rg, eps) > DEGREE_RULE_MAX:
        return None
    try:
        return certified_poly(Rg, eps, kind).degree
    except ValueError:
        return None


def good_enough(bound: float, lo: float, b: float, rtol: float, degree=None) -> bool:
    r"""Whether ``bound`` (at $\beta = 1$) needs no refinement given a rigorous lower bound ``lo`` of the true
    maximum: within ``rtol`` of it, or on the same grid point of :func:`fastpath.poly.round_up_R` after scaling by
    $|\beta|$ = ``b``, or (``degree``: a callable R -> degree or None, the degree rule) of the same degree as it.
    Always False for ``rtol = 0`` unless ``bound <= lo``."""
    if bound <= lo:
        return True
    if rtol <= 0 or not math.isfinite(bound) or lo <= 0:
        return False
    hi, low = prod_up(b, bound), float(down(b * lo))
    if bound <= lo * (1 + rtol) or round_up_R(hi) == round_up_R(low):
        return True
    return degree is not None and (g := degree(low)) is not None and degree(hi) == g


def _band_level(lo: float, out: float, b: float, degree) -> float:
    r"""The highest level L (at $\beta = 1$) whose bounds keep the degree of ``lo``: the largest grid point G in
    [grid(b lo), grid(b out)) with ``degree(G)`` equal to that of ``lo`` (bisection, for a degree non-decreasing in R;
    otherwise some such G), and the largest float L with ``prod_up(b, L)`` $\le$ G; ``lo`` when there is none."""
    if lo <= 0 or b <= 0 or not math.isfinite(out) or (g0 := degree(float(down(b * lo)))) is None:
        return lo
    a = round(math.log2(round_up_R(float(down(b * lo)))) * GRID_STEPS_PER_OCTAVE)  # grid indices
    z = round(math.log2(round_up_R(prod_up(b, out))) * GRID_STEPS_PER_OCTAVE)
    while z - a > 1:  # degree(G_a) == g0, degree(G_z) != g0 (else the caller would have stopped)
        mid = (a + z) // 2
        a, z = (mid, z) if degree(2.0 ** (mid / GRID_STEPS_PER_OCTAVE)) == g0 else (a, mid)
    G = max(round_up_R(float(down(b * lo))), 2.0 ** (a / GRID_STEPS_PER_OCTAVE))
    L = float(down(G / b))
    while prod_up(b, L) > G:
        L = float(down(L))
    return max(lo, L)


def staircase_bound(
    q, k, nq, nk, b: float, budget: int, *, cap: float = math.inf, rtol: float = 0.0, top=None, degree=None
):
    r"""``(bound, done, pairs)``: the staircase bound of $\max_{ij} |q_i\cdot k_j|$ (module docstring) at
    $\beta = 1$ (the caller scales), whether it needs no other bound (converged: $E(L) \ge L$, within rounding of
    the true maximum; or :func:`good_enough`), and the count of exact logits evaluated.

    q (n, d), k (m, d) checked float64; nq (n,), nk (m,) upper bounds of their row norms (:func:`norms_up`);
    ``cap``: a bound already known (Cauchy-Schwarz, box) returned instead when it is :func:`good_enough`;
    ``top``: :func:`top_norms` when the caller has them (shared by the signed and absolute ranges, whose norms
    agree); ``degree``: a callable R -> degree or None (:func:`certified_degree` at the caller's eps), the degree
    rule of the module docstring (with ``rtol > 0``, when the staircase may cost :data:`DEGREE_RULE_MIN_PAIRS`).
    L starts at a rigorous lower bound of one exact logit (the top d queries and keys against all).
    """
    if rtol <= 0:
        degree = None
    n, m, d = q.shape[0], k.shape[0], q.shape[1]
    mq, mk = float(nq.max()), float(nk.max())
    cs = prod_up(mq, mk)
    err = float(up(up(gam(d) * cs) + d * TINY))  # rounding of any one float logit q_i . k_j
    Tq, Tk = top_norms(nq, nk, d) if top is None else top  # (t,) each
    t = Tq.shape[0]
    top = max(_abs_max(np.take(q, Tq, axis=0) @ k.T), _abs_max(np.take(k, Tk, axis=0) @ q.T))  # (t, m), (t, n)
    pairs = t * (n + m)
    lo = max(0.0, float(down(top - err)))  # a lower bound of the exact maximum
    cap = min(cap, cs)
    if good_enough(cap, lo, b, rtol):
        return cap, True, pairs
    # only tokens with ||q_i|| max||k|| > lo (resp. keys) can be in a pair above lo: sort those alone (ties in any
    # order: the staircase of a level holds all tokens of a tied norm or none)
    iq = np.flatnonzero(nq > down(lo / mk)) if mk > 0 else np.zeros(0, dtype=np.int64)
    ik = np.flatnonzero(nk > down(lo / mq)) if mq > 0 else np.zeros(0, dtype=np.int64)
    iq, ik = iq[np.argsort(-nq[iq])], ik[np.argsort(-nk[ik])]
    sq, sk = nq[iq], nk[ik]  # descending
    qs, ks = np.take(q, iq, axis=0), np.take(k, ik, axis=0)  # (n', d), (m', d) gathered once, by descending norm
    if degree is not None and min(budget, int(staircase_counts(sq, sk, lo).sum())) < DEGREE_RULE_MIN_PAIRS:
        degree = None  # the staircase can cost only a few pairs from here: refine as without the rule
    if degree is not None and good_enough(cap, lo, b, rtol, degree):
        return cap, True, pairs
    out = cap
    for stage in (max(budget // STAGES, 1), budget) if rtol > 0 else (budget,):
        L = _level(sq, sk, lo, cs, stage)
        if degree is not None:  # no lower than the top of lo's degree band: fewer pairs, the same degree
            L = max(L, _band_level(lo, out, b, degree))
        if rtol > 0 and stage == budget and round_up_R(prod_up(b, min(out, L))) >= round_up_R(prod_up(b, out)):
            # the last stage can only give bounds >= min(out, L): the grid point of ``out``, no lower degree
            return out, good_enough(out, lo, b, rtol), pairs
        E, p = _max_over_staircase(qs, ks, staircase_counts(sq, sk, L))
        pairs += p
        E_up = float(up(E + err))
        out = min(out, max(E_up, L))
        lo = max(lo, float(down(E - err)))  # the computed logits are exact up to err
        if E_up >= L or good_enough(out, lo, b, rtol, degree):
            return out, True, pairs
    return out, False, pairs


def top_norms(nq: np.ndarray, nk: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the t = min(d, n, m) largest query and key norm bounds (any order), (t,) each."""
    t = min(d, nq.shape[0], nk.shape[0])
    return np.argpartition(-nq, t - 1)[:t], np.argpartition(-nk, t - 1)[:t]


def _abs_max(P: np.ndarray) -> float:
    """max |P| as max(max P, -min P) (no |P| array)."""
    return max(float(P.max()), -float(P.min())) if P.size else 0.0


def _level(sq: np.ndarray, sk: np.ndarray, lo: float, cs: float, budget: int) -> float:
    """The lowest level L >= lo (bisection, to 2^-10 of L) whose staircase holds at most ``budget`` pairs."""
    fits = _Fits(sq, sk, budget)
    if fits(lo):
        return lo
    hi = cs
    for _ in range(40):  # stops at 2^-10 relative width (about 10 steps from lo > 0), never past 40
        if hi - lo <= hi * 2.0**-10:
            break
        mid = 0.5 * (lo + hi)
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi


class _Fits:
    """``fits(L)``: whether the staircase of level L holds at most ``budget`` pairs, the same answer as
    ``staircase_counts(sq, sk, L).sum() <= budget`` at a fraction of its cost: the counts are non-increasing, so
    those of about 1024 sampled rows bound every row's count from above (the previous sample's) and below (the
    next one's); the exact sum is taken only when the budget lies between the two bounds."""

    def __init__(self, sq: np.ndarray, sk: np.ndarray, budget: int):
        n = sq.shape[0]
        self.sq, self.sk, self.budget = sq, sk, budget
        self.idx = np.unique(np.r_[np.arange(0, n, max(1, n // 1024)), n - 1]) if n else np.zeros(0, np.int64)
        self.w = np.diff(self.idx)  # rows per sampled block [idx_j, idx_j+1)

    def __call__(self, L: float) -> bool:
        if self.idx.size == 0:
            return self.budget >= 0
        c = staircase_counts(self.sq[self.idx], self.sk, L)  # (samples,) counts of the sampled rows
        upper = int(c[:-1] @ self.w) + int(c[-1])  # every row of a block counts at most its first row's
        lower = int(c[1:] @ self.w) + int(c[-1])  # and at least the next block's first row's
        if upper <= self.budget or lower > self.budget:
            return upper <= self.budget
        return int(staircase_counts(self.sq, self.sk, L).sum()) <= self.budget


CHUNK = 2**17  # entries per product in _max_over_staircase: a 1 MiB block stays in L2 for its max and min passes
TREAD = 4  # a rectangle keeps rows while their count stays above (1 - 1/TREAD) of its first row's
THIN = 2**11  # pairs: from the first rectangle smaller than this on, pairs are gathered (no per-rectangle call)


def _max_over_staircase(qs: np.ndarray, ks: np.ndarray, cnt: np.ndarray) -> tuple[float, int]:
    """(max float |q_i . k_j| over the staircase ``cnt`` of the sorted rows qs / ks, pairs evaluated): rectangles
    of rows while the count stays above 3/4 of the first row's (:data:`TREAD`), at most 4/3 of the staircase's
    area, products of at most :data:`CHUNK` entries written into one buffer; from the first rectangle under
    :data:`THIN` pairs on, the rest of the staircase exactly, pair by pair (:func:`_thin_max`)."""
    n = qs.shape[0]
    if n == 0 or cnt[0] == 0:
        return 0.0, 0
    kT = np.ascontiguousarray(ks[: int(cnt[0])].T)  # (d, c_max)
    buf = np.empty(max(CHUNK, int(cnt[0])))
    E, i0, pairs = 0.0, 0, 0
    ncnt = -cnt  # ascending, searched per rectangle
    while i0 < n and cnt[i0] > 0:
        c0 = int(cnt[i0])
        i1 = max(i0 + int(np.searchsorted(ncnt[i0:], -(c0 - c0 // TREAD), side="left")), i0 + 1)
        if (i1 - i0) * c0 < THIN:  # thin from here on (counts never grow): one gathered pass, no waste
            E2, p2 = _thin_max(qs[i0:], ks, cnt[i0:])
            return max(E, E2), pairs + p2
        step = max(1, CHUNK // c0)  # rows per product
        for r0 in range(i0, i1, step):
            r1 = min(r0 + step, i1)
            P = np.matmul(qs[r0:r1], kT[:, :c0], out=buf[: (r1 - r0) * c0].reshape(r1 - r0, c0))  # (rows, c0)
            E = max(E, _abs_max(P))
            pairs += P.size
        i0 = i1
    return E, pairs


def _thin_max(qs: np.ndarray, ks: np.ndarray, cnt: np.ndarray) -> tuple[float, int]:
    r"""(max float $|q_i \cdot k_j|$ over the pairs $j <$ ``cnt[i]``, their number), gathered in chunks of about
    :data:`CHUNK` pairs: each dot product is a float sum of d products in some order, within the same
    $\gamma_d |q_i|\cdot|k_j|$ of its exact value as a matmul entry (Higham, Lemma 3.1: any order)."""
    c = cnt[: int(np.count_nonzero(cnt))]  # (rows,) positive, non-increasing
    ends = np.cumsum(c)  # (rows,) last pair of each row, exclusive
    E, r0 = 0.0, 0
    while r0 < c.shape[0]:
        r1 = max(r0 + 1, int(np.searchsorted(ends, ends[r0] - c[r0] + CHUNK, side="right")))
        cc = c[r0:r1]
        rows = np.repeat(np.arange(r0, r1), cc)  # (pairs,) the query of each pair
        keys = np.arange(rows.shape[0]) - np.repeat(ends[r0:r1] - cc - (ends[r0] - c[r0]), cc)  # (pairs,)
        E = max(E, _abs_max(np.einsum("ij,ij->i", qs[rows], ks[keys])))
        r0 = r1
    return E, int(ends[-1]) if c.size else 0


__all__ = ["CHUNK", "DEGREE_RULE_MAX", "DEGREE_RULE_MIN_PAIRS", "STAGES", "THIN", "TREAD", "certified_degree",
           "default_budget", "good_enough", "staircase_bound", "staircase_counts",
           "top_norms"]  # fmt: skip
