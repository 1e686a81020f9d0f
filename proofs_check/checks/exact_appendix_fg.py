r"""Exact checks of Appendices F and G, SPEC §3 #71–#79: the Kronecker view of the logits (F.1, F.2), the entrywise
derivative in W (F.3), $\partial L/\partial W$ (F.4, numeric and SymPy), the fast $g_w$ (F.5), and the derivatives
in $W_V$ (G.1, G.2, G.3 numeric and SymPy).

The entrywise formulas of F.3, G.1 and G.2 are the statements under test, written out as printed; every other
quantity comes from the reference. Shape legend: n tokens, d width, i in [d^2] the index of vec(W) (row-major).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from proofs_check.checks.exact_common import (
    PRINTED_MUTANTS,
    draw,
    fast_head,
    jac_fd,
    lowrank_cases,
    p_parts,
    printed_vs_corrected,
    single_head,
)
from proofs_check.checks.exact_symbolic import proved
from proofs_check.decide import DPS, TOL_FD_MP, decide, tolerance
from proofs_check.registry import Context, Result, check
from reference import printed as pr
from reference.attention import attention_matrix, head_forward, head_vjp, softmax
from reference.backend import FLOAT64, mp_context
from reference.compare import max_abs, rel_err

TOL_ID = tolerance("eq", FLOAT64)  # 2^20 u: the float64 identity tolerance (derivation in proofs_check.decide)


def kron_blocks(A1, A2):
    """$A = A_1 \\otimes A_2$ as blocks: ``[j0, l, i]`` = $(A_{j_0})_{l, i}$ with $i = p d + q$ (0-based)."""
    n1, d = A1.shape
    return (A1[:, None, :, None] * A2[None, :, None, :]).reshape(n1, A2.shape[0], d * d)


def F3_as_printed(A1, A2, f, h, beta):
    r"""Lemma F.3 as printed (times β): $\partial s_{j_0 i_0}/\partial w_i = \beta(\langle A_{j_0,i}\odot f_{j_0},
    h_{i_0}\rangle - \langle f_{j_0}, h_{i_0}\rangle\langle A_{j_0,i}, f_{j_0}\rangle)$; returns ``[j0, i0, i]``."""
    B = kron_blocks(A1, A2)  # (n1, n2, d^2)
    t1 = (B[:, :, None, :] * (f[:, :, None, None] * h[None, :, :, None])).sum(axis=1)  # (n1, d, d^2)
    t2 = (f @ h)[:, :, None] * (B * f[:, :, None]).sum(axis=1)[:, None, :]  # (n1, d, d^2)
    return beta * (t1 - t2)


@check(id="cat.F1.kronecker", label="Definition F.1", name="A = X⊗X: A vec(W) = vec(X W X^T) (row-major)",
       kind="DEF", expected="OK", spec=(71,), uses=("cat.notation.maxnorm",),
       mutants=("column_major_vec",))  # fmt: skip
def check_F1(ctx: Context) -> Result:
    r"""Definition F.1 (spec #71): $A = A_1\otimes A_2 \in \mathbb R^{n^2\times d^2}$, block $A_{j_0}$ = rows
    $j_0 n \ldots$, $(A_{j_0})_{l,(p-1)d+q} = (A_1)_{j_0,p}(A_2)_{l,q}$; with $A_1 = A_2 = X$ and a row-major
    $w = \mathrm{vec}(W)$, $A w = \mathrm{vec}(XWX^\top)$, so $(A_{j_0}w)_l = S_{j_0,l}$. Mutant: column-major vec."""
    rng = ctx.rng(127)
    cases = [draw(rng, n, d, keep=("X", "W")) for n, d in (((5, 3),) if ctx.quick else ((5, 3), (7, 4)))]

    def claim(bk, X, W):
        n, d = X.shape
        A = np.kron(X, X)  # (n^2, d^2)
        E = bk.zeros((n, n, d * d))
        for j0, l, p, q in np.ndindex(n, n, d, d):
            E[j0, l, p * d + q] = X[j0, p] * X[l, q]
        w = (W.T if ctx.mutated("column_major_vec") else W).reshape(-1)  # (d^2,)
        return [
            ("eq", "blocks of kron = entry formula", A.reshape(n, n, d * d), E),
            ("eq", "A vec(W) = vec(X W X^T)", A @ w, ((X @ W) @ X.T).reshape(-1)),
        ]

    return decide(claim, cases, ctx=ctx)


@check(id="cat.F2.cross_attention", label="Remark F.2", name="A1 = A2 = X specializes [AS24a]'s cross-attention A1⊗A2",
       kind="DEF", expected="OK", spec=(72,), uses=("cat.F1.kronecker",), mutants=("A1_A2_swapped",))  # fmt: skip
def check_F2(ctx: Context) -> Result:
    r"""Remark F.2 (spec #72): [AS24a] allows $A_1 \ne A_2$ (cross-attention, logits $A_1 W A_2^\top$); the identity
    $(A_1\otimes A_2)\mathrm{vec}(W) = \mathrm{vec}(A_1WA_2^\top)$ and the F.3 derivative formula hold for distinct
    $A_1, A_2$ (values $A_3$ fixed), and self-attention is the case $A_1 = A_2 = X$. Mutant: $A_2$ and $A_1$
    exchanged in the formula."""
    rng = ctx.rng(128)
    cases = [{"A1": rng.uniform(-1, 1, (4, 3)), "A2": rng.uniform(-1, 1, (5, 3)), "A3": rng.uniform(-1, 1, (5, 3)),
              "W": rng.uniform(-1, 1, (3, 3))}]  # fmt: skip

    def claim(bk, A1, A2, A3, W):
        def s_of(Wm):
            return softmax((A1 @ Wm) @ A2.T, bk) @ A3  # (4, 3)

        f = softmax((A1 @ W) @ A2.T, bk)  # (4, 5)
        L, R = (A2, A1) if ctx.mutated("A1_A2_swapped") else (A1, A2)
        formula = F3_as_printed(A1, A2, f, A3, 1)
        return [
            ("eq", "(A1⊗A2) vec W = vec(A1 W A2^T)", np.kron(L, R) @ W.reshape(-1), ((A1 @ W) @ A2.T).reshape(-1)),
            ("fd", "F.3 formula with A1 != A2 vs FD", formula, jac_fd(bk, s_of, W).reshape(4, 3, 9)),
        ]

    return decide(claim, cases, ctx=ctx)


@check(id="cat.F3.ds_dW", label="Lemma F.3",
       name="ds_{j0,i0}/dw_i = <A_{j0,i}⊙f_j0, h_i0> - <f_j0,h_i0><A_{j0,i},f_j0>", kind="ID",
       expected="OK", spec=(73,), uses=("cat.F1.kronecker",), mutants=("beta_dropped",))  # fmt: skip
def check_F3(ctx: Context) -> Result:
    r"""Lemma F.3 (spec #73): with $w = \mathrm{vec}(W)$, for all $j_0 \in [n]$, $i_0\in[d]$, $i\in[d^2]$:
    $\partial s_{j_0,i_0}/\partial w_i = \langle A_{j_0,i}\odot f_{j_0}, h_{i_0}\rangle - \langle f_{j_0},h_{i_0}\rangle
    \langle A_{j_0,i}, f_{j_0}\rangle$ (times $\beta$ in general), against central differences for every entry.
    Mutant: the formula without β at β = 1/d."""
    rng = ctx.rng(129)
    sizes = [(5, 3, 1.0), (5, 3, 1.0 / 3)] if ctx.quick else [(5, 3, 1.0), (5, 3, 1.0 / 3), (6, 4, 1.0), (6, 4, 0.25)]
    cases = [{**draw(rng, n, d, keep=("X", "W", "WV")), "beta": b} for n, d, b in sizes]

    def claim(bk, X, W, WV, beta):
        n, d = X.shape
        c = head_forward(X, W, WV, beta, False, bk)
        fd = jac_fd(bk, lambda Wm: head_forward(X, Wm, WV, beta, False, bk).s, W).reshape(n, d, d * d)
        b = 1 if ctx.mutated("beta_dropped") else beta
        return [("fd", "F.3 vs FD, every (j0, i0, i)", F3_as_printed(X, X, c.f, c.h, b), fd)]

    return decide(claim, cases, ctx=ctx)


@check(id="ref.F4.dW", label="Lemma F.4", name="dL/dW = beta X^T P X (beta = 1 as printed)",
       kind="ID", expected="OK", spec=(74, 35), uses=("ref.C4.closed_form",), mutants=("beta_dropped",))  # fmt: skip
def check_F4(ctx: Context) -> Result:
    r"""Lemma F.4 (spec #74, #35): $\partial L/\partial W = X^\top p X$ with $p = p_1 - p_2$ at β = 1 as printed, and
    $\beta X^\top P X$ in general; both against mpmath central differences in the merged W. Mutant: β dropped."""
    errs = []
    for salt, beta in ((10, 1), (11, mp_context(DPS).mpf(1) / 3)):
        bk, c, G, hg, fd = single_head(ctx.rng(salt), beta=beta)
        with bk.precision():
            dW = hg.dW / c.beta if ctx.mutated("beta_dropped") else hg.dW
            errs.append(float(rel_err(dW, fd.layers[0]["dW"])))
    e = max(errs)
    return Result(e < TOL_FD_MP, f"beta=1: {errs[0]:.1e}; beta=1/d: {errs[1]:.1e} (vs mpmath FD)", observed=e,
                  bound=TOL_FD_MP, precision="mpmath dps=50")  # fmt: skip


@check(id="sym.F4.dW", label="Lemma F.4", name="dL/dW = beta X^T P X (SymPy)", kind="ID", expected="OK",
       spec=(74,), mutants=("f_transposed",))  # fmt: skip
def dW(ctx: Context) -> Result:
    r"""Lemma F.4 (spec #74), SymPy: $\partial L/\partial W = \beta X^\top P X$ proved exactly."""
    return proved(ctx, ["dW"])


@check(id="cat.F5.fast_dW", label="Lemma F.5", name="gw = X^T (U3V3^T - U4V4^T) X: error bound; linear time",
       kind="INEQ", expected="OK", spec=(75,), uses=("cat.C15.lowrank_p1", "cat.C16.lowrank_p2", "ref.F4.dW"),
       mutants=("p2_dropped",))  # fmt: skip
def check_F5(ctx: Context) -> Result:
    r"""Lemma F.5 (spec #75): $g_w = \beta X^\top(\tilde p_1 - \tilde p_2)X$ with $\tilde p_1 = U_3V_3^\top$ (C.15),
    $\tilde p_2 = U_4V_4^\top$ (C.16), evaluated as $(X^\top U_3)(V_3^\top X) - (X^\top U_4)(V_4^\top X)$ without an n×n
    matrix. $g_w$ is the shipped fast backward's (:func:`fastpath.layer.head_backward`, degree-g Taylor, the
    factors' f~). [INEQ] $\|g_w - \partial L/\partial W\|_\infty \le \beta n^2\|X\|_\infty^2(\|\tilde p_1 -
    p_1\|_\infty + \|\tilde p_2 - p_2\|_\infty)$ (Eq. 18–19); [ID] it equals the lemma's formula in the paper's order
    $\beta[((X^\top U_3)V_3^\top)X - ((X^\top U_4)V_4^\top)X]$ up to the float64 rounding of the fast path
    (relative :data:`TOL_ID` $= 2^{20}u$, :mod:`proofs_check.decide`, whatever the number system of the other side).
    Mutant: Algorithm 1 line 19's $g_w = \beta X^\top \tilde p_1 X$ (:mod:`reference.printed`), the $-\tilde p_2$
    part dropped."""
    cases = []
    for c in lowrank_cases(ctx, 130, (64,) if ctx.quick else (64, 128)):
        gw = fast_head(c["X"], c["W"], c["WV"], c["G"], c["beta"], c["meta"]["g"]).dW  # (d, d)  fastpath
        cases.append({**{k: c[k] for k in ("X", "W", "WV", "G", "beta", "U1", "V1")}, "gw_fast": gw})

    def claim(bk, X, W, WV, G, beta, U1, V1, gw_fast):
        n = X.shape[0]
        c = head_forward(X, W, WV, beta, False, bk)
        f, h, q, p1, p2, K, U3, V3 = p_parts(bk, X, W, WV, G, beta, U1, V1)
        U4 = (U3 @ (V3.T @ bk.ones((n,))))[:, None] * U1  # C.16
        gw = gw_fast
        if ctx.mutated("p2_dropped"):  # Algorithm 1 line 19 with the low-rank f~
            gw = beta * pr.dW_as_printed_alg1_line19(G, replace(c, f=U1 @ V1.T))
        exact = head_vjp(G, c).dW  # beta X^T P X (Lemma F.4)
        paper = beta * (((X.T @ U3) @ V3.T) @ X - ((X.T @ U4) @ V1.T) @ X)  # (d, d)  the lemma, paper's order
        e1, e2 = max_abs(U3 @ V3.T - p1), max_abs(U4 @ V1.T - p2)
        return [("le", "||gw - dL/dW|| <= beta n^2 ||X||^2 (e1 + e2)", max_abs(gw - exact),
                 beta * n * n * max_abs(X) ** 2 * (e1 + e2)),
                ("le", "|gw - paper's order| <= TOL_ID max(1, |paper|)", max_abs(gw - paper),
                 TOL_ID * max(1, max_abs(paper)))]  # fmt: skip

    return decide(claim, cases, ctx=ctx, note="gw of fastpath.layer.head_backward")


@check(id="cat.G1.dh_dWV", label="Lemma G.1", name="dh_{i0,j0}/d(W_V)_{i1,j1} = X_{i0,i1} [j0 = j1]",
       kind="ID", expected="OK", spec=(76,), uses=("cat.C9.values",), mutants=("indices_swapped",))  # fmt: skip
def check_G1(ctx: Context) -> Result:
    r"""Lemma G.1 (spec #76): $\partial h_{i_0,j_0}/\partial (W_V)_{i_1,j_1} = X_{i_0,i_1}$ if $j_0 = j_1$, else 0.
    Mutant: $X_{i_0,j_1}$ if $j_0 = i_1$ (the indices of $W_V$ exchanged)."""
    rng = ctx.rng(132)
    cases = [{"X": rng.uniform(-1, 1, (n, d)), "WV": rng.uniform(-1, 1, (d, d))}
             for n, d in (((5, 3),) if ctx.quick else ((5, 3), (6, 4)))]  # fmt: skip

    def claim(bk, X, WV):
        n, d = X.shape
        formula = bk.zeros((n, d, d, d))
        for i0, j0, i1 in np.ndindex(n, d, d):
            if ctx.mutated("indices_swapped"):
                formula[i0, j0, j0, i1] = X[i0, i1]
            else:
                formula[i0, j0, i1, j0] = X[i0, i1]
        h_of = lambda V: head_forward(X, bk.eye(d), V, 1, False, bk).h  # noqa: E731  (n, d)  Def. C.9
        return [("fd", "G.1 vs FD", formula, jac_fd(bk, h_of, WV))]

    return decide(claim, cases, ctx=ctx)


@check(id="cat.G2.ds_dWV", label="Lemma G.2", name="ds_{i2,j2}/dW_V = X^T f_{i2,*} e_j2^T",
       kind="ID", expected="OK", spec=(77,), uses=("cat.G1.dh_dWV",), mutants=("f_transposed",))  # fmt: skip
def check_G2(ctx: Context) -> Result:
    r"""Lemma G.2 (spec #77): Part 1 $\partial s_{i_2,j_2}/\partial (W_V)_{i_1,j_1} = (fX)_{i_2,i_1}$ if $j_1 = j_2$,
    else 0; Part 2 $\partial s_{i_2,j_2}/\partial W_V = X^\top f_{i_2,*} e_{j_2}^\top \in \mathbb R^{d\times d}$.
    Mutant: $f^\top$ for f (the error of the printed Lemma G.3)."""
    rng = ctx.rng(133)
    sizes = ((5, 3, 1.0),) if ctx.quick else ((5, 3, 1.0), (6, 4, 0.25))
    cases = [{**draw(rng, n, d, keep=("X", "W", "WV")), "beta": b} for n, d, b in sizes]

    def claim(bk, X, W, WV, beta):
        n, d = X.shape
        f = attention_matrix(X, W, beta, False, bk)
        fm = f.T if ctx.mutated("f_transposed") else f
        fX = fm @ X
        part1, part2 = bk.zeros((n, d, d, d)), bk.zeros((n, d, d, d))
        eye = bk.eye(d)
        for i2, j2 in np.ndindex(n, d):
            for i1 in range(d):
                part1[i2, j2, i1, j2] = fX[i2, i1]
            part2[i2, j2] = np.outer(X.T @ fm[i2], eye[j2])
        fd = jac_fd(bk, lambda V: head_forward(X, W, V, beta, False, bk).s, WV)
        return [("fd", "Part 1 vs FD", part1, fd), ("fd", "Part 2 vs FD", part2, fd)]

    return decide(claim, cases, ctx=ctx)


@check(id="ref.G3.dWV", label="Lemma G.3", name="dL/dW_V: printed X^T f G fails, corrected X^T f^T G holds",
       kind="ID", expected="WRONG-AS-PRINTED", spec=(78, 79), uses=("ref.C4.closed_form",),
       mutants=PRINTED_MUTANTS)  # fmt: skip
def check_G3(ctx: Context) -> Result:
    r"""Lemma G.3 (spec #78, #79): printed $\partial L/\partial W_V = X^\top f G$ is off against mpmath central
    differences; the corrected $X^\top f^\top G$ matches."""
    return printed_vs_corrected(ctx, 12, pr.dW_V_as_printed, "dW_V", "dW_V")


@check(id="sym.G3.dWV", label="Lemma G.3", name="dL/dW_V = X^T f^T G (printed X^T f G)", kind="ID",
       expected="WRONG-AS-PRINTED", spec=(78,), mutants=("f_transposed", "printed_replaced_by_corrected"))  # fmt: skip
def dWV(ctx: Context) -> Result:
    r"""Lemma G.3 (spec #78), SymPy: $X^\top f^\top G$ proved; the printed $X^\top f G$ refuted exactly at (2,2)."""
    return proved(ctx, ["dW_V"], "corrected proved", [("dW_V", {}), ("dW_V", {"symmetric_W": True})],
                  "; printed refuted exactly at (2,2)")  # fmt: skip
