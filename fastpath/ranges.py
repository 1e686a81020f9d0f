r"""Certified logit ranges: rigorous, cheap upper bounds of $\max_{ij} |\beta\, q_i \cdot k_j|$, and re-centring.

Paper: Lemma I.1 / C.13 need every logit in $[-R, R]$ (spec §2.5 step 1); issue 14 items 1 and 2. The degree and
rank of :mod:`fastpath.poly` grow with R, so a bound closer to the true maximum buys rank. Every bound below is an
upper bound of the *exact* real value for the float64 entries given, and never costs $n^2$:

* **Cauchy-Schwarz** (:func:`cs_bound`): $|\beta| \max_i \|q_i\|_2 \max_j \|k_j\|_2$, O(n d).
* **exact box** (:func:`box_bound`): with $l_t \le q_{it} \le h_t$ and $l'_t \le k_{jt} \le h'_t$, the bilinear
  form separates by coordinate, so over the product of the two boxes
  $\max q\cdot k = \sum_t \max(l_t l'_t, l_t h'_t, h_t l'_t, h_t h'_t)$ and $\min q \cdot k = \sum_t \min(\ldots)$:
  $|\beta| \max(\max q\cdot k, -\min q\cdot k)$, O(n d). At most $\sum_t \max_i|q_{it}| \max_j |k_{jt}|$.
* **rotated box** (:func:`rotated_bound`): the same in a basis O (eigenvectors of $Q^\top Q$, $K^\top K$, their
  normalised sum, or of the symmetric part of $Q^\top K$), O(n d^2). With $E = O O^\top - I$ (O is orthonormal only
  up to rounding) $q \cdot k = (qO)\cdot(kO) - q E k^\top$, so :func:`rotated_bound` adds
  $\|q\| \|k\| \|E\|_F$ (:func:`orthogonality_defect`) and widens the boxes by the rounding of $qO$ (:func:`_rotate`).
* **ball clusters** (:func:`cluster_bound`): queries and keys split by medians along principal axes (a tree of depth
  ``levels``, deterministic); a cluster has centre $c$ (a float vector) and radius
  $\rho \ge \max \|x - c\|$, and for $q = c_I + u$, $k = c_J + v$:
  $|q \cdot k| \le |c_I \cdot c_J| + \rho_I \|c_J\| + \rho_J \|c_I\| + \rho_I \rho_J$. A pair of clusters takes the
  least of this, its own CS bound and its own exact box (in the rotated basis); the bound is the largest over pairs,
  O(n d^2 levels + C^2 d) for C clusters a side.

* **norm staircase** (:func:`tail_bound`, :mod:`fastpath.staircase`): the logits of every pair whose norm product
  exceeds a level L computed (float, plus one scalar rounding term), L (Cauchy-Schwarz) for the rest; L as low as a
  budget of 16 d (n + m) pairs allows, O(n d^2). On both input distributions of issue 14 it meets the true maximum
  to rounding (``benchmarks/range_bench.py``, d = 4, 8, n up to 2^18); not on the signed logits of
  ``benchmarks/gemm_rate.py``'s input at n = 2^18 (bound 0.3603, where the fallbacks give 0.43 and more).

:func:`logit_bound` returns the least of them; :func:`logit_ranges` both ranges at once (shared norms, counted
work, the fast path's early exit at :data:`FAST_RTOL` and the staircase's degree rule at a given eps).

**Rounding.** Every quantity is evaluated upwards with :mod:`fastpath.directed` (each float64 result moved one float
towards $+\infty$, sums and products inflated by $\gamma_m \le 2mu$ and $m\,2^{-1074}$ for underflow): each bound
is an upper bound of the exact maximum for the float64 entries given (derivations in the functions' docstrings).

Re-centring (issue 14 item 2): :mod:`fastpath.recentre` (``centres``, ``recentred_range``, ``key_spread``).
Shape legend: n, m tokens (queries, keys), d head width (d_h), C clusters, B blocks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fastpath import directed
from fastpath.directed import TINY, down, gam, matmul_encl, norms_up, overflow_safe, prod_up, rel, sum_up, up
from fastpath.staircase import certified_degree, default_budget, staircase_bound, top_norms

LEVELS = 4  # cluster tree depth: 2^4 = 16 clusters a side
MIN_LEAF = 8  # a cluster is not split below this many tokens
FAST_RTOL = 2.0**-6  # the fast path stops refining a range within 1.6 % of a lower bound (grid steps are 9 %)


# -- the bounds -------------------------------------------------------------------------------------------------


def _check(q, k, beta) -> tuple[np.ndarray, np.ndarray, float]:
    q, k = np.asarray(q), np.asarray(k)
    for name, Z in (("q", q), ("k", k)):
        if Z.ndim != 2 or Z.shape[0] == 0 or Z.shape[1] == 0:
            raise ValueError(f"{name}: expected a non-empty 2-D array (tokens, d_h), got shape {Z.shape}")
        if not np.issubdtype(Z.dtype, np.floating) and not np.issubdtype(Z.dtype, np.integer):
            raise TypeError(f"{name}: expected a real float array, got dtype {Z.dtype}")
    if q.shape[1] != k.shape[1]:
        raise ValueError(f"k: expected {q.shape[1]} columns like q {q.shape}, got shape {k.shape}")
    q, k = q.astype(np.float64, copy=False), k.astype(np.float64, copy=False)
    if not (np.isfinite(q).all() and np.isfinite(k).all()):
        raise ValueError("q, k: expected finite entries, got inf or NaN")
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.floating, np.integer)):
        raise TypeError(f"beta: expected a real number, got {type(beta).__name__}")
    if not math.isfinite(float(beta)):
        raise ValueError(f"beta: expected a finite number, got {beta!r}")
    return q, k, abs(float(beta))


@overflow_safe
def cs_bound(q: np.ndarray, k: np.ndarray, beta: float) -> float:
    r"""Cauchy-Schwarz: $|\beta| \max_i \|q_i\| \max_j \|k_j\|$, evaluated upwards. q (n, d), k (m, d)."""
    q, k, b = _check(q, k, beta)
    return prod_up(b, float(norms_up(q).max()), float(norms_up(k).max()))


def _box_max(lq, hq, lk, hk) -> np.ndarray:
    r"""Upper bound of $\max_{q \in [lq, hq], k \in [lk, hk]} |q \cdot k|$ over the product of boxes.

    Broadcasts over leading axes: (..., d) -> (...). Per coordinate the four corner products (rounded outwards),
    then the sums of the per-coordinate max (resp. min) with their $\gamma_{d-1}$ rounding term.
    """
    corners = (lq * lk, lq * hk, hq * lk, hq * hk)
    hi = up(np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3])))  # (..., d)
    lo = down(np.minimum(np.minimum(corners[0], corners[1]), np.minimum(corners[2], corners[3])))
    d = hi.shape[-1]
    err_hi = up(sum_up(np.abs(hi), axis=-1) * gam(d))
    err_lo = up(sum_up(np.abs(lo), axis=-1) * gam(d))
    return np.maximum(up(up(hi.sum(axis=-1)) + err_hi), up(up(-lo.sum(axis=-1)) + err_lo))  # (...)


@overflow_safe
def box_bound(q: np.ndarray, k: np.ndarray, beta: float) -> float:
    r"""Exact-box bound: $|\beta| \max(\sum_t \max_{corners}, -\sum_t \min_{corners})$ (module docstring), O(n d)."""
    q, k, b = _check(q, k, beta)
    return prod_up(b, float(_box_max(*directed.col_min_max(q), *directed.col_min_max(k))))


def bases(q: np.ndarray, k: np.ndarray) -> list[np.ndarray]:
    r"""Candidate orthonormal bases (d, d): eigenvectors of $Q^\top Q$, $K^\top K$, their sum normalised by the
    traces, and (when n = m) of the symmetric part of $Q^\top K$. Any float matrix would do:
    :func:`rotated_bound` covers its departure from orthogonality."""
    Cq, Ck = q.T @ q, k.T @ k  # (d, d) each
    tq, tk = max(np.trace(Cq), 1e-300), max(np.trace(Ck), 1e-300)
    mats = [Cq, Ck, Cq / tq + Ck / tk]
    if q.shape[0] == k.shape[0]:  # self-attention: q_i and k_i belong to the same token
        Cx = q.T @ k  # (d, d)
        mats.append(Cx + Cx.T)
    out = [np.linalg.eigh(M)[1] for M in mats if np.isfinite(M).all()]
    return out or [np.eye(q.shape[1])]


def _rotate(Z: np.ndarray, O: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Rotated rows $\widehat{ZO}$ (n, d) and a per-coordinate bound $\delta$ (d,) of $|\widehat{ZO} - ZO|$.

    $|\widehat{ZO} - ZO|_{it} \le \gamma_d (|z_i||O_{:t}|) + d\,2^{-1074} \le \gamma_d \max_i\|z_i\|
    \|O_{:t}\| + d\,2^{-1074}$ (Cauchy-Schwarz), so no (n, d) array is rounded outwards.
    """
    d = Z.shape[1]
    col = norms_up(O.T)  # (d,) column norms of O
    delta = up(up(up(gam(d) * float(norms_up(Z).max())) * col) + d * TINY)  # (d,)
    return Z @ O, delta


def orthogonality_defect(O: np.ndarray) -> float:
    r"""Upper bound of $\|O O^\top - I\|_F$ for the float matrix O (exact arithmetic), O(d^3)."""
    d = O.shape[0]
    P, delta = matmul_encl(O, O.T)  # (d, d)
    E = np.abs(P - np.eye(d))  # fl(P - I) within u |P - I| of the exact difference of floats
    Eb = up(up(E * rel(1)) + delta)  # (d, d) >= |O O^T - I| entrywise
    return float(up(np.sqrt(sum_up(up(Eb * Eb)))))


@overflow_safe
def rotated_bound(q: np.ndarray, k: np.ndarray, beta: float, O: np.ndarray | None = None) -> float:
    r"""Exact box in the basis O (default: the best of :func:`bases`), plus the defect term (module docstring)."""
    q, k, b = _check(q, k, beta)
    if O is None:
        return prod_up(b, _best_rotation(q, k)[0])
    (qO, dq), (kO, dk) = _rotate(q, O), _rotate(k, O)  # (n, d), (d,) each
    box = float(_box_max(down(qO.min(0) - dq), up(qO.max(0) + dq), down(kO.min(0) - dk), up(kO.max(0) + dk)))
    defect = prod_up(float(norms_up(q).max()), float(norms_up(k).max()), orthogonality_defect(O))
    return prod_up(b, float(up(box + defect)))


# -- clusters and blocks ----------------------------------------------------------------------------------------


def tree_labels(Z: np.ndarray, levels: int = LEVELS) -> np.ndarray:
    """Cluster labels (n,) in 0..2^levels - 1: repeated median splits along each cluster's principal axis.

    Deterministic (no RNG): the axis is the top eigenvector of the cluster's centred second moment, the split its
    median projection (``np.argpartition``); clusters under 2 * :data:`MIN_LEAF` tokens are not split.
    """
    labels = np.zeros(Z.shape[0], dtype=np.int64)
    for _ in range(levels):
        new = labels * 2
        for lab in np.unique(labels):
            idx = np.flatnonzero(labels == lab)
            if idx.size < 2 * MIN_LEAF:
                continue
            Y = Z[idx] - Z[idx].mean(axis=0)  # (m, d)
            M = Y.T @ Y  # (d, d)
            if not np.isfinite(M).all():
                continue  # overflow: leave the cluster whole (any partition keeps the bound rigorous)
            axis = np.linalg.eigh(M)[1][:, -1]  # (d,)
            order = np.argpartition(Y @ axis, idx.size // 2)
            new[idx[order[idx.size // 2 :]]] += 1
        labels = new
    return labels


def _labels(blocks_arg, n: int, name: str) -> np.ndarray:
    """Block labels (n,) from a block size (contiguous blocks of that many tokens) or a label array."""
    if isinstance(blocks_arg, (int, np.integer)) and not isinstance(blocks_arg, bool):
        if blocks_arg < 1:
            raise ValueError(f"{name}: expected a block size >= 1 or an integer label array, got {blocks_arg!r}")
        return np.arange(n) // int(blocks_arg)
    lab = np.asarray(blocks_arg)
    if lab.shape != (n,) or not np.issubdtype(lab.dtype, np.integer) or (n and lab.min() < 0):
        raise ValueError(
            f"{name}: expected a block size or non-negative integer labels of shape ({n},), got shape "
            f"{lab.shape}, dtype {lab.dtype}"
        )
    return lab.astype(np.int64)


def _group(values: np.ndarray, lab: np.ndarray, B: int, ufunc, empty: float) -> np.ndarray:
    """``ufunc`` (np.maximum / np.minimum) of ``values`` (n, ...) per label: (B, ...); ``empty`` for no member."""
    order = None if (lab[1:] >= lab[:-1]).all() else np.argsort(lab, kind="stable")  # sorted labels: no sort
    sl = lab if order is None else lab[order]
    starts = np.flatnonzero(np.r_[True, sl[1:] != sl[:-1]])  # first row of each present label
    out = np.full((B,) + values.shape[1:], empty)
    out[sl[starts]] = ufunc.reduceat(values if order is None else values[order], starts, axis=0)
    return out


def _stats(Z: np.ndarray, lab: np.ndarray, B: int, O: np.ndarray):
    """Per-block centre (B, d), radius (B,), max norm (B,), rotated box lower/upper (B, d), token count (B,)."""
    d = Z.shape[1]
    cnt = np.bincount(lab, minlength=B)  # (B,)
    cen = np.zeros((B, d))
    for t in range(d):
        cen[:, t] = np.bincount(lab, weights=Z[:, t], minlength=B)
    cen /= np.maximum(cnt, 1)[:, None]  # (B, d) any float vectors will do
    rad = _group(up(norms_up(Z - cen[lab]) * rel(1)), lab, B, np.maximum, 0.0)  # fl(z - c) within u|z - c|
    mn = _group(norms_up(Z), lab, B, np.maximum, 0.0)
    ZO, delta = _rotate(Z, O)  # (n, d), (d,)
    blo = down(_group(ZO, lab, B, np.minimum, 0.0) - delta)  # (B, d); an empty block: a point box (bound 0 below)
    bhi = up(_group(ZO, lab, B, np.maximum, 0.0) + delta)
    return cen, rad, mn, blo, bhi, cnt


def _pair_bounds(q, k, b: float, lq: np.ndarray, lk: np.ndarray, O: np.ndarray, tail: bool = True) -> np.ndarray:
    r"""Per pair of blocks (Bq, Bk): $|\beta|$ times the least of its CS, rotated-box, ball and tail bounds."""
    Bq, Bk = int(lq.max()) + 1, int(lk.max()) + 1
    cq, rq, mq, loq, hiq, nq = _stats(q, lq, Bq, O)
    ck, rk, mk, lok, hik, nk = _stats(k, lk, Bk, O)
    cs = up(mq[:, None] * mk[None, :])  # (Bq, Bk)
    defect = up(cs * orthogonality_defect(O))
    box = up(_box_max(loq[:, None], hiq[:, None], lok[None], hik[None]) + defect)  # (Bq, Bk)
    cc, dc = matmul_encl(cq, ck.T)  # (Bq, Bk) centre products
    ncq, nck = norms_up(cq), norms_up(ck)
    ball = up(up(np.abs(cc) + dc) + up(rq[:, None] * nck[None, :]))
    ball = up(up(ball + up(rk[None, :] * ncq[:, None])) + up(rq[:, None] * rk[None, :]))
    out = np.minimum(np.minimum(cs, box), ball)  # (Bq, Bk)
    out = up(b * (np.minimum(out, _pair_tail(q, k, lq, lk, Bq, Bk)) if tail else out))
    out[np.isnan(out)] = np.inf  # NaN only from inf - inf after an overflow: no finite bound for that pair
    out[(nq == 0)[:, None] | (nk == 0)[None, :]] = 0.0  # empty blocks hold no logit
    return out


def _pair_tail(q, k, lq: np.ndarray, lk: np.ndarray, Bq: int, Bk: int) -> np.ndarray:
    r"""Per pair of blocks, the norm-tail bound of :func:`tail_bound` with the global top t = min(8 d, n, m):
    $\max(\max_{i \in I \cap T_q, j \in J}, \max_{i \in I, j \in J \cap T_k}) |q_i\cdot k_j|$ (float, plus one
    scalar rounding term) or the CS bound of the pair's non-tail tokens. (Bq, Bk); O(t (n + m) d)."""
    d = q.shape[1]
    nq, nk = norms_up(q), norms_up(k)  # (n,), (m,)
    t = min(8 * d, q.shape[0], k.shape[0])
    Tq, Tk = np.argsort(-nq, kind="stable")[:t], np.argsort(-nk, kind="stable")[:t]  # (t,) each
    err = up(up(gam(d) * prod_up(float(nq.max()), float(nk.max()))) + d * TINY)
    P1 = _group(np.abs(q[Tq] @ k.T).T, lk, Bk, np.maximum, 0.0)  # (Bk, t)
    P2 = _group(np.abs(q @ k[Tk].T), lq, Bq, np.maximum, 0.0)  # (Bq, t)
    E = np.maximum(_group(P1.T, lq[Tq], Bq, np.maximum, 0.0), _group(P2.T, lk[Tk], Bk, np.maximum, 0.0).T)
    nq[Tq], nk[Tk] = 0.0, 0.0  # the rest: tokens outside the tails
    rest = up(_group(nq, lq, Bq, np.maximum, 0.0)[:, None] * _group(nk, lk, Bk, np.maximum, 0.0)[None, :])
    return np.maximum(up(E + err), rest)  # (Bq, Bk)


def best_basis(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """The candidate of :func:`bases` with the least rotated-box bound (d, d)."""
    return _best_rotation(q, k)[1]


def _best_rotation(q: np.ndarray, k: np.ndarray) -> tuple[float, np.ndarray]:
    """(least rotated-box bound at beta = 1, its basis) over :func:`bases`."""
    return min(((rotated_bound(q, k, 1.0, O), i, O) for i, O in enumerate(bases(q, k))), key=lambda x: x[:2])[::2]


@overflow_safe
def block_bounds(q, k, beta, q_blocks, k_blocks) -> np.ndarray:
    r"""Rigorous bounds of $\max_{i \in I, j \in J} |\beta q_i \cdot k_j|$ for every pair of token blocks (I, J).

    ``q_blocks``, ``k_blocks``: a block size c (contiguous blocks ``[0, c), [c, 2c), ...`` as
    :func:`fastpath.causal.blocks`) or integer labels of shape (n,) / (m,). Returns (Bq, Bk), Bq = number of
    query blocks; each entry is the least of the pair's CS, rotated-box, ball and norm-tail bounds (module
    docstring), and 0 for an empty block. O(n d^2 + Bq Bk d).
    """
    q, k, b = _check(q, k, beta)
    lq, lk = _labels(q_blocks, q.shape[0], "q_blocks"), _labels(k_blocks, k.shape[0], "k_blocks")
    return _pair_bounds(q, k, b, lq, lk, best_basis(q, k))


@overflow_safe
def cluster_bound(q, k, beta, levels: int = LEVELS, O: np.ndarray | None = None, tail: bool = True) -> float:
    """Ball-cluster bound: the largest per-pair bound over the clusters of :func:`tree_labels` (module docstring);
    boxes in the basis O (default :func:`best_basis`); ``tail=False`` leaves out the per-pair norm tail (to report
    what the balls alone give). Tokens are reordered by cluster first (no sort per group)."""
    q, k, b = _check(q, k, beta)
    O = best_basis(q, k) if O is None else O
    lq, lk = tree_labels(q @ O, levels), tree_labels(k @ O, levels)  # (n,), (m,)
    oq, ok = np.argsort(lq, kind="stable"), np.argsort(lk, kind="stable")
    return float(_pair_bounds(q[oq], k[ok], b, lq[oq], lk[ok], O, tail).max())


@overflow_safe
def tail_bound(q, k, beta, budget: int | None = None) -> float:
    """Norm-staircase bound (:func:`fastpath.staircase.staircase_bound`, budget default
    :func:`fastpath.staircase.default_budget`), at most Cauchy-Schwarz."""
    q, k, b = _check(q, k, beta)
    budget = default_budget(q.shape[0], k.shape[0], q.shape[1]) if budget is None else budget
    return prod_up(b, staircase_bound(q, k, norms_up(q), norms_up(k), b, budget)[0])


def all_bounds(q, k, beta) -> dict[str, float]:
    """Every bound of the module by name, each on its own (for reports and tests); ``cluster`` without the tail."""
    return {"cs": cs_bound(q, k, beta), "box": box_bound(q, k, beta), "rotated": rotated_bound(q, k, beta),
            "cluster": cluster_bound(q, k, beta, tail=False), "tail": tail_bound(q, k, beta)}  # fmt: skip


class Ranges(NamedTuple):
    """:func:`logit_bound`, :func:`abs_logit_bound`, exact logits evaluated (counted work), :func:`cs_bound`; no nan."""

    signed: float
    absolute: float
    pairs: int
    cs: float = math.nan  # :func:`cs_bound` of the same q, k, beta, from the shared norms (nan: not computed)


def logit_ranges(q, k, beta, *, rtol: float = 0.0, budget: int | None = None, eps: float | None = None,
                 kind: str = "chebyshev") -> Ranges:  # fmt: skip
    r"""Both ranges at once, sharing the row norms (those of $|q|$ are those of q), the Cauchy-Schwarz bound and
    the staircase's sort; O((n + m) d^2 + budget d) with ``rtol > 0``.

    Per range: Cauchy-Schwarz and the box first, then the staircase (:mod:`fastpath.staircase`) with the least of
    them as its cap; with ``rtol = 0`` (:func:`logit_bound`, :func:`abs_logit_bound`) an unconverged staircase
    falls back to :func:`rotated_bound` and :func:`cluster_bound` (O(n d^2 levels) plus a sort); with
    ``rtol > 0`` (the fast path, :data:`FAST_RTOL`) the staircase stops early once the bound is within ``rtol`` of a
    rigorous lower bound of the true maximum or on its grid point (:func:`fastpath.staircase.good_enough`) and no
    fallback runs; with ``eps`` and ``kind`` the signed range also stops at the degree rule of
    :mod:`fastpath.staircase`. Every value is a rigorous upper bound either way. q (n, d), k (m, d).
    """
    if isinstance(rtol, bool) or not isinstance(rtol, int | float) or not (math.isfinite(rtol) and rtol >= 0):
        raise ValueError(f"rtol: expected a finite number >= 0, got {rtol!r}")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 0):
        raise ValueError(f"budget: expected None or an integer >= 0 (exact logits to evaluate), got {budget!r}")
    if eps is not None and (isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < 1):
        raise ValueError(f"eps: expected None or a number in (0, 1), got {eps!r}")
    degree = None if eps is None else (lambda R: certified_degree(R, float(eps), kind))
    return _ranges(*_check(q, k, beta), (True, True), rtol, budget, degree)


def _ranges(q, k, b: float, which: tuple[bool, bool], rtol: float, budget: int | None, degree=None) -> Ranges:
    """:func:`logit_ranges` on checked input; ``which``: (signed, absolute) to compute (``nan`` for the other);
    ``degree`` (the degree rule) for the signed range only: the absolute one scales rounding, not the degree."""
    n, m, d = q.shape[0], k.shape[0], q.shape[1]
    budget = default_budget(n, m, d) if budget is None else budget
    out, pairs = [math.nan, math.nan], 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        nq, nk = norms_up(q), norms_up(k)  # (n,), (m,) shared: |q| has the norms of q
        top = top_norms(nq, nk, d)  # shared likewise
        cs = prod_up(float(nq.max()), float(nk.max()))
        ext = directed.col_min_max(q) + directed.col_min_max(k)  # (d,) x 4; those of |q|, |k| follow from them
        boxes = (ext, directed.abs_box(*ext[:2]) + directed.abs_box(*ext[2:]))
        for s, (x, y) in enumerate(((q, k), (np.abs(q), np.abs(k)))):
            if not which[s]:
                continue
            box = float(_box_max(*boxes[s]))
            tail, done, p = staircase_bound(x, y, nq, nk, b, budget, cap=min(cs, box), rtol=rtol, top=top,
                                            degree=degree if s == 0 else None)  # fmt: skip
            pairs += p
            r = prod_up(b, min(cs, box, tail))
            if not done and rtol <= 0:  # fallbacks: the rotated box and the ball clusters (+ their per-pair tail)
                rot, O = _best_rotation(x, y)
                r = min(r, prod_up(b, rot), cluster_bound(x, y, b, O=O))
                pairs += min(8 * d, n, m) * (n + m)  # the cluster tail's top rows against all
            out[s] = math.inf if r != r else r
    return Ranges(*out, pairs, min(math.inf, prod_up(b, float(nq.max()), float(nk.max()))))  # cs_bound; nan -> inf


@overflow_safe
def logit_bound(q, k, beta) -> float:
    r"""Rigorous upper bound of $\max_{ij} |\beta q_i \cdot k_j|$: the least of :func:`cs_bound`,
    :func:`box_bound`, :func:`tail_bound`, and, unless the tail bound converged (it is then the exact maximum plus
    its rounding term), :func:`rotated_bound` and :func:`cluster_bound` (in the best basis); each covers float64
    rounding (module docstring). q (n, d), k (m, d); O(n d^2 levels), never n m. :func:`logit_ranges` with
    ``rtol = 0``."""
    return _ranges(*_check(q, k, beta), (True, False), 0.0, None).signed


def abs_logit_bound(q, k, beta) -> float:
    r"""Rigorous upper bound of $\max_{ij} |\beta|\, |q_i| \cdot |k_j|$ (entrywise absolute values): the range that
    *rounding* bounds need, $\ge$ the logit range and $\le$ Cauchy-Schwarz.

    A float64 dot product errs by $\gamma_d |q|\cdot|k|$, and the monomial features satisfy
    $\sum_{|\alpha| = t} \binom{t}{\alpha} |q^\alpha k^\alpha| = (|q|\cdot|k|)^t$, so a rounding bound written with
    $P_{abs}(R) = \sum_t |c_t| R^t$ needs this R, not :func:`logit_bound`. :func:`logit_bound` of $|q|, |k|$."""
    return _ranges(*_check(q, k, beta), (False, True), 0.0, None).absolute


def __getattr__(name: str):
    """The re-centring API lives in :mod:`fastpath.recentre` (it builds on these bounds); re-exported here."""
    if name in ("SPREAD_MAX", "candidate_centres", "centres", "key_spread", "recentred_range"):
        from fastpath import recentre

        return getattr(recentre, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FAST_RTOL", "LEVELS", "Ranges", "abs_logit_bound", "all_bounds", "bases", "best_basis", "block_bounds",
           "box_bound", "cluster_bound", "cs_bound", "logit_bound", "logit_ranges",
           "orthogonality_defect", "rotated_bound", "tail_bound", "tree_labels"]  # fmt: skip
