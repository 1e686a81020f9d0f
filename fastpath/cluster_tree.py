r"""Clusters of tokens and the per-pair plan of the clustered kernel (issue 14 item 3): tree, radii, degrees, cost.

Paper: none (beyond Lemma I.1, used per pair); issue 14 items 2 and 3. Queries and keys (rows of q, k, width d_h)
are split by a **principal-axis tree**: every node is cut at the median of its tokens' projection on the node's
leading principal direction (eigenvector of the d_h×d_h covariance). Level l has $2^l$ clusters, each a contiguous
range of one permutation, so every level's statistics are segment reductions of the permuted tokens.

Per cluster: centre $c$ (the computed mean; any point works, the re-centring identity is exact for every c),
the computed offsets $\delta = \mathrm{fl}(z - c)$, the radius $\rho = \max\|\delta\|_2$ and the box
$b_e = \max|\delta_e|$. Per pair (I, J) of a query and a key cluster,

.. math::
    |\beta\,\delta q_i \cdot \delta k_j| \le R_{IJ} := |\beta| \min(\rho_I \rho_J,\ b_I \cdot b_J)\,(1 + 4(d_h+2)u)

(Cauchy-Schwarz or the coordinate box, whichever is smaller; the factor covers the float64 evaluation of the
norms and the dot product, as in :func:`fastpath.lowrank.logit_range`). A pair is **polynomial** when a
certified polynomial on $[-R_{IJ}, R_{IJ}]$ (:func:`fastpath.poly.certified_poly`, R rounded up to its grid) of
rank $r = \binom{d_h+g}{g}$ costs fewer multiply-adds per product column than the dense block,
$r (n_I + n_J) w < n_I n_J (w + 3(d_h + 2))$, else **exact**: w is the number of product columns of the
head's three passes (forward $1 + d_h$, backward $d + d_h d$ and $d_h + d + d_h d$), and a dense tile recomputes its
logits and exp in each pass. The level
(number of clusters) is the one of smallest modelled cost, a Python overhead per pair included, searched upwards
from one cluster until the cost rose at two consecutive levels (k-means per level is the search's main cost).

Shape legend: n tokens, d_h head width, P clusters per side, L tree levels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fastpath.features import rank_of
from fastpath.lowrank import U_ROUND
from fastpath.poly import GRID_STEPS_PER_OCTAVE, R_MIN, PolyCert, certified_poly, degree_lower_estimate, round_up_R
from fastpath.work import Work, mm

MIN_LEAF = 32  # fewest tokens per cluster
MAX_LEVEL = 8  # at most 256 clusters per side (65536 pairs; the per-pair Python overhead is in the cost model)
KMEANS_ITERS = 4  # Lloyd iterations after the tree initialisation
CAUSAL_BLOCKS = 16  # causal: at most this many time blocks (the dense diagonal costs about n^2 / blocks)
CAUSAL_MIN_TOKENS = 256  # causal: fewest tokens per time block
PASSES = 3  # products per head: the forward's f [1 | h], the backward's f Y and f^T Z
PAIR_OVERHEAD = 20_000  # modelled multiply-adds per pair and pass for the Python bookkeeping (a few microseconds)


def pca_tree(Z: np.ndarray, levels: int, work: Work) -> tuple[np.ndarray, list[np.ndarray]]:
    """Principal-axis median tree: (perm (n,), bounds per level l (2^l + 1,)); level-l clusters are contiguous
    ranges ``perm[bounds[l][c] : bounds[l][c + 1]]``."""
    n = Z.shape[0]
    perm = np.arange(n)
    bounds = [np.array([0, n])]
    for _ in range(levels):
        b = bounds[-1]
        nb = [0]
        for lo, hi in zip(b[:-1], b[1:], strict=True):
            seg = Z[perm[lo:hi]]  # (m, d_h)
            cen = seg - seg.mean(axis=0)
            _, vecs = np.linalg.eigh(cen.T @ cen)  # (d_h, d_h), ascending eigenvalues
            proj = cen @ vecs[:, -1]  # (m,)
            mid = (hi - lo) // 2
            order = np.argpartition(proj, mid) if hi - lo > 1 else np.arange(hi - lo)
            perm[lo:hi] = perm[lo:hi][order]
            nb += [lo + mid, hi]
            work.add(3 * (hi - lo) * Z.shape[1])
        bounds.append(np.array(nb))
    return perm, bounds


@dataclass
class Side:
    """One side (queries or keys) at one level: clusters as index arrays, centres, offsets, radii, boxes."""

    idx: list[np.ndarray]  # per cluster: token indices (n_I,)
    C: np.ndarray  # (P, d_h) centres
    delta: list[np.ndarray]  # per cluster: (n_I, d_h) computed offsets fl(z - c)
    rho: np.ndarray  # (P,) max ||delta||_2
    box: np.ndarray  # (P, d_h) max |delta_e|
    label: np.ndarray  # (n,) cluster of each token
    block: np.ndarray  # (P,) time block of each cluster (causal; all 0 otherwise)

    @property
    def sizes(self) -> np.ndarray:
        return np.array([len(i) for i in self.idx])


def kmeans(Z: np.ndarray, perm: np.ndarray, b: np.ndarray, iters: int, work: Work) -> list[np.ndarray]:
    """Lloyd's k-means started from the tree clusters ``perm[b[c]:b[c+1]]`` (deterministic: no random seed needed);
    returns the non-empty clusters as index arrays. Compact cells in the dense core, unlike balanced median cuts
    whose outer cells reach into the tails in some coordinate."""
    C = np.stack([Z[perm[lo:hi]].mean(axis=0) for lo, hi in zip(b[:-1], b[1:], strict=True)])  # (P, d_h)
    z2 = (Z * Z).sum(axis=1)[:, None]  # (n, 1)
    for _ in range(iters):
        lab = np.argmin(z2 - 2 * mm(work, Z, C.T) + (C * C).sum(axis=1)[None, :], axis=1)  # (n,)
        cnt = np.bincount(lab, minlength=len(C))
        keep = cnt > 0
        C = np.stack([np.bincount(lab, weights=Z[:, e], minlength=len(C)) for e in range(Z.shape[1])], axis=1)
        C = C[keep] / cnt[keep][:, None]
        work.add(2 * Z.size)
    lab = np.argmin(z2 - 2 * mm(work, Z, C.T) + (C * C).sum(axis=1)[None, :], axis=1)
    order = np.argsort(lab, kind="stable")
    cuts = np.searchsorted(lab[order], np.arange(len(C) + 1))
    return [order[lo:hi] for lo, hi in zip(cuts[:-1], cuts[1:], strict=True) if hi > lo]


def side_at(Z: np.ndarray, idx: list[np.ndarray], work: Work, block: np.ndarray | None = None) -> Side:
    """Statistics of the clusters ``idx`` (token index arrays) of the rows of Z (module docstring)."""
    C = np.stack([Z[i].mean(axis=0) for i in idx])  # (P, d_h)
    delta = [Z[i] - C[c] for c, i in enumerate(idx)]
    rho = np.array([float(np.sqrt((x * x).sum(axis=1)).max()) for x in delta])  # (P,)
    box = np.stack([np.abs(x).max(axis=0) for x in delta])  # (P, d_h)
    label = np.empty(Z.shape[0], dtype=np.int64)
    for c, i in enumerate(idx):
        label[i] = c
    work.add(4 * Z.size)
    return Side(idx, C, delta, rho, box, label, np.zeros(len(idx), dtype=np.int64) if block is None else block)


def pair_ranges(qs: Side, ks: Side, beta: float) -> np.ndarray:
    r"""$R_{IJ}$ of the module docstring, (P_Q, P_K): a rigorous bound of $|\beta\,\delta q_i\cdot\delta k_j|$."""
    d_h = qs.C.shape[1]
    cs = np.outer(qs.rho, ks.rho)  # (P_Q, P_K)
    bx = qs.box @ ks.box.T  # (P_Q, P_K)
    return abs(beta) * np.minimum(cs, bx) * (1 + 4 * (d_h + 2) * U_ROUND)


@dataclass
class PairPlan:
    """Which pairs are polynomial, their certificates and ranks; the modelled cost of the level."""

    R: np.ndarray  # (P_Q, P_K) pair ranges
    allowed: np.ndarray  # (P_Q, P_K) bool: some entry unmasked (causal: key block <= query block; else all)
    diag: np.ndarray  # (P_Q, P_K) bool: same time block (causal: computed dense with the token mask)
    poly: np.ndarray  # (P_Q, P_K) bool
    rank: np.ndarray  # (P_Q, P_K) int, 0 for exact pairs
    certs: dict  # (I, J) -> PolyCert for polynomial pairs
    cost: float


def _grid(R: np.ndarray) -> np.ndarray:
    """:func:`fastpath.poly.round_up_R` elementwise (vectorised; every value is checked to be a grid point >= R)."""
    j = np.ceil(np.log2(np.maximum(R, R_MIN)) * GRID_STEPS_PER_OCTAVE - 1e-12)
    Rg = 2.0 ** (j / GRID_STEPS_PER_OCTAVE)
    Rg = np.where(Rg < R, 2.0 ** ((j + 1) / GRID_STEPS_PER_OCTAVE), Rg)
    Rg = np.where(R <= R_MIN, R_MIN, Rg)
    for v in np.unique(Rg):
        if round_up_R(float(v)) != v or not (Rg >= R).all():
            raise AssertionError(f"grid rounding of the pair ranges failed at {v!r}")  # pragma: no cover
    return Rg


def _cert_or_none(R: float, eps: float, kind: str) -> PolyCert | None:
    try:
        return certified_poly(R, eps, kind)
    except ValueError:  # no certified polynomial at this eps on this range: the pair is computed exactly
        return None


RULES = ("cost", "polynomial")  # how plan_pairs chooses a pair's method (module docstring)


def check_plan_args(rule: str, pair_range) -> None:
    """Validates the ``rule`` and ``pair_range`` parameters of :func:`plan_pairs` (ValueError / TypeError)."""
    if not isinstance(rule, str) or rule not in RULES:
        raise ValueError(f"rule: expected one of {RULES}, got {rule!r}")
    if not callable(pair_range):
        raise TypeError(f"pair_range: expected a callable (qs, ks, beta) -> (P_Q, P_K) array, got {pair_range!r}")


def plan_pairs(qs: Side, ks: Side, beta: float, eps: float, kind: str, causal: bool = False,
               width: int | None = None, *, rule: str = "cost", pair_range=pair_ranges) -> PairPlan:  # fmt: skip
    """Polynomial or exact per pair by the cost rule of the module docstring; one certificate per grid point of R.

    ``rule``: ``"cost"`` (default, the cost rule) or ``"polynomial"``: every unmasked off-diagonal pair whose range
    has a certified polynomial at ``eps`` is polynomial whatever it costs (the others stay exact), so that small
    inputs reach the polynomial pairs (checks, experiments). ``pair_range``: the function (qs, ks, beta) ->
    $R_{IJ}$ (P_Q, P_K) that the polynomials are certified on, default :func:`pair_ranges` (the rigorous bound);
    another one is the caller's claim (e.g. a mutant of ``fast.clustered.certificate``), its values must be finite
    and >= 0.
    """
    check_plan_args(rule, pair_range)
    d_h = qs.C.shape[1]
    w = width or (1 + d_h) + 2 * (d_h + d_h * d_h) + d_h  # columns of the three passes (module docstring)
    R = np.asarray(pair_range(qs, ks, beta), dtype=float)  # (P_Q, P_K)
    if R.shape != (len(qs.idx), len(ks.idx)) or not (np.isfinite(R).all() and (R >= 0).all()):
        raise ValueError(f"pair_range: expected finite ranges >= 0 of shape {(len(qs.idx), len(ks.idx))}, got shape "
                         f"{R.shape} (min {R.min() if R.size else None})")  # fmt: skip
    nI, nJ = qs.sizes[:, None], ks.sizes[None, :]  # (P_Q, 1), (1, P_K)
    allowed = ks.block[None, :] <= qs.block[:, None]  # (P_Q, P_K)
    diag = (ks.block[None, :] == qs.block[:, None]) & causal
    exact_cost = (nI * nJ * (w + PASSES * (d_h + 2))).astype(float)  # (P_Q, P_K)  logits and exp once per pass
    Rg = _grid(R)  # (P_Q, P_K) R rounded up to the grid of fastpath.poly
    thr = float((exact_cost / ((nI + nJ) * w)).max())  # no rank at or above this beats any dense block
    rank_g, certs_g = np.zeros(Rg.shape, dtype=np.int64), {}
    for v in np.unique(Rg):  # one certificate per grid point; an optimistic degree first rules out hopeless ranges
        cert = None
        if rule == "polynomial" or rank_of(d_h, degree_lower_estimate(float(v), eps)) < thr:
            cert = _cert_or_none(float(v), eps, kind)
        if cert is not None:
            certs_g[float(v)] = cert
            rank_g[Rg == v] = rank_of(d_h, cert.degree)
    win = (rank_g > 0) & allowed & ~diag
    if rule == "cost":
        win &= rank_g * (nI + nJ) * w < exact_cost
    rank = np.where(win, rank_g, 0)
    certs = {(int(I), int(J)): certs_g[float(Rg[I, J])] for I, J in zip(*np.nonzero(win), strict=True)}
    poly = rank > 0
    feat = sum(int(rank[I].max()) * n for I, n in enumerate(qs.sizes)) + sum(
        int(rank[:, J].max()) * n for J, n in enumerate(ks.sizes)
    )
    cost = np.where(poly, rank * (nI + nJ) * w, exact_cost)
    cost = float(np.where(allowed, cost, 0).sum()) + feat + PAIR_OVERHEAD * int(allowed.sum())
    return PairPlan(R, allowed, diag, poly, rank, certs, cost)


def _sides(Z: np.ndarray, lev: int, tblocks: list[np.ndarray], work: Work) -> Side:
    """k-means clusters at tree level ``lev`` inside each time block (one block: the whole sequence)."""
    idx, blk = [], []
    for t, tok in enumerate(tblocks):
        perm, b = pca_tree(Z[tok], lev, work)
        cl = kmeans(Z[tok], perm, b[lev], KMEANS_ITERS, work)
        idx += [tok[c] for c in cl]
        blk += [t] * len(cl)
    return side_at(Z, idx, work, np.array(blk, dtype=np.int64))


def choose_level(q: np.ndarray, k: np.ndarray, beta: float, eps: float, kind: str, work: Work,
                 level: int | None = None, causal: bool = False, width: int | None = None, *, rule: str = "cost",
                 pair_range=pair_ranges) -> tuple[Side, Side, PairPlan]:  # fmt: skip
    """Clusters of q and k at the level of smallest modelled cost (or the given ``level``), and their plan
    (``rule``, ``pair_range``: those of :func:`plan_pairs`).

    Causal: the sequence is cut into :data:`CAUSAL_BLOCKS` (at most; >= :data:`CAUSAL_MIN_TOKENS` tokens each)
    contiguous time blocks and clustered inside each, so a pair is either masked out (keys after queries), below
    the diagonal (no mask: polynomial or dense) or on it (dense with the token mask).
    """
    check_plan_args(rule, pair_range)
    n = q.shape[0]
    nb = max(1, min(CAUSAL_BLOCKS, n // CAUSAL_MIN_TOKENS)) if causal else 1
    tblocks = np.array_split(np.arange(n), nb)
    top = max(0, min(MAX_LEVEL, int(math.log2(max(len(tblocks[-1]) // MIN_LEAF, 1)))))
    if level is not None and (isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= top):
        raise ValueError(f"level: expected an integer in [0, {top}] for n = {n} tokens, got {level!r}")
    best, worse = None, 0
    for lev in [level] if level is not None else range(top + 1):  # upwards until the cost rose twice in a row
        qs, ks = _sides(q, lev, tblocks, work), _sides(k, lev, tblocks, work)
        plan = plan_pairs(qs, ks, beta, eps, kind, causal, width, rule=rule, pair_range=pair_range)
        worse = 0 if best is None or plan.cost < best[2].cost else worse + 1
        if worse == 0:
            best = (qs, ks, plan)
        if worse == 2:
            break
    return best


__all__ = ["CAUSAL_BLOCKS", "CAUSAL_MIN_TOKENS", "KMEANS_ITERS", "MAX_LEVEL", "MIN_LEAF", "RULES", "PairPlan", "Side",
           "check_plan_args", "choose_level", "kmeans", "pair_ranges", "pca_tree", "plan_pairs", "side_at"]  # fmt: skip
