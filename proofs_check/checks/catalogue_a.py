r"""Catalogue checks, part A (issue 5): SPEC §3 entries of the main text (#1, #13, #22) and of Appendices C, D, F and
G that no ``ref.*`` check covers.

Every check follows SPEC §0.1 by kind:

* [ID]: both sides are computed in float64; **before any failure counts** the whole claim is recomputed in mpmath
  at 50 digits from the same float64 inputs (converted exactly), and the mpmath run decides. A derivative is
  compared with central differences (float64: step 1e-6, tolerance 1e-6; mpmath: step 1e-16, tolerance 1e-20).
* [INEQ]: both sides are computed and the slack observed/bound is stored in ``data["slack"]`` (per inequality,
  worst over the cases); a float64 violation is re-decided in mpmath the same way.
* WRONG-AS-PRINTED: the printed form must fail **in mpmath** (relative error above 1e-3) and the corrected form
  hold; the counterexample (seed, shapes, indices, errors) is stored in ``data["counterexample"]``.

The low-rank factors of Lemma C.13 are the paper's construction (spec §2.5): a Taylor polynomial of e^x lifted to
symmetric monomial features (``fastpath.features.lift``), normalized by $\tilde D = \mathrm{diag}(U_0 V_0^\top 1)$.
The degree is the smallest with a proved relative error below 1e-4, so every low-rank error is far above rounding
and the inequalities are tested where they bite.

Shape legend: n tokens, d width, r = rank of the factors, k1 = r.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import mpmath
import numpy as np

from proofs_check.decide import DPS, TINY, decide
from proofs_check.registry import Context, Result, check
from reference import backward, forward, value_and_grad
from reference.attention import attention_matrix, head_forward, head_vjp
from reference.backend import FLOAT64, Backend
from reference.compare import max_abs, rel_err
from reference.fd import _central as central_differences
from reference.testing import random_problem

LOWRANK_TARGET = 1e-4  # proved relative error of the Taylor polynomial used for the low-rank factors


def _eta(bk: Backend):
    """Central-difference step: 1e-6 in float64 (SPEC §0.3), 10^-(dps/3) in mpmath (proofs_check.decide)."""
    return bk.scalar(10) ** -(DPS // 3) if bk.is_mp else 1e-6


def _decide(claim: Callable, cases: list[dict], *, note: str = "", data: dict | None = None) -> Result:
    return decide(claim, cases, note=note, data=data)


def _counterexample(ctx: Context, salt: int, shapes: dict, rows: dict, **extra) -> dict:
    return {"seed": ctx.seed, "salt": salt, "shapes": shapes, "errors": rows, **extra}


# -- shared fixtures -------------------------------------------------------------------------------------------------


def _draw(
    rng: np.random.Generator, n: int, d: int, R: float = 1.0, keep: tuple[str, ...] | None = None
) -> dict[str, np.ndarray]:
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


def _taylor_bound(Rbar: float, g: int, tail_exp: float = 1.0) -> float:
    r"""Lagrange remainder of the degree-g Taylor polynomial of e^x, relative, on $[-\bar R, \bar R]$:
    $\bar R^{g+1} e^{c \bar R}/(g+1)!$ with c = ``tail_exp`` (1 is sharp; SPEC §3 #36 writes c = 2)."""
    mp = mpmath.MPContext()  # a per-call context: never the global precision
    mp.dps = 30
    return float(mp.mpf(Rbar) ** (g + 1) * mp.exp(tail_exp * mp.mpf(Rbar)) / mp.factorial(g + 1))


def _degree_for(Rbar: float, eps: float) -> int:
    g = 0
    while _taylor_bound(Rbar, g) > eps:
        g += 1
    return g


def _lowrank(X: np.ndarray, W: np.ndarray, beta: float, g: int | None = None) -> dict:
    r"""Lemma C.13 factors (spec §2.5): $U_0 V_0^\top = P(\beta (XW) X^\top)$, $U_1 = \tilde D^{-1} U_0$,
    $V_1 = V_0$. Degree ``g``, or the smallest with a proved relative error below :data:`LOWRANK_TARGET`."""
    from fastpath.features import lift
    from fastpath.poly import taylor_coeffs

    Q = X @ W  # (n, d): logits beta * Q X^T
    Rbar = float(np.abs(beta * (Q @ X.T)).max()) if g is None else math.nan
    g = _degree_for(Rbar, LOWRANK_TARGET) if g is None else g
    U0, V0 = lift(Q, X, taylor_coeffs(g), beta)  # (n, r) each
    Dt = U0 @ V0.sum(axis=0)  # (n,)  D~ = U0 (V0^T 1)
    return {"U0": U0, "V0": V0, "U1": U0 / Dt[:, None], "V1": V0, "g": g, "Rbar": Rbar}


SLOPE_MAX = 1.5  # fitted log-log slope of time vs n: linear (about 1) against the naive quadratic (2)


def _time_slope(ctx: Context, salt: int, ns, work: Callable) -> dict:
    """Best-of-5 wall time of ``work(inputs)`` against n (d = 4, fixed degree), and the fitted log-log slope."""
    rng = ctx.rng(salt)
    ts = []
    for n in ns:
        inp = _draw(rng, n, 4)
        best = math.inf
        for _ in range(5):
            t0 = time.perf_counter()
            work(inp)
            best = min(best, time.perf_counter() - t0)
        ts.append(best)
    slope = float(np.polyfit(np.log(ns), np.log(ts), 1)[0])
    return {"n": list(ns), "seconds": ts, "slope": slope}


def _lowrank_cases(ctx: Context, salt: int, ns=(64,)) -> list[dict]:
    """Fixture_medium-like cases for the low-rank lemmas: beta = 1/d with R = 1, and beta = 1 with R = 1/2."""
    rng = ctx.rng(salt)
    cases = []
    for n in ns:
        for beta, R in ((1.0 / 4, 1.0), (1.0, 0.5)):
            inp = _draw(rng, n, 4, R)
            lr = _lowrank(inp["X"], inp["W"], beta)
            cases.append(
                {
                    **inp,
                    "beta": beta,
                    **{k: lr[k] for k in ("U0", "V0", "U1", "V1")},
                    "meta": {"n": n, "d": 4, "beta": beta, "R": R, "g": lr["g"], "Rbar": lr["Rbar"]},
                }
            )
    return cases


def _exact(bk: Backend, X, W, beta):
    """A = exp(beta X W X^T), f = D^{-1} A (Def. C.6–C.8 with the scale made explicit)."""
    A = bk.exp(beta * ((X @ W) @ X.T))  # (n, n)
    return A, attention_matrix(X, W, beta, False, bk)


def _lr_errors(bk: Backend, X, W, beta, U0, V0, U1, V1):
    r"""$\hat\varepsilon = \max |\tilde A - A|/A$ and $\delta_f = \|U_1 V_1^\top - f\|_\infty$."""
    A, f = _exact(bk, X, W, beta)
    eps = max_abs((U0 @ V0.T - A) / A)
    return A, f, eps, max_abs(U1 @ V1.T - f)


def _rowkron(U: np.ndarray, V: np.ndarray) -> np.ndarray:
    r"""Row-wise Kronecker product $U \oslash V$ (Fact C.2): column $l_1 + l_2 k_1$ (0-based) is $U_{:,l_1}
    V_{:,l_2}$."""
    n, k1 = U.shape
    return (U[:, None, :] * V[:, :, None]).reshape(n, k1 * V.shape[1])


def _jac_fd(bk: Backend, fun: Callable, A: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian of an array-valued ``fun`` at A: shape fun(A).shape + A.shape."""
    eta = _eta(bk)
    cols = []
    for idx in np.ndindex(*A.shape):
        Ap, Am = A.copy(), A.copy()
        Ap[idx] = A[idx] + eta
        Am[idx] = A[idx] - eta
        cols.append((np.asarray(fun(Ap)) - np.asarray(fun(Am))) / (2 * eta))
    J = np.stack(cols, axis=-1)
    return J.reshape(J.shape[:-1] + A.shape)


def _grad_fd(bk: Backend, fun: Callable, A: np.ndarray) -> np.ndarray:
    out = central_differences(fun, A, _eta(bk))
    return out if bk.is_mp else out.astype(np.float64)


# -- Main text -------------------------------------------------------------------------------------------------------


@check(
    id="cat.notation.maxnorm",
    label="Notation §3",
    name="||A||_inf is the entrywise max; ||AB|| <= k ||A|| ||B||",
    kind="DEF",
    expected="OK",
    spec=(1,),
)
def check_notation(ctx: Context) -> Result:
    r"""Notation of §3 (spec #1): $\|A\|_\infty = \max_{ij}|A_{ij}|$ (entrywise, not the induced norm), $\langle x, y
    \rangle = \sum_i x_i y_i$, and the consequence used throughout, $\|AB\|_\infty \le k \|A\|_\infty \|B\|_\infty$
    for an inner dimension k (tight on all-ones matrices)."""
    rng = ctx.rng(101)
    cases = []
    for _ in range(3 if ctx.quick else 20):
        n, k, m = (int(v) for v in rng.integers(2, 9, 3))
        cases.append({"A": rng.uniform(-1, 1, (n, k)), "B": rng.uniform(-1, 1, (k, m)), "x": rng.uniform(-1, 1, k)})

    def claim(bk, A, B, x):
        k = A.shape[1]
        loop = sum((A[0, j] * x[j] for j in range(k)), bk.scalar(0))
        induced = max(sum(abs(v) for v in row) for row in A)  # max row sum: the induced inf-norm
        ones = bk.ones((A.shape[0], k)) @ bk.ones((k, B.shape[1]))
        return [
            ("eq", "entrywise max = max|A_ij|", max_abs(A), max(abs(v) for v in A.flat)),
            ("eq", "<x, y> = sum x_i y_i", A[0] @ x, loop),
            ("ne", "entrywise max differs from the induced norm", max_abs(A), induced),
            ("le", "||AB|| <= k ||A|| ||B||", max_abs(A @ B), k * max_abs(A) * max_abs(B)),
            ("eq", "equality on all-ones", max_abs(ones), bk.scalar(k)),
        ]

    return _decide(claim, cases)


@check(
    id="cat.claim5.1.lowrank_forward",
    label="Claim §5.1",
    name="Attn(X) ~ U1 (V1^T V): reordering and its error",
    kind="INEQ",
    expected="OK",
    spec=(13,),
    uses=("cat.C13.lowrank_f", "cat.C14.lowrank_s"),
)
def check_claim_5_1(ctx: Context) -> Result:
    r"""Claim of §5.1 (spec #13): with $f \approx U_1 V_1^\top$ and $V = X W_V$, $\mathrm{Attn}(X) \approx
    U_1 (V_1^\top V)$, computed right to left in $O(n k_1 d)$. [ID] $U_1(V_1^\top V) = (U_1 V_1^\top) V$;
    [INEQ] $\|U_1(V_1^\top V) - fV\|_\infty \le n\delta_f\|V\|_\infty$ and $\le
    \frac{2\hat\varepsilon}{1-\hat\varepsilon}
    \|V\|_\infty$."""
    return _decide(_claim_lowrank_product(reorder=True), _lr_inputs(ctx, 102, ("WV",)))


def _lr_inputs(ctx: Context, salt: int, keep: tuple[str, ...]) -> list[dict]:
    ns = (64,) if ctx.quick else (64, 128)
    base = ("X", "W", "beta", "U0", "V0", "U1", "V1")
    return [{k: c[k] for k in base + keep} for c in _lowrank_cases(ctx, salt, ns)]


def _claim_lowrank_product(reorder: bool):
    def claim(bk, X, W, WV, beta, U0, V0, U1, V1):
        A, f, eps, df = _lr_errors(bk, X, W, beta, U0, V0, U1, V1)
        V = X @ WV  # (n, d)  h(X)
        fast = U1 @ (V1.T @ V)  # (n, d), O(n k1 d)
        err = max_abs(fast - f @ V)
        rows = [("eq", "U1(V1^T V) = (U1 V1^T)V", fast, (U1 @ V1.T) @ V)] if reorder else []
        return rows + [
            ("le", "err <= n delta_f ||V||", err, X.shape[0] * df * max_abs(V)),
            ("le", "err <= 2eps/(1-eps) ||V||", err, 2 * eps / (1 - eps) * max_abs(V)),
        ]

    return claim


@check(
    id="cat.claimB5.prompt_tuning",
    label="Claim §B.5",
    name="Prompt-tuning gradient = prompt rows of dL/dX",
    kind="ID",
    expected="OK",
    spec=(22,),
    uses=("ref.C4.closed_form",),
)
def check_prompt_tuning(ctx: Context) -> Result:
    r"""Claim of §B.5 (spec #22): for $X = [X_p; X_{in}]$, $\partial L/\partial X_p$ is the block of prompt rows of
    $\partial L/\partial X$ (so it costs the same). Closed form vs central differences taken in $X_p$ alone."""
    rng = ctx.rng(103)
    configs = [(2, 4, 3, 2)] if ctx.quick else [(2, 4, 3, 2), (3, 5, 4, 3)]
    cases = []
    for n_p, n_in, d, m in configs:
        p = random_problem(rng, n_p + n_in, d, m)
        cases.append({"Xp": p.X[:n_p], "Xin": p.X[n_p:], "problem": p})

    def claim(bk, Xp, Xin, problem):
        cfg = {"activation": "tanh", "backend": bk.name, "dps": DPS}

        def loss_of(P):
            return value_and_grad(forward(np.concatenate([P, Xin]), problem.layers, **cfg), problem.loss)[0]

        tr = forward(np.concatenate([Xp, Xin]), problem.layers, **cfg)
        dX = backward(tr, value_and_grad(tr, problem.loss)[1]).dX  # (n, d)
        return [("fd", "prompt rows of dL/dX vs FD in X_p", dX[: Xp.shape[0]], _grad_fd(bk, loss_of, Xp))]

    return _decide(claim, cases)


# -- Appendix C ------------------------------------------------------------------------------------------------------


@check(
    id="cat.C1.inner_products",
    label="Fact C.1",
    name="<x⊙y,z> = x^T diag(y) z; <x,y⊙z> symmetric; <x,y> = <x⊙y,1>",
    kind="ID",
    expected="OK",
    spec=(23,),
    uses=("cat.notation.maxnorm",),
)
def check_C1(ctx: Context) -> Result:
    r"""Fact C.1 (spec #23): (a) $\langle x\odot y, z\rangle = x^\top \mathrm{diag}(y) z$; (b) $\langle x, y\odot
    z\rangle
    = \langle y, x\odot z\rangle = \langle z, y\odot x\rangle$; (c) $\langle x, y\rangle = \langle x\odot y,
    1_n\rangle$."""
    rng = ctx.rng(104)
    sizes = rng.integers(2, 12, 4 if ctx.quick else 30)
    cases = [{"V": rng.uniform(-2, 2, (3, int(n)))} for n in sizes]

    def claim(bk, V):
        x, y, z = V
        n = len(x)
        D = bk.zeros((n, n))
        for i in range(n):
            D[i, i] = y[i]
        return [
            ("eq", "(a)", (x * y) @ z, x @ D @ z),
            ("eq", "(b1)", x @ (y * z), y @ (x * z)),
            ("eq", "(b2)", x @ (y * z), z @ (y * x)),
            ("eq", "(c)", x @ y, (x * y) @ bk.ones((n,))),
        ]

    return _decide(claim, cases)


@check(
    id="cat.C2.hadamard_lowrank",
    label="Fact C.2",
    name="(U1V1^T)⊙(U2V2^T) = (U1⊘U2)(V1⊘V2)^T",
    kind="ID",
    expected="OK",
    spec=(24,),
    uses=("cat.C1.inner_products",),
)
def check_C2(ctx: Context) -> Result:
    r"""Fact C.2 (spec #24): $(U_1V_1^\top)\odot(U_2V_2^\top) = (U_1\oslash U_2)(V_1\oslash V_2)^\top$ with
    $(U_1\oslash U_2)_{i, l_1 + (l_2-1)k_1} = (U_1)_{i,l_1}(U_2)_{i,l_2}$, an n×k1k2 matrix; any column order works
    when U and V use the same one."""
    rng = ctx.rng(105)
    cases = []
    for _ in range(3 if ctx.quick else 12):
        n, k1, k2 = (int(v) for v in rng.integers(2, 9, 3))
        mats = {k: rng.uniform(-1, 1, (n, kk)) for k, kk in (("U1", k1), ("V1", k1), ("U2", k2), ("V2", k2))}
        cases.append({**mats, "perm": rng.permutation(k1 * k2)})

    def claim(bk, U1, V1, U2, V2, perm):
        n, k1 = U1.shape
        k2 = U2.shape[1]
        U = bk.zeros((n, k1 * k2))  # the paper's index formula, written out (0-based: l1 + l2 k1)
        V = bk.zeros((n, k1 * k2))
        for i in range(n):
            for l1 in range(k1):
                for l2 in range(k2):
                    U[i, l1 + l2 * k1] = U1[i, l1] * U2[i, l2]
                    V[i, l1 + l2 * k1] = V1[i, l1] * V2[i, l2]
        lhs = (U1 @ V1.T) * (U2 @ V2.T)
        return [
            ("eq", "paper's column order", U @ V.T, lhs),
            ("eq", "vectorised row-Kronecker = index formula", _rowkron(U1, U2), U),
            ("eq", "any common column order", U[:, perm] @ V[:, perm].T, lhs),
        ]

    return _decide(claim, cases)


@check(
    id="cat.C5.index_notation",
    label="Definition C.5",
    name="Z_{i,*} is row i as a column; f_{i,*} != f_{*,i}",
    kind="DEF",
    expected="OK",
    spec=(28,),
    uses=("cat.notation.maxnorm",),
)
def check_C5(ctx: Context) -> Result:
    r"""Definition C.5 (spec #28): $Z_{i,j} = e_i^\top Z e_j$; $Z_{i,*}$ is row i written as a d×1 column, $Z_{*,j}$
    column j (n×1). For the attention matrix $f_{i_0,*} \ne f_{*,i_0}$: mixing them up is the source of the
    transposition errors of Lemmas D.1 and G.3."""
    rng = ctx.rng(106)
    inp = _draw(rng, 6, 3)
    cases = [{"X": inp["X"], "W": inp["W"], "i0": int(rng.integers(0, 6))}]

    def claim(bk, X, W, i0):
        n, d = X.shape
        e = bk.eye(n)
        f = attention_matrix(X, W, 1, False, bk)
        row_as_col = X[i0].reshape(d, 1)  # Z_{i,*}: d×1
        return [
            ("eq", "Z_{i,*} = (e_i^T Z)^T", row_as_col, (e[i0] @ X).reshape(d, 1)),
            ("eq", "Z_{*,j} = Z e_j", X[:, 1].reshape(n, 1), (X @ bk.eye(d)[1]).reshape(n, 1)),
            ("eq", "Z_{i,j} = e_i^T Z e_j", X[i0, 1], e[i0] @ X @ bk.eye(d)[1]),
            ("ne", "row f_{i0,*} differs from column f_{*,i0}", f[i0, :], f[:, i0]),
        ]

    return _decide(claim, cases)


@check(
    id="cat.C6.u_without_scale",
    label="Definition C.6",
    name="u(X) = exp(XWX^T) drops the 1/d of Def. C.3",
    kind="DEF",
    expected="AMBIG",
    spec=(29,),
    uses=("ref.def1.2.attention", "ref.F4.dW"),
)
def check_C6(ctx: Context) -> Result:
    r"""Definition C.6 (spec #29): $u(X) := \exp(XWX^\top)$ with **no** 1/d, unlike Def. C.3's $\exp(XWX^\top/d)$.
    The experiment shows the two conventions are materially different and that the closed forms of App. D–H match
    only $\beta = 1$: $\partial L/\partial W = X^\top p X$ (F.4) agrees with central differences for C.6's model, while
    for C.3's model the gradient is $\beta X^\top P X$, off from the unscaled form by the factor d."""
    rng = ctx.rng(107)
    cases = [_draw(rng, 5, 3)] if ctx.quick else [_draw(rng, 5, 3), _draw(rng, 6, 4)]

    def claim(bk, X, W, WV, G):
        d = X.shape[1]
        out = []
        for beta, tag in ((bk.scalar(1), "C.6 beta=1"), (bk.scalar(1) / d, "C.3 beta=1/d")):
            hv = head_vjp(G, head_forward(X, W, WV, beta, False, bk))
            XPX = X.T @ hv.P @ X  # (d, d)

            def loss_of(Wm, beta=beta):
                return (G * head_forward(X, Wm, WV, beta, False, bk).s).sum()

            fd = _grad_fd(bk, loss_of, W)
            if tag.startswith("C.6"):
                out.append(("fd", f"{tag}: X^T p X = FD dL/dW", XPX, fd))
            else:
                out += [
                    ("fd", f"{tag}: beta X^T P X = FD dL/dW", beta * XPX, fd),
                    ("ne", f"{tag}: unscaled X^T P X is off", XPX, fd),
                ]
        f1, fd_ = attention_matrix(X, W, 1, False, bk), attention_matrix(X, W, bk.scalar(1) / d, False, bk)
        return out + [("ne", "f under C.6 differs from f under C.3", f1, fd_)]

    return _decide(claim, cases, note="the 1/d of Def. C.3 is dropped from Def. C.6 on; the two models differ")


@check(
    id="cat.C7.alpha",
    label="Definition C.7",
    name="alpha(X) = u(X) 1_n, the softmax denominators",
    kind="DEF",
    expected="OK",
    spec=(30,),
    uses=("cat.C6.u_without_scale",),
)
def check_C7(ctx: Context) -> Result:
    r"""Definition C.7 (spec #30): $\alpha(X) = u(X) 1_n$; with Def. C.8, $f = \mathrm{diag}(\alpha)^{-1} u$ is the
    reference attention matrix at $\beta = 1$, and $\alpha > 0$."""
    rng = ctx.rng(108)
    cases = [_draw(rng, n, 3, keep=("X", "W")) for n in ((5,) if ctx.quick else (5, 9))]

    def claim(bk, X, W):
        u = bk.exp((X @ W) @ X.T)  # (n, n)
        alpha = u @ bk.ones((X.shape[0],))  # (n,)
        loop = np.array([sum(u[i], bk.scalar(0)) for i in range(X.shape[0])], dtype=alpha.dtype)
        return [
            ("eq", "alpha = u 1_n (row sums)", alpha, loop),
            ("eq", "diag(alpha)^-1 u = f (beta=1)", u / alpha[:, None], attention_matrix(X, W, 1, False, bk)),
            ("le", "alpha > 0: tiny <= min alpha", TINY, min(alpha)),
        ]

    return _decide(claim, cases)


@check(
    id="cat.C9.values",
    label="Definition C.9",
    name="h(X) = X W_V",
    kind="DEF",
    expected="OK",
    spec=(32,),
    uses=("ref.def1.2.attention",),
)
def check_C9(ctx: Context) -> Result:
    r"""Definition C.9 (spec #32): $h(X) = X W_V$ (n×d); agrees with a loop and with the reference head's values."""
    rng = ctx.rng(109)
    cases = [_draw(rng, n, d) for n, d in (((5, 3),) if ctx.quick else ((5, 3), (8, 4)))]

    def claim(bk, X, W, WV, G):
        n, d = X.shape
        loop = np.array(
            [[sum((X[i, k] * WV[k, j] for k in range(d)), bk.scalar(0)) for j in range(d)] for i in range(n)],
            dtype=X.dtype,
        )
        return [
            ("eq", "h = X W_V (loop)", X @ WV, loop),
            ("eq", "h = reference head value", head_forward(X, W, WV, 1, False, bk).h, loop),
        ]

    return _decide(claim, cases)


@check(
    id="cat.C11.q",
    label="Definition C.11",
    name="q = G h^T = dL/df, rank <= d",
    kind="DEF",
    expected="OK",
    spec=(34,),
    uses=("cat.C9.values",),
)
def check_C11(ctx: Context) -> Result:
    r"""Definition C.11 (spec #34): $q(X) = G h(X)^\top$ (n×n) is the gradient of $L = \langle G, f h\rangle$ with
    respect to the attention matrix f, and has exact rank $\le d$ (the $(d+1)$-th singular value vanishes)."""
    rng = ctx.rng(110)
    cases = []
    for n, d in ((6, 2),) if ctx.quick else ((6, 2), (9, 3)):
        inp = _draw(rng, n, d)
        sv = np.linalg.svd(inp["G"] @ (inp["X"] @ inp["WV"]).T, compute_uv=False)
        cases.append({**inp, "sv_ratio": float(sv[d] / sv[0])})

    def claim(bk, X, W, WV, G, sv_ratio):
        h = X @ WV
        f = attention_matrix(X, W, 1, False, bk)
        fd = _grad_fd(bk, lambda F: (G * (F @ h)).sum(), f)
        return [("fd", "q = dL/df (FD in f)", G @ h.T, fd), ("le", "sigma_{d+1}/sigma_1 (rank <= d)", sv_ratio, 1e-12)]

    return _decide(claim, cases)


@check(
    id="cat.C13.lowrank_f",
    label="Lemma C.13",
    name="Low-rank f: error bounds hold; entry bound needs dR^2 = o(log n)",
    kind="INEQ",
    expected="GAP",
    spec=(36,),
    uses=("cat.C7.alpha", "cat.C2.hadamard_lowrank"),
)
def check_C13(ctx: Context) -> Result:
    r"""Lemma C.13 (spec #36): for $\|XW\|_\infty, \|X\|_\infty \le R$ there are $U_1, V_1 \in \mathbb R^{n\times k_1}$
    with $\|U_1V_1^\top - f\|_\infty \le \varepsilon/\mathrm{poly}(n)$. Checked: (a) $\hat\varepsilon = \max|\tilde A -
    A|/A \le \bar R^{g+1}e^{\bar R}/(g+1)!$ (and SPEC's looser $e^{2\bar R}$), $\|U_1V_1^\top - f\|_\infty \le
    \frac{2\hat\varepsilon}{1-\hat\varepsilon}\max f$; (b) rank $\binom{d+g}{g} \le \binom{2(g+d)}{2g}$.
    GAP exposed: under the lemma's own convention (no 1/d) the logits reach $dR^2$ (attained), so the degree for a
    fixed $\varepsilon$, and with it the rank, grows with d at fixed R; with the 1/d scale it does not. The hypothesis
    $R = o(\sqrt{\log n})$ is therefore not enough when $d = \Theta(\log n)$; one needs $dR^2 = o(\log n)$.
    (c, full profile) the construction time is linear in n at fixed (d, g)."""
    cases = _lowrank_cases(ctx, 111, (64,) if ctx.quick else (64, 128))
    meta = [c.pop("meta") for c in cases]
    for c, m in zip(cases, meta, strict=True):
        for k in ("WV", "G"):
            c.pop(k)
        c.update(g=m["g"], Rbar=m["Rbar"])

    def claim(bk, X, W, beta, U0, V0, U1, V1, g, Rbar):
        A, f, eps, df = _lr_errors(bk, X, W, beta, U0, V0, U1, V1)
        d, r = X.shape[1], U0.shape[1]
        return [
            ("le", "eps_hat <= Rbar^(g+1) e^Rbar/(g+1)!", eps, _taylor_bound(Rbar, g)),
            ("le", "eps_hat <= SPEC's Rbar^(g+1) e^(2Rbar)/(g+1)!", eps, _taylor_bound(Rbar, g, 2.0)),
            ("le", "delta_f <= 2eps/(1-eps) max f", df, 2 * eps / (1 - eps) * max_abs(f)),
            ("eq", "rank = C(d+g, g)", bk.scalar(r), bk.scalar(math.comb(d + g, g))),
            ("le", "C(d+g,g) <= C(2(g+d),2g)", bk.scalar(r), bk.scalar(math.comb(2 * (g + d), 2 * g))),
        ]

    # the gap: worst logit beta*d*R^2 is attained (X = R 1, W = 1 1^T/d gives ||XW|| = ||X|| = R)
    R, eps_target, ds = 1.0, 1e-8, (2, 4, 8, 16)
    gap = {"d": list(ds)}
    for name, scale in (("beta=1 (C.13)", lambda d: 1.0), ("beta=1/d (I.1)", lambda d: 1.0 / d)):
        degs, ranks, logit = [], [], []
        for d in ds:
            X = np.full((3, d), R)
            S = scale(d) * (X @ np.full((d, d), 1.0 / d)) @ X.T
            Rbar = float(np.abs(S).max())
            g = _degree_for(Rbar, eps_target)
            logit.append(Rbar)
            degs.append(g)
            ranks.append(math.comb(d + g, g))
        gap[name] = {"max_logit": logit, "degree_for_1e-8": degs, "rank": ranks}
    g1, gd = gap["beta=1 (C.13)"]["degree_for_1e-8"], gap["beta=1/d (I.1)"]["degree_for_1e-8"]
    gap_shown = all(a < b for a, b in zip(g1, g1[1:], strict=False)) and len(set(gd)) == 1
    series = {
        "beta=1 (C.13)": {"x": list(ds), "y": g1, "xlabel": "d (R = 1)", "ylabel": "Taylor degree for eps=1e-8"},
        "beta=1/d (I.1)": {"x": list(ds), "y": gd, "xlabel": "d (R = 1)", "ylabel": "Taylor degree for eps=1e-8"},
    }
    data = {"gap": gap, "series": series, "cases": meta}
    if not ctx.quick:
        data["build_time"] = _build_time_slope(ctx)
    note = (
        f"gap: at R=1 the degree for eps=1e-8 grows {g1[0]}->{g1[-1]} (rank {gap['beta=1 (C.13)']['rank'][-1]:.1e})"
        f" as d = {ds[0]}..{ds[-1]} with beta=1, stays {gd[0]} with beta=1/d"
    )
    if "build_time" in data:
        note += f"; build-time slope in n {data['build_time']['slope']:.2f}"
    res = _decide(claim, cases, note=note, data=data)
    slope_ok = "build_time" not in data or data["build_time"]["slope"] < SLOPE_MAX
    res.ok = res.ok and gap_shown and slope_ok
    return res


def _build_time_slope(ctx: Context) -> dict:
    """Time of the C.13 construction (lift + normalization) against n at fixed d = 4, g = 4 (rank 70)."""
    return _time_slope(ctx, 112, [2**k for k in range(12, 17)], lambda inp: _lowrank(inp["X"], inp["W"], 0.25, 4))


@check(
    id="cat.C14.lowrank_s",
    label="Lemma C.14",
    name="||U1 V1^T h - s|| <= n delta_f ||h|| (and the relative bound)",
    kind="INEQ",
    expected="OK",
    spec=(37,),
    uses=("cat.C13.lowrank_f", "cat.C9.values"),
)
def check_C14(ctx: Context) -> Result:
    r"""Lemma C.14 (spec #37): $\|U_1V_1^\top h - s\|_\infty \le n\|U_1V_1^\top - f\|_\infty\|h\|_\infty$ (the paper's
    constant); also the tighter $\frac{2\hat\varepsilon}{1-\hat\varepsilon}\|h\|_\infty$ for a relative-error $\tilde
    A$."""
    return _decide(_claim_lowrank_product(reorder=False), _lr_inputs(ctx, 113, ("WV",)))


def _p_parts(bk, X, W, WV, G, beta, U1, V1):
    """Exact f, h, q, p1, K and the factors U3 = U1⊘G, V3 = V1⊘h of Lemma C.15."""
    f = attention_matrix(X, W, beta, False, bk)
    h = X @ WV
    q = G @ h.T  # (n, n)
    p1 = f * q
    K = (G * (f @ h)).sum(axis=1)  # (n,)
    return f, h, q, p1, K, _rowkron(U1, G), _rowkron(V1, h)


@check(
    id="cat.C15.lowrank_p1",
    label="Lemma C.15",
    name="p1 ~ U3 V3^T with U3 = U1⊘G, V3 = V1⊘h",
    kind="INEQ",
    expected="OK",
    spec=(38,),
    uses=("cat.C2.hadamard_lowrank", "cat.C13.lowrank_f", "cat.C11.q"),
)
def check_C15(ctx: Context) -> Result:
    r"""Lemma C.15 (spec #38): $U_3 = U_1\oslash U_2$, $V_3 = V_1 \oslash V_2$ with $U_2 = G$, $V_2 = h$ ($k_3 = k_1
    d$).
    [ID] $U_3V_3^\top = (U_1V_1^\top)\odot(U_2V_2^\top)$; [INEQ] $\|U_3V_3^\top - p_1\|_\infty \le
    \delta_f\|q\|_\infty \le
    d\,\delta_f\|G\|_\infty\|h\|_\infty$; with an approximate $\tilde q = \tilde U_2 V_2^\top$:
    $\le \delta_f\|q\|_\infty + \|f\|_\infty\delta_q + \delta_f\delta_q$."""
    cases = _lr_inputs(ctx, 114, ("WV", "G"))
    rng = ctx.rng(115)
    for c in cases:
        c["Gn"] = c["G"] + 1e-3 * rng.uniform(-1, 1, c["G"].shape)  # an approximate U2

    def claim(bk, X, W, WV, G, Gn, beta, U0, V0, U1, V1):
        f, h, q, p1, K, U3, V3 = _p_parts(bk, X, W, WV, G, beta, U1, V1)
        df = max_abs(U1 @ V1.T - f)
        e1 = max_abs(U3 @ V3.T - p1)
        dq = max_abs(Gn @ h.T - q)
        e1n = max_abs(_rowkron(U1, Gn) @ V3.T - p1)
        return [
            ("eq", "U3 V3^T = (U1 V1^T)⊙(G h^T)", U3 @ V3.T, (U1 @ V1.T) * (G @ h.T)),
            ("le", "||U3V3^T - p1|| <= delta_f ||q||", e1, df * max_abs(q)),
            (
                "le",
                "delta_f ||q|| <= d delta_f ||G|| ||h||",
                df * max_abs(q),
                X.shape[1] * df * max_abs(G) * max_abs(h),
            ),
            (
                "le",
                "approx q: <= delta_f||q|| + ||f|| delta_q + delta_f delta_q",
                e1n,
                df * max_abs(q) + max_abs(f) * dq + df * dq,
            ),
        ]

    return _decide(claim, cases)


@check(
    id="cat.C16.lowrank_p2",
    label="Lemma C.16",
    name="p2 ~ U4 V4^T with U4 = diag(U3 V3^T 1) U1, V4 = V1",
    kind="INEQ",
    expected="OK",
    spec=(39,),
    uses=("cat.C15.lowrank_p1",),
)
def check_C16(ctx: Context) -> Result:
    r"""Lemma C.16 (spec #39): $\tilde r = U_3(V_3^\top 1_n) \approx p_1 1_n = K$, $U_4 = \mathrm{diag}(\tilde r) U_1$,
    $V_4 = V_1$ ($k_4 = k_1$). [INEQ] $\|\tilde r - K\|_\infty \le n\|\tilde p_1 - p_1\|_\infty$ and $\|U_4V_4^\top -
    p_2\|_\infty \le \|\tilde r - K\|_\infty\|\tilde f\|_\infty + \|K\|_\infty\delta_f$; with the exact K (E.7's
    $U_9 = \mathrm{diag}(K) U_1$): $\le \|K\|_\infty \delta_f$."""

    def claim(bk, X, W, WV, G, beta, U0, V0, U1, V1):
        f, h, q, p1, K, U3, V3 = _p_parts(bk, X, W, WV, G, beta, U1, V1)
        n = X.shape[0]
        p2 = K[:, None] * f
        ft = U1 @ V1.T
        df = max_abs(ft - f)
        rt = U3 @ (V3.T @ bk.ones((n,)))  # (n,)
        U4 = rt[:, None] * U1
        return [
            ("le", "||r~ - K|| <= n ||p1~ - p1||", max_abs(rt - K), n * max_abs(U3 @ V3.T - p1)),
            (
                "le",
                "||U4V4^T - p2|| <= ||r~-K|| ||f~|| + ||K|| delta_f",
                max_abs(U4 @ V1.T - p2),
                max_abs(rt - K) * max_abs(ft) + max_abs(K) * df,
            ),
            (
                "le",
                "exact K: ||diag(K) U1V1^T - p2|| <= ||K|| delta_f",
                max_abs((K[:, None] * U1) @ V1.T - p2),
                max_abs(K) * df,
            ),
        ]

    return _decide(claim, _lr_inputs(ctx, 116, ("WV", "G")))


@check(
    id="cat.C17.f_bounded",
    label="Lemma C.17",
    name="0 < f_ij <= 1, rows sum to 1; f_ij <= e^(2 Rbar)/n",
    kind="INEQ",
    expected="OK",
    spec=(40,),
    uses=("cat.C7.alpha",),
)
def check_C17(ctx: Context) -> Result:
    r"""Lemma C.17 (spec #40): $\|f\|_\infty \le 1$; also $0 < f_{ij}$, $f 1_n = 1_n$ and the stronger
    $f_{ij} \le e^{2\bar R}/n$ when every $|\text{logit}| \le \bar R$ (used for column sums, spec §2.10)."""
    rng = ctx.rng(117)
    grid = (
        [(8, 1.0, 0.5), (8, 0.25, 2.0)]
        if ctx.quick
        else [(n, b, R) for n in (8, 64) for b in (1.0, 0.25) for R in (0.5, 1.0, 2.0)]
    )
    cases = []
    for n, beta, R in grid:
        inp = _draw(rng, n, 4, R)
        cases.append({"X": inp["X"], "W": inp["W"], "beta": beta})

    def claim(bk, X, W, beta):
        n = X.shape[0]
        S = beta * ((X @ W) @ X.T)
        f = attention_matrix(X, W, beta, False, bk)
        Rbar = max_abs(S)
        return [
            ("le", "max f <= 1", max_abs(f), bk.scalar(1)),
            ("le", "f > 0: tiny <= min f", TINY, min(f.flat)),
            ("eq", "f 1 = 1", f @ bk.ones((n,)), bk.ones((n,))),
            ("le", "max f <= e^(2Rbar)/n", max_abs(f), bk.exp(np.array([2 * Rbar]))[0] / n),
        ]

    return _decide(claim, cases)


@check(
    id="cat.C18.h_bounded",
    label="Lemma C.18",
    name="||h|| <= d ||X|| ||W_V|| (paper: n ||X|| ||W_V||)",
    kind="INEQ",
    expected="OK",
    spec=(41,),
    uses=("cat.C9.values",),
)
def check_C18(ctx: Context) -> Result:
    r"""Lemma C.18 (spec #41): $\|h\|_\infty = \|XW_V\|_\infty \le d\|X\|_\infty\|W_V\|_\infty$ (sum of d terms; tight
    for constant inputs) $\le n\|X\|_\infty\|W_V\|_\infty$ (the paper's factor, for $n \ge d$) $= \mathrm{poly}(n)$."""
    rng = ctx.rng(118)
    cases = [
        _draw(rng, n, d, R, keep=("X", "WV"))
        for n, d, R in (((8, 4, 1.0),) if ctx.quick else ((8, 4, 1.0), (64, 8, 3.0), (16, 16, 0.5)))
    ]

    def claim(bk, X, WV):
        n, d = X.shape
        b = d * max_abs(X) * max_abs(WV)
        tight = max_abs(bk.ones((n, d)) @ bk.ones((d, d)))
        return [
            ("le", "||h|| <= d ||X|| ||W_V||", max_abs(X @ WV), b),
            ("le", "d ||X|| ||W_V|| <= n ||X|| ||W_V|| (paper)", b, n * max_abs(X) * max_abs(WV)),
            ("eq", "tight: constant inputs give d", tight, bk.scalar(d)),
        ]

    return _decide(claim, cases)


@check(
    id="cat.C19.s_bounded",
    label="Lemma C.19",
    name="||s|| <= ||h|| (tight) <= n ||f|| ||h|| (paper)",
    kind="INEQ",
    expected="OK",
    spec=(42,),
    uses=("cat.C17.f_bounded", "cat.C18.h_bounded"),
)
def check_C19(ctx: Context) -> Result:
    r"""Lemma C.19 (spec #42): $\|s\|_\infty \le n\|f\|_\infty\|h\|_\infty$ (paper); the tight bound is $\|s\|_\infty
    \le \|h\|_\infty$ (rows of s are convex combinations of rows of h), approached when f is nearly one-hot."""
    rng = ctx.rng(119)
    cases = []
    for scale in (1.0, 30.0) if ctx.quick else (1.0, 5.0, 30.0):
        inp = _draw(rng, 8, 4)
        cases.append({"X": inp["X"], "W": scale * inp["W"], "WV": inp["WV"]})

    def claim(bk, X, W, WV):
        f = attention_matrix(X, W, 1, False, bk)
        h = X @ WV
        s = f @ h
        return [
            ("le", "||s|| <= ||h||", max_abs(s), max_abs(h)),
            ("le", "||s|| <= n ||f|| ||h|| (paper)", max_abs(s), X.shape[0] * max_abs(f) * max_abs(h)),
        ]

    return _decide(claim, cases)


# -- Appendix D: the matrix views B6, B7, B8, B2, B4 ------------------------------------------------------------------

SLOTS = ("q_num", "q_den", "k_num", "k_den", "v")


def _s_entry(bk, X, W, WV, beta, i0, j0, slot=None, Y=None):
    r"""$s_{i_0 j_0}$ with one use of X (a slot) replaced by Y (spec §2.3, "each path on its own"):

    $s_{i_0 j_0} = \sum_l e^{\beta x^{qn}_{i_0} W x^{kn\top}_l} (X^{v} W_V)_{l j_0} / \sum_l e^{\beta x^{qd}_{i_0}
    W x^{kd\top}_l}$; the derivative in slot k_den is C6*, k_num C7*, v C8*, q_den C2*, q_num C4*."""
    xs = dict.fromkeys(SLOTS, X)
    if slot is not None:
        xs[slot] = Y
    num = beta * ((xs["q_num"][i0] @ W) @ xs["k_num"].T)  # (n,)
    den = beta * ((xs["q_den"][i0] @ W) @ xs["k_den"].T)  # (n,)
    c = max(den)  # the same shift in numerator and denominator
    return (bk.exp(num - c) @ (xs["v"] @ WV[:, j0])) / bk.exp(den - c).sum()


def _B_terms(bk, X, W, WV, beta, i0, j0):
    """For fixed (i0, j0): {k: (printed matrix, printed C_k re-indexed, corrected matrix, corrected C_k* re-indexed)}.

    Printed forms (Lemmas D.3–D.7, beta = 1 convention, no beta); corrected forms per spec §2.3 (times beta).
    B6, B7, B8 are n×d; B2, B4 are d-vectors (they sit in row i0).
    """
    n, d = X.shape
    f = attention_matrix(X, W, beta, False, bk)
    h = X @ WV
    s = f @ h
    XW, XWt = X @ W, X @ W.T
    s0 = s[i0, j0]
    Wx = W @ X[i0]  # (d,)  <W_{j1,*}, X_{i0,*}> = (X W^T)_{i0,j1}
    xW = X[i0] @ W  # (d,)  (X W)_{i0,j1}
    printed = {
        "B6": -s0 * np.outer(f[:, i0], Wx),
        "B7": np.outer(f[:, i0] * h[:, j0], Wx),
        "B8": np.outer(f[:, i0], WV[:, j0]),
        "B2": -s0 * (W.T @ (X.T @ f[i0])),
        "B4": W.T @ (X.T @ (f[i0] * h[:, j0])),
    }
    corrected = {
        "B6": -beta * s0 * np.outer(f[i0], xW),
        "B7": beta * np.outer(f[i0] * h[:, j0], xW),
        "B8": np.outer(f[i0], WV[:, j0]),
        "B2": -beta * s0 * (W @ (X.T @ f[i0])),
        "B4": beta * (W @ (X.T @ (f[i0] * h[:, j0]))),
    }
    # the scalars C_k of Lemma D.1, re-indexed entry by entry (printed) and their corrected versions
    pc = {k: bk.zeros((n, d)) for k in ("B6", "B7", "B8")} | {k: bk.zeros((d,)) for k in ("B2", "B4")}
    cc = {k: bk.zeros((n, d)) for k in ("B6", "B7", "B8")} | {k: bk.zeros((d,)) for k in ("B2", "B4")}
    for i1 in range(n):
        for j1 in range(d):
            pc["B6"][i1, j1] = -s0 * f[i1, i0] * XWt[i0, j1]
            pc["B7"][i1, j1] = f[i1, i0] * h[i1, j0] * XWt[i0, j1]
            pc["B8"][i1, j1] = f[i1, i0] * WV[j1, j0]
            cc["B6"][i1, j1] = -beta * s0 * f[i0, i1] * XW[i0, j1]
            cc["B7"][i1, j1] = beta * f[i0, i1] * h[i1, j0] * XW[i0, j1]
            cc["B8"][i1, j1] = f[i0, i1] * WV[j1, j0]
    for j1 in range(d):
        pc["B2"][j1] = -s0 * (f[i0] @ XW[:, j1])
        pc["B4"][j1] = (f[i0] * XW[:, j1]) @ h[:, j0]
        cc["B2"][j1] = -beta * s0 * (f[i0] @ XWt[:, j1])
        cc["B4"][j1] = beta * ((f[i0] * h[:, j0]) @ XWt[:, j1])
    return {k: (printed[k], pc[k], corrected[k], cc[k]) for k in printed}


def _embed(bk, B, n: int, i0: int):
    """A d-vector B placed in row i0 of an n×d zero matrix ($e_{i_0} B^\top$); an n×d B unchanged."""
    if B.ndim == 2:
        return B
    out = bk.zeros((n, B.shape[0]))
    out[i0] = B
    return out


def _slot_cases(ctx: Context, salt: int) -> list[dict]:
    rng = ctx.rng(salt)
    out = []
    for beta, printed in ((1.0, True), (1.0 / 3, False)):
        inp = _draw(rng, 5, 3)
        out.append(
            {
                "X": inp["X"],
                "W": inp["W"],
                "WV": inp["WV"],
                "beta": beta,
                "printed": printed,
                "i0": int(rng.integers(0, 5)),
                "j0": int(rng.integers(0, 3)),
            }
        )
    return out


def _check_B(ctx: Context, term: str, slot: str, salt: int) -> Result:
    cases = _slot_cases(ctx, salt)

    def claim(bk, X, W, WV, beta, printed, i0, j0):
        pm, pc, cm, cc = _B_terms(bk, X, W, WV, beta, i0, j0)[term]
        n = X.shape[0]
        fd = _jac_fd(bk, lambda Y: _s_entry(bk, X, W, WV, beta, i0, j0, slot, Y), X)  # (n, d)
        rows = [
            ("eq", "corrected re-indexing", cm, cc),
            ("fd", f"corrected {term}* vs FD of its path", _embed(bk, cm, n, i0), fd),
        ]
        if printed:
            rows = [
                ("eq", "printed re-indexing", pm, pc),
                *rows,
                ("ne", f"printed {term} vs FD of its path", _embed(bk, pm, n, i0), fd),
            ]
        return rows

    res = _decide(claim, cases, note=f"path '{slot}' of s_(i0,j0), beta=1 (printed) and 1/3 (corrected)")
    c0 = cases[0]
    res.data["counterexample"] = _counterexample(
        ctx,
        salt,
        {"n": int(c0["X"].shape[0]), "d": int(c0["X"].shape[1])},
        {k: v["value"] for k, v in res.data["rows"].items()},
        i0=c0["i0"],
        j0=c0["j0"],
        beta=1.0,
        W_symmetric=False,
        slot=slot,
        inputs={"X": c0["X"].tolist(), "W": c0["W"].tolist(), "W_V": c0["WV"].tolist()},
    )
    return res


@check(
    id="cat.D3.B6",
    label="Lemma D.3",
    name="Matrix view of C6: printed B6 (f_{*,i0}, W X_i0) fails; B6* holds",
    kind="ID",
    expected="WRONG-AS-PRINTED",
    spec=(45,),
    uses=("ref.D1.entrywise",),
)
def check_D3(ctx: Context) -> Result:
    r"""Lemma D.3 (spec #45): printed $B_6 = -s_{i_0j_0} f_{*,i_0}(W X_{i_0,*})^\top$, a correct re-indexing of the
    printed
    C6 but not the key-path normalizer term; corrected $B_6^* = -\beta s_{i_0j_0} f_{i_0,*}(X_{i_0,*}^\top W)$, checked
    against central differences of $s_{i_0j_0}$ in its k_den slot."""
    return _check_B(ctx, "B6", "k_den", 120)


@check(
    id="cat.D4.B7",
    label="Lemma D.4",
    name="Matrix view of C7: printed B7 fails; B7* = beta (f_i0 ⊙ h_j0)(x_i0^T W) holds",
    kind="ID",
    expected="WRONG-AS-PRINTED",
    spec=(46,),
    uses=("ref.D1.entrywise",),
)
def check_D4(ctx: Context) -> Result:
    r"""Lemma D.4 (spec #46): printed $B_7 = (f_{*,i_0}\odot h_{*,j_0})(W X_{i_0,*})^\top$; corrected
    $B_7^* = \beta(f_{i_0,*}\odot h_{*,j_0})(X_{i_0,*}^\top W)$ (key path, numerator, slot k_num)."""
    return _check_B(ctx, "B7", "k_num", 121)


@check(
    id="cat.D5.B8",
    label="Lemma D.5",
    name="Matrix view of C8: printed f_{*,i0} W_V[:,j0]^T fails; f_{i0,*} holds",
    kind="ID",
    expected="WRONG-AS-PRINTED",
    spec=(47,),
    uses=("ref.D1.entrywise",),
)
def check_D5(ctx: Context) -> Result:
    r"""Lemma D.5 (spec #47): printed $B_8 = f_{*,i_0}((W_V)_{*,j_0})^\top$; corrected $B_8^* =
    f_{i_0,*}((W_V)_{*,j_0})^\top$
    (value path, slot v)."""
    return _check_B(ctx, "B8", "v", 122)


@check(
    id="cat.D6.B2",
    label="Lemma D.6",
    name="Matrix view of C2: printed -s W^T X^T f_i0 fails; -beta s W X^T f_i0 holds",
    kind="ID",
    expected="WRONG-AS-PRINTED",
    spec=(48,),
    uses=("ref.D1.entrywise",),
)
def check_D6(ctx: Context) -> Result:
    r"""Lemma D.6 (spec #48): printed $B_2 = -s_{i_0j_0} W^\top X^\top f_{i_0,*}$; corrected
    $B_2^* = -\beta s_{i_0j_0} W X^\top f_{i_0,*}$ (query path, normalizer, slot q_den). Under the other logit
    convention $XW^\top X^\top$ the printed form would be right (spec §2.3): a convention clash with F.3/F.4."""
    return _check_B(ctx, "B2", "q_den", 123)


@check(
    id="cat.D7.B4",
    label="Lemma D.7",
    name="Matrix view of C4: printed W^T X^T (f_i0⊙h_j0) fails; beta W X^T (...) holds",
    kind="ID",
    expected="WRONG-AS-PRINTED",
    spec=(49,),
    uses=("ref.D1.entrywise",),
)
def check_D7(ctx: Context) -> Result:
    r"""Lemma D.7 (spec #49): printed $B_4 = W^\top X^\top (f_{i_0,*}\odot h_{*,j_0})$; corrected
    $B_4^* = \beta W X^\top(f_{i_0,*}\odot h_{*,j_0})$ (query path, numerator, slot q_num)."""
    return _check_B(ctx, "B4", "q_num", 124)


@check(
    id="cat.D8.slice",
    label="Lemma D.8",
    name="G(i0,j0) ds_{i0,j0}/dX = G(i0,j0)(B6+B7+B8+e_i0(B2+B4)^T)",
    kind="ID",
    expected="OK",
    spec=(50,),
    uses=("cat.D3.B6", "cat.D4.B7", "cat.D5.B8", "cat.D6.B2", "cat.D7.B4"),
)
def check_D8(ctx: Context) -> Result:
    r"""Lemma D.8 (spec #50): for each $(i_0,j_0)$, $G(i_0,j_0)\,\partial s_{i_0j_0}/\partial X = G(i_0,j_0)(B_6 + B_7 +
    B_8 + e_{i_0}(B_2+B_4)^\top)$. The structure (row $i_0$ gets Part 1 = C1..C5, other rows Part 2 = C6..C8) is
    checked on the printed scalars; the identity itself with the corrected $B^*$ against central differences of
    $s_{i_0j_0}$ in X, for every $(i_0, j_0)$. The printed B's inherit Lemma D.1's error (recorded in data)."""
    rng = ctx.rng(125)
    sizes = [(4, 2, 1.0)] if ctx.quick else [(4, 2, 1.0), (5, 3, 1.0), (5, 3, 1.0 / 3)]
    cases = []
    for n, d, beta in sizes:
        inp = _draw(rng, n, d)
        cases.append({"X": inp["X"], "W": inp["W"], "WV": inp["WV"], "G": inp["G"], "beta": beta})

    def claim(bk, X, W, WV, G, beta):
        n, d = X.shape
        XW, XWt = X @ W, X @ W.T
        f = attention_matrix(X, W, beta, False, bk)
        h = X @ WV
        s = f @ h
        lhs_c, lhs_p, rhs_fd, case_split = [], [], [], []
        for i0, j0 in np.ndindex(n, d):
            t = _B_terms(bk, X, W, WV, beta, i0, j0)
            g = G[i0, j0]
            assembled = [
                t["B6"][k] + t["B7"][k] + t["B8"][k] + _embed(bk, t["B2"][k] + t["B4"][k], n, i0) for k in (0, 2)
            ]
            lhs_p.append(g * assembled[0])
            lhs_c.append(g * assembled[1])
            rhs_fd.append(g * _jac_fd(bk, lambda Y, i0=i0, j0=j0: _s_entry(bk, Y, W, WV, beta, i0, j0), X))
            # the paper's two cases, written with the printed scalars C1..C8 (Lemma D.1)
            P = bk.zeros((n, d))
            for i1, j1 in np.ndindex(n, d):
                if i1 == i0:
                    c1 = -s[i0, j0] * f[i0, i0] * XWt[i0, j1]
                    c2 = -s[i0, j0] * (f[i0] @ XW[:, j1])
                    c3 = f[i0, i0] * h[i0, j0] * XWt[i0, j1]
                    c4 = (f[i0] * XW[:, j1]) @ h[:, j0]
                    P[i1, j1] = c1 + c2 + c3 + c4 + f[i0, i0] * WV[j1, j0]
                else:
                    P[i1, j1] = f[i1, i0] * (-s[i0, j0] * XWt[i0, j1] + h[i1, j0] * XWt[i0, j1] + WV[j1, j0])
            case_split.append(g * P)
        return [
            ("fd", "corrected slices vs FD (all i0,j0)", np.stack(lhs_c), np.stack(rhs_fd)),
            ("eq", "printed Part 1/Part 2 = printed B-assembly", np.stack(case_split), np.stack(lhs_p)),
        ]

    res = _decide(claim, cases)
    c = cases[0]
    # context only (float64): the printed B's inherit D.1's error
    t = [_B_terms(FLOAT64, c["X"], c["W"], c["WV"], 1.0, 0, 0)[k][0] for k in ("B6", "B7", "B8", "B2", "B4")]
    pr = t[0] + t[1] + t[2] + _embed(FLOAT64, t[3] + t[4], c["X"].shape[0], 0)
    fd = _jac_fd(FLOAT64, lambda Y: _s_entry(FLOAT64, Y, c["W"], c["WV"], 1.0, 0, 0), c["X"])
    res.data["printed_slice_vs_fd_at_(0,0)"] = float(rel_err(pr, fd))
    return res


@check(
    id="cat.D16.K",
    label="Definition D.16",
    name="K = (G⊙s) 1_d = p1 1_n",
    kind="DEF",
    expected="OK",
    spec=(58,),
    uses=("cat.C11.q",),
)
def check_D16(ctx: Context) -> Result:
    r"""Definition D.16 (spec #58): $K_{i_0} = \langle G_{i_0,*}, s_{i_0,*}\rangle$, i.e. $K = (G\odot s)1_d$; it equals
    $p_1 1_n$ (since $\sum_l f_{il} q_{il} = \langle G_i, \sum_l f_{il} h_l\rangle$) and the reference's K."""
    rng = ctx.rng(126)
    cases = [
        {**_draw(rng, n, d), "beta": b} for n, d, b in (((6, 3, 1.0),) if ctx.quick else ((6, 3, 1.0), (9, 4, 0.25)))
    ]

    def claim(bk, X, W, WV, G, beta):
        c = head_forward(X, W, WV, beta, False, bk)
        K = (G * c.s) @ bk.ones((X.shape[1],))
        loop = np.array([G[i] @ c.s[i] for i in range(X.shape[0])], dtype=K.dtype)
        return [
            ("eq", "K_i = <G_i, s_i> (loop)", K, loop),
            ("eq", "K = p1 1_n", K, (c.f * (G @ c.h.T)) @ bk.ones((X.shape[0],))),
            ("eq", "K = reference head_vjp K", K, head_vjp(G, c).K),
        ]

    return _decide(claim, cases)


# -- Appendix F --------------------------------------------------------------------------------------------------


def _kron_blocks(A1, A2):
    """$A = A_1 \\otimes A_2$ as blocks: ``[j0, l, i]`` = $(A_{j_0})_{l, i}$ with $i = p d + q$ (0-based)."""
    n1, d = A1.shape
    return (A1[:, None, :, None] * A2[None, :, None, :]).reshape(n1, A2.shape[0], d * d)


def _F3_formula(A1, A2, f, h, beta):
    r"""Lemma F.3: $\partial s_{j_0 i_0}/\partial w_i = \beta(\langle A_{j_0,i}\odot f_{j_0}, h_{i_0}\rangle -
    \langle f_{j_0}, h_{i_0}\rangle\langle A_{j_0,i}, f_{j_0}\rangle)$; returns ``[j0, i0, i]``."""
    B = _kron_blocks(A1, A2)  # (n1, n2, d^2)
    t1 = (B[:, :, None, :] * (f[:, :, None, None] * h[None, :, :, None])).sum(axis=1)  # (n1, d, d^2)
    t2 = (f @ h)[:, :, None] * (B * f[:, :, None]).sum(axis=1)[:, None, :]  # (n1, d, d^2)
    return beta * (t1 - t2)


@check(
    id="cat.F1.kronecker",
    label="Definition F.1",
    name="A = X⊗X: A vec(W) = vec(X W X^T) (row-major)",
    kind="DEF",
    expected="OK",
    spec=(71,),
    uses=("cat.notation.maxnorm",),
)
def check_F1(ctx: Context) -> Result:
    r"""Definition F.1 (spec #71): $A = A_1\otimes A_2 \in \mathbb R^{n^2\times d^2}$, block $A_{j_0}$ = rows
    $j_0 n \ldots$, $(A_{j_0})_{l,(p-1)d+q} = (A_1)_{j_0,p}(A_2)_{l,q}$; with $A_1 = A_2 = X$ and a row-major
    $w = \mathrm{vec}(W)$, $A w = \mathrm{vec}(XWX^\top)$, so $(A_{j_0}w)_l = S_{j_0,l}$."""
    rng = ctx.rng(127)
    cases = [_draw(rng, n, d, keep=("X", "W")) for n, d in (((5, 3),) if ctx.quick else ((5, 3), (7, 4)))]

    def claim(bk, X, W):
        n, d = X.shape
        A = np.kron(X, X)  # (n^2, d^2)
        E = bk.zeros((n, n, d * d))
        for j0, l, p, q in np.ndindex(n, n, d, d):
            E[j0, l, p * d + q] = X[j0, p] * X[l, q]
        return [
            ("eq", "blocks of kron = entry formula", A.reshape(n, n, d * d), E),
            ("eq", "A vec(W) = vec(X W X^T)", A @ W.reshape(-1), ((X @ W) @ X.T).reshape(-1)),
        ]

    return _decide(claim, cases)


@check(
    id="cat.F2.cross_attention",
    label="Remark F.2",
    name="A1 = A2 = X specializes [AS24a]'s cross-attention A1⊗A2",
    kind="DEF",
    expected="OK",
    spec=(72,),
    uses=("cat.F1.kronecker",),
)
def check_F2(ctx: Context) -> Result:
    r"""Remark F.2 (spec #72): [AS24a] allows $A_1 \ne A_2$ (cross-attention, logits $A_1 W A_2^\top$); the identity
    $(A_1\otimes A_2)\mathrm{vec}(W) = \mathrm{vec}(A_1WA_2^\top)$ and the F.3 derivative formula hold for distinct
    $A_1, A_2$ (values $A_3$ fixed), and self-attention is the case $A_1 = A_2 = X$."""
    rng = ctx.rng(128)
    cases = [
        {
            "A1": rng.uniform(-1, 1, (4, 3)),
            "A2": rng.uniform(-1, 1, (5, 3)),
            "A3": rng.uniform(-1, 1, (5, 3)),
            "W": rng.uniform(-1, 1, (3, 3)),
        }
    ]

    def claim(bk, A1, A2, A3, W):
        from reference.attention import softmax

        def s_of(Wm):
            return softmax((A1 @ Wm) @ A2.T, bk) @ A3

        f = softmax((A1 @ W) @ A2.T, bk)
        return [
            ("eq", "(A1⊗A2) vec W = vec(A1 W A2^T)", np.kron(A1, A2) @ W.reshape(-1), ((A1 @ W) @ A2.T).reshape(-1)),
            (
                "fd",
                "F.3 formula with A1 != A2 vs FD",
                _F3_formula(A1, A2, f, A3, 1),
                _jac_fd(bk, s_of, W).reshape(4, 3, 9),
            ),
        ]

    return _decide(claim, cases)


@check(
    id="cat.F3.ds_dW",
    label="Lemma F.3",
    name="ds_{j0,i0}/dw_i = <A_{j0,i}⊙f_j0, h_i0> - <f_j0,h_i0><A_{j0,i},f_j0>",
    kind="ID",
    expected="OK",
    spec=(73,),
    uses=("cat.F1.kronecker",),
)
def check_F3(ctx: Context) -> Result:
    r"""Lemma F.3 (spec #73): with $w = \mathrm{vec}(W)$, for all $j_0 \in [n]$, $i_0\in[d]$, $i\in[d^2]$:
    $\partial s_{j_0,i_0}/\partial w_i = \langle A_{j_0,i}\odot f_{j_0}, h_{i_0}\rangle - \langle f_{j_0},h_{i_0}\rangle
    \langle A_{j_0,i}, f_{j_0}\rangle$ (times $\beta$ in general), against central differences for every entry."""
    rng = ctx.rng(129)
    sizes = [(5, 3, 1.0), (5, 3, 1.0 / 3)] if ctx.quick else [(5, 3, 1.0), (5, 3, 1.0 / 3), (6, 4, 1.0), (6, 4, 0.25)]
    cases = [{**_draw(rng, n, d, keep=("X", "W", "WV")), "beta": b} for n, d, b in sizes]

    def claim(bk, X, W, WV, beta):
        n, d = X.shape
        c = head_forward(X, W, WV, beta, False, bk)
        fd = _jac_fd(bk, lambda Wm: head_forward(X, Wm, WV, beta, False, bk).s, W).reshape(n, d, d * d)
        return [("fd", "F.3 vs FD, every (j0, i0, i)", _F3_formula(X, X, c.f, c.h, beta), fd)]

    return _decide(claim, cases)


@check(
    id="cat.F5.fast_dW",
    label="Lemma F.5",
    name="gw = X^T (U3V3^T - U4V4^T) X: error bound; linear time",
    kind="INEQ",
    expected="OK",
    spec=(75,),
    uses=("cat.C15.lowrank_p1", "cat.C16.lowrank_p2", "ref.F4.dW"),
)
def check_F5(ctx: Context) -> Result:
    r"""Lemma F.5 (spec #75): $g_w = \beta X^\top(\tilde p_1 - \tilde p_2)X$ with $\tilde p_1 = U_3V_3^\top$ (C.15),
    $\tilde p_2 = U_4V_4^\top$ (C.16), evaluated as $(X^\top U_3)(V_3^\top X) - (X^\top U_4)(V_4^\top X)$ without an n×n
    matrix. [INEQ] $\|g_w - \partial L/\partial W\|_\infty \le \beta n^2\|X\|_\infty^2(\|\tilde p_1 - p_1\|_\infty +
    \|\tilde p_2 - p_2\|_\infty)$ (Eq. 18–19); [ID] the paper's order $((X^\top U_3)V_3^\top)X$ gives the same.
    Context: Algorithm 1 line 19 (p1 only) misses the $-p_2$ part (its error is recorded). Full profile: time slope
    in n at fixed rank."""
    cases = _lr_inputs(ctx, 130, ("WV", "G"))
    line19 = []

    def claim(bk, X, W, WV, G, beta, U0, V0, U1, V1):
        n = X.shape[0]
        f, h, q, p1, K, U3, V3 = _p_parts(bk, X, W, WV, G, beta, U1, V1)
        p2 = K[:, None] * f
        U4 = (U3 @ (V3.T @ bk.ones((n,))))[:, None] * U1  # C.16
        first = (X.T @ U3) @ (V3.T @ X)  # (d, d)
        gw = beta * (first - (X.T @ U4) @ (V1.T @ X))
        exact = head_vjp(G, head_forward(X, W, WV, beta, False, bk)).dW  # beta X^T P X (Lemma F.4)
        e1, e2 = max_abs(U3 @ V3.T - p1), max_abs(U4 @ V1.T - p2)
        if not bk.is_mp:
            line19.append(float(rel_err(beta * first, exact)))
        return [
            (
                "le",
                "||gw - dL/dW|| <= beta n^2 ||X||^2 (e1 + e2)",
                max_abs(gw - exact),
                beta * n * n * max_abs(X) ** 2 * (e1 + e2),
            ),
            ("eq", "paper's order ((X^T U3) V3^T) X", ((X.T @ U3) @ V3.T) @ X, first),
        ]

    data = {}
    if not ctx.quick:
        data["time"] = _gw_time_slope(ctx)
    res = _decide(claim, cases, data=data)
    res.data["alg1_line19_rel_error"] = max(line19) if line19 else None
    if "time" in data:
        res.figure += f"; time slope in n {data['time']['slope']:.2f}"
        res.ok = res.ok and data["time"]["slope"] < SLOPE_MAX
    return res


def _gw_time_slope(ctx: Context) -> dict:
    """Wall time of the fast gw (factors, U3, V3, U4 and the d×d products) against n, d = 4, degree 4 (rank 70)."""

    def work(inp):
        X, G = inp["X"], inp["G"]
        lr = _lowrank(X, inp["W"], 0.25, 4)
        U1, V1 = lr["U1"], lr["V1"]
        U3, V3 = _rowkron(U1, G), _rowkron(V1, X @ inp["WV"])
        U4 = (U3 @ V3.sum(axis=0))[:, None] * U1
        return 0.25 * ((X.T @ U3) @ (V3.T @ X) - (X.T @ U4) @ (V1.T @ X))

    return _time_slope(ctx, 131, [2**k for k in range(11, 16)], work)


# -- Appendix G ------------------------------------------------------------------------------------------------------


@check(
    id="cat.G1.dh_dWV",
    label="Lemma G.1",
    name="dh_{i0,j0}/d(W_V)_{i1,j1} = X_{i0,i1} [j0 = j1]",
    kind="ID",
    expected="OK",
    spec=(76,),
    uses=("cat.C9.values",),
)
def check_G1(ctx: Context) -> Result:
    r"""Lemma G.1 (spec #76): $\partial h_{i_0,j_0}/\partial (W_V)_{i_1,j_1} = X_{i_0,i_1}$ if $j_0 = j_1$, else 0."""
    rng = ctx.rng(132)
    cases = [
        {"X": rng.uniform(-1, 1, (n, d)), "WV": rng.uniform(-1, 1, (d, d))}
        for n, d in (((5, 3),) if ctx.quick else ((5, 3), (6, 4)))
    ]

    def claim(bk, X, WV):
        n, d = X.shape
        formula = bk.zeros((n, d, d, d))
        for i0, j0, i1 in np.ndindex(n, d, d):
            formula[i0, j0, i1, j0] = X[i0, i1]
        return [("fd", "G.1 vs FD", formula, _jac_fd(bk, lambda V: X @ V, WV))]

    return _decide(claim, cases)


@check(
    id="cat.G2.ds_dWV",
    label="Lemma G.2",
    name="ds_{i2,j2}/dW_V = X^T f_{i2,*} e_j2^T",
    kind="ID",
    expected="OK",
    spec=(77,),
    uses=("cat.G1.dh_dWV",),
)
def check_G2(ctx: Context) -> Result:
    r"""Lemma G.2 (spec #77): Part 1 $\partial s_{i_2,j_2}/\partial (W_V)_{i_1,j_1} = (fX)_{i_2,i_1}$ if $j_1 = j_2$,
    else 0; Part 2 $\partial s_{i_2,j_2}/\partial W_V = X^\top f_{i_2,*} e_{j_2}^\top \in \mathbb R^{d\times d}$."""
    rng = ctx.rng(133)
    cases = [
        {**_draw(rng, n, d, keep=("X", "W", "WV")), "beta": b}
        for n, d, b in (((5, 3, 1.0),) if ctx.quick else ((5, 3, 1.0), (6, 4, 0.25)))
    ]

    def claim(bk, X, W, WV, beta):
        n, d = X.shape
        f = attention_matrix(X, W, beta, False, bk)
        fX = f @ X
        part1 = bk.zeros((n, d, d, d))
        part2 = bk.zeros((n, d, d, d))
        eye = bk.eye(d)
        for i2, j2 in np.ndindex(n, d):
            for i1 in range(d):
                part1[i2, j2, i1, j2] = fX[i2, i1]
            part2[i2, j2] = np.outer(X.T @ f[i2], eye[j2])
        fd = _jac_fd(bk, lambda V: f @ (X @ V), WV)
        return [("fd", "Part 1 vs FD", part1, fd), ("fd", "Part 2 vs FD", part2, fd)]

    return _decide(claim, cases)
