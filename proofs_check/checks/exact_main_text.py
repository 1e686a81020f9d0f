r"""Exact checks of the main text (SPEC §3 #1–#13, #22): notation, softmax, attention, the model, losses, the
closed-form backward (Lemma 3.4 / C.4, numeric and SymPy side by side), Algorithm 1 line 19, Claims §5.1 and §B.5.

Every check declares mutants (plausible wrong variants its evidence rejects). Tolerances are float64 unit roundoff
times a condition number stated beside them, or decided in mpmath (:mod:`proofs_check.decide`).
"""

from __future__ import annotations

import itertools

import numpy as np

from proofs_check.checks.exact_appendix_c_lowrank import claim_lowrank_product
from proofs_check.checks.exact_common import PRINTED_MUTANTS, grad_fd, grid_result, lr_inputs, printed_vs_corrected
from proofs_check.checks.exact_symbolic import proved
from proofs_check.decide import DPS, TOL_FD_MP, U64, decide
from proofs_check.registry import Context, Result, check
from reference import backward, forward, value_and_grad
from reference import printed as pr
from reference.attention import attention_matrix, softmax
from reference.backend import get_backend
from reference.compare import max_abs, rel_err
from reference.model import Layer
from reference.testing import random_problem


@check(id="cat.notation.maxnorm", label="Notation §3", name="||A||_inf is the entrywise max; ||AB|| <= k ||A|| ||B||",
       kind="DEF", expected="OK", spec=(1,), mutants=("induced_norm",))  # fmt: skip
def check_notation(ctx: Context) -> Result:
    r"""Notation of §3 (spec #1): $\|A\|_\infty = \max_{ij}|A_{ij}|$ (entrywise, not the induced norm), $\langle x, y
    \rangle = \sum_i x_i y_i$, and the consequence used throughout, $\|AB\|_\infty \le k \|A\|_\infty \|B\|_\infty$
    for an inner dimension k (tight on all-ones matrices). Mutant: the induced norm (max row sum) in its place."""
    rng = ctx.rng(101)
    cases = []
    for _ in range(3 if ctx.quick else 20):
        n, k, m = (int(v) for v in rng.integers(2, 9, 3))
        cases.append({"A": rng.uniform(-1, 1, (n, k)), "B": rng.uniform(-1, 1, (k, m)), "x": rng.uniform(-1, 1, k)})

    def claim(bk, A, B, x):
        k = A.shape[1]

        def norm(M):  # the norm under test; the mutant reads ||.||_inf as the induced norm
            return max(sum(abs(v) for v in row) for row in M) if ctx.mutated("induced_norm") else max_abs(M)

        loop = sum((A[0, j] * x[j] for j in range(k)), bk.scalar(0))
        ones = bk.ones((A.shape[0], k)) @ bk.ones((k, B.shape[1]))
        return [
            ("eq", "norm = max|A_ij|", norm(A), max(abs(v) for v in A.flat)),
            ("eq", "<x, y> = sum x_i y_i", A[0] @ x, loop),
            ("le", "||AB|| <= k ||A|| ||B||", norm(A @ B), k * norm(A) * norm(B)),
            ("eq", "equality on all-ones", norm(ones), bk.scalar(k)),
        ]

    return decide(claim, cases, ctx=ctx)


@check(id="ref.def1.1.softmax", label="Definition 1.1", name="Softmax: positive, rows sum to one, shift invariant",
       kind="DEF", expected="OK", spec=(2,), mutants=("column_normalised",))  # fmt: skip
def check_softmax(ctx: Context) -> Result:
    r"""Definition 1.1 (spec #2): $\mathrm{Softmax}(z) = \exp(z)/\langle \exp(z), 1\rangle$ row by row: positive
    entries, rows summing to one, invariant under $z \mapsto z + c 1^\top$; float64 against mpmath at 50 digits.

    Tolerances (u = 2^-53, k = 9 columns, logits |z| <= 30, shifts |c| <= 50): a row sum carries the rounding of
    k divisions, k exponentials and k - 1 additions, so |sum - 1| <= (2k + 1) u. The shift rounds each z + c
    (error <= u max|z + c|) and then subtracts the row max (again <= u max|z + c|); exp turns an absolute logit
    error e into a relative one, and the normalisation doubles it, so the change is <= (4 max|z + c| + 4k) u.
    float64 vs mpmath: the shifted logits z - max z are exact up to u |z - max z|, so the relative error is
    <= (2 max|z - max z| + 2k + 2) u. Mutant: normalising columns instead of rows."""
    rng = ctx.rng(1)
    z = rng.uniform(-30, 30, (6, 9))
    c = rng.uniform(-50, 50, (6, 1))
    k = z.shape[1]

    def sm(a, bk=None):
        args = () if bk is None else (bk,)
        return softmax(a.T, *args).T if ctx.mutated("column_normalised") else softmax(a, *args)

    y = sm(z)
    row = float(np.abs(y.sum(axis=1) - 1).max())
    shift = float(np.abs(sm(z + c) - y).max())
    bk = get_backend("mpmath", DPS)
    with bk.precision():
        e_mp = float(rel_err(y, sm(bk.asarray(z), bk)))
    tol_row = (2 * k + 1) * U64
    tol_shift = (4 * float(np.abs(z + c).max()) + 4 * k) * U64
    tol_mp = (2 * float((z.max(axis=1, keepdims=True) - z).max()) + 2 * k + 2) * U64
    ok = bool((y > 0).all()) and row <= tol_row and shift <= tol_shift and e_mp <= tol_mp
    fig = (f"|rowsum-1| {row:.1e} (<= {tol_row:.1e}), shift {shift:.1e} (<= {tol_shift:.1e}), "
           f"float64 vs mpmath {e_mp:.1e} (<= {tol_mp:.1e})")  # fmt: skip
    worst = max((row, tol_row), (shift, tol_shift), (e_mp, tol_mp), key=lambda p: p[0] / p[1])
    return Result(ok, fig, {"row": row, "shift": shift, "float64_vs_mpmath": e_mp},
                  observed=worst[0], bound=worst[1], precision="float64")  # fmt: skip


@check(id="ref.def1.2.attention", label="Definition 1.2", name="Self-attention f X W_V, f row-stochastic",
       kind="DEF", expected="OK", spec=(3, 25, 31, 33), uses=("ref.def1.1.softmax",),
       mutants=("W_transposed",))  # fmt: skip
def check_attention(ctx: Context) -> Result:
    r"""Definition 1.2 (spec #3, #25, #31, #33): $\mathrm{Attn}(X) = f(X)\, X W_V$ with $f = \mathrm{Softmax}(X W_Q
    W_K^\top X^\top / d)$ row-stochastic. The model's output against logits written out entry by entry (a loop over
    query and key tokens) and normalised row by row. Tolerance: the two routes differ in summation order only; the
    weights carry a relative error <= (2 max|S| + n + 4) u, the values h one of <= d u, so the outputs differ by
    <= 2 (2 max|S| + n + d + 4) u ||h|| (both routes). Mutant: the model with $W^\top$ (the other logit convention)."""
    rng = ctx.rng(2)
    n, d = 7, 4
    p = random_problem(rng, n, d, 1, with_g=False)
    L = p.layers[0]
    model = Layer(L.W_K, L.W_Q, L.W_V) if ctx.mutated("W_transposed") else L
    out = forward(p.X, [model]).output
    S = np.array([[p.X[i] @ L.W_Q @ L.W_K.T @ p.X[j] / d for j in range(n)] for i in range(n)])  # (n, n) loop
    h = p.X @ L.W_V  # (n, d)
    naive = softmax(S) @ h  # (n, d)
    f = attention_matrix(p.X, L.W_Q @ L.W_K.T, 1.0 / d)
    e = float(rel_err(out, naive))
    rows = float(np.abs(f.sum(axis=1) - 1).max())
    tol = 2 * (2 * float(np.abs(S).max()) + n + d + 4) * U64 * max_abs(h) / max_abs(naive)
    ok = e <= tol and rows <= (2 * n + 1) * U64
    return Result(ok, f"vs entrywise logits {e:.1e} (<= {tol:.1e}); |f 1 - 1| {rows:.1e}", {"tol": tol},
                  observed=e, bound=tol, precision="float64")  # fmt: skip


@check(id="ref.def1.3.model", label="Definition 1.3", name="Multi-layer model = composition g_m o Attn_m o ... o g_0",
       kind="DEF", expected="OK", spec=(4, 8), uses=("ref.def1.2.attention",),
       mutants=("activation_skipped",))  # fmt: skip
def check_model(ctx: Context) -> Result:
    r"""Definition 1.3 (spec #4, #8): $T_i = g_i(\mathrm{Attn}_i(T_{i-1}))$, the model is the composition. The trace
    of an m = 3 stack against one-layer calls recomposed by hand. Both routes run the same float64 operations in
    the same order, so they agree to the bit (tolerance 0 plus u per entry for safety). Mutant: a recomposition
    that skips the activation $\varphi$."""
    rng = ctx.rng(3)
    p = random_problem(rng, 6, 4, 3)
    tr = forward(p.X, p.layers, activation="tanh")
    T, errs = p.X, []
    for i, L in enumerate(p.layers):  # recompose layer by layer with one-layer calls
        a = forward(T, [Layer(L.W_Q, L.W_K, L.W_V)]).output
        errs.append(float(rel_err(tr.attn[i], a)))
        T = a @ L.W_g if ctx.mutated("activation_skipped") else np.tanh(a @ L.W_g)
        errs.append(float(rel_err(tr.T[i + 1], T)))
    e = max(errs)
    return Result(e <= U64, f"T_i and Attn_i vs recomposition {e:.1e} (m=3)", observed=e, bound=U64,
                  precision="float64")  # fmt: skip


@check(id="ref.C4.closed_form", label="Lemma C.4", name="Closed-form backward = chain rule (vs mpmath FD)",
       kind="ID", expected="OK", spec=(9, 27, 44, 51), uses=("ref.def1.3.model",),
       mutants=("beta_dropped",))  # fmt: skip
def check_closed_form(ctx: Context) -> Result:
    r"""Lemma 3.4 / C.4 (spec #9, #27, #44, #51): the closed-form backward (corrected five terms, weights) equals the
    chain rule; against mpmath central differences of the loss (forward model only). Mutant: the closed form of
    the model without the $1/d$ scale (β = 1) held against the differences of the real model."""
    rng = ctx.rng(4)
    if ctx.quick:
        cases = [dict(n=5, d=2, m=2), dict(n=5, d=4, m=1, beta=1.0, activation="gelu")]
    else:
        cases = [
            dict(n=n, d=d, m=m, beta=b) for n, d, m, b in itertools.product((5, 8), (2, 4), (1, 2, 3), (None, 1.0))
        ]
    return grid_result(ctx, cases, rng, {"beta_dropped": {"beta": 1.0}})


@check(id="sym.C4.unit_loss", label="Lemma 3.4", name="L = sum of unit losses: dL/dX = VJP(G)", kind="ID",
       expected="OK", spec=(6, 9, 27), mutants=("f_transposed",))  # fmt: skip
def unit_loss(ctx: Context) -> Result:
    r"""Lemma 3.4 (spec #6, #9, #27), SymPy: for $L = \sum$ of arbitrary unit losses of the output entries,
    $\partial L/\partial X$ is the closed-form VJP of $G = \partial L/\partial \mathrm{Attn}$, proved exactly."""
    return proved(ctx, ["unit_loss", "literal.unit_loss"], "proved (arbitrary unit losses)")


@check(id="sym.C4.literal_diff", label="Lemma C.4", name="sympy.diff of the literal map = hand chain rule",
       kind="ID", expected="OK", spec=(27, 44), mutants=("f_transposed",))  # fmt: skip
def literal(ctx: Context) -> Result:
    r"""Lemma C.4 (spec #27, #44), SymPy: ``sympy.diff`` of the literal attention map equals the hand chain rule."""
    return proved(ctx, ["literal.dX", "literal.causal.dX"])


@check(id="ref.def3.1.losses", label="Definition 3.1", name="Gradient depends on the loss only through dL/dT_m",
       kind="DEF", expected="OK", spec=(6,), uses=("ref.C4.closed_form",), mutants=("beta_dropped",))  # fmt: skip
def check_losses(ctx: Context) -> Result:
    r"""Definition 3.1 (spec #6): for the linear, half squared and cross-entropy losses the closed-form gradient
    (seeded by $\partial L/\partial T_m$) matches mpmath central differences of the loss. Mutant: dropped 1/d."""
    rng = ctx.rng(5)
    cases = [dict(n=5, d=2, m=2, loss=lo) for lo in ("linear", "half_squared", "cross_entropy")]
    return grid_result(ctx, cases, rng, {"beta_dropped": {"beta": 1.0}})


@check(id="ref.R3.2.cross_entropy", label="Remark 3.2", name="Cross-entropy head: dL/dT_m = (Y_pred - Y_gt) W_out^T",
       kind="DEF", expected="OK", spec=(7,), uses=("ref.def3.1.losses",), mutants=("sign_flipped",))  # fmt: skip
def check_cross_entropy(ctx: Context) -> Result:
    r"""Remark 3.2 (spec #7): the cross-entropy head's $\partial L/\partial T_m = (Y_{pred} - Y_{gt}) W_{out}^\top$
    against mpmath central differences of the loss. Mutant: the sign flipped, $(Y_{gt} - Y_{pred}) W_{out}^\top$."""
    rng = ctx.rng(6)
    p = random_problem(rng, 5, 3, 1, loss="cross_entropy", vocab=4)
    bk = get_backend("mpmath", DPS)
    with bk.precision():
        T = bk.asarray(rng.uniform(-1, 1, (5, 3)))
        _, g = p.loss(T, bk)
        g = -g if ctx.mutated("sign_flipped") else g
        e = float(rel_err(g, grad_fd(bk, lambda A: p.loss(A, bk)[0], T)))
    return Result(e < TOL_FD_MP, f"closed form vs mpmath FD {e:.1e}", observed=e, bound=TOL_FD_MP,
                  precision=f"mpmath dps={DPS}")  # fmt: skip


@check(id="ref.def3.3.intermediates", label="Definition 3.3", name="T_0 = X and T_i kept for the backward pass",
       kind="DEF", expected="OK", spec=(8,), uses=("ref.def1.3.model",), mutants=("trace_without_T0",))  # fmt: skip
def check_intermediates(ctx: Context) -> Result:
    r"""Definition 3.3 (spec #8): $T_0 = X$ and every $T_i$, $\mathrm{Attn}_i$ is kept for the backward pass. Mutant:
    a trace that keeps $T_1..T_m$ only (so its first entry is not X)."""
    rng = ctx.rng(7)
    p = random_problem(rng, 5, 2, 3)
    tr = forward(p.X, p.layers, residual=True, activation="tanh")
    Ts = tr.T[1:] + [tr.T[-1]] if ctx.mutated("trace_without_T0") else tr.T
    same0 = bool(np.array_equal(Ts[0], p.X))
    ok = same0 and len(Ts) == 4 and len(tr.attn) == 3 and all(t.shape == (5, 2) for t in Ts + tr.attn)
    return Result(bool(ok), f"T_0 = X: {same0}; {len(Ts)} T's, {len(tr.attn)} Attn's", precision="exact")


@check(id="ref.alg1.line19", label="Algorithm 1", name="Line 19 gw = X^T p1 X misses -X^T p2 X; corrected holds",
       kind="ALG", expected="WRONG-AS-PRINTED", spec=(12,), uses=("ref.F4.dW",), mutants=PRINTED_MUTANTS)  # fmt: skip
def check_alg1_line19(ctx: Context) -> Result:
    r"""Algorithm 1 line 19 (spec #12): $g_w = (X^\top U_3)(V_3^\top X) = X^\top p_1 X$ misses $-X^\top p_2 X$; the
    corrected $\beta X^\top (p_1 - p_2) X$ matches mpmath central differences."""
    return printed_vs_corrected(ctx, 13, pr.dW_as_printed_alg1_line19, "dW", "dW")


@check(id="sym.Alg1.line19", label="Algorithm 1", name="gw of line 19 misses -p2 (exact counterexample)",
       kind="ALG", expected="WRONG-AS-PRINTED", spec=(12,),
       mutants=("f_transposed", "printed_replaced_by_corrected"))  # fmt: skip
def line19(ctx: Context) -> Result:
    r"""Algorithm 1 line 19 (spec #12), SymPy: $X^\top P X$ proved; $X^\top p_1 X$ refuted exactly at (2,2)."""
    return proved(ctx, ["dW"], "X^T P X proved", [("gw", {})], "; X^T p1 X refuted exactly at (2,2)")


@check(id="cat.claim5.1.lowrank_forward", label="Claim §5.1", name="Attn(X) ~ U1 (V1^T V): reordering and its error",
       kind="INEQ", expected="OK", spec=(13,), uses=("cat.C13.lowrank_f", "cat.C14.lowrank_s"),
       mutants=("factors_swapped",))  # fmt: skip
def check_claim_5_1(ctx: Context) -> Result:
    r"""Claim of §5.1 (spec #13): with $f \approx U_1 V_1^\top$ and $V = X W_V$, $\mathrm{Attn}(X) \approx
    U_1 (V_1^\top V)$, computed right to left in $O(n k_1 d)$. [ID] $U_1(V_1^\top V) = (U_1 V_1^\top) V$;
    [INEQ] $\|U_1(V_1^\top V) - fV\|_\infty \le n\delta_f\|V\|_\infty$ and $\le \frac{2\hat\varepsilon}{1-\hat
    \varepsilon}\|V\|_\infty$. Mutant: the factors swapped, $V_1(U_1^\top V)$ (the transposed approximation)."""
    return decide(claim_lowrank_product(ctx, reorder=True), lr_inputs(ctx, 102, ("WV",)), ctx=ctx)


@check(id="cat.claimB5.prompt_tuning", label="Claim §B.5", name="Prompt-tuning gradient = prompt rows of dL/dX",
       kind="ID", expected="OK", spec=(22,), uses=("ref.C4.closed_form",), mutants=("last_rows",))  # fmt: skip
def check_prompt_tuning(ctx: Context) -> Result:
    r"""Claim of §B.5 (spec #22): for $X = [X_p; X_{in}]$, $\partial L/\partial X_p$ is the block of prompt rows of
    $\partial L/\partial X$ (so it costs the same). Closed form vs central differences taken in $X_p$ alone.
    Mutant: the last $n_p$ rows taken instead of the first."""
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
        rows = dX[-Xp.shape[0] :] if ctx.mutated("last_rows") else dX[: Xp.shape[0]]
        return [("fd", "prompt rows of dL/dX vs FD in X_p", rows, grad_fd(bk, loss_of, Xp))]

    return decide(claim, cases, ctx=ctx)
