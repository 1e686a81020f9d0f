r"""Per-row polynomial degrees (``row_degrees``, :mod:`fastpath.rowdegree`) against the exact softmax, and gradients.

Paper: Lemma I.1 applied row by row (issue 14 item 3): query row i of group g uses the group's certified
polynomial $P_g$ on $[-R_g, R_g] \ni \beta q'_i \cdot k'_j$ through the first $\binom{d_h + p_g}{p_g}$ features,
so $|\tilde A_{ij}/A_{ij} - 1| \le \varepsilon_g$ for every j. One seeded case, the authors' inputs
($X \sim N(0, 1)$, orthogonal weights from the QR of a Gaussian, $\beta = 1/d$, d = 4, n = :data:`N`), at
``row_degrees=True`` (a polynomial per group whenever more than one degree occurs), two heads built by
:func:`fastpath.layer.head_forward` itself: without and with the causal mask (there an entry above the diagonal
must be exactly 0). Two kinds of rows, both against the exact model (float64 first; a
float64 failure is re-decided with the 50-digit mpmath reference by :func:`proofs_check.decide.judge`), the claims
of :mod:`proofs_check.checks.fast_clustered`:

* **kernel**: $\max_{ij} |\tilde f_{ij}/f_{ij} - 1| / (\rho_i + r_r(1 + \rho_i) + e_{ref}) \le 1$ for $\tilde f$ and
  its transposed product, $\rho_i$ the normalised per-row error of the rows' own certificates
  (:func:`fastpath.certificate.head_kernel`, ``HeadState.row_kernel_err``), $r_r$ the product rounding with the
  largest amplification over the groups (:func:`fastpath.bounds.rounding_rel`), $e_{ref}$ the float64
  reference's own kernel error;
* **gradients**: s, the five terms, dX, dW and dW_V of the head within the a-posteriori certificate.

Mutants (:data:`MUTANTS`), built from public pieces, nothing global patched: the row plan with every row's range
halved (``plan_rows(..., ranges=...)``: each group's polynomial certified on half the interval its rows' logits
reach, as a dropped factor 2 or the norms of other inputs would give); and each group reading the head's own
coefficients truncated to its rank instead of its certified ones (a wrong polynomial per row). Either mutated head
gets its normaliser and output by :func:`fastpath.apply.f_products` over the mutated plan.

Shape legend: n tokens, d width.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fastpath.apply import f_products
from fastpath.layer import head_forward
from fastpath.poly import certified_poly
from fastpath.rowdegree import RowDegrees, plan_rows, row_ranges
from fastpath.work import Work
from proofs_check.checks.fast_certificate import Case
from proofs_check.checks.fast_clustered import authors_inputs, decide_head, head_evidence
from proofs_check.registry import Context, Result, check

N, D, EPS = 256, 4, 1e-6
HALVED, HEAD_COEFFS = "row ranges halved", "groups read the head's coefficients"
MUTANTS = (HALVED, HEAD_COEFFS)


def halved_ranges(qf, kf, beta, R, *norms):
    """Mutant: :func:`fastpath.rowdegree.row_ranges` divided by 2."""
    return row_ranges(qf, kf, beta, R, *norms) / 2


def _mutated(st, mutant: str):
    """A copy of the head with the mutated row plan (module docstring), its D~ and s from that plan."""
    cert = certified_poly(st.R_poly, EPS, st.cert.kind)  # the head's polynomial, before row groups raised its err
    if mutant == HALVED:
        rows = plan_rows(st.qf, st.kf, st.beta, st.R_poly, cert, EPS, True, ranges=halved_ranges)
    else:  # the head's scale a (its coefficients) truncated to each group's rank
        rows = RowDegrees(tuple(dataclasses.replace(g, a=st.a[: g.rank]) for g in st.rows.groups), st.rows.err)
    m = dataclasses.replace(st, rows=rows, D=np.ones(st.q.shape[0]))
    n = st.q.shape[0]
    AY, _ = f_products(m, np.concatenate([np.ones((n, 1)), st.h], axis=1), np.zeros((n, 0)), Work())  # [D~ | A~ h]
    m.D = AY[:, 0].copy()  # (n,)
    m.s = AY[:, 1:] / m.D[:, None]  # (n, d_h)
    return m


def cases(ctx: Context, mutant: str | None) -> tuple[list[dict], list[Case], list[dict]]:
    """The kernel inputs, the gradient cases and a summary of the row plans, one head without and one with the
    causal mask (module docstring)."""
    X, W_Q, W_K, W_V, G, beta = authors_inputs(ctx.rng(1515), N, D)
    kernels, grads, infos = [], [], []
    for causal in (False, True):
        st = head_forward(X, W_Q, W_K, W_V, beta, eps=EPS, kind="chebyshev", causal=causal, budget=2**31,
                          recentre=False, row_degrees=True)  # fmt: skip
        if mutant is not None:
            st = _mutated(st, mutant)
        eye, none = np.eye(N), np.zeros((N, 0))
        f_fast = f_products(st, eye, none, Work())[0]  # (n, n) f~
        f_fastT = f_products(st, none, eye, Work())[1].T  # (n, n) from the transposed product
        kernel, grad, rr, e_ref = head_evidence(st, X, W_Q, W_K, W_V, G, beta, EPS, f_fast, f_fastT,
                                                f"row degrees(n={N},d={D},eps={EPS:g},causal={causal})",
                                                causal)  # fmt: skip
        groups = [] if st.rows is None else st.rows.groups
        infos.append(dict(causal=causal, degrees=[g.cert.degree for g in groups], rows=[len(g.idx) for g in groups],
                          head_degree=st.plan.g, rr=rr, e_ref=e_ref))  # fmt: skip
        kernels.append(kernel)
        grads.append(grad)
    return kernels, grads, infos


@check(
    id="fast.rowdegree.certificate",
    label="Lemma I.1",
    name="Per-row degrees (Lemma I.1 row by row): |f~/f - 1| <= each row's certified error, and fast gradients "
    "within their bound, on the authors' inputs with several row groups",
    kind="INEQ",
    expected="OK",
    spec=(84,),
    uses=("fast.cert.aposteriori",),
    mutants=MUTANTS,
)
def check_row_degrees(ctx: Context) -> Result:
    r"""Module docstring: one ``le`` row per product ($\tilde f$, $\tilde f^\top$) and one per gradient field;
    the statement's run also requires at least two row groups below the head's degree (the evidence is about them).

    Mutants, on the same case, passed as parameters: the row ranges halved (polynomials certified on too short an
    interval: the entrywise error exceeds what the certificate trusts); each group reading the head's own
    coefficients truncated to its rank (a wrong polynomial on every grouped row)."""
    kernels, grads, infos = cases(ctx, ctx.mutant)
    res, res2, worst = decide_head(ctx, kernels, grads)
    grouped = all(sum(p < i["head_degree"] for p in i["degrees"]) >= 2 for i in infos)
    ok = res.ok and res2.ok and (grouped or ctx.mutant is not None)
    info = infos[0]
    fig = (f"row groups of degrees {info['degrees']} ({info['rows']} rows; head degree {info['head_degree']}), "
           f"without and with the causal mask; max rel.err/row bound {res.observed:.2g} (kernel), max error/bound "
           f"{res2.observed:.2g} (s, terms, dX, dW, dW_V; {res2.precision})")  # fmt: skip
    return dataclasses.replace(worst, ok=ok, figure=fig, data={"kernel": res.data, "gradients": res2.data,
                                                               "heads": infos})  # fmt: skip
