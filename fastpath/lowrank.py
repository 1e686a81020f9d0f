r"""Low-rank attention factors $U_1, V_1$ (Lemma C.13 / I.1), the logit range R, and the memory budget.

Paper: Lemma C.13 (low-rank f), Lemma I.1 (the (eps, r)-approximation of A), spec §2.5 step 3. With
$\tilde A = U_0 V_0^\top$ a relative-error approximation of $A = \exp(\beta Q K^\top)$,

.. math::
    \tilde D = \mathrm{diag}(U_0 (V_0^\top 1_n)),\qquad U_1 = \tilde D^{-1} U_0,\ V_1 = V_0,\qquad
    \tilde f = U_1 V_1^\top,\qquad |\tilde f_{ij} - f_{ij}| \le \tfrac{2\varepsilon}{1-\varepsilon} f_{ij}.

The range: every logit satisfies $|\beta \langle q_i, k_j\rangle| \le \beta |q_i|\cdot|k_j| \le R$ with R from
:func:`fastpath.ranges.abs_logit_bound` (at most the Cauchy-Schwarz $\beta \max_i\|q_i\|_2 \max_j\|k_j\|_2$),
computed in O(n d^2) with its float64 rounding covered (see :func:`logit_range` for why the absolute products). So
the certificate of :mod:`fastpath.poly` and the rounding terms of :mod:`fastpath.bounds` hold for the actual inputs.

Shape legend: n tokens, d_h head width, r rank.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from fastpath.features import lift, rank_of
from fastpath.poly import (
    PolyCert,
    certified_poly,
    certify,
    chebyshev_coeffs,
    degree_lower_estimate,
    round_up_R,
    taylor_bound,
    taylor_coeffs,
)

U_ROUND = 2.0**-53  # unit roundoff of float64
MEMORY_BUDGET = 2**31  # bytes; default cap for the per-head working set of the streamed passes
MIN_BLOCK = 64  # fewest tokens per streamed block


def gamma(m: float) -> float:
    r"""$\gamma_m = m u / (1 - m u)$: the classical bound on the relative rounding of an m-term float64 chain."""
    mu = m * U_ROUND
    if mu >= 0.5:
        raise ValueError(f"gamma: chain length {m:g} too long for float64 rounding bounds")
    return mu / (1 - mu)


def logit_range(Q: np.ndarray, K: np.ndarray, beta: float) -> float:
    r"""$R \ge \max_{ij} |\beta|\, |q_i| \cdot |k_j| \ge \max_{ij} |\beta \langle q_i, k_j \rangle|$, rigorous for the
    float64 entries given, never O(n^2): :func:`fastpath.ranges.abs_logit_bound`, at most the Cauchy-Schwarz
    $|\beta| \max_i \|q_i\| \max_j \|k_j\|$. Q (n, d_h), K (m, d_h).

    The range of the *absolute* products, because the consumers of R use it twice: as the polynomial's interval
    (where the signed :func:`fastpath.ranges.logit_bound` would do) and in the rounding terms
    (:func:`fastpath.bounds.rounding_rel`: $\sum_\alpha |U_{1,i\alpha}||V_{1,j\alpha}| \le P_{abs}(R) \ldots$;
    the diagonal blocks' $\gamma (1 + R)$ in :mod:`fastpath.certificate`), which need $R \ge \beta |q|\cdot|k|$.
    """
    from fastpath.ranges import abs_logit_bound  # fastpath.ranges builds on this module's U_ROUND

    return abs_logit_bound(Q, K, beta)


def fixed_degree_poly(R: float, degree: int, kind: str) -> PolyCert:
    r"""The polynomial of a *fixed* degree g on $[-R, R]$ (R rounded up to the grid), its error certified, not
    targeted (Lemma I.1 at a given g, spec W14): Taylor coefficients with :func:`fastpath.poly.taylor_bound`, or the
    Chebyshev interpolant with :func:`fastpath.poly.certify`. ``PolyCert.eps`` is set to the certified error."""
    if isinstance(degree, bool) or not isinstance(degree, int) or degree < 0:
        raise ValueError(f"degree: expected an integer >= 0, got {degree!r}")
    return _fixed_degree(round_up_R(R), degree, kind)


@functools.lru_cache(maxsize=256)
def _fixed_degree(Rg: float, g: int, kind: str) -> PolyCert:
    coeffs = taylor_coeffs(g) if kind == "taylor" else chebyshev_coeffs(g, Rg)
    err = taylor_bound(coeffs, Rg) if kind == "taylor" else certify(coeffs, Rg)
    coeffs.setflags(write=False)
    return PolyCert(kind, g, Rg, err, err, coeffs, abs_sum_at(coeffs, Rg))


def abs_sum_at(coeffs: np.ndarray, x: float, shift: float = 0.0) -> float:
    r"""$P_{abs}(x) = \sum_j |c_j| (x + s)^j$ evaluated in float64 and inflated by $1 + 4(g+2)u$ (an upper bound)."""
    g = len(coeffs) - 1
    return float(np.sum(np.abs(coeffs) * (x + shift) ** np.arange(g + 1))) * (1 + 4 * (g + 2) * U_ROUND)


def exact_kernel_cert(X: np.ndarray, W_Q: np.ndarray, W_K: np.ndarray, beta: float, R: float, eps: float) -> PolyCert:
    r"""Method ``"exact"``: the dense kernel's own float64 relative error as a :class:`PolyCert` of kind "exact".

    The reference forms $S = \beta (X W) X^\top$ and $\exp(S - \max)$: each logit is off by at most
    $\sigma_r = \gamma_{2d+4} R_{abs}$ with $R_{abs} = |\beta| \max_i \||X_i||W|\|_2 \max_j \|X_j\|_2$
    (Cauchy-Schwarz on the magnitudes), exp adds u, the row sum $\gamma_{n+2}$; so
    $|\hat f - f| \le (e^{2\sigma_r + 4u}(1+\gamma_{n+2})^2 - 1) f$ entrywise (infinite when the logits are too large
    for that to mean anything; the caller then refuses). :func:`fastpath.bounds.rounding_rel` gives the kind
    "exact" the rounding amplification $\kappa = 1$ (a positive kernel has no cancellation).
    """
    n, d = X.shape
    Xa = np.abs(X)
    Wa = np.abs(W_Q) @ np.abs(W_K).T  # (d, d)
    R_abs = abs(beta) * float(np.sqrt(((Xa @ Wa) ** 2).sum(axis=1)).max()) * float(np.sqrt((Xa * Xa).sum(axis=1)).max())
    R_abs *= 1 + 8 * (d + 2) * U_ROUND
    sig = gamma(2 * d + 4) * R_abs + 4 * U_ROUND
    err = math.expm1(2 * sig) + 3 * gamma(n + 2) if sig < 350 else math.inf
    return PolyCert("exact", 0, R, eps, err, np.zeros(1), 1.0)


def working_set_bytes(rank: int, d: int, d_h: int, block: int = MIN_BLOCK) -> int:
    """Bytes of one streamed head pass: two (r, block) feature blocks plus the (r, width) states and k-side matrices."""
    width = d_h * d + 2 * d + d_h + 2
    return 8 * rank * (2 * block + 4 * width)


def _refuse_budget(range_: str, eps: float, g: int, d_h: int, r: int, need: int, budget: int, rel: str) -> ValueError:
    """The one refusal message of :func:`check_budget` and :func:`precheck_budget` (``rel``: "=" or ">=")."""
    opt = " (optimistic estimate)" if rel == ">=" else ""
    need_rel = " >=" if rel == ">=" else ""
    return ValueError(
        f"eps: infeasible rank for the memory budget: logit range R = {range_}, eps = {eps:g}, "
        f"degree {rel} {g}{opt}, rank {rel} C({d_h}+{g}, {g}) = {r}, needs{need_rel} {need} bytes "
        f"> memory_budget = {budget} bytes; expected a larger eps, smaller weights or a larger memory_budget"
    )


def check_budget(R: float, eps: float, cert: PolyCert, d: int, d_h: int, budget: int) -> int:
    """Refuse (ValueError) when the rank for ``eps`` on this range exceeds the memory budget; return the rank."""
    r = rank_of(d_h, cert.degree)
    need = working_set_bytes(r, d, d_h)
    if need > budget:
        raise _refuse_budget(f"{R:.6g} (certified on {cert.R:.6g})", cert.eps, cert.degree, d_h, r, need, budget, "=")
    return r


def precheck_budget(R: float, eps: float, d: int, d_h: int, budget: int) -> None:
    """Refuse before certifying when even the optimistic degree (:func:`degree_lower_estimate`) is over budget."""
    g = degree_lower_estimate(round_up_R(R), eps)
    r = rank_of(d_h, g)
    need = working_set_bytes(r, d, d_h)
    if need > budget:
        raise _refuse_budget(f"{R:.6g}", eps, g, d_h, r, need, budget, ">=")


def block_size(rank: int, n: int, target_bytes: int = 3 * 2**19) -> int:
    """Tokens per streamed block: an (r, c) feature block of about ``target_bytes`` (cache-sized), clamped."""
    return int(max(MIN_BLOCK, min(n, 4096, target_bytes // (8 * rank))))


def lowrank_attention(Q: np.ndarray, K: np.ndarray, beta: float, eps: float | None, kind: str = "chebyshev", *,
                      degree: int | None = None):  # fmt: skip
    r"""Dense $U_1, V_1$ (n×r) with $U_1 V_1^\top = \tilde f$ (Lemma C.13), plus $\tilde D$ and the certificate.

    For checks at small n (holds n×r matrices). The polynomial is the certified one for the target ``eps``
    (:func:`fastpath.poly.certified_poly`), or, with ``degree``, the one of that fixed degree with its error
    certified, not targeted (:func:`fixed_degree_poly`, as :func:`fastpath.layer.head_forward` does; ``eps`` is
    then unused and may be None). Returns ``(U1, V1, D, cert, R)``.
    """
    R = logit_range(Q, K, beta)
    if degree is not None:
        cert = fixed_degree_poly(R, degree, kind)
    elif eps is None:
        raise ValueError("eps: expected a target relative error when no degree is given, got None")
    else:
        cert = certified_poly(R, eps, kind)
    U0, V0 = lift(Q, K, cert.coeffs, beta)  # (n, r) each
    D = U0 @ V0.sum(axis=0)  # (n,)  D~ = U0 (V0^T 1)
    return U0 / D[:, None], V0, D, cert, R


__all__ = ["MEMORY_BUDGET", "U_ROUND", "abs_sum_at", "block_size", "check_budget", "exact_kernel_cert",
           "fixed_degree_poly", "gamma", "logit_range", "lowrank_attention", "precheck_budget",
           "working_set_bytes"]  # fmt: skip
