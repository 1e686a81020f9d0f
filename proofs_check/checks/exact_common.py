r"""Fixtures and routes shared by the exact checks (``exact_*`` modules): random inputs, central differences, the
closed-form-vs-finite-differences grid, the Lemma C.13 low-rank factors, and the printed-vs-corrected comparison.

No formula of the model lives here: every forward and backward quantity comes from :mod:`reference` (exact) or
:mod:`fastpath` (the polynomial features); the finite differences use the forward model only.

Shape legend: n tokens, d width, r = rank of the low-rank factors.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from proofs_check.decide import DPS, TOL_FD_MP
from proofs_check.registry import Context, Result
from reference import backward, forward, value_and_grad
from reference.attention import attention_matrix, head_vjp, logits, unnormalised
from reference.backend import Backend, get_backend
from reference.compare import TOLERANCES, max_abs, rel_err
from reference.fd import central_differences, fd_gradients
from reference.testing import fd_fields, grad_fields, random_problem, whole_rel_err, worst_rel_err

TOL_64 = TOLERANCES["float64_vs_mpmath"]  # float64 vs mpmath normwise, derivation in reference/compare.py
WRONG = TOLERANCES["PRINTED_WRONG"]
LOWRANK_TARGET = 1e-4  # proved relative error of the Taylor polynomial used for the low-rank factors

# -- inputs ------------------------------------------------------------------------------------------------------


def draw(rng: np.random.Generator, n: int, d: int, R: float = 1.0, keep: tuple[str, ...] | None = None) -> dict:
    """X, W (non-symmetric), W_V and an upstream gradient G, entries i.i.d. Uniform[-R, R] (G in [-1, 1]).

    ``keep`` names the arrays returned; all four are drawn regardless, so the random stream does not depend on it.
    """
    out = {
        "X": rng.uniform(-R, R, (n, d)),
        "W": rng.uniform(-R, R, (d, d)),
        "WV": rng.uniform(-R, R, (d, d)),
        "G": rng.uniform(-1, 1, (n, d)),
    }
    return out if keep is None else {k: v for k, v in out.items() if k in keep}


# -- central differences (the route that uses the forward model only) --------------------------------------------


def eta(bk: Backend):
    """Step: 1e-6 in float64 (SPEC §0.3), 10^-(dps/3) in mpmath (derivations in :mod:`proofs_check.decide`)."""
    return bk.scalar(10) ** -(DPS // 3) if bk.is_mp else 1e-6


def grad_fd(bk: Backend, fun: Callable, A: np.ndarray) -> np.ndarray:
    """Central-difference gradient of the scalar ``fun`` at A (shape of A), :func:`reference.fd.central_differences`."""
    out = central_differences(fun, A, eta(bk))
    return out if bk.is_mp else out.astype(np.float64)


def jac_fd(bk: Backend, fun: Callable, A: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian of an array-valued ``fun`` at A: shape fun(A).shape + A.shape."""
    return grad_fd(bk, fun, A)


# -- closed form (float64 and mpmath) against mpmath central differences -------------------------------------------


def _closed_vs_fd(rng, n, d, m, *, loss="linear", closed: dict | None = None, **cfg):
    """Worst relative error of every closed-form gradient (mpmath and float64) against mpmath FD.

    ``closed``: configuration overrides for the closed-form side only (a mutant: the wrong model differentiated).
    """
    p = random_problem(rng, n, d, m, loss=loss)
    ccfg = {**cfg, **(closed or {})}
    tr = forward(p.X, p.layers, backend="mpmath", dps=DPS, **ccfg)
    gm = backward(tr, value_and_grad(tr, p.loss)[1])
    fd = fd_gradients(p.X, p.layers, p.loss, dps=DPS, **cfg)
    k_fd, e_fd = worst_rel_err(grad_fields(gm), fd_fields(fd))
    tf = forward(p.X, p.layers, **ccfg)
    g64 = backward(tf, value_and_grad(tf, p.loss)[1])
    k_64, e_64 = worst_rel_err(grad_fields(g64), grad_fields(gm))
    return (k_fd, e_fd), (k_64, e_64), whole_rel_err(grad_fields(g64), grad_fields(gm))


def grid_result(ctx: Context, cases: list[dict], rng, mutants: dict[str, dict] | None = None) -> Result:
    """Closed form vs FD per field (< 1e-20); float64 vs mpmath normwise over the whole gradient (< 1e-12).

    ``mutants`` maps a mutant name to configuration overrides of the closed-form side (e.g. ``{"beta": 1.0}``: the
    closed form of a model without the 1/d scale held against the differences of the real one). The per-field
    float64 figure is reported too: it is larger where a field is tiny through cancellation.
    """
    closed = (mutants or {}).get(ctx.mutant) if ctx.mutant else None
    worst_fd, worst_64, whole = ("", 0.0), ("", 0.0), 0.0
    for cfg in cases:
        (kf, ef), (k6, e6), ew = _closed_vs_fd(rng, closed=closed, **cfg)
        if ef >= worst_fd[1]:
            worst_fd = (f"{kf} @ {cfg}", ef)
        if e6 >= worst_64[1]:
            worst_64 = (f"{k6} @ {cfg}", e6)
        whole = max(whole, ew)
    ok = worst_fd[1] < TOL_FD_MP and whole < TOL_64
    fig = (
        f"closed vs mpmath FD {worst_fd[1]:.1e} per field (<{TOL_FD_MP:g}); float64 vs mpmath {whole:.1e} "
        f"normwise, {worst_64[1]:.1e} worst field; {len(cases)} cases"
    )
    data = {"worst_fd": worst_fd, "worst_float64_field": worst_64, "float64_normwise": whole,
            "cases": [str(c) for c in cases]}  # fmt: skip
    return Result(ok, fig, data, observed=float(worst_fd[1]), bound=TOL_FD_MP, precision=f"mpmath dps={DPS}")


def single_head(rng, n=7, d=3, beta=1.0, causal=False):
    """One head with mpmath cache and an upstream G, for the printed-vs-corrected checks (beta = 1: appendices)."""
    bk = get_backend("mpmath", DPS)
    p = random_problem(rng, n, d, 1, loss="half_squared", with_g=False)
    with bk.precision():
        tr = forward(p.X, p.layers, beta=beta, causal=causal, backend="mpmath", dps=DPS)
        G = value_and_grad(tr, p.loss)[1]
        cache = tr.caches[0].attn.heads[0]
        hg = head_vjp(G, cache)
    fd = fd_gradients(p.X, p.layers, p.loss, beta=beta, causal=causal, dps=DPS, with_dT=False)
    return bk, cache, G, hg, fd


def printed_vs_corrected(ctx: Context, salt: int, printed, corrected_field: str, fd_field: str) -> Result:
    """A printed single-head formula against mpmath FD, next to the corrected closed form (beta = 1, n=7, d=3).

    Mutants: ``printed_replaced_by_corrected`` (were the printed form right, the check must say so) and
    ``corrected_replaced_by_printed`` (the corrected route must reject the printed form).
    """
    bk, c, G, hg, fd = single_head(ctx.rng(salt))
    with bk.precision():
        corr = getattr(hg, corrected_field)
        prn = printed(G, c)
        if ctx.mutated("printed_replaced_by_corrected"):
            prn = corr
        if ctx.mutated("corrected_replaced_by_printed"):
            corr = prn
        e_c = float(rel_err(corr, fd.layers[0][fd_field]))
        e_p = float(rel_err(prn, fd.layers[0][fd_field]))
    ok = e_c < TOL_FD_MP and e_p > WRONG
    cex = {"seed": ctx.seed, "salt": salt, "n": 7, "d": 3, "beta": 1, "printed_rel_error": e_p}
    return Result(ok, f"printed {e_p:.2f} rel (mpmath, 50 digits), corrected {e_c:.1e}",
                  {"printed": e_p, "corrected": e_c, "setting": "n=7, d=3, beta=1, seed-derived"},
                  observed=e_p, bound=WRONG, precision=f"mpmath dps={DPS}", counterexample=cex)  # fmt: skip


PRINTED_MUTANTS = ("printed_replaced_by_corrected", "corrected_replaced_by_printed")


# -- Lemma C.13's low-rank factors (spec §2.5) -----------------------------------------------------------------------


def taylor_bound(Rbar: float, g: int, tail_exp: float = 1.0) -> float:
    r"""Lagrange remainder of the degree-g Taylor polynomial of e^x, relative, on $[-\bar R, \bar R]$:
    $\bar R^{g+1} e^{c \bar R}/(g+1)!$ with c = ``tail_exp`` (1 is sharp, SPEC §0.5 item 1, and is
    :func:`fastpath.poly.taylor_rel_bound`; SPEC §3 #36 writes c = 2, that bound times $e^{\bar R}$)."""
    from fastpath.poly import taylor_rel_bound

    return taylor_rel_bound(Rbar, g) * math.exp((tail_exp - 1) * Rbar)


def degree_for(Rbar: float, eps: float) -> int:
    """The smallest Taylor degree whose proved relative error on [-Rbar, Rbar] is at most ``eps``."""
    from fastpath.poly import min_taylor_degree

    return min_taylor_degree(Rbar, eps)


def smallest_degree(error_of: Callable[[int], float], eps: float, hi: int) -> int | None:
    """The smallest degree g in [0, hi] whose *measured* error ``error_of(g)`` is at most ``eps``, None when none is:
    the one search over measured errors (a linear one: a measured Taylor error need not decrease with g while
    g < R, e.g. at x = -2 degree 1 is worse than degree 0). The proved degree is :func:`degree_for`."""
    return next((g for g in range(hi + 1) if error_of(g) <= eps), None)


def lowrank(X: np.ndarray, W: np.ndarray, beta: float, g: int | None = None) -> dict:
    r"""Lemma C.13 factors (spec §2.5): $U_0 V_0^\top = P(\beta (XW) X^\top)$, $U_1 = \tilde D^{-1} U_0$,
    $V_1 = V_0$, from :func:`fastpath.lowrank.lowrank_attention` with the degree-g Taylor polynomial. Degree ``g``,
    or the smallest with a proved relative error below :data:`LOWRANK_TARGET` on the measured logit range."""
    from fastpath.lowrank import lowrank_attention

    Q = X @ W  # (n, d): logits beta * Q X^T
    Rbar = float(np.abs(logits(X, W, beta)).max()) if g is None else math.nan
    g = degree_for(Rbar, LOWRANK_TARGET) if g is None else g
    U1, V1, Dt, _, _ = lowrank_attention(Q, X, beta, None, "taylor", degree=g)  # (n, r), (n, r), (n,)
    return {"U0": Dt[:, None] * U1, "V0": V1, "U1": U1, "V1": V1, "g": g, "Rbar": Rbar}


def fast_head(X: np.ndarray, W: np.ndarray, WV: np.ndarray, G: np.ndarray, beta: float, g: int):
    r"""The shipped fast forward and corrected backward of one head (:func:`fastpath.layer.head_forward`,
    :func:`fastpath.layer.head_backward`) with merged weight W ($W_Q = W$, $W_K = I$, so $\tilde f$ is the
    :func:`lowrank` one) and the degree-g Taylor polynomial; upstream G. Returns its ``HeadGradsFast``."""
    from fastpath.layer import head_backward, head_forward
    from fastpath.lowrank import MEMORY_BUDGET

    st = head_forward(X, W, np.eye(W.shape[0]), WV, beta, eps=LOWRANK_TARGET, kind="taylor", causal=False,
                      budget=MEMORY_BUDGET, degree=g, method="lowrank")  # fmt: skip
    return head_backward(st, X, G)


def lowrank_cases(ctx: Context, salt: int, ns=(64,)) -> list[dict]:
    """Fixture_medium-like cases for the low-rank lemmas: beta = 1/d with R = 1, and beta = 1 with R = 1/2."""
    rng = ctx.rng(salt)
    cases = []
    for n in ns:
        for beta, R in ((1.0 / 4, 1.0), (1.0, 0.5)):
            inp = draw(rng, n, 4, R)
            lr = lowrank(inp["X"], inp["W"], beta)
            meta = {"n": n, "d": 4, "beta": beta, "R": R, "g": lr["g"], "Rbar": lr["Rbar"]}
            cases.append({**inp, "beta": beta, **{k: lr[k] for k in ("U0", "V0", "U1", "V1")}, "meta": meta})
    return cases


def lr_inputs(ctx: Context, salt: int, keep: tuple[str, ...]) -> list[dict]:
    """:func:`lowrank_cases` without their metadata, keeping X, W, beta, the factors and the arrays in ``keep``."""
    ns = (64,) if ctx.quick else (64, 128)
    base = ("X", "W", "beta", "U0", "V0", "U1", "V1")
    return [{k: c[k] for k in base + keep} for c in lowrank_cases(ctx, salt, ns)]


def lr_errors(bk: Backend, X, W, beta, U0, V0, U1, V1):
    r"""$(A, f, \hat\varepsilon, \delta_f)$: $\hat\varepsilon = \max |\tilde A - A|/A$, $\delta_f = \|U_1 V_1^\top -
    f\|_\infty$, f from the reference. $A = u(X) = \exp(\beta X W X^\top)$ is Def. C.6's unnormalised matrix, the
    object the lemma approximates (:func:`reference.attention.unnormalised`)."""
    f = attention_matrix(X, W, beta, False, bk)  # (n, n)
    A = unnormalised(X, W, beta, bk)  # (n, n)  Def. C.6
    eps = max_abs((U0 @ V0.T - A) / A)
    return A, f, eps, max_abs(U1 @ V1.T - f)


def rowkron(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    r"""Row-wise Kronecker product $U \oslash V$ in the paper's column order (Fact C.2): column $l_1 + l_2 k_1$
    (0-based) is $U_{:,l_1} V_{:,l_2}$, i.e. :func:`fastpath.features.row_kron` with the factors exchanged."""
    from fastpath.features import row_kron

    return row_kron(V, U)


def p_parts(bk, X, W, WV, G, beta, U1, V1):
    """Exact f, h, q, p1, p2, K (:func:`reference.attention.logit_gradient`, upstream G) and the factors
    U3 = U1⊘G, V3 = V1⊘h of Lemma C.15."""
    from reference.attention import head_forward, logit_gradient

    c = head_forward(X, W, WV, beta, False, bk)
    K, p1, p2 = logit_gradient(G, c.f, c.h, c.s)  # (n,), (n, n), (n, n)
    q = G @ c.h.T  # (n, n)  Def. C.11
    return c.f, c.h, q, p1, p2, K, rowkron(U1, G), rowkron(V1, c.h)
