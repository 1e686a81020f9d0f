r"""A-posteriori certificate of one head: entrywise bounds from the fast path's own computed magnitudes (issue 10).

Paper: Lemma C.13/I.1 (relative kernel error), C.14 (forward), C.15/C.16 ($p_1$, $p_2$), E.2–E.11 (the five
terms), F.5 ($\partial L/\partial W$), G.4 ($\partial L/\partial W_V$); spec §2.4, §2.5, §2.7. Each step below
*refines* the cited lemma: the lemma bounds an error by a worst-case constant times $\|\cdot\|_\infty$ norms (with
factors n, d, $c_f$); here the same error is bounded entrywise by the *computed* magnitudes, which the low-rank
factors give in O(n r d) (:mod:`fastpath.apply`), so nothing n×n is formed.

**Inputs.** The head's fast input $\tilde X$ with $|\tilde X - X| \le E_X$, fast upstream $\tilde G$ with
$|\tilde G - G| \le E_G$ (entrywise matrices, exact values without tilde). Write $\hat Y = |\tilde Y| + E_Y$ for a
bound of the exact $|Y|$, and $E_h = E_X |W_V| + \gamma_d |\tilde X||W_V|$.

**Step 1 (relative kernel error per row; refines C.13/I.1 and spec §2.5).** The logits move by
$|\beta(\tilde q_i \cdot \tilde k_j - q_i \cdot k_j)| \le \sigma_i := |\beta|(\|\Delta q_i\|_2 \max_j\|\tilde k_j\|_2
+ \|\hat q_i\|_2 \max_j\|\Delta k_j\|_2)$, $\Delta q = E_X|W_Q| + \gamma_d|\tilde X||W_Q|$ (same for k). With the
polynomial's certified $\varepsilon$ on the computed logits, $\tilde A_{ij}/A_{ij}$ and $\tilde D_i/D_i$ lie in
$[(1-\varepsilon)e^{-\sigma_i}, (1+\varepsilon)e^{\sigma_i}]$, hence

.. math::
    |\tilde f_{ij} - f_{ij}| \le \rho_i f_{ij},\quad \rho_i = e^{2\sigma_i}\tfrac{1+\varepsilon}{1-\varepsilon} - 1,
    \qquad f_{ij} \le (1+\tau_i)\tilde f_{ij},\quad |\tilde f_{ij} - f_{ij}| \le \tau_i \tilde f_{ij},
    \quad \tau_i = \tfrac{\rho_i}{1-\rho_i}

(so $\tilde f \ge 0$ when $\rho_i < 1$; otherwise the certificate is refused). No second-order remainder is
neglected: the exponential is the exact perturbation bound, not its linearisation.

**Step 2 (one generic product; refines C.14, E.6, G.4).** For $\tilde f \tilde Y$ against $f Y$ with
$|\tilde Y - Y| \le E_Y$:

.. math::
    |\tilde f \tilde Y - f Y| \le \tau \odot \tilde f|\tilde Y| + (1+\tau) \odot \tilde f E_Y,

and the same with $\tilde f^\top$ and $\tau_{\max}$ (the row index is summed over). Rounding: every computed
product has error at most $r_r$ times its magnitude, $r_r = (4\kappa + 8)\gamma_m$ of
:func:`fastpath.bounds.rounding_rel` (fast path and float64 reference together; $\kappa$ bounds
$\sum_\alpha |U_{1,i\alpha}||V_{1,j\alpha}| / \tilde f_{ij}$), and the computed magnitudes are inflated by
$1/(1 - r_r)$ to bound the true ones. Each field gets

.. math::
    \mathrm{bnd} = \tau M + (1+\tau)(1+r_r) M_E + r_r (1+\tau) M

with M the magnitude of the fast product and $M_E$ the product applied to the input error.

**Step 3 (the fields).** $s = fh$ (C.14): $M = \tilde f|\tilde h|$, $M_E = \tilde f E_h$.
$K = (G \odot s)1$ (D.16): $|\Delta K| \le \sum_b (E_G|\tilde s| + \hat G\,\Delta s)_b$ plus rounding.
$p_1 X$ (C.15, E.9/E.10), with $q_{ij} = \langle G_i, h_j\rangle$ and Cauchy–Schwarz over the head index
($|q_{ij}| \le \|G_i\|\|h_j\|$, row 2-norms): $M = \|\tilde G\| \odot \tilde f(\|\tilde h\| \odot |\tilde X|)$,
$M_E = \|E_G\| \odot \tilde f(\|\tilde h\| \odot |\tilde X|) + \|\hat G\| \odot \tilde f(\|E_h\| \odot |\tilde X|
+ \|\hat h\| \odot E_X)$ (the triangle inequality on $\tilde q \tilde X - q X$).
$p_2 X = K \odot fX$ (C.16, E.7/E.8): $|\Delta K|(1+\tau)\tilde f\hat X + |\tilde K|\,\mathrm{bnd}(fX)$.
$p_1^\top X$ (E.4/E.5): the transposed products $\tilde f^\top(\|\tilde G\| \odot |\tilde X|)$ and
$\tilde f^\top(\|E_G\| \odot |\tilde X| + \|\hat G\| \odot E_X)$ times $\|\tilde h\|$, $\|\hat h\|$, $\|E_h\|$.
$p_2^\top X = f^\top(K \odot X)$ (E.2/E.3) and $f^\top G$ (E.6) likewise. Each term $D_k = (\cdot)W^{(\top)}$ gets
its bound times $|W|$ (entrywise $|W_Q||W_K|^\top$ in the rounding terms); $dX = \sum_k D_k$ (E.11) the sum of the
term bounds plus the rounding of the sum. $\partial L/\partial W = \beta X^\top(p_1X - p_2X)$ (F.5) and
$\partial L/\partial W_V = X^\top(f^\top G)$ (G.4): $|\tilde X^\top \tilde Y - X^\top Y| \le E_X^\top|\tilde Y| +
\hat X^\top \Delta Y$, plus the reference's centred form (its rounding uses $|X - 1\bar x^\top|$).

**Step 3' (one column where the coefficients are scalars).** On the column side $\tau_{\max}$, $r_r$ are scalars,
so a non-negative combination of $\tilde f^\top$ products is $\tilde f^\top$ of the combined column ($c_4 = 1 +
\gamma_{16}$ covers forming it and its coefficients; $a_0 = \tau_{\max} + r_r(1+\tau_{\max})$,
$b' = (1+\tau_{\max})(1+r_r)$, $s_h = 2\gamma_8(1+2r_r)$ a term's share of the rounding of $\sum_k D_k$):
(6') $|\Delta D_6| + s_h|\beta|L_K W_a \le |\beta|\,\tilde f^\top\big(c_4((a_0 + r_2 + s_h)|K|\,|X| + b'(|\Delta K|\,|X|
+ \hat K E_X))\big)W_a$, the same bound in d columns instead of 2d. With $E_X = 0$ (every first layer) also
(4') $|\Delta D_7| + s_h|\beta|N_1W_a \le |\beta|((\|\tilde h\| + \tfrac{b'}{\min(a_7, b')}\|E_h\|) \odot
\tilde f^\top(c_4(a_7\|\tilde G\| + b'\|E_G\|)|\tilde X|))W_a$, $a_7 = a_0 + r_2 + s_h$, from $\|\hat h\| \le
\|\tilde h\| + \|E_h\|$ and $L_A + L_B \le L_{C7}/\min(a_7, b')$ (loses $b'\|E_h\|/(a_7\|\tilde h\|)$, rounding
against $\tau_{\max}$), and (5') one column $c_4((a_0 + \max(r_2 + s_h, 2\gamma_{n+d+4} + r_r))|\tilde G| +
b'E_G)$ for $D_8$ and $\partial L/\partial W_V$ (each gains at most $|r_2 + s_h - 2\gamma_{n+d+4} - r_r|L_G$).

**Fused products.** Every column above depends only on $\tilde X$, $E_X$, $\tilde G$, $E_G$, the weights and the
head's q, k, h, s, $E_s$, all known before the fast path's passes: :func:`forward_columns` and
:func:`backward_columns` build them, :func:`fastpath.layer.head_forward` and
:func:`fastpath.headgrad.head_backward` carry them as extra columns of their own GEMMs
(:func:`fastpath.head.mm_fused`: the forward's key and query passes, the backward's pass 1 / pass 2 and the causal
prefix / suffix passes), so no feature block is built for the certificate. They are the same sums of the same
float64 factors as :func:`fastpath.apply.f_products` in another blocking; the rounding model $r_r$ bounds any
evaluation order of these sums ($\gamma_m$ depends only on their lengths, $\kappa$ on the factors), so it covers the
carried products unchanged. :func:`fastpath.apply.f_products` remains the route for heads whose passes do not carry
them: method ``"exact"`` and the forward of ``exact_forward`` (the dense f), method ``"clustered"`` (its own
operator), and direct calls of :func:`forward_bound` / :func:`backward_bound` without ``fused``.

Extra work (counted in ``madds``, :mod:`fastpath.work`): only the extra GEMM columns, n r per column and pass
(plus n c on a causal diagonal block), and the O(n d^2) closing products. Forward: $|\tilde h|$, $E_h$ (skipped
for an exact input) and, where Step 1' pays ($\sigma_i > 0.1\varepsilon_i$ on at least half the rows),
$2 d_h + 2$ columns; backward: right $2d$ (+ $2d$ with an input error), left $2d + d_h$ for an exact input, else
$3d + 2d_h$ ($E_G$ skipped when 0). Measured (``benchmarks/certificate_bench.py --cost``: d = 4, one residual
tanh layer, eps = 1e-8, n = $2^{16}$ and $2^{18}$): certificate / fast path multiply-adds 0.46 (non-causal, one
head), 0.43 (causal, one head), 0.64 and 0.59 (two heads), down from 0.77, 0.98, 1.07, 1.25 with a pass of its
own; time (round-robin medians against ``certificate="a-priori"``, load average 1.8 to 2.0 on 2 cores) 0.30 to
0.69 with one head, 0.32 to 0.92 with two (ranks 36 to 66, where the certificate's O(n d) elementwise work weighs
as much as its GEMM columns). The error/bound ratios of the ``--quick`` grid are unchanged to 4 digits except one
causal case (2.4 % looser, Step 1' rule). docs/certificate.md writes every step out.

Shape legend: n tokens, d width, d_h head width, r rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fastpath.apply import f_products
from fastpath.bounds import rounding_rel
from fastpath.directed import LIBM, col_min_max, down, forward_chain, own_up, up
from fastpath.layer import HeadState
from fastpath.lowrank import exact_kernel_cert, gamma
from fastpath.work import Work
from reference.attention import TERM_NAMES

_NORM_UP = 1 + 1e-12  # covers the float64 evaluation of the 2-norms below (relative error <= (d+2)u << 1e-12)


@dataclass
class HeadKernel:
    """Step 1 of the module docstring for one head at one input."""

    tau: np.ndarray  # (n,) |f~ - f| <= tau_i f~ row-wise
    rho: np.ndarray  # (n,)
    rr: float  # relative rounding term r_r
    up: float  # 1/(1 - r_r): computed magnitude -> true magnitude
    E_h: np.ndarray  # (n, d_h) bound of |h~ - h|
    E_q: np.ndarray | None = None  # (n, d_h) bound of |q~ - q|
    E_k: np.ndarray | None = None  # (n, d_h) bound of |k~ - k|
    sigma: np.ndarray | None = None  # (n,) bound of max_j |logit~_ij - logit_ij|
    eps: np.ndarray | None = None  # (n,) kernel relative error per row
    exact_in: bool = False  # E_X = 0: the input is exact (the first layer), E_h is rounding only
    norms: tuple | None = None  # (n,) x 4: _rownorm of k~ (= of |k~|), E_k, E_q, |q~| + E_q (Step 1, reused by 1')

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.tau).all()) and self.rr < 0.5


def _rownorm(A: np.ndarray) -> np.ndarray:
    """Row 2-norms times :data:`_NORM_UP` (the sum of squares by ``einsum``, in one pass: 3-8x faster than a
    reduction along a short axis; any summation order is within the (d + 2) u that ``_NORM_UP`` covers)."""
    return np.sqrt(np.einsum("ij,ij->i", A, A)) * _NORM_UP  # (n,)


def head_kernel(st: HeadState, X: np.ndarray, E_X: np.ndarray, dense: bool = False) -> HeadKernel:
    """Per-row relative error of f~ (Step 1) and the rounding terms. X, E_X (n, d).

    ``dense=True``: for the dense f of an exact-forward head (its kernel error is float64 rounding only).
    """
    n, d = X.shape
    d_h = st.q.shape[1]
    Xa = np.abs(X)
    g_d = gamma(d + 2)
    exact_in = not E_X.any()
    # E_X @ |W| is +-0 everywhere for an exact input, and x + (+-0) = x for the x >= 0 (or NaN) added to it: skipped
    E_all = g_d * (Xa @ np.abs(np.concatenate([st.W_Q, st.W_K, st.W_V], axis=1)))  # (n, 3 d_h), one product
    E_q, E_k, E_h = (E_all[:, i * d_h : (i + 1) * d_h] for i in range(3))  # (n, d_h) each, views
    if not exact_in:  # the same sums in the same order as E_X @ |W| + g_d (|X| |W|)
        E_q, E_k, E_h = (np.add(E_X @ np.abs(W), E, out=E) for W, E in ((st.W_Q, E_q), (st.W_K, E_k), (st.W_V, E_h)))
    norms = (_rownorm(st.k), _rownorm(E_k), _rownorm(E_q), _rownorm(np.abs(st.q) + E_q))  # (n,) x 4
    kmax, ekmax = float(norms[0].max()), float(norms[1].max())
    sigma = abs(st.beta) * (norms[2] * kmax + norms[3] * ekmax)  # (n,)
    if dense and st.method != "exact":
        eps = exact_kernel_cert(X, st.W_Q, st.W_K, st.beta, st.R, st.cert.eps).err
        rr = 12 / (1 - eps) * gamma(n * (1 + d_h) + 4 * d + 40) if eps < 1 else math.inf
    else:
        eps = st.row_kernel_err  # the polynomial's error and the re-centring's; per row with fastpath.rowdegree
        if st.causal and st.method == "lowrank":  # the diagonal blocks use exp of float64 logits; the rows of the
            e_diag = 2 * gamma(d_h + 4) * (1 + st.R_cs)  # first block use nothing else (their support is in it)
            e_diag += st.centre_err * (1 + e_diag)
            eps = np.where(np.arange(n) < st.block, e_diag, eps + e_diag)  # (n,)
        if st.method == "clustered":  # fastpath.clustered: per row, the largest error of its cluster pairs
            eps = st.op.row_eps  # (n,)
        _, rr = rounding_rel(st, n, d)
    rho, tau = rho_tau(sigma, eps)
    return HeadKernel(tau, rho, rr, 1 / (1 - rr) if rr < 0.5 else math.inf, E_h, E_q, E_k, sigma,
                      np.broadcast_to(np.asarray(eps, dtype=float), (n,)), exact_in, norms)  # fmt: skip


def rho_tau(sigma, eps):
    r"""Step 1's $\rho = e^{2\sigma}(1+\varepsilon)/(1-\varepsilon) - 1$ and $\tau = \rho/(1-\rho)$ for σ, ε >= 0
    (arrays of one shape, or scalars), each an upper bound of its exact value (docs/certificate.md, *Step 0'*).

    $(1+\varepsilon)/(1-\varepsilon) = e^{2\,\mathrm{artanh}\,\varepsilon}$, so $\rho = \mathrm{expm1}(2\sigma + 2\,
    \mathrm{artanh}\,\varepsilon)$ without the cancellation of forming $e^{2\sigma}(1+\varepsilon)/(1-\varepsilon)$
    and subtracting 1 (that loses about $u/\rho$ relative, either sign: $3 \cdot 10^{-4}$ at $\varepsilon =
    10^{-13}$); the argument and the result are moved up past the functions' error
    (:data:`fastpath.directed.LIBM`) and each rounding, and $1 - \rho$ down. inf where $2\sigma + 2\,\mathrm{artanh}
    \,\varepsilon \ge 709$ or $\varepsilon \ge 1/2$ ($\rho \ge 2$ there: the certificate is refused either way),
    $\tau$ also where $\rho \ge 1$."""
    sigma, eps = np.asarray(sigma, dtype=float), np.asarray(eps, dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):
        t = up(np.arctanh(np.minimum(eps, 0.5)) * LIBM)  # (n,) artanh(eps) upwards; eps >= 1/2 gives inf below
        s = up(2 * sigma + up(2 * t))  # (n,) 2 sigma is exact
        rho = up(np.expm1(np.minimum(s, 709.0)) * LIBM)  # (n,)
        rho = np.where((eps < 0.5) & (s < 709.0), rho, math.inf)
        tau = np.where(rho < 1, up(rho / down(1 - rho)), math.inf)
    return rho, tau


def _bnd(tau, M, ME, rr):
    r"""$\tau M + (1+\tau)(1+r_r) M_E + r_r(1+\tau) M$ (Step 2); tau broadcast over rows (n, 1) or a scalar, ME
    may be a row (1, w) or a scalar that broadcasts against M.

    Evaluated as ``tau * M + (1 + tau) * ((1 + rr) * ME + rr * M)``, every operation on the same operands as that
    expression (IEEE addition and multiplication are commutative, so ``b + a`` is ``a + b`` bit for bit); the
    temporaries of the shape of the result are reused in place."""
    out = np.multiply(rr, M)  # rr M
    if out.shape != np.broadcast_shapes(out.shape, np.shape(ME), np.shape(tau)):
        return tau * M + (1 + tau) * ((1 + rr) * ME + rr * M)  # the result is larger than M: no temporary to reuse
    np.add(out, (1 + rr) * ME, out=out)  # (1 + rr) ME + rr M
    np.multiply(out, 1 + tau, out=out)  # (1 + tau) (...)
    return np.add(out, tau * M, out=out)  # tau M + (1 + tau) (...)


def _stack(blocks: dict, n: int) -> np.ndarray:
    """The named non-negative column blocks side by side, (n, w); a block given as None is known to be 0 and costs
    nothing."""
    cols = [v for v in blocks.values() if v is not None]
    return np.concatenate(cols, axis=1) if cols else np.zeros((n, 0))


def _unstack(blocks: dict, F: np.ndarray, up: float) -> dict:
    """The product F of :func:`_stack`'s columns back into named blocks, times ``up`` (computed -> true magnitude)."""
    res, c = {}, 0
    for k, v in blocks.items():
        if v is None:
            res[k] = 0.0
        else:
            res[k] = F[:, c : c + v.shape[1]] * up
            c += v.shape[1]
    return res


@dataclass
class Fused:
    r"""The certificate's columns of one head and, once a pass has carried them, their products (module docstring,
    *Fused products*): $Y$ (n, w_Y) with $\tilde f Y$ in ``FY``, $Z$ (n, w_Z) with $\tilde f^\top Z$ in ``FZ``."""

    Y: np.ndarray  # (n, w_Y)
    Z: np.ndarray  # (n, w_Z)
    hk: HeadKernel | None = None
    info: dict | None = None  # the named blocks and the quantities they were built from
    FY: np.ndarray | None = None  # (n, w_Y)
    FZ: np.ndarray | None = None  # (n, w_Z)
    madds: int = 0  # counted multiply-adds of the fused columns (fastpath.head.mm_fused)


def _carry(st: HeadState, fz: Fused, work: Work, dense: bool = False) -> Fused:
    """Unfused route: the products of ``fz``'s columns by :func:`fastpath.apply.f_products` (a pass of their own)."""
    if fz.FY is None:
        fz.FY, fz.FZ = f_products(st, fz.Y, fz.Z, work, dense=dense)
    return fz


def forward_columns(st: HeadState, hk: HeadKernel) -> Fused:
    r"""The right columns of :func:`forward_bound`: $[\,|\tilde h| \mid E_h\,]$, and where Step 1' pays
    $[\,\|\tilde k\| \odot |\tilde h| \mid \|E_k\| \odot |\tilde h| \mid \|\tilde k\| \mid \|E_k\|\,]$ (n, w_Y);
    they depend on the head's q, k, h and the input only, so the forward's own passes can carry them."""
    n = st.h.shape[0]
    ha = np.abs(st.h)
    # Step 1' gains at most a factor 1 + 2 sigma_i / eps_i over Step 1 on row i: skipped (and its 2 d_h + 2 columns)
    # unless sigma_i > eps_i / 10 on at least half the rows (not for the causal first block's exact rows alone)
    # (the median of values none of which is > 0 is not > 0: the O(n) test spares the sort on exact inputs)
    gap = None if hk.E_q is None else hk.sigma - 0.1 * hk.eps  # (n,)
    refine = gap is not None and bool((gap > 0).any()) and float(np.median(gap)) > 0
    # an exact input (first layer): E_h is the rounding of h only, bounded by its column max (f~ rows sum to <= up)
    cols = [ha] + ([] if hk.exact_in else [hk.E_h])
    if refine:  # Cauchy-Schwarz over the head index: (n, 1) norms of k~ and E_k
        kn, Ekn = hk.norms[0][:, None], hk.norms[1][:, None]  # (x x = |x| |x| exactly: the norms of |k~| are k~'s)
        cols += [kn * ha, Ekn * ha, kn, Ekn]
    Y = cols[0] if len(cols) == 1 else np.concatenate(cols, axis=1)  # (n, w_Y); one block: itself (a fresh array)
    return Fused(Y, np.zeros((n, 0)), hk, {"refine": refine})


def forward_bound(st: HeadState, hk: HeadKernel, work: Work, fused: Fused | None = None) -> np.ndarray:
    r"""Entrywise bound of |s~ - s| (Step 3, C.14 refined), (n, d_h); refines ``hk.tau`` in place (Step 1').

    Exact and exact-forward heads use the dense f (pass the ``dense=True`` kernel of :func:`head_kernel` for the
    latter). Step 1' (first order with its remainder kept): with $\delta_{ij}$ the logit change,
    $|\delta_{ij}| \le |\beta|(\Delta q_i \cdot |\tilde k_j| + \hat q_i \cdot \Delta k_j) \le \sigma_i$, the kernel
    ratio is $(1+e_{ij})e^{\delta_{ij}} = 1 + \eta_{ij}$ with $|\eta_{ij}| \le (1+\varepsilon)e^{\sigma_i}
    |\delta_{ij}| + \varepsilon$ ($e^x - 1 \le x e^x$), and $\tilde f_{ij} = f_{ij}(1+\eta_{ij})/(1+\bar\eta_i)$,
    $|\bar\eta_i| \le b_i = (1+\varepsilon)e^{\sigma_i}\mu_i + \varepsilon$, $\mu_i = \sum_k f_{ik}|\delta_{ik}|$; so
    $|\tilde f_{ij} - f_{ij}| \le f_{ij}(|\eta_{ij}| + b_i)/(1 - b_i)$. Summed against $|\tilde h|$ with the
    actual $|\delta_{ij}|$ (products $\tilde f(|\tilde k_e| \odot |\tilde h|)$ and $\tilde f(\Delta k_e \odot
    |\tilde h|)$), and as a per-row $\rho'_i = ((1+\varepsilon)e^{\sigma_i}\sigma_i + \varepsilon + b_i)/(1 - b_i)$
    for the backward; each is used only where it is smaller than Step 1's. ``fused``: the columns of
    :func:`forward_columns` with their products already carried by the forward's passes (else computed here).
    """
    n, d_h = st.h.shape
    dense = st.method == "exact" or st.exact_forward
    kept = fused is not None and not (fused.Y is None and fused.FY is None)  # (forward_step releases them after use)
    fz = _carry(st, fused if kept else forward_columns(st, hk), work, dense)
    refine = fz.info["refine"]
    M = fz.FY * hk.up
    if hk.exact_in:  # the bound of f~ E_h is the row up * max_j E_h,j (rows of f~ sum to <= up): no column of it
        Mh, ME, o = M[:, :d_h], (hk.up * col_min_max(hk.E_h)[1])[None, :], d_h  # (n, d_h), (1, d_h) exact max
    else:
        Mh, ME, o = M[:, :d_h], M[:, d_h : 2 * d_h], 2 * d_h
    KH, EKH = M[:, o : o + d_h], M[:, o + d_h : o + 2 * d_h]  # f~(||k~|| |h~|), f~(||E_k|| |h~|)
    Fk, FEk = M[:, o + 2 * d_h : o + 2 * d_h + 1], M[:, o + 2 * d_h + 1 :]  # f~||k~||, f~||E_k||  (n, 1)
    tau = hk.tau[:, None]
    own = forward_chain(st.W_Q.shape[0])  # the longest chain of this bound's own arithmetic (Step 0')
    old = _bnd(tau, Mh, ME, hk.rr)
    if not refine:
        return own_up(old, own)
    beta, eps = abs(st.beta), hk.eps
    onep = 1 + hk.tau  # f <= (1 + tau) f~
    with np.errstate(over="ignore", invalid="ignore"):
        es = (1 + eps) * np.exp(np.minimum(hk.sigma, 709.0))  # (n,)
        Eqn, qhn = hk.norms[2:]  # (n,): |delta_ij| <= |beta| (||E_q,i|| ||k~_j|| + ||q^_i|| ||E_k,j||), q^ = |q~| + E_q
        mu = onep * beta * (Eqn * Fk[:, 0] + qhn * FEk[:, 0])  # (n,)
        b = es * mu + eps  # (n,)
        Dh = onep[:, None] * beta * (Eqn[:, None] * KH + qhn[:, None] * EKH)  # (n, d_h)
        first = (es[:, None] * Dh + (eps + b)[:, None] * onep[:, None] * Mh) / (1 - b)[:, None]
        new = first + (1 + tau) * ((1 + hk.rr) * ME + hk.rr * Mh)
        ok = (b < 0.5) & np.isfinite(es)
        rho2 = own_up((es * hk.sigma + eps + b) / (1 - b), own)  # (n,) upwards (Step 0')
        tau2 = np.where(ok & (rho2 < 1), up(rho2 / down(1 - rho2)), math.inf)
    hk.tau = np.minimum(hk.tau, tau2)
    work.add(4 * n * d_h)
    return own_up(np.where(ok[:, None], np.minimum(old, new), old), own)


@dataclass
class HeadBoundPost:
    terms: dict[str, np.ndarray]  # D2..D8, each (n, d)
    dX: np.ndarray  # (n, d)
    dW: np.ndarray  # (d, d)
    dW_V: np.ndarray  # (d, d_h)


def backward_columns(st: HeadState, hk: HeadKernel, X: np.ndarray, E_X: np.ndarray, G: np.ndarray,
                     E_G: np.ndarray, ds: np.ndarray) -> Fused:  # fmt: skip
    r"""The columns of :func:`backward_bound` (Step 3): right $Y$ (n, w_Y) for $\tilde f Y$ and left $Z$ (n, w_Z)
    for $\tilde f^\top Z$; they depend on X, E_X, G, E_G, ds and the head's h, s, W only, so the fast backward's
    own passes can carry them (:func:`fastpath.headgrad.head_backward`)."""
    n, d = X.shape
    d_h = G.shape[1]
    rr, tmax = hk.rr, float(hk.tau.max())
    Xa, Ga, ha, sa = np.abs(X), np.abs(G), np.abs(st.h), np.abs(st.s)
    Gh, hh = Ga + E_G, ha + hk.E_h
    K = (G * st.s).sum(axis=1)  # (n,)  K~ as the fast backward forms it
    # |G~ s~ - G s| <= E_G |s~| + G^ |s~ - s|; rounding: the fast sum on |G~||s~|, the reference's on |G||s|
    dK = (E_G * sa + Gh * ds).sum(axis=1) + gamma(d_h + 2) * (Ga * sa + Gh * (sa + ds)).sum(axis=1)  # (n,)
    Ka, Kh = np.abs(K), np.abs(K) + dK
    # Cauchy-Schwarz over the head index b: sum_b |G_ib| |h_jb| <= ||G_i||_2 ||h_j||_2 (and likewise for the error
    # parts), so the (n, d_h d) products of p1 X, p1^T X become (n, d) ones
    hn, Gn, Ehn, hhn = (_rownorm(a)[:, None] for a in (ha, Ga, hk.E_h, hh))  # (n, 1) each
    EGn, Ghn = _rownorm(E_G)[:, None], _rownorm(Gh)[:, None]
    exact_in, exact_G = not E_X.any(), not E_G.any()  # an exact input (first layer) or upstream (no block above)
    # Step 3' (scalar coefficients, docs/certificate.md): the column side's tau_max, r_r are scalars, so a bound that
    # is a non-negative combination of f~^T products is f~^T of the combined column; (1 + gamma_4) covers forming it
    bp, sh = (1 + tmax) * (1 + rr), 2 * gamma(8) * (1 + 2 * rr)  # sh: a term's share of the rounding of dX's sum
    a0, r2 = tmax + rr * (1 + tmax), 2 * gamma(d + d_h + 4)
    c4 = 1 + gamma(16)  # forming a column and its coefficients in float64: at most 16 roundings on any path
    P6 = ((a0 + r2 + sh) * Ka + bp * dK)[:, None] * c4 * Xa + (c4 * bp * Kh)[:, None] * E_X  # (n, d)
    right = {"A": hn * Xa, "X": Xa, "B": None if exact_in else Ehn * Xa + hhn * E_X, "E": None if exact_in else E_X}
    if exact_in:  # E_X = 0: p1^T X and f^T G each as one column too (Step 3', the (4') and (5') inequalities)
        C7 = (a0 + r2 + sh) * Gn * Xa + (0.0 if exact_G else bp * EGn * Xa)
        P8 = (a0 + max(r2 + sh, 2 * gamma(n + d + 4) + rr)) * Ga + (0.0 if exact_G else bp * E_G)
        left = {"C7": C7 * c4, "P8": P8 * c4, "P6": P6}
    else:
        left = {"A": Gn * Xa, "B": EGn * Xa + Ghn * E_X, "G": Ga, "E": None if exact_G else E_G, "P6": P6}
    info = dict(right=right, left=left, K=K, dK=dK, Ka=Ka, norms=(hn, Gn, Ehn, hhn, EGn, Ghn), exact_in=exact_in,
                a7=a0 + r2 + sh, bp=bp)  # fmt: skip
    return Fused(_stack(right, n), _stack(left, n), hk, info)


def backward_bound(st: HeadState, hk: HeadKernel, X: np.ndarray, E_X: np.ndarray, G: np.ndarray, E_G: np.ndarray,
                   ds: np.ndarray, work: Work, fused: Fused | None = None) -> HeadBoundPost:  # fmt: skip
    """Step 3 for the backward of one head. X, E_X (n, d); G, E_G (n, d_h) = dL/ds of this head; ds = |s~ - s|.
    ``fused``: the columns of :func:`backward_columns` with their products carried by the fast backward's passes
    (else computed here by :func:`fastpath.apply.f_products`)."""
    n, d = X.shape
    d_h = G.shape[1]
    beta, rr, upf = abs(st.beta), hk.rr, hk.up  # upf: computed -> true magnitude
    Xa, Ga, ha = np.abs(X), np.abs(G), np.abs(st.h)
    Xh = Xa + E_X
    fz = _carry(st, fused if fused is not None else backward_columns(st, hk, X, E_X, G, E_G, ds), work)
    info = fz.info
    dK, Ka, exact_in = info["dK"], info["Ka"], info["exact_in"]
    hn, Gn, Ehn, hhn, EGn, Ghn = info["norms"]
    R, L = _unstack(info["right"], fz.FY, upf), _unstack(info["left"], fz.FZ, upf)
    if exact_in:  # f~(||E_h|| . |X~|) <= max_j ||E_h,j|| f~|X~|: E_h is rounding only here
        R["B"] = float(Ehn.max()) * R["X"]
    RA, RB, RX, RE = R["A"], R["B"], R["X"], R["E"]
    RH = upf * ha.max(axis=0)[None, :]  # f~|h~| <= max_j |h~_j| (rows of f~ sum to at most 1/(1 - r_r)); rounding only
    tau, tmax = hk.tau[:, None], float(hk.tau.max())
    # row side: p1 X, p2 X = K . fX
    M1 = Gn * RA  # (n, d) bound of the magnitude of p1~ X~
    b_p1X = _bnd(tau, M1, EGn * RA + Ghn * RB, rr)
    b_fX = _bnd(tau, RX, RE, rr)
    b_p2X = dK[:, None] * (1 + tau) * (RX + RE) + Ka[:, None] * b_fX + rr * Ka[:, None] * RX
    M2 = Ka[:, None] * RX
    Wa = np.abs(st.W_Q) @ np.abs(st.W_K).T  # (d, d) >= |W|, also the magnitude of its rounding
    WVa = np.abs(st.W_V)
    r2, sh = 2 * gamma(d + d_h + 4), 2 * gamma(8) * (1 + 2 * rr)  # final small products; a term's share of dX's sum
    gn = 2 * gamma(n + d + 4)
    # column side: p1^T X, p2^T X = f^T (K . X) (one column, Step 3'), f^T G; each D_k with its share of dX's rounding
    if exact_in:  # Step 3' (4'), (5'): hhn <= hn + Ehn, LA + LB <= LC7 / min(a7, b'); f^T G and f^T E_G as one column
        b7 = hn + info["bp"] / min(info["a7"], info["bp"]) * Ehn  # (n, 1)
        D7, D8, LGV = beta * (b7 * L["C7"]) @ Wa, L["P8"] @ WVa.T, L["P8"]  # LGV: X^T LGV bounds dW_V's part
    else:
        LA, LB, LG, LE = L["A"], L["B"], L["G"], L["E"]
        N1 = hn * LA
        b_fTG = _bnd(tmax, LG, LE, rr)
        D7 = beta * (_bnd(tmax, N1, Ehn * LA + hhn * LB, rr) + (r2 + sh) * N1) @ Wa
        D8 = (b_fTG + (r2 + sh) * LG) @ WVa.T
        LGV = b_fTG + (gn + rr) * LG  # (n, d_h)
    terms = {
        "D4": beta * (b_p1X + (r2 + sh) * M1) @ Wa.T,
        "D2": beta * (b_p2X + (r2 + sh) * M2) @ Wa.T,
        "D7": D7,
        "D6": beta * L["P6"] @ Wa,  # Step 3': with its share of the sum's rounding
        "D8": D8,
    }
    dX = sum(terms[t] for t in TERM_NAMES)
    # dW = beta X^T (p1 X - p2 X); the reference's centred form rounds on |X - 1 xbar^T| <= |X| + |xbar|
    Y_mag = (M1 + M2) * (1 + rr)
    xbar = np.abs(X.mean(axis=0))[None, :]  # (1, d)
    ref_mag = Y_mag + ((Ga * RH).sum(axis=1) + Ka)[:, None] * xbar  # (n, d)
    dW = beta * (E_X.T @ Y_mag + Xh.T @ (b_p1X + b_p2X) + (gn + rr) * (Xh.T @ ref_mag))  # (d, d)
    dWV = Xh.T @ LGV if exact_in else E_X.T @ (LG * (1 + rr)) + Xh.T @ LGV  # (d, d_h)
    work.add(n * d * (7 * d + (2 if exact_in else 3) * d_h))  # the closing products above
    own = n + 4 * (d + d_h) + 128  # the longest chain of this bound's own arithmetic (Step 0'): an n-term sum
    return HeadBoundPost({t: own_up(v, own) for t, v in terms.items()}, own_up(dX, own), own_up(dW * upf, own),
                         own_up(dWV * upf, own))  # fmt: skip


__all__ = ["HeadBoundPost", "HeadKernel", "backward_bound", "forward_bound", "head_kernel"]
