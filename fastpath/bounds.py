r"""Certificates: entrywise bounds on |fast - exact| for one head, built from the inputs (spec §2.4, §2.5, §2.10).

Paper: Lemmas C.14–C.16, E.2–E.11, F.5, G.4 (per-term bounds), H.2–H.4 and J.3 (propagation); spec §2.4 (explicit
bounds), §2.5 (relative error of $\tilde f$), §2.10 (the recursion $e_{i-1} \le \delta_i + C_i e_i$).
Here the bounds are *sharpened* and *generalised* so they hold for the whole fast pipeline, where the layer input
$\tilde X$ and the upstream gradient $\tilde G$ are themselves approximate ($|\tilde X - X| \le e_X$,
$|\tilde G - G| \le e_G$ entrywise, spec W10/W9).

**One relative perturbation.** The logits of the fast path differ from the exact ones by at most
$\sigma = \beta(\sqrt d\, e_X \|W_Q\|_F \max_j\|\tilde k_j\| + \max_i\|\tilde q_i\| \sqrt d\, e_X \|W_K\|_F
+ d e_X^2 \|W_Q\|_F\|W_K\|_F)$ plus rounding, so with the certified polynomial error $\varepsilon$
(:mod:`fastpath.poly`) every entry satisfies $\tilde f_{ij} = f_{ij}(1 + \theta_{ij})$ with

.. math::
    |\theta_{ij}| \le \rho := e^{2\sigma}\frac{1+\varepsilon}{1-\varepsilon} - 1
    \quad(\sigma = 0:\ \rho = 2\varepsilon/(1-\varepsilon),\ \text{spec §2.5}).

**Per-term bounds.** With $H = \|\tilde h\|_\infty$, $g_1 = \max_i \|\tilde G_i\|_1$, $Q_m = g_1 H \ge |\tilde q|$,
$e_h = e_X \max_c \|W_{V,:c}\|_1$, $e_q = d_h e_G H + (g_1 + d_h e_G) e_h$, $e_K = \rho Q_m + e_q$,
$\pi_1 = \rho Q_m + e_q$, $\pi_2 = \rho Q_m + e_K$ one has $|\Delta p_1| \le \pi_1 f$, $|\Delta p_2| \le \pi_2 f$
entrywise, and, with $F$ a bound on the column sums of $f$ ($F = \min(n, e^{2R})$, times $1 + \ln n$ when
causal, because $f_{ij} \le e^{2R}/\#\text{row } i$):

.. math::
    |\Delta s| &\le \rho H + e_h, \\
    |\Delta D_8| &\le F(\rho \| |\tilde G||W_V|^\top\| + e_G \max_c\|W_{V,c:}\|_1),\\
    |\Delta D_{4}| &\le \beta(\pi_1 z + Q_e e_X w_r),\quad |\Delta D_{2}| \le \beta(\pi_2 z + Q_e e_X w_r),\\
    |\Delta D_{7}| &\le \beta F(\pi_1 z' + Q_e e_X w_c),\quad |\Delta D_{6}| \le \beta F(\pi_2 z' + Q_e e_X w_c),\\
    |\Delta\, \partial_W|_{ab} &\le \beta[(\pi_1 + \pi_2) c_a m_b + 2 Q_e e_X (n m_b + c_a + n e_X)],\\
    |\Delta\, \partial_{W_V}|_{ac} &\le \rho\, m_a \gamma_c + e_X \gamma_c + n (m_a + e_X) e_G,

where $z = \||\tilde X||W|^\top\|$, $z' = \||\tilde X||W|\|$, $w_r, w_c$ the largest row/column abs sums of W,
$Q_e = Q_m + e_q$, $c_a = \sum_i |\tilde X_{ia}|$, $m_b = \max_i |\tilde X_{ib}|$, $\gamma_c = \sum_i |\tilde G_{ic}|$.
These are the spec §2.4 bounds with the factor n removed where the relative structure gives it back (spec W8).

**Rounding.** Every fast product is a chain of at most $m = n + r d_h + 3g + 4d + 40$ float64 operations, and
$\sum_\alpha |U_{1,i\alpha}||V_{1,j\alpha}| \le \kappa f_{ij}$ with $\kappa = P_{abs}(R_{cs}) e^{R}/(1-\varepsilon)$
($P_{abs}(x) = \sum_t |c_t| x^t$, since $\sum_{|\alpha|=t}\binom{t}{\alpha}|q^\alpha k^\alpha| \le (\beta\|q\|\|k\|)^t$
with $R_{cs} = \beta\max\|q\|\max\|k\|$ of the polynomial's inputs, :attr:`fastpath.head.HeadState.R_cs`, and R
the range the polynomial is certified on; the key factor of a re-centred head cancels in the ratio; with per-row
degrees the largest of this over the row groups, :meth:`fastpath.rowdegree.RowDegrees.kappa`).
Each output therefore gets $(4\kappa + 8)\gamma_m$ times its magnitude bound (the same formula with absolute
values), covering the fast path's rounding and the float64 reference's.

Shape legend: n tokens, d width, d_h head width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fastpath.directed import forward_chain, own_up
from fastpath.layer import HeadState
from fastpath.lowrank import U_ROUND, abs_sum_at, gamma

# sup |phi'| and sup |phi''| on [-M, M] (proved analytically; see :func:`activation_lipschitz`)
_TANH_D2 = 4 / (3 * math.sqrt(3))  # max |2 tanh(x) sech^2(x)|, at tanh^2 = 1/3
_GELU_D1 = 1.1290  # max |Phi(x) + x phi(x)| = Phi(sqrt 2) + sqrt 2 phi(sqrt 2) = 1.12894...
_GELU_D2 = 2 / math.sqrt(2 * math.pi) + 1e-12  # max |phi(x)(2 - x^2)| = phi(0) * 2 = 0.79788...


def activation_lipschitz(name: str, M: float) -> tuple[float, float]:
    r"""$(\sup_{|x|\le M}|\varphi'(x)|, \sup_{|x|\le M}|\varphi''(x)|)$ for the activations of ``reference.block``.

    identity (1, 0); tanh (1, $4/(3\sqrt3)$); relu (1, inf: kink, handled entrywise by the caller);
    gelu $x\Phi(x)$: $\varphi' = \Phi + x\phi \in [-0.1290, 1.1290]$, $\varphi'' = \phi(x)(2 - x^2)$, $|\cdot|\le
    2\phi(0)$; softplus (1, 1/4); cube (3M^2, 6M). Spec §2.6 / W11 (the paper assumes no bound on $\varphi'$).
    """
    table = {
        "identity": (1.0, 0.0),
        "tanh": (1.0, _TANH_D2),
        "relu": (1.0, math.inf),
        "gelu": (_GELU_D1, _GELU_D2),
        "softplus": (1.0, 0.25),
        "cube": (3 * M * M, 6 * M),
    }
    return table[name]


@dataclass
class HeadRho:
    """The relative perturbation of $\\tilde f$ (module docstring) and the constants derived with it."""

    sigma: float  # logit perturbation (input error + rounding)
    rho: float  # |f~ - f| <= rho f entrywise
    F: float  # column-sum bound of the exact f
    kappa: float  # rounding amplification of the low-rank products
    rr: float  # (4 kappa + 8) gamma_m: relative rounding term


def head_rho(st: HeadState, X: np.ndarray, e_X: float) -> HeadRho:
    """$\\sigma, \\rho, F, \\kappa$ for one head at fast input X with input error ``e_X`` (module docstring)."""
    n, d = X.shape
    beta = abs(st.beta)
    nQ, nK = float(np.linalg.norm(st.W_Q)), float(np.linalg.norm(st.W_K))
    up = 1 + 1e-12  # covers the float64 evaluation of the norms below
    qmax = float(np.sqrt((st.q * st.q).sum(axis=1)).max()) * up
    kmax = float(np.sqrt((st.k * st.k).sum(axis=1)).max()) * up
    sd = math.sqrt(d) * e_X
    Xa = np.abs(X) + e_X  # (n, d) bound of |X| and |X~|
    qa = float(np.sqrt(((Xa @ np.abs(st.W_Q)) ** 2).sum(axis=1)).max()) * up
    ka = float(np.sqrt(((Xa @ np.abs(st.W_K)) ** 2).sum(axis=1)).max()) * up
    sigma = beta * (sd * nQ * kmax + qmax * sd * nK + sd * sd * nQ * nK) + 2 * beta * gamma(2 * d + 8) * qa * ka
    eps = st.kernel_err  # the polynomial's error and the re-centring's (fastpath.centring)
    rho = safe_expm1(2 * sigma) * (1 + eps) / (1 - eps) + 2 * eps / (1 - eps) if eps < 1 else math.inf
    R_ex = st.R + sigma
    col = 1 + math.log(n) if st.causal else 1.0
    F = min(float(n), math.exp(min(2 * R_ex, 700.0)) * col)
    kappa, rr = rounding_rel(st, n, d)
    return HeadRho(sigma, rho, F, kappa, rr)


def rounding_rel(st: HeadState, n: int, d: int) -> tuple[float, float]:
    r"""$(\kappa, (4\kappa + 8)\gamma_m)$ of the module docstring: the rounding amplification of the low-rank
    products and the relative rounding term of every fast product (fast path and float64 reference together)."""
    eps = st.kernel_err
    d_h = st.q.shape[1]
    if eps >= 1:
        kappa = math.inf
    elif st.cert.kind == "exact":  # a positive dense kernel: no cancellation in its products
        kappa = 1 / (1 - eps)
    elif st.cert.kind == "clustered":  # fastpath.clustered: the largest kappa of its polynomial pairs
        kappa = st.op.kappa / (1 - eps)
    elif st.rows is not None:  # fastpath.rowdegree: the largest kappa of its row groups
        kappa = st.rows.kappa(st.centre_err)
    else:
        # P_abs at the Cauchy-Schwarz scale of the polynomial's inputs, which bounds sum_alpha |Phi_alpha||Psi_alpha|
        # even where R (fastpath.ranges) is tighter than it; e^R from the logits themselves (issue 14)
        R_cs = st.R_cs
        P_abs = st.cert.abs_sum if R_cs <= st.cert.R else abs_sum_at(st.cert.coeffs, R_cs, st.cert.shift)
        kappa = P_abs * safe_exp(st.cert.R) / (1 - eps)
    r = n if st.cert.kind == "clustered" else st.rank  # clustered: n as before its rank became a pair's
    m = n + r * d_h + 3 * st.cert.degree + 4 * d + 40
    return kappa, (4 * kappa + 8) * gamma(m)


def safe_exp(x: float) -> float:
    """``math.exp`` that returns inf instead of raising OverflowError (issue 13: a bound may be infinite, then the
    caller refuses it as vacuous; it must never crash)."""
    return math.exp(x) if x < 709.0 else math.inf


def safe_expm1(x: float) -> float:
    """``math.expm1`` with inf instead of OverflowError (see :func:`safe_exp`)."""
    return math.expm1(x) if x < 709.0 else math.inf


def forward_bound(st: HeadState, hr: HeadRho, e_X: float) -> float:
    r"""Lemma C.14 / #13 (sharpened): $|\tilde s - s| \le \rho \|\tilde h\|_\infty + e_h$ plus rounding."""
    H = float(np.abs(st.h).max())
    e_h = e_X * float(np.abs(st.W_V).sum(axis=0).max())
    return own_up(hr.rho * H + e_h + hr.rr * (H + e_h), forward_chain(st.W_Q.shape[0]))  # Step 0': own arithmetic


@dataclass
class HeadBound:
    terms: dict[str, float]  # D2, D4, D6, D7, D8 (entrywise, constant over the (n, d) matrix)
    dX: float
    dW: np.ndarray  # (d, d)
    dW_V: np.ndarray  # (d, d_h)


def backward_bound(st: HeadState, hr: HeadRho, X: np.ndarray, G: np.ndarray, e_X: float,
                   e_G: float) -> HeadBound:  # fmt: skip
    """Per-term bounds of the module docstring for one head. X (n, d) fast input; G (n, d_h) fast upstream."""
    n, d = X.shape
    d_h = G.shape[1]
    beta, rho, F, rr = abs(st.beta), hr.rho, hr.F, hr.rr
    H = float(np.abs(st.h).max())
    e_h = e_X * float(np.abs(st.W_V).sum(axis=0).max())
    Ga = np.abs(G)  # (n, d_h)
    g1 = float(Ga.sum(axis=1).max())
    Qm = g1 * H
    e_q = d_h * e_G * H + (g1 + d_h * e_G) * e_h
    Qe = Qm + e_q
    e_K = rho * Qm + e_q
    pi1, pi2 = rho * Qm + e_q, rho * Qm + e_K
    Wa, Xa = np.abs(st.W), np.abs(X)
    z, zp = float((Xa @ Wa.T).max()), float((Xa @ Wa).max())
    w_r, w_c = float(Wa.sum(axis=1).max()), float(Wa.sum(axis=0).max())
    ya = float((Ga @ np.abs(st.W_V).T).max())
    wv_r = float(np.abs(st.W_V).sum(axis=1).max())
    Qr = Qm + e_q  # magnitude used by the rounding terms
    terms = {
        "D8": F * (rho * ya + e_G * wv_r) + rr * F * (ya + e_G * wv_r),
        "D4": beta * (pi1 * z + Qe * e_X * w_r) + rr * beta * Qr * (z + e_X * w_r),
        "D2": beta * (pi2 * z + Qe * e_X * w_r) + rr * beta * Qr * (z + e_X * w_r),
        "D7": beta * F * (pi1 * zp + Qe * e_X * w_c) + rr * beta * F * Qr * (zp + e_X * w_c),
        "D6": beta * F * (pi2 * zp + Qe * e_X * w_c) + rr * beta * F * Qr * (zp + e_X * w_c),
    }
    ca, mx = Xa.sum(axis=0), Xa.max(axis=0)  # (d,), (d,)
    dW = beta * ((pi1 + pi2) * np.outer(ca, mx) + 2 * Qe * e_X * (n * mx[None, :] + ca[:, None] + n * e_X))
    dW = dW + rr * beta * 4 * Qr * np.outer(ca + n * e_X, mx + e_X)  # (d, d)
    cg = Ga.sum(axis=0)  # (d_h,)
    dWV = rho * np.outer(mx, cg) + e_X * cg[None, :] + n * (mx[:, None] + e_X) * e_G  # (d, d_h)
    dWV = dWV + rr * np.outer(mx + e_X, cg + n * e_G)
    own = n + 8 * (d + d_h) + 128  # Step 0' (docs/certificate.md): the bound's own arithmetic, n-term sums
    return HeadBound({t: own_up(v, own) for t, v in terms.items()}, own_up(sum(terms.values()), own),
                     own_up(dW, own), own_up(dWV, own))  # fmt: skip


def matmul_bound(B: np.ndarray, W: np.ndarray, mag: np.ndarray | None = None) -> np.ndarray:
    r"""Entrywise bound of $|\Delta(A W)|$ from $|\Delta A| \le B$ and exact W: $B|W|$ (+ rounding of $|A||W|$)."""
    out = B @ np.abs(W)
    if mag is not None:
        out = out + 2 * gamma(W.shape[0] + 4) * (mag @ np.abs(W))
    return own_up(out, W.shape[0] + 8)  # Step 0': the bound's own d-term sums


def weight_bounds(b_dW_h, heads, dWh):
    """dL/dW_Q = dL/dW W_K, dL/dW_K = (dL/dW)^T W_Q per head (#26) from the (d, d) bounds of dL/dW (either mode)."""
    b_dWQ = np.concatenate([matmul_bound(B, st.W_K, np.abs(w) + B)
                            for B, st, w in zip(b_dW_h, heads, dWh, strict=True)], axis=1)  # fmt: skip
    b_dWK = np.concatenate([matmul_bound(B.T, st.W_Q, np.abs(w.T) + B.T)
                            for B, st, w in zip(b_dW_h, heads, dWh, strict=True)], axis=1)  # fmt: skip
    return b_dWQ, b_dWK


def block_round(x: float, length: int) -> float:
    """Generous rounding term for an O(length) float64 chain producing magnitude x (fast and reference)."""
    return 4 * gamma(length + 8) * x + 8 * U_ROUND * x


__all__ = ["HeadBound", "HeadRho", "activation_lipschitz", "backward_bound", "block_round", "forward_bound",
           "head_rho", "matmul_bound", "rounding_rel", "safe_exp", "safe_expm1", "weight_bounds"]  # fmt: skip
