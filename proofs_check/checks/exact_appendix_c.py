r"""Exact checks of Appendix C (preliminaries), SPEC §3 #23–#35 and #40–#42: facts on inner products and the
row-wise Kronecker product, index notation, the definitions C.6–C.11, the claim of §C.2 (numeric and SymPy side by
side), and the entry bounds C.17–C.19. The low-rank lemmas C.13–C.16 are in :mod:`exact_appendix_c_lowrank`.

Every check declares mutants (plausible wrong variants its evidence rejects); claims are decided by
:mod:`proofs_check.decide` (float64 first, mpmath before a failure counts).
"""

from __future__ import annotations

import numpy as np

from proofs_check.checks.exact_common import draw, grad_fd, rowkron
from proofs_check.checks.exact_symbolic import proved
from proofs_check.decide import DPS, TINY, TOL_FD_MP, WRONG, decide
from proofs_check.registry import Context, Result, check
from reference import backward, forward, value_and_grad
from reference.attention import attention_matrix, head_forward, head_vjp, unnormalised
from reference.compare import max_abs, rel_err
from reference.fd import fd_gradients
from reference.testing import random_problem


@check(id="cat.C1.inner_products", label="Fact C.1", name="<x⊙y,z> = x^T diag(y) z; <x,y⊙z> symmetric; <x,y> = <x⊙y,1>",
       kind="ID", expected="OK", spec=(23,), uses=("cat.notation.maxnorm",), mutants=("diag_of_x",))  # fmt: skip
def check_C1(ctx: Context) -> Result:
    r"""Fact C.1 (spec #23): (a) $\langle x\odot y, z\rangle = x^\top \mathrm{diag}(y) z$; (b) $\langle x, y\odot z
    \rangle = \langle y, x\odot z\rangle = \langle z, y\odot x\rangle$; (c) $\langle x, y\rangle = \langle x\odot y,
    1_n\rangle$. Mutant: (a) with $\mathrm{diag}(x)$ in place of $\mathrm{diag}(y)$."""
    rng = ctx.rng(104)
    sizes = rng.integers(2, 12, 4 if ctx.quick else 30)
    cases = [{"V": rng.uniform(-2, 2, (3, int(n)))} for n in sizes]

    def claim(bk, V):
        x, y, z = V
        n = len(x)
        D = bk.zeros((n, n))
        for i in range(n):
            D[i, i] = x[i] if ctx.mutated("diag_of_x") else y[i]
        return [
            ("eq", "(a)", (x * y) @ z, x @ D @ z),
            ("eq", "(b1)", x @ (y * z), y @ (x * z)),
            ("eq", "(b2)", x @ (y * z), z @ (y * x)),
            ("eq", "(c)", x @ y, (x * y) @ bk.ones((n,))),
        ]

    return decide(claim, cases, ctx=ctx)


@check(id="cat.C2.hadamard_lowrank", label="Fact C.2", name="(U1V1^T)⊙(U2V2^T) = (U1⊘U2)(V1⊘V2)^T",
       kind="ID", expected="OK", spec=(24,), uses=("cat.C1.inner_products",),
       mutants=("mismatched_column_order",))  # fmt: skip
def check_C2(ctx: Context) -> Result:
    r"""Fact C.2 (spec #24): $(U_1V_1^\top)\odot(U_2V_2^\top) = (U_1\oslash U_2)(V_1\oslash V_2)^\top$ with
    $(U_1\oslash U_2)_{i, l_1 + (l_2-1)k_1} = (U_1)_{i,l_1}(U_2)_{i,l_2}$, an n×k1k2 matrix; any column order works
    when U and V use the same one. Mutant: V's columns in the other order ($l_2 + l_1 k_2$) than U's."""
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
        for i, l1, l2 in np.ndindex(n, k1, k2):
            U[i, l1 + l2 * k1] = U1[i, l1] * U2[i, l2]
            col = l2 + l1 * k2 if ctx.mutated("mismatched_column_order") else l1 + l2 * k1
            V[i, col] = V1[i, l1] * V2[i, l2]
        lhs = (U1 @ V1.T) * (U2 @ V2.T)
        return [
            ("eq", "paper's column order", U @ V.T, lhs),
            ("eq", "vectorised row-Kronecker = index formula", rowkron(U1, U2), U),
            ("eq", "any common column order", U[:, perm] @ V[:, perm].T, lhs),
        ]

    return decide(claim, cases, ctx=ctx)


@check(id="ref.C2.WQ_WK", label="Claim #26 (§C.2)", name="dL/dW_Q = (dL/dW) W_K, dL/dW_K = (dL/dW)^T W_Q",
       kind="ID", expected="OK", spec=(26,), uses=("ref.F4.dW",), mutants=("transposed",))  # fmt: skip
def check_WQ_WK(ctx: Context) -> Result:
    r"""Claim of §C.2 (spec #26): with $W = W_Q W_K^\top$, $\partial L/\partial W_Q = (\partial L/\partial W) W_K$ and
    $\partial L/\partial W_K = (\partial L/\partial W)^\top W_Q$; against mpmath central differences in $W_Q$, $W_K$.
    Mutant: the transposes exchanged, $(\partial L/\partial W)^\top W_K$ and $(\partial L/\partial W) W_Q$."""
    rng = ctx.rng(14)
    p = random_problem(rng, 5, 3, 1, with_g=False)
    fd = fd_gradients(p.X, p.layers, p.loss, dps=DPS, with_dT=False)
    tr = forward(p.X, p.layers, backend="mpmath", dps=DPS)
    g = backward(tr, value_and_grad(tr, p.loss)[1]).layers[0]
    L = p.layers[0]
    dWQ, dWK = g.dW_Q, g.dW_K
    if ctx.mutated("transposed"):
        dWQ, dWK = g.dW.T @ L.W_K, g.dW @ L.W_Q
    e = max(float(rel_err(dWQ, fd.layers[0]["dW_Q"])), float(rel_err(dWK, fd.layers[0]["dW_K"])))
    return Result(e < TOL_FD_MP, f"vs mpmath FD {e:.1e}", observed=e, bound=TOL_FD_MP, precision=f"mpmath dps={DPS}")


@check(id="sym.C2.dWQ_dWK", label="Claim §C.2", name="dL/dW_Q = dL/dW W_K, dL/dW_K = (dL/dW)^T W_Q",
       kind="ID", expected="OK", spec=(26,), mutants=("f_transposed",))  # fmt: skip
def dWQ_dWK(ctx: Context) -> Result:
    r"""Claim of §C.2 (spec #26), SymPy: the two weight gradients proved exactly from the chain rule."""
    return proved(ctx, ["dW_Q", "dW_K"])


@check(id="cat.C5.index_notation", label="Definition C.5", name="Z_{i,*} is row i as a column; f_{i,*} != f_{*,i}",
       kind="DEF", expected="OK", spec=(28,), uses=("cat.notation.maxnorm",), mutants=("index_swapped",))  # fmt: skip
def check_C5(ctx: Context) -> Result:
    r"""Definition C.5 (spec #28): $Z_{i,j} = e_i^\top Z e_j$; $Z_{i,*}$ is row i written as a d×1 column, $Z_{*,j}$
    column j (n×1). For the attention matrix $f_{i_0,*} \ne f_{*,i_0}$: mixing them up is the source of the
    transposition errors of Lemmas D.1 and G.3. Mutant: $Z_{i,j}$ read as $e_j^\top Z e_i$."""
    rng = ctx.rng(106)
    inp = draw(rng, 6, 3)
    cases = [{"X": inp["X"], "W": inp["W"], "i0": int(rng.choice([0, 2]))}]  # i0 != j = 1, both < d

    def claim(bk, X, W, i0):
        n, d = X.shape
        e, ed = bk.eye(n), bk.eye(d)
        f = attention_matrix(X, W, 1, False, bk)
        entry = e[1] @ X @ ed[i0] if ctx.mutated("index_swapped") else e[i0] @ X @ ed[1]
        return [
            ("eq", "Z_{i,*} = (e_i^T Z)^T", X[i0].reshape(d, 1), (e[i0] @ X).reshape(d, 1)),
            ("eq", "Z_{*,j} = Z e_j", X[:, 1].reshape(n, 1), (X @ ed[1]).reshape(n, 1)),
            ("eq", "Z_{i,j} = e_i^T Z e_j", X[i0, 1], entry),
            ("ne", "row f_{i0,*} differs from column f_{*,i0}", f[i0, :], f[:, i0]),
        ]

    return decide(claim, cases, ctx=ctx)


@check(id="cat.C6.u_without_scale", label="Definition C.6", name="u(X) = exp(XWX^T) drops the 1/d of Def. C.3",
       kind="DEF", expected="AMBIG", spec=(29,), uses=("ref.def1.2.attention", "ref.F4.dW"),
       mutants=("C3_gradient_unscaled",))  # fmt: skip
def check_C6(ctx: Context) -> Result:
    r"""Definition C.6 (spec #29): $u(X) := \exp(XWX^\top)$ with **no** 1/d, unlike Def. C.3's $\exp(XWX^\top/d)$.
    The experiment shows the two conventions are materially different and that the closed forms of App. D–H match
    only $\beta = 1$: $\partial L/\partial W = X^\top p X$ (F.4) agrees with central differences for C.6's model, while
    for C.3's model the gradient is $\beta X^\top P X$, off from the unscaled form by the factor d. Mutant: C.3's
    gradient taken unscaled (the appendices' form applied to the main text's model)."""
    rng = ctx.rng(107)
    cases = [draw(rng, 5, 3)] if ctx.quick else [draw(rng, 5, 3), draw(rng, 6, 4)]

    def claim(bk, X, W, WV, G):
        d = X.shape[1]
        out = []
        for beta, tag in ((bk.scalar(1), "C.6 beta=1"), (bk.scalar(1) / d, "C.3 beta=1/d")):
            dW = head_vjp(G, head_forward(X, W, WV, beta, False, bk)).dW  # beta X^T P X (d, d)

            def loss_of(Wm, beta=beta):
                return (G * head_forward(X, Wm, WV, beta, False, bk).s).sum()

            fd = grad_fd(bk, loss_of, W)
            if tag.startswith("C.6"):
                out.append(("fd", f"{tag}: X^T p X = FD dL/dW", dW, fd))
            else:
                scaled = dW / beta if ctx.mutated("C3_gradient_unscaled") else dW
                out += [("fd", f"{tag}: beta X^T P X = FD dL/dW", scaled, fd),
                        ("ne", f"{tag}: unscaled X^T P X is off", dW / beta, fd)]  # fmt: skip
        f1, fd_ = attention_matrix(X, W, 1, False, bk), attention_matrix(X, W, bk.scalar(1) / d, False, bk)
        return out + [("ne", "f under C.6 differs from f under C.3", f1, fd_)]

    return decide(claim, cases, ctx=ctx, note="the 1/d of Def. C.3 is dropped from Def. C.6 on; the two models differ")


@check(id="cat.C7.alpha", label="Definition C.7", name="alpha(X) = u(X) 1_n, the softmax denominators",
       kind="DEF", expected="OK", spec=(30,), uses=("cat.C6.u_without_scale",), mutants=("column_sums",))  # fmt: skip
def check_C7(ctx: Context) -> Result:
    r"""Definition C.7 (spec #30): $\alpha(X) = u(X) 1_n$; with Def. C.8, $f = \mathrm{diag}(\alpha)^{-1} u$ is the
    reference attention matrix at $\beta = 1$, and $\alpha > 0$. Mutant: column sums $u^\top 1_n$ for $\alpha$."""
    rng = ctx.rng(108)
    cases = [draw(rng, n, 3, keep=("X", "W")) for n in ((5,) if ctx.quick else (5, 9))]

    def claim(bk, X, W):
        u = unnormalised(X, W, 1, bk)  # (n, n)  Def. C.6
        alpha = (u.T if ctx.mutated("column_sums") else u) @ bk.ones((X.shape[0],))  # (n,)
        loop = np.array([sum(u[i], bk.scalar(0)) for i in range(X.shape[0])], dtype=alpha.dtype)
        return [
            ("eq", "alpha = u 1_n (row sums)", alpha, loop),
            ("eq", "diag(alpha)^-1 u = f (beta=1)", u / alpha[:, None], attention_matrix(X, W, 1, False, bk)),
            ("le", "alpha > 0: tiny <= min alpha", TINY, min(alpha)),
        ]

    return decide(claim, cases, ctx=ctx)


@check(id="cat.C9.values", label="Definition C.9", name="h(X) = X W_V", kind="DEF", expected="OK", spec=(32,),
       uses=("ref.def1.2.attention",), mutants=("W_V_transposed",))  # fmt: skip
def check_C9(ctx: Context) -> Result:
    r"""Definition C.9 (spec #32): $h(X) = X W_V$ (n×d); the reference head's values against an entrywise loop.
    Mutant: $X W_V^\top$."""
    rng = ctx.rng(109)
    cases = [draw(rng, n, d) for n, d in (((5, 3),) if ctx.quick else ((5, 3), (8, 4)))]

    def claim(bk, X, W, WV, G):
        n, d = X.shape
        V = WV.T if ctx.mutated("W_V_transposed") else WV
        loop = np.array([[sum((X[i, k] * WV[k, j] for k in range(d)), bk.scalar(0)) for j in range(d)]
                         for i in range(n)], dtype=X.dtype)  # fmt: skip
        return [("eq", "h = reference head value (loop)", head_forward(X, W, V, 1, False, bk).h, loop)]

    return decide(claim, cases, ctx=ctx)


@check(id="cat.C11.q", label="Definition C.11", name="q = G h^T = dL/df, rank <= d", kind="DEF", expected="OK",
       spec=(34,), uses=("cat.C9.values",), mutants=("q_transposed",))  # fmt: skip
def check_C11(ctx: Context) -> Result:
    r"""Definition C.11 (spec #34): $q(X) = G h(X)^\top$ (n×n) is the gradient of $L = \langle G, f h\rangle$ with
    respect to the attention matrix f, and has exact rank $\le d$ (the $(d+1)$-th singular value vanishes up to
    $n u \sigma_1$). Mutant: $h G^\top$."""
    rng = ctx.rng(110)
    cases = []
    for n, d in ((6, 2),) if ctx.quick else ((6, 2), (9, 3)):
        inp = draw(rng, n, d)
        sv = np.linalg.svd(inp["G"] @ (inp["X"] @ inp["WV"]).T, compute_uv=False)
        cases.append({**inp, "sv_ratio": float(sv[d] / sv[0])})

    def claim(bk, X, W, WV, G, sv_ratio):
        h = X @ WV
        f = attention_matrix(X, W, 1, False, bk)
        q = h @ G.T if ctx.mutated("q_transposed") else G @ h.T
        fd = grad_fd(bk, lambda F: (G * (F @ h)).sum(), f)
        # rank <= d: a computed singular value is exact up to ~n u sigma_1 (backward-stable SVD), n <= 9 < 2^4
        return [("fd", "q = dL/df (FD in f)", q, fd), ("le", "sigma_{d+1}/sigma_1 (rank <= d)", sv_ratio, 2**-49)]

    return decide(claim, cases, ctx=ctx)


@check(id="cat.C17.f_bounded", label="Lemma C.17", name="0 < f_ij <= 1, rows sum to 1; f_ij <= e^(2 Rbar)/n",
       kind="INEQ", expected="OK", spec=(40,), uses=("cat.C7.alpha",), mutants=("uniform_bound",))  # fmt: skip
def check_C17(ctx: Context) -> Result:
    r"""Lemma C.17 (spec #40): $\|f\|_\infty \le 1$; also $0 < f_{ij}$, $f 1_n = 1_n$ and the stronger
    $f_{ij} \le e^{2\bar R}/n$ when every $|\text{logit}| \le \bar R$ (used for column sums, spec §2.10).
    Mutant: the uniform bound $1/n$ in place of $e^{2\bar R}/n$."""
    rng = ctx.rng(117)
    grid = ([(8, 1.0, 0.5), (8, 0.25, 2.0)] if ctx.quick
            else [(n, b, R) for n in (8, 64) for b in (1.0, 0.25) for R in (0.5, 1.0, 2.0)])  # fmt: skip
    cases = [{**draw(rng, n, 4, R, keep=("X", "W")), "beta": beta} for n, beta, R in grid]

    def claim(bk, X, W, beta):
        n = X.shape[0]
        f = attention_matrix(X, W, beta, False, bk)
        Rbar = max_abs(beta * ((X @ W) @ X.T))
        grow = 0 if ctx.mutated("uniform_bound") else 2 * Rbar
        return [
            ("le", "max f <= 1", max_abs(f), bk.scalar(1)),
            ("le", "f > 0: tiny <= min f", TINY, min(f.flat)),
            ("eq", "f 1 = 1", f @ bk.ones((n,)), bk.ones((n,))),
            ("le", "max f <= e^(2Rbar)/n", max_abs(f), bk.exp(np.array([grow]))[0] / n),
        ]

    return decide(claim, cases, ctx=ctx)


@check(id="cat.C18.h_bounded", label="Lemma C.18", name="||h|| <= d ||X|| ||W_V||; the printed n ||X|| ||W_V|| fails "
       "for n < d", kind="INEQ", expected="WRONG-AS-PRINTED", spec=(41,), uses=("cat.C9.values",),
       mutants=("printed_n_bound",))  # fmt: skip
def check_C18(ctx: Context) -> Result:
    r"""Lemma C.18 (spec #41, SPEC §0.5 item 3): printed $\|h\|_\infty \le n\|X\|_\infty\|W_V\|_\infty$. It holds only
    for $n \ge d$: at $n = 2$, $d = 5$ with all-ones X and $W_V$, $\|h\|_\infty = 5 > 2$. The corrected
    $\|h\|_\infty \le d\|X\|_\infty\|W_V\|_\infty$ (a sum of d terms) holds everywhere and is attained by all-ones
    inputs; the poly(n) conclusion stands for $d = O(\log n)$. Checked on random inputs with n >= d and n < d and on
    the all-ones counterexample, where the printed bound must be exceeded by more than the 1e-3 threshold.
    Mutant: the printed n-bound in place of the corrected d-bound."""
    rng = ctx.rng(118)
    shapes = ((8, 4, 1.0), (3, 6, 1.0)) if ctx.quick else ((8, 4, 1.0), (3, 6, 1.0), (64, 8, 3.0), (4, 16, 0.5))
    cases = [{**draw(rng, n, d, R, keep=("X", "WV")), "ones": False} for n, d, R in shapes]
    cases.append({"X": np.ones((2, 5)), "WV": np.ones((5, 5)), "ones": True})  # SPEC §0.5 item 3

    def claim(bk, X, WV, ones):
        n, d = X.shape
        h = head_forward(X, bk.eye(d), WV, 1, False, bk).h  # (n, d)  Def. C.9
        k = n if ctx.mutated("printed_n_bound") else d
        printed = n * max_abs(X) * max_abs(WV)
        rows = [("le", "||h|| <= d ||X|| ||W_V||", max_abs(h), k * max_abs(X) * max_abs(WV))]
        if ones:
            rows += [("eq", "attained: all-ones gives d", max_abs(h), bk.scalar(d)),
                     ("le", "printed n||X|| ||W_V|| (1 + 1e-3) <= ||h|| at n < d", printed * (1 + WRONG),
                      max_abs(h))]  # fmt: skip
        return rows

    res = decide(claim, cases, ctx=ctx)
    res.counterexample = {"n": 2, "d": 5, "X": "all ones", "W_V": "all ones", "||h||": 5.0, "printed bound": 2.0,
                          "corrected bound": 5.0, "seed": ctx.seed}  # fmt: skip
    return res


@check(id="cat.C19.s_bounded", label="Lemma C.19", name="||s|| <= ||h|| (tight) <= n ||f|| ||h|| (paper)",
       kind="INEQ", expected="OK", spec=(42,), uses=("cat.C17.f_bounded", "cat.C18.h_bounded"),
       mutants=("n_dropped",))  # fmt: skip
def check_C19(ctx: Context) -> Result:
    r"""Lemma C.19 (spec #42): $\|s\|_\infty \le n\|f\|_\infty\|h\|_\infty$ (paper); the tight bound is $\|s\|_\infty
    \le \|h\|_\infty$ (rows of s are convex combinations of rows of h), approached when f is nearly one-hot.
    Mutant: the paper's bound without its factor n."""
    rng = ctx.rng(119)
    cases = []
    for scale in (1.0, 30.0) if ctx.quick else (1.0, 5.0, 30.0):
        inp = draw(rng, 8, 4)
        cases.append({"X": inp["X"], "W": scale * inp["W"], "WV": inp["WV"]})

    def claim(bk, X, W, WV):
        c = head_forward(X, W, WV, 1, False, bk)
        k = 1 if ctx.mutated("n_dropped") else X.shape[0]
        return [
            ("le", "||s|| <= ||h||", max_abs(c.s), max_abs(c.h)),
            ("le", "||s|| <= n ||f|| ||h|| (paper)", max_abs(c.s), k * max_abs(c.f) * max_abs(c.h)),
        ]

    return decide(claim, cases, ctx=ctx)
