r"""Per-row polynomial degree on the low-rank path: each query row pays only for its own logit range.

Issue 14 item 3 ("beyond one expansion"); Lemma I.1 / C.13 (the polynomial method), spec §2.5. The degree of the
global polynomial is set by the worst row, but the logits of query row i lie in $[-R_i, R_i]$ with

.. math::
    R_i = \min\big(R,\ |\beta|\,\|q'_i\|_2 \max_j \|k'_j\|_2\big)

(Cauchy-Schwarz on the polynomial's inputs $q', k'$, evaluated upwards with :mod:`fastpath.directed`; R the head's
certified range), and with inputs like the authors' ($X \sim N(0, 1)$, orthogonal W) $\|q_i\|$ is
$\chi_{d_h}$-distributed: most rows need a much lower degree than the largest.

**The factorization stays exact per row.** The features are ordered by degree (:mod:`fastpath.features`), so the
first $r_p = \binom{d_h + p}{p}$ rows of $\Phi(q), \Psi(k)$ are exactly the monomials of degree $\le p$, and the
scale $a_\alpha$ is applied on the state side. A row i of group g, with its certified polynomial
$P_g(x) = \sum_{t \le p_g} c^{(g)}_t x^t$ (:func:`fastpath.poly.certified_poly` on a range $\ge R_i$), therefore
uses

.. math::
    \tilde A_{ij} = \sum_{|\alpha| \le p_g} a^{(g)}_\alpha \Phi_\alpha(q'_i)\, w_j \Psi_\alpha(k'_j)
    = P_g(\beta q'_i \cdot k'_j)\, w_j,

with $|\tilde A_{ij}/A_{ij} - 1| \le \varepsilon_g$ (the certificate of $P_g$) for every j: the entrywise relative
error of spec §2.5 holds row by row with $\varepsilon_i = \varepsilon_{g(i)} \le \varepsilon$. The key-side states
$S = \Psi^\top Y$ are built once at the full rank r and a group reads $\mathrm{diag}(a^{(g)}) S_{:r_g}$; a
query-side state $\sum_i \Phi(q_i) Z_i$ is accumulated per group and added into its first $r_g$ rows with
$a^{(g)}$. Without the causal mask a permutation of the query rows changes nothing but the order of the rows, so
the queries are grouped by degree (gathered by an index array, outputs scattered back); keys keep their order.
With the mask the token blocks keep their order (the prefix and suffix sums of spec §2.7): within each block the
rows of each group read (prefix) or enter (suffix, scaled by $a^{(g)}$ as they enter, so the keys read the state
unscaled) the first $r_g$ rows of the running state (:meth:`RowDegrees.split`), and the exact diagonal block is
unchanged; the ranges $R_i$ are over all keys, a superset of the row's unmasked ones.

**The certificate** (:mod:`fastpath.certificate`, Step 1) already reasons with a per-row kernel error: it takes
$\varepsilon_i$ per row (:attr:`fastpath.head.HeadState.row_kernel_err`); where a single number is needed
(:mod:`fastpath.bounds`, the a-priori route, every reader of ``st.cert.err``) the largest: the head's ``cert.err``
is raised to it (a larger bound of the head's own polynomial's error is still a bound). The rounding amplification
$\kappa \ge \sum_{|\alpha| \le p_g} |a^{(g)}_\alpha \Phi_\alpha(q_i) \Psi_\alpha(k_j)| / \tilde A_{ij}$ is the largest
over groups of $P^{(g)}_{abs}(R^{cs}_g)\, e^{R_g} / (1 - \varepsilon_g)$ with $R^{cs}_g = |\beta| \max_{i \in g}
\|q'_i\| \max_j \|k'_j\|$ (:meth:`RowDegrees.kappa`); the chain length of the rounding model uses the full rank and
the largest degree, which bound every group's. docs/certificate.md, *Per-row degree*, writes the proof out.

**Grouping.** $R_i$ is rounded up to the grid $2^{j/2}$ (:data:`ROW_STEPS_PER_OCTAVE`, every fourth point of the
certificate grid of :mod:`fastpath.poly`). Each polynomial costs one certification (0.03–0.16 s at d_h = 4,
eps = 1e-6, R from 1 to 6, cached per process), so a grid point gets one only once it closes a group of at least
:data:`ROW_MIN_GROUP` of the rows (walking up the grid, rows of sparser points join the next group up; those above
the last group closed join the head's own polynomial), which can save at most that fraction of the query side:
on the authors' inputs at n = 2^16 this certifies 4 polynomials instead of 9 (0.25 s instead of 0.88 s) for 3 %
more query-side work; the finer grid $2^{j/4}$ saved a further 4 % of the query side for 0.4 s more
certification. Points of the same degree share the certificate of the largest, and a point at or above R uses
the head's own certificate. ``row_degrees="auto"`` keeps the grouping when it cuts the query
side's counted work (feature builds and GEMMs, both proportional to $\sum_g n_g r_g$) by at least
:data:`ROW_MIN_SAVING`; ``True`` whenever more than one degree occurs; ``False`` never (the single-degree path,
bit for bit).

**Key side.** On this path the keys' features (full rank) are built degree by degree in blocks of
:data:`KEY_BLOCK` tokens (:func:`fastpath.features.monomial_slabs`, the same values as
:func:`fastpath.features.monomials`), each degree's slab fed to its GEMM while in cache instead of a whole (r, c)
block written to memory and read back. Measured (one key pass, d_h = 4, rank 10626, n = 2^16, width 40, one
thread, load about 1.8, two rounds in one process): 2.5–2.6 s with whole blocks of 1024 tokens, 2.0 s with
slabs of 256 (2.1 s at 128, 2.4 s at 512 to 2048). The counted work is the same.

Shape legend: n tokens, d_h head width, r rank, r_g rank of group g, n_g rows of group g, c tokens per block.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from fastpath.directed import norms_up, up
from fastpath.features import MonomialPlan, feature_scale, monomial_plan, monomial_slabs, monomials, slab_rows
from fastpath.lowrank import abs_sum_at, block_size
from fastpath.poly import R_MIN, PolyCert, certified_poly
from fastpath.work import Work

ROW_DEGREES = (True, False, "auto")
ROW_STEPS_PER_OCTAVE = 2  # R_i rounded up to 2^(j/2) (module docstring: certifications against query work)
ROW_MIN_SAVING = 0.25  # "auto": the query side's counted work must drop by at least this fraction
KEY_BLOCK = 256  # keys per block on the row-degree path, features built degree by degree (module docstring)
ROW_MIN_GROUP = 1 / 16  # a polynomial of its own for at least this fraction of the rows (module docstring)


@dataclass
class RowGroup:
    """The query rows that share one certified polynomial."""

    cert: PolyCert
    plan: MonomialPlan
    a: np.ndarray  # (r_g,) feature scale a^(g)
    idx: np.ndarray  # (n_g,) query rows, ascending
    R_cs: float  # |beta| max_{i in g} ||q'_i|| max_j ||k'_j||, upwards: the rounding scale of the group

    @property
    def rank(self) -> int:
        return self.plan.rank


@dataclass
class RowDegrees:
    """The groups of a head's query rows (module docstring) and each row's certified polynomial error."""

    groups: tuple[RowGroup, ...]  # ascending degree, a partition of range(n)
    err: np.ndarray  # (n,) certified relative error of the polynomial of each row's group

    @functools.cached_property
    def gid(self) -> np.ndarray:
        """(n,) the index in ``groups`` of each row's group (read only)."""
        gid = np.empty(self.err.shape[0], dtype=np.int64)
        for k, g in enumerate(self.groups):
            gid[g.idx] = k
        gid.flags.writeable = False
        return gid

    def split(self, t0: int, t1: int, Z: np.ndarray, work: Work):
        r"""Yield ``(g, rows, features)`` for each group with rows in the token block [t0, t1) (the causal
        passes): its rows there (ascending) and the features $\Phi_g$ of ``Z[rows]`` (r_g, c_g), a fresh array
        each (no buffer shared between calls, so concurrent passes over one head stay independent), counted
        r_g c_g multiplications."""
        gid = self.gid[t0:t1]
        for k, g in enumerate(self.groups):
            ix = t0 + np.flatnonzero(gid == k)  # (c_g,)
            if ix.size:
                work.add(g.rank * ix.size)
                yield g, ix, monomials(Z[ix], g.plan)  # (r_g, c_g)

    @property
    def err_max(self) -> float:
        return float(self.err.max())

    def query_size(self) -> int:
        r"""$\sum_g n_g r_g$: the query side's features (one multiplication each) per pass column."""
        return sum(len(g.idx) * g.rank for g in self.groups)

    def kappa(self, centre_err: float) -> float:
        r"""The rounding amplification of :mod:`fastpath.bounds` (module docstring): the largest over groups of
        $P^{(g)}_{abs}(R^{cs}_g)\,e^{R_g} / (1 - \varepsilon_g)$, $\varepsilon_g$ with the re-centring's share."""
        out = 0.0
        for g in self.groups:
            c = g.cert
            eps = c.err + centre_err * (1 + c.err)
            if eps >= 1:
                return math.inf
            P_abs = c.abs_sum if g.R_cs <= c.R else abs_sum_at(c.coeffs, g.R_cs, c.shift)
            out = max(out, P_abs * (math.exp(c.R) if c.R < 709.0 else math.inf) / (1 - eps))
        return out

    def blocks(self, g: RowGroup, Z: np.ndarray, c: int, work: Work):
        """Yield (rows (c_b,), features (r_g, c_b)) of group g in blocks of at least c rows (more at low rank: the
        cache-sized :func:`fastpath.lowrank.block_size`), the features of ``Z[rows]`` built into one reused
        buffer (use each before the next) and counted, r_g c_b multiplications."""
        n_g = len(g.idx)
        cg = min(n_g, max(c, block_size(g.rank, Z.shape[0])))
        buf = np.empty((g.rank, cg))
        for t0 in range(0, n_g, cg):
            ix = g.idx[t0 : t0 + cg]
            work.add(g.rank * len(ix))
            yield ix, monomials(Z[ix], g.plan, buf)  # (r_g, c_b)


def key_blocks(st, work: Work):
    r"""Yield ``(t0, t1, slabs)`` over the keys in blocks of :data:`KEY_BLOCK` tokens, ``slabs`` the block's key
    features $w \odot \Psi(k'_b)$ degree by degree (:func:`fastpath.features.monomial_slabs`: ``(lo, hi, F)``,
    F (hi - lo, c) = rows lo:hi; consume them before the next block), r c multiplications counted per block."""
    n, plan = st.kf.shape[0], st.plan
    h = slab_rows(plan)
    bufs = (np.empty((max(h, 1), KEY_BLOCK)), np.empty((max(h, 1), KEY_BLOCK)))
    for t0 in range(0, n, KEY_BLOCK):
        t1 = min(n, t0 + KEY_BLOCK)
        work.add(plan.rank * (t1 - t0))
        yield t0, t1, monomial_slabs(st.kf[t0:t1], plan, bufs, None if st.w is None else st.w[t0:t1])


def scaled(a: np.ndarray, S: np.ndarray, w0: int, work: Work, cwork: Work | None = None) -> np.ndarray:
    r"""$\mathrm{diag}(a) S_{:r_g}$ for a group's scale a (r_g,) and a state S (r, w) -> (r_g, w), counted one
    multiplication per entry: columns before ``w0`` in ``work``, the certificate's after it in ``cwork``
    (:func:`fastpath.head.mm_fused`)."""
    r_g, w = a.shape[0], S.shape[1]
    work.add(r_g * min(w0, w))
    (work if cwork is None else cwork).add(r_g * max(w - w0, 0))
    return a[:, None] * S[:r_g]  # (r_g, w)


def row_ranges(qf: np.ndarray, kf: np.ndarray, beta: float, R: float, qn: np.ndarray | None = None,
               kmax: float | None = None) -> np.ndarray:  # fmt: skip
    r"""$R_i = \min(R, |\beta|\,\|q'_i\| \max_j\|k'_j\|)$ per query row, evaluated upwards: (n, d_h), (n, d_h) ->
    (n,). Each is an upper bound of $\max_j |\beta q'_i \cdot k'_j|$ for the float64 entries given (R bounds every
    row; the product of upward norms, each float product moved one float up, bounds the exact one). ``qn``,
    ``kmax``: ``norms_up(qf)`` and ``norms_up(kf).max()`` when the caller has them (else computed)."""
    kmax = float(norms_up(kf).max() if kmax is None else kmax)
    return np.minimum(R, up(up(abs(float(beta)) * (norms_up(qf) if qn is None else qn)) * kmax))  # (n,)


def _grid(Ri: np.ndarray) -> np.ndarray:
    """R_i rounded up to 2^(j / ROW_STEPS_PER_OCTAVE) (at least poly.R_MIN), (n,)."""
    s = ROW_STEPS_PER_OCTAVE
    Rg = 2.0 ** (np.ceil(np.log2(np.maximum(Ri, R_MIN)) * s - 1e-12) / s)
    return np.where(Rg < Ri, Rg * 2.0 ** (1 / s), Rg)  # guard the float log2


def check_option(option) -> None:
    """Refuses a ``row_degrees`` value other than True, False or ``"auto"``, by name (the one home of the check)."""
    if option not in ROW_DEGREES or not isinstance(option, bool | str):
        raise ValueError(f"row_degrees: expected True, False or 'auto', got {option!r}")


def plan_rows(qf: np.ndarray, kf: np.ndarray, beta: float, R: float, cert: PolyCert, eps: float,
              option: bool | str, ranges=row_ranges) -> RowDegrees | None:  # fmt: skip
    r"""The row groups of a head (module docstring), or None when ``option`` is False, when one degree covers
    every row, or (``"auto"``) when the query side's counted work drops by less than :data:`ROW_MIN_SAVING`.

    qf, kf (n, d_h): the polynomial's inputs; R: the certified range of their logits, which ``cert`` (the head's
    polynomial, of the kind and target ``eps`` the groups use) covers. ``ranges``: the per-row ranges, with the
    signature of :func:`row_ranges` (the default, the only one :func:`fastpath.layer.head_forward` uses; another is
    for a check's wrong variant, ``proofs_check.checks.fast_rowdegree``)."""
    check_option(option)
    if option is False:
        return None
    n, d_h = qf.shape
    qn, kn = norms_up(qf), norms_up(kf).max()  # (n,), the largest key norm: for the ranges and the groups' scales
    Ri = ranges(qf, kf, beta, R, qn, kn)  # (n,)
    Rg = _grid(Ri)  # (n,)
    by_degree: dict[int, PolyCert] = {cert.degree: cert}
    deg = np.full(n, cert.degree, dtype=np.int64)  # rows above the last group closed below: the head's polynomial
    vals, counts = np.unique(Rg, return_counts=True)  # ascending
    lo, acc, min_rows = 0.0, 0, math.ceil(ROW_MIN_GROUP * n)
    for v, m in zip(vals, counts, strict=True):
        acc += int(m)
        if acc < min_rows or v >= cert.R:
            continue  # too few rows yet for a polynomial of their own: they join the next group up
        c = certified_poly(float(v), eps, cert.kind)
        if c.degree >= cert.degree:
            c = cert  # never above the head's degree: its rank bounds every state
        if c.degree not in by_degree or c.R > by_degree[c.degree].R:
            by_degree[c.degree] = c  # the largest range of a degree covers the smaller ones
        if c.degree != cert.degree:  # rows keep the head's degree otherwise: no mask pass
            deg[(Rg > lo) & (Rg <= v)] = c.degree
        lo, acc = v, 0
    if n == 0 or not (deg != deg[0]).any():  # one degree for every row (an O(n) test, no set of n ints)
        return None
    by_degree = {p: c for p, c in by_degree.items() if (deg == p).any()}
    if len(by_degree) < 2:
        return None
    groups, err = [], np.empty(n)
    for p in sorted(by_degree):
        c = by_degree[p]
        idx = np.flatnonzero(deg == p)
        plan = monomial_plan(d_h, p)
        R_cs = float(up(up(abs(float(beta)) * float(qn[idx].max())) * float(kn)))
        groups.append(RowGroup(c, plan, feature_scale(plan, c.coeffs, beta), idx, R_cs))
        err[idx] = c.err
    rows = RowDegrees(tuple(groups), err)
    if option == "auto" and rows.query_size() > (1 - ROW_MIN_SAVING) * n * monomial_plan(d_h, cert.degree).rank:
        return None
    return rows


__all__ = ["KEY_BLOCK", "ROW_DEGREES", "ROW_MIN_GROUP", "ROW_MIN_SAVING", "ROW_STEPS_PER_OCTAVE", "RowDegrees",
           "RowGroup", "check_option", "key_blocks", "plan_rows", "row_ranges", "scaled"]  # fmt: skip
