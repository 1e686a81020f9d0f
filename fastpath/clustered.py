r"""The clustered softmax kernel: exact re-centring per cluster pair, a certified polynomial or the dense block.

Paper: Lemma I.1 (applied per pair), Lemma C.14 (normalised products), Lemmas I.7/I.8 orders (the backward from
two products, as on the causal path of :mod:`fastpath.layer`); issue 14 items 2 and 3. Clusters, ranges and the
plan: :mod:`fastpath.cluster_tree`. For a query cluster I (centre $c_I$) and a key cluster J (centre $c_J$), with
$\delta q_i = q_i - c_I$, $\delta k_j = k_j - c_J$, the identity (exact for any centres)

.. math::
    e^{\beta q_i\cdot k_j} = \underbrace{e^{\beta q_i\cdot c_J - \beta c_I\cdot c_J}}_{\text{row factor}}\;
    e^{\beta\,\delta q_i\cdot\delta k_j}\;\underbrace{e^{\beta c_I\cdot k_j}}_{\text{column factor}}

leaves only $x = \beta\,\delta q\cdot\delta k \in [-R_{IJ}, R_{IJ}]$ to the polynomial $P_{IJ}$ (certified relative
error $\varepsilon_{IJ}$, :func:`fastpath.poly.certified_poly`), lifted by :mod:`fastpath.features`:
$P_{IJ}(x) = \Phi_{IJ}(\delta q)\cdot\Psi(\delta k)$. Log-domain shifts keep every factor in $(0, 1]$: with
$a_{iJ} = \beta q_i\cdot c_J - \beta c_I\cdot c_J$, $b_{jI} = \beta c_I\cdot k_j$, $\bar b_{IJ} = \max_{j\in J} b_{jI}$,

.. math::
    m_i = \max_J (a_{iJ} + \bar b_{IJ} + R_{IJ}),\quad \text{row}_{iJ} = e^{a_{iJ} + \bar b_{IJ} - m_i},\quad
    \text{col}_{jI} = e^{b_{jI} - \bar b_{IJ}},\quad
    \tilde A_{ij} = \text{row}_{iJ}\,P_{IJ}(x_{ij})\,\text{col}_{jI} \approx e^{\beta q_i\cdot k_j - m_i};

exact pairs use $e^{\mathrm{fl}(\beta q_i\cdot k_j) - m_i}$. The shift $e^{-m_i}$ is a per-row factor, so it cancels
in $\tilde f = \tilde A / (\tilde A 1)$; :attr:`ClusterOp.D` is the shifted normaliser $e^{-m} \odot \tilde D$.

**Certificate (Step 1 of :mod:`fastpath.certificate`).** Entrywise $|\tilde A_{ij}/A_{ij} - 1| \le \varepsilon_i :=
\max_J \varepsilon_{IJ} + (1 + \max_J \varepsilon_{IJ})\,e_r$ (exact pairs: $\varepsilon_{IJ} = 0$), where $e_r =
\mathrm{expm1}(\delta + 4u)$ bounds the float64 evaluation of the exponents: with $B = |\beta| Q K$, Q and K the largest
norms of queries/keys and centres, the three dot products are off by $\le \gamma_{d_h+1}B$ each, the $\le 6$ sums
of exponents of magnitude $\le 10B$ by $\le 60uB$, and the rounded offsets move x by $\le 12uB$, so
$\delta = (3\gamma_{d_h+2} + 100u)B$ ($4u$: the two exp evaluations). The rounding of the products gets
$\kappa = \max_{IJ} P^{abs}_{IJ}(R_{IJ}) e^{R_{IJ}}$ ($\sum_\alpha |\Phi_\alpha||\Psi_\alpha| \le P^{abs}(R)$, the
factors are positive, and $\tilde A \ge$ factors $\cdot (1-\varepsilon)e^{-R}$; 1 for exact pairs), used by
:func:`fastpath.bounds.rounding_rel`. Entries are refused (ValueError) when their exponent can fall below -690.

Cost of a product with w columns: $\sum_{IJ\ \mathrm{poly}} r_{IJ}(n_I + n_J) w + \sum_{IJ\ \mathrm{exact}}
n_I n_J (d_h + 1 + w)$ multiply-adds, counted (:mod:`fastpath.work`); features are built once per cluster at its
largest degree (a degree-g' feature block is the first $\binom{d_h+g'}{g'}$ rows of the degree-g one).
**Causal** (mask $i \ge j$): tokens are clustered inside contiguous time blocks (:mod:`fastpath.cluster_tree`);
pairs whose keys all come after their queries are skipped (factor 0), pairs of different blocks are unmasked
(polynomial or dense), pairs of the same block are dense with the token mask; $m_i$ and $\varepsilon_i$ run over
the unmasked pairs only.

Shape legend: n tokens, d width, d_h head width, P clusters per side, r rank, w product columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fastpath.cluster_tree import PairPlan, Side, check_plan_args, choose_level, pair_ranges
from fastpath.features import feature_scale, monomial_plan, monomials, rank_of
from fastpath.layer import HeadState, _dense_head
from fastpath.lowrank import U_ROUND, gamma
from fastpath.poly import PolyCert
from fastpath.work import Work, mm

EXP_FLOOR = -690.0  # smallest exponent of a shifted entry we accept (exp(-690) ~ 1e-300 > the float64 normal min)
EXACT_CHUNK = 2048  # keys per dense tile of the exact pairs: tiles of n_I x 2048
DENSE_FALLBACK_MAX = 4096  # all pairs dense: the dense head (n x n in memory) up to this n, the tiles above


@dataclass
class ClusterOp:
    r"""The clustered $\tilde A$ (shifted by $e^{-m}$) and the normalised $\tilde f$ (module docstring)."""

    beta: float
    q: np.ndarray  # (n, d_h)
    k: np.ndarray  # (n, d_h)
    qs: Side
    ks: Side
    plan: PairPlan
    Fq: list  # per query cluster I: (r_I, n_I) monomials of delta q at its largest degree
    Fk: list  # per key cluster J: (r_J, n_J)
    scale: dict  # (I, J) -> (r_IJ,) feature scale a_alpha of P_IJ
    rowf: list  # per I: (n_I, P_K) row factors
    colf: list  # per J: (n_J, P_Q) column factors
    m: np.ndarray  # (n,) row shifts
    kappa: float
    e_round: float
    row_eps: np.ndarray  # (n,) certified entrywise relative error of A~ per row
    D: np.ndarray  # (n,) shifted normaliser A~ 1 (set by :meth:`forward`)
    causal: bool = False

    def _pass(self, Y: np.ndarray, T: bool, work: Work) -> np.ndarray:
        """Unnormalised $\\tilde A Y$ (T False) or $\\tilde A^\\top Y$ (T True): Y (n, w) -> (n, w)."""
        out_s, in_s = (self.ks, self.qs) if T else (self.qs, self.ks)
        F_out, F_in = (self.Fk, self.Fq) if T else (self.Fq, self.Fk)
        fac_out, fac_in = (self.colf, self.rowf) if T else (self.rowf, self.colf)
        rank = self.plan.rank.T if T else self.plan.rank  # (P_out, P_in)
        allowed = self.plan.allowed.T if T else self.plan.allowed  # (P_out, P_in)
        w = Y.shape[1]
        S = {}
        for s, idx in enumerate(in_s.idx):  # input side: Psi_J^T (col_J . Y_J) for every output cluster at once
            Ys, col = Y[idx], rank[:, s]
            for r in np.unique(col[col > 0]):
                os = np.nonzero(col == r)[0]
                V = (fac_in[s][:, os, None] * Ys[:, None, :]).reshape(len(idx), len(os) * w)  # (n_s, |os| w)
                work.add(V.size)
                M = mm(work, F_in[s][:r], V)  # (r, |os| w)
                for t, o in enumerate(os):
                    S[o, s] = M[:, t * w : (t + 1) * w]  # (r, w)
        out = np.zeros((Y.shape[0], w))
        for o, idx in enumerate(out_s.idx):  # output side: row factors times Phi_I (a . S) per pair
            acc, row = np.zeros((len(idx), w)), rank[o]
            for r in np.unique(row[row > 0]):
                ss = np.nonzero(row == r)[0]
                B = np.concatenate([self.scale[(s, o) if T else (o, s)][:, None] * S[o, s] for s in ss], axis=1)
                work.add(B.size)
                Tm = mm(work, F_out[o][:r].T, B).reshape(len(idx), len(ss), w)  # (n_o, |ss|, w)
                acc += np.einsum("nk,nkw->nw", fac_out[o][:, ss], Tm)
                work.add(Tm.size)
            ex = np.nonzero((row == 0) & allowed[o])[0]
            if ex.size:
                acc += self._exact(idx, np.concatenate([in_s.idx[s] for s in ex]), Y, T, work)
            out[idx] = acc
        return out

    def _exact(self, io: np.ndarray, ii: np.ndarray, Y: np.ndarray, T: bool, work: Work) -> np.ndarray:
        r"""Dense tiles $e^{\mathrm{fl}(\beta q_i\cdot k_j) - m_i}$ of the exact pairs: output tokens io, inputs ii."""
        acc = np.zeros((len(io), Y.shape[1]))
        for c0 in range(0, len(ii), EXACT_CHUNK):
            jj = ii[c0 : c0 + EXACT_CHUNK]
            if T:  # rows are keys io, columns queries jj: shift by the columns' m
                L = self.beta * mm(work, self.q[jj], self.k[io].T).T - self.m[jj][None, :]  # (n_o, c)
            else:
                L = self.beta * mm(work, self.q[io], self.k[jj].T) - self.m[io][:, None]  # (n_o, c)
            E = np.exp(L)
            if self.causal:  # the mask i >= j (query i, key j), diagonal included
                E *= (jj[None, :] >= io[:, None]) if T else (io[:, None] >= jj[None, :])
            work.add(2 * L.size)
            acc += mm(work, E, Y[jj])
        return acc

    def forward(self, h: np.ndarray, work: Work) -> np.ndarray:
        r"""Sets $D = \tilde A 1$ and returns $\tilde s = \tilde f h$ from one pass of width $1 + d_h$: (n, d_h)."""
        Y = self._pass(np.concatenate([np.ones((h.shape[0], 1)), h], axis=1), False, work)  # (n, 1 + d_h)
        self.D = Y[:, 0].copy()  # (n,)
        if not (self.D > 0).all():
            raise ValueError(f"eps: the clustered normaliser is not positive (min {self.D.min():g}); expected a "
                             "smaller eps")  # fmt: skip
        return Y[:, 1:] / self.D[:, None]

    def apply(self, Y: np.ndarray, work: Work) -> np.ndarray:
        r"""$\tilde f Y$: Y (n, w) -> (n, w)."""
        return self._pass(Y, False, work) / self.D[:, None]

    def applyT(self, Z: np.ndarray, work: Work) -> np.ndarray:
        r"""$\tilde f^\top Z$: Z (n, w) -> (n, w)."""
        return self._pass(Z / self.D[:, None], True, work)

    def products(self, Y: np.ndarray, Z: np.ndarray, work: Work) -> tuple[np.ndarray, np.ndarray]:
        r"""$(\tilde f Y, \tilde f^\top Z)$, the interface of :func:`fastpath.apply.f_products`."""
        return self.apply(Y, work), self.applyT(Z, work)

    def dense(self) -> np.ndarray:
        r"""$\tilde f$ as an (n, n) matrix, for checks at small n."""
        return self.apply(np.eye(self.q.shape[0]), Work())


def _norm_max(*A: np.ndarray) -> float:
    return max(float(np.sqrt((a * a).sum(axis=1)).max()) for a in A) * (1 + 1e-12)


def _features(side: Side, ranks: np.ndarray, work: Work) -> list:
    """Monomials of each cluster's offsets at the cluster's largest pair degree (rank 0: an empty block)."""
    d_h = side.C.shape[1]
    out = []
    for c, x in enumerate(side.delta):
        r = int(ranks[c])
        g = next(g for g in range(200) if rank_of(d_h, g) >= r) if r else 0
        out.append(monomials(x, monomial_plan(d_h, g)) if r else np.zeros((0, len(x))))
        work.add(rank_of(d_h, g) * len(x) if r else 0)
    return out


def build(q: np.ndarray, k: np.ndarray, beta: float, eps: float, kind: str, budget: int, work: Work,
          level: int | None = None, causal: bool = False, width: int | None = None, *, rule: str = "cost",
          pair_range=pair_ranges) -> ClusterOp:  # fmt: skip
    """The operator of the module docstring for queries q and keys k (n, d_h); refuses (ValueError) a feature store
    over ``budget`` bytes and shifted entries below :data:`EXP_FLOOR`. ``level``, ``rule`` and ``pair_range``: the
    plan's, :func:`fastpath.cluster_tree.choose_level` and :func:`fastpath.cluster_tree.plan_pairs` (defaults: the
    level and the pairs of smallest modelled cost, the rigorous pair ranges)."""
    n, d_h = q.shape
    qs, ks, plan = choose_level(q, k, beta, eps, kind, work, level, causal, width, rule=rule, pair_range=pair_range)
    PQ, PK = plan.R.shape
    rq, rk = plan.rank.max(axis=1), plan.rank.max(axis=0)  # (P_Q,), (P_K,)
    need = 8 * (int((rq * qs.sizes).sum() + (rk * ks.sizes).sum()) + n * (PQ + PK) + 2 * n * EXACT_CHUNK)
    if need > budget:
        raise ValueError(f"memory_budget: the clustered kernel needs {need} bytes (features of {PQ} x {PK} clusters "
                         f"at ranks up to {int(plan.rank.max())}) > memory_budget = {budget} bytes; expected a "
                         "larger memory_budget or a larger eps")  # fmt: skip
    Fq, Fk = _features(qs, rq, work), _features(ks, rk, work)
    scale = {}
    for (I, J), cert in plan.certs.items():
        scale[I, J] = feature_scale(monomial_plan(d_h, cert.degree), cert.coeffs, beta)  # (r_IJ,)
    a = beta * mm(work, q, ks.C.T) - (beta * (qs.C @ ks.C.T))[qs.label]  # (n, P_K)
    b = beta * mm(work, k, qs.C.T)  # (n, P_Q)  b[j, I]
    bbar = np.stack([b[idx].max(axis=0) for idx in ks.idx], axis=1)  # (P_Q, P_K)
    ok = plan.allowed[qs.label]  # (n, P_K) pairs with unmasked entries
    m = np.where(ok, a + bbar[qs.label] + plan.R[qs.label], -np.inf).max(axis=1)  # (n,)
    er = np.where(ok, a + bbar[qs.label] - m[:, None], -np.inf)  # (n, P_K) <= -R_IJ <= 0; masked pairs: factor 0
    ec = b - bbar.T[ks.label]  # (n, P_Q) <= 0
    low = np.array([[er[qi, J].min() for J in range(PK)] for qi in qs.idx])  # (P_Q, P_K)
    low = np.where(plan.allowed, low + np.stack([ec[kj].min(axis=0) for kj in ks.idx], axis=1) - plan.R, 0.0)
    if low.min() < EXP_FLOOR:
        raise ValueError(f"X: the clustered kernel's shifted entries reach exp({low.min():.4g}) below exp({EXP_FLOOR}) "
                         "(float64 underflow would break the relative error); expected a smaller logit range "
                         "(smaller inputs or weights) or method='exact'")  # fmt: skip
    work.add(6 * n * (PQ + PK))
    rowf = [np.exp(er[idx]) for idx in qs.idx]
    colf = [np.exp(ec[idx]) for idx in ks.idx]
    kappa = max([1.0] + [c.abs_sum * math.exp(c.R) for c in plan.certs.values()])
    B = abs(beta) * _norm_max(q, qs.C) * _norm_max(k, ks.C)
    e_round = math.expm1((3 * gamma(d_h + 2) + 100 * U_ROUND) * B + 4 * U_ROUND)
    perr = np.zeros(plan.R.shape)
    for (I, J), cert in plan.certs.items():
        perr[I, J] = cert.err
    pe = perr.max(axis=1)[qs.label]  # (n,)
    row_eps = pe + (1 + pe) * e_round
    return ClusterOp(beta, q, k, qs, ks, plan, Fq, Fk, scale, rowf, colf, m, kappa, e_round, row_eps, np.ones(n),
                     causal)  # fmt: skip


@dataclass
class ClusterHeadState(HeadState):
    """A head on the clustered kernel: :class:`fastpath.layer.HeadState` plus the operator."""

    op: ClusterOp | None = None

    @property
    def rank(self) -> int:
        r"""The largest rank $r_{IJ} = \binom{d_h+g_{IJ}}{g_{IJ}}$ over the polynomial cluster pairs (the width of the
        largest feature block, what the per-pair product cost and memory scale with); exact pairs are dense blocks
        and do not count; n (the dense kernel) when no pair is polynomial."""
        r = int(self.op.plan.rank.max()) if self.op is not None and self.op.plan.rank.size else 0
        return r if r > 0 else self.q.shape[0]


def head_forward_clustered(X, W_Q, W_K, W_V, beta: float, q, k, h, R: float, work: Work, *, eps: float, kind: str,
                           causal: bool, budget: int, degree: int | None = None, exact_forward: bool = False,
                           level: int | None = None, rule: str = "cost", pair_range=pair_ranges,
                           dense_fallback: bool = True) -> ClusterHeadState | None:  # fmt: skip
    r"""``method="clustered"`` of :func:`fastpath.layer.head_forward`: $\tilde s = \tilde f h$ with the operator of
    :func:`build`; q, k, h (n, d_h) and R (the global logit bound) as computed there. None when ``dense_fallback``,
    n <= :data:`DENSE_FALLBACK_MAX` and the plan's modelled cost is not below the dense head's $n^2(w + d_h + 2)$
    (the caller then uses the dense head, ``method="exact"``); above that n the operator's O(n·2048)-memory tiles
    are kept instead of an n×n matrix. ``level``, ``rule``, ``pair_range``: the plan's (:func:`build`);
    ``dense_fallback=False`` with ``rule="polynomial"`` forces the clustered operator at any n (checks,
    experiments on small inputs)."""
    if degree is not None:
        raise ValueError(
            f"degree: method 'clustered' certifies one degree per cluster pair; expected None, got {degree}"
        )
    if not isinstance(dense_fallback, bool):
        raise TypeError(f"dense_fallback: expected a bool, got {dense_fallback!r}")
    check_plan_args(rule, pair_range)
    d, d_h = X.shape[1], q.shape[1]
    width = (1 + d_h) + (d + d_h * d) + (d_h + d + d_h * d)  # the forward's and the backward's product columns
    op = build(q, k, beta, eps, kind, budget, work, level, causal, width, rule=rule, pair_range=pair_range)
    n = q.shape[0]
    if dense_fallback and n <= DENSE_FALLBACK_MAX and op.plan.cost >= n * n * (width + d_h + 2):
        return None  # the dense head (one n x n kernel for all passes) is modelled cheaper: the caller runs it
    certs = list(op.plan.certs.values())
    cert = PolyCert("clustered", max([c.degree for c in certs], default=0), max([c.R for c in certs], default=0.0),
                    eps, float(op.row_eps.max()), np.zeros(1), 1.0)  # fmt: skip
    st = ClusterHeadState(W_Q, W_K, W_V, W_Q @ W_K.T, beta, causal, q, k, h, R, cert, None, np.zeros(0), 1,
                          method="clustered", op=op)  # fmt: skip
    work.add(X.shape[1] * q.shape[1] * X.shape[1])  # W = W_Q W_K^T
    st.s = op.forward(h, work)  # (n, d_h)
    st.D = op.D
    if exact_forward:
        st.exact_forward, st.dense = True, _dense_head(X, W_Q, W_K, W_V, beta, causal, work, budget)
        st.s = st.dense.s
    st.madds = work.madds
    return st


__all__ = [
    "DENSE_FALLBACK_MAX",
    "EXACT_CHUNK",
    "EXP_FLOOR",
    "ClusterHeadState",
    "ClusterOp",
    "build",
    "head_forward_clustered",
]
