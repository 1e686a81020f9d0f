r"""Appendix I of arXiv:2408.13233v2 (causal mask) on the fast path, and Lemma I.1's degree formula.

* Lemma I.1 (#84): degree $g = O(\max\{\log(1/\varepsilon)/\log(\log(1/\varepsilon)/R), R^2\})$; with entries
  bounded by R and the 1/d scale the logits lie in $[-R^2, R^2]$, so the inner log should read $R^2$ (AMBIG, W14).
* Lemma I.3 / Algorithm 2 (#86, #87): $(M \odot U_0V_0^\top) v$ by prefix sums, $c_j = c_{j-1} + V_0[j]^\top v_j$,
  $Y_j = \langle U_0[j], c_j\rangle$; the transposed product by suffix sums (spec §2.7).
* Lemma I.4 (#88): $(M \odot U_0V_0^\top) H$ in $n^{1+o(1)}$ (counted work; the dense masked product is the control).
* Lemma I.6 (#90): the Part 2 identity $((\tilde D^{-1}(M\odot U_0V_0^\top))\odot(UV^\top))H =
  (M \odot U_M V_M^\top) H$; no error analysis (GAP): the unmasked constant $c_f \le e^{2\bar R}$ fails under M.
* Lemmas I.7, I.8 (#91, #92): the masked dot-product and Hadamard terms; printed ones carry $f^M$ for $f^{M\top}$.

Shape legend: n tokens, d width, k rank, w width of H.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from fastpath.causal import causal_matmul, causal_mv, causal_mv_T
from fastpath.compare import compare, random_layers
from fastpath.features import lift, row_kron
from fastpath.lowrank import logit_range
from fastpath.poly import certified_poly
from proofs_check.checks.fast_common import TOL_ID, counted_result, exp, rho, series
from proofs_check.decide import WRONG
from proofs_check.experiments.scaling import decide
from proofs_check.registry import Context, Result, check
from reference import printed as pr
from reference.attention import head_forward, head_vjp
from reference.compare import rel_err


@check(id="fast.I1.degree_formula", label="Lemma I.1",
       name="Degree vs log(1/eps)/log(log(1/eps)/R) or ...R^2: the R^2 reading fits the certified degrees better",
       kind="ASYM", expected="AMBIG", spec=(84,), mutants=("logits in [-R, R]",))  # fmt: skip
def check_I1_degree(ctx: Context) -> Result:
    r"""Lemma I.1: certified degrees (fastpath.poly) on $[-R^2, R^2]$, fitted by $a \cdot F$ for both readings of
    the inner log; the $R^2$ reading must fit better. Mutant: the degrees certified on $[-R, R]$ instead (the
    range the printed formula would describe), where the reading with R must no longer lose."""
    Rs = (0.1, 0.25, 0.5, 0.75, 1.0)  # log(1/eps) dominates the max here, where the two readings differ
    epss = (1e-4, 1e-8, 1e-12) if ctx.quick else (1e-4, 1e-6, 1e-8, 1e-10, 1e-12)
    span = (lambda Re: Re) if ctx.mutated("logits in [-R, R]") else (lambda Re: Re * Re)
    pts = [(Re, eps, certified_poly(span(Re), eps).degree) for Re, eps in itertools.product(Rs, epss)]

    def formula(Re, eps, p):
        lg = math.log(1 / eps)
        return max(lg / math.log(max(math.e, lg / Re**p)), Re * Re)

    res = {}
    for p in (1, 2):
        x = np.array([formula(Re, eps, p) for Re, eps, _ in pts])
        y = np.array([g for *_, g in pts], dtype=float)
        a = float(x @ y / (x @ x))  # least-squares scale: g ~ a * formula
        res[p] = float(np.sqrt(((y - a * x) ** 2).mean()))
    fig = f"rms misfit of certified degrees: printed (R) {res[1]:.2f}, rebuilt (R^2) {res[2]:.2f}"
    return Result(
        res[2] < res[1],
        fig,
        {"points": pts, "rms_R": res[1], "rms_R2": res[2]},
        observed=res[2],
        bound=res[1],
        precision="certified degrees (mpmath)",
    )


@check(id="fast.I3.prefix_suffix", label="Lemma I.3",
       name="Algorithm 2 prefix sums and the suffix-sum variant = dense masked products", kind="ID",
       expected="OK", spec=(86, 87, 88), mutants=("prefix sums for the transpose",))  # fmt: skip
def check_I3(ctx: Context) -> Result:
    r"""Lemma I.3: the shipped prefix/suffix sums against the dense masked products (TOL_ID). Mutant: the prefix sum
    used for the transposed product $(M \odot U V^\top)^\top v$ (the suffix sum forgotten)."""
    rng = ctx.rng(133)
    n, k, w = 70, 5, 3
    U, V, v, H = rng.normal(size=(n, k)), rng.normal(size=(n, k)), rng.normal(size=n), rng.normal(size=(n, w))
    M = np.tril(U @ V.T)
    mv_T = causal_mv if ctx.mutated("prefix sums for the transpose") else causal_mv_T
    errs = {
        "prefix_mv": float(rel_err(causal_mv(U, V, v), M @ v)),
        "suffix_mv": float(rel_err(mv_T(U, V, v), M.T @ v)),
        "blocked_prefix": float(rel_err(causal_matmul(U, V, H, block=16), M @ H)),
        "blocked_suffix": float(rel_err(causal_matmul(U, V, H, block=16, transpose=True), M.T @ H)),
    }
    worst = max(errs.values())
    return Result(
        worst < TOL_ID,
        f"max rel err {worst:.1e} over prefix/suffix, vector/blocked",
        errs,
        observed=worst,
        bound=TOL_ID,
        precision="float64",
    )


def algorithm2_literal(U0: np.ndarray, V0: np.ndarray, v: np.ndarray, strict: bool = False) -> np.ndarray:
    r"""Algorithm 2 (CausalMask) line by line: $c_j = c_{j-1} + V_0[j]^\top v_j$, $Y_j = \langle U_0[j], c_j\rangle$.

    ``strict`` reads $c_{j-1}$ in line 7 (a mask without the diagonal: the off-by-one the check must reject)."""
    n, k = U0.shape
    c = np.zeros(k)
    cs = []
    for j in range(n):  # lines 2-5: prefix sums
        c = c + V0[j] * v[j]
        cs.append(c)
    Y, prev = np.empty(n), np.zeros(k)
    for j in range(n):  # lines 6-8
        Y[j] = U0[j] @ (prev if strict else cs[j])
        prev = cs[j]
    return Y


@check(id="cat.alg2.causal_mask", label="Algorithm 2",
       name="CausalMask(U0, V0, v) = (M . U0 V0^T) v by prefix sums", kind="ALG", expected="OK",
       spec=(87,), uses=("ref.I5.causal",), mutants=("diagonal left out of the mask",))  # fmt: skip
def check_algorithm_2(ctx: Context) -> Result:
    r"""Algorithm 2, spec #87: the literal listing against the dense masked product (the mask includes the
    diagonal, spec §0.2). Mutant: line 7 reading $c_{j-1}$, a mask without the diagonal."""
    rng = ctx.rng(8105)
    n, k = 50, 4
    U0, V0, v = rng.uniform(-1, 1, (n, k)), rng.uniform(-1, 1, (n, k)), rng.uniform(-1, 1, n)
    e = float(
        rel_err(algorithm2_literal(U0, V0, v, ctx.mutated("diagonal left out of the mask")), np.tril(U0 @ V0.T) @ v)
    )
    return Result(
        e < TOL_ID,
        f"literal listing vs dense {e:.1e} (n={n}, k={k})",
        {"literal": e},
        observed=e,
        bound=TOL_ID,
        precision="float64",
    )


@check(id="cat.I4.masked_thin", label="Lemma I.4",
       name="(M . U0 V0^T) H by prefix sums: exact, counted work linear in n", kind="ID", expected="OK",
       spec=(88,), uses=("cat.alg2.causal_mask",), mutants=("quadratic algorithm",))  # fmt: skip
def check_lemma_I4(ctx: Context) -> Result:
    r"""Lemma I.4: the identity against dense (TOL_ID), and the counted multiply-adds of the shipped causal fast path
    (prefix and suffix sums) against n, with the dense masked product as the control the rule rejects. Wall-clock
    slopes are reported beside it. Mutant: the dense masked product as the candidate."""
    sc = exp(ctx, "scaling")
    e = sc["checks"]["prefix_vs_dense_rel"]
    w, ctrl = sc["work"]["fast_causal"], sc["work"]["naive"]
    cand = ctrl if ctx.mutated("quadratic algorithm") else w
    dec = decide(cand["ns"], cand["madds"], ctrl["ns"], ctrl["madds"])
    t = sc["timing"]["fits"]
    fig = (
        f"vs dense {e:.1e}; counted work exponent {dec['exponent']:.2f} (dense control {dec['control_exponent']:.2f},"
        f" rule <= {dec['exponent_ok']}); wall-clock trend prefix {t['causal_prefix']['slope']:.2f} "
        f"[{t['causal_prefix']['lo']:.2f}, {t['causal_prefix']['hi']:.2f}]"
    )
    ser = series(
        {"fast causal": (w["ns"], w["madds"]), "dense": (ctrl["ns"], ctrl["madds"])},
        "n",
        "counted multiply-adds",
        logx=True,
    )
    return counted_result(e < TOL_ID and dec["ok"], fig, {"error": e, "rule": dec, "timing": t, "series": ser}, dec)


@check(id="fast.I6.masked_primitives", label="Lemma I.6",
       name="Masked primitives: Part 2 identity holds; no error analysis, and the unmasked column-sum constant "
       "fails under the mask",
       kind="INEQ", expected="GAP", spec=(90,), uses=("fast.I3.prefix_suffix", "fast.C13.relative_error"),
       mutants=("mask left out",))  # fmt: skip
def check_I6(ctx: Context) -> Result:
    r"""Lemma I.6: (a) the Part 2 identity with $U_M = (\tilde D^{-1}U_0) \oslash U$, $V_M = V_0 \oslash V$ (TOL_ID);
    (b) $\tilde f^M$ within the relative bound $2\varepsilon/(1-\varepsilon)$ (not in the paper); (c) the gap, measured:
    the error analysis the unmasked lemmas reuse bounds column sums of f by $c_f \le e^{2\bar R}$, but the masked
    $f^M$ has column sums up to $e^{2\bar R}(1 + \ln n)$ (spec §0.5 item 2); the largest measured column sum exceeds
    $e^{2\bar R}$. Mutant: the mask left out of (c) (the unmasked f, where $c_f \le e^{2\bar R}$ holds)."""
    rng = ctx.rng(134)
    n, d, k = 60, 3, 2
    X = rng.uniform(-1, 1, (n, d))
    WQ, WK = rng.uniform(-0.6, 0.6, (d, d)), rng.uniform(-0.6, 0.6, (d, d))
    Q, K = X @ WQ, X @ WK
    beta = 1 / d
    pc = certified_poly(logit_range(Q, K, beta), 1e-8)
    U0, V0 = lift(Q, K, pc.coeffs, beta)  # (n, r) each
    M = np.tril(np.ones((n, n)))
    Dm = causal_mv(U0, V0, np.ones(n))  # (n,)  masked normalizer via Lemma I.3
    U, V = rng.normal(size=(n, k)), rng.normal(size=(n, k))
    ftM = (M * (U0 @ V0.T)) / Dm[:, None]  # (n, n)  f~^M, dense for the check
    ident = float(rel_err(M * (row_kron(U0 / Dm[:, None], U) @ row_kron(V0, V).T), ftM * (U @ V.T)))
    f = head_forward(X, WQ @ WK.T, np.eye(d), beta, True).f  # exact masked f^M (reference)
    mask = M > 0
    rel = float((np.abs(ftM - f)[mask] / f[mask]).max())
    bound = rho(pc.err) + 1e-13
    fc = head_forward(X, WQ @ WK.T, np.eye(d), beta, not ctx.mutated("mask left out")).f
    Rbar = float(np.abs(beta * Q @ K.T).max())
    colsum = float(fc.sum(axis=0).max())
    gap = colsum > math.exp(2 * Rbar)
    ok = ident < TOL_ID and rel <= bound and gap
    fig = (
        f"Part 2 identity {ident:.1e}; rel err(f~^M)/(2eps/(1-eps)) = {rel / bound:.2f}; masked column sum "
        f"{colsum:.2f} > e^(2 Rbar) = {math.exp(2 * Rbar):.2f} (1 + ln n = {1 + math.log(n):.2f})"
    )
    return Result(
        ok,
        fig,
        {"identity": ident, "rel_err": rel, "bound": bound, "column_sum": colsum, "Rbar": Rbar},
        observed=colsum,
        bound=math.exp(2 * Rbar),
        precision="float64",
        counterexample={"n": n, "d": d, "seed": ctx.seed, "salt": 134} if gap else None,
    )


def _masked_printed_vs_fast(ctx: Context, salt: int, printed_terms: dict):
    """Causal layer at beta = 1: printed masked terms vs exact, and the corrected fast terms vs their certificate."""
    rng = ctx.rng(salt)
    n, d = 90, 4
    X = rng.uniform(-1, 1, (n, d))
    layers = random_layers(rng, d, 1, with_g=False)
    G = rng.uniform(-1, 1, (n, d))
    L = layers[0]
    c = head_forward(X, L.W_Q @ L.W_K.T, L.W_V, 1.0, True)
    ex = head_vjp(G, c)
    corrected = {
        "D6": ex.terms["D6"],
        "D8": ex.terms["D8"],
        "D2": ex.terms["D2"],
        "D7": ex.terms["D7"],
        "D4": ex.terms["D4"],
        "gv": ex.dW_V,
    }
    use_corrected = ctx.mutated("corrected for printed")
    wrong = {
        k: float(rel_err(corrected[k] if use_corrected else fn(G, c), corrected[k])) for k, fn in printed_terms.items()
    }
    cmp = compare(X, layers, G, eps=1e-8, beta=1.0, causal=True, block=16, method="lowrank")
    cex = {"n": n, "d": d, "beta": 1.0, "causal": True, "seed": ctx.seed, "salt": salt}
    return wrong, cmp, cex


def _masked_result(wrong, cmp, keys, cex) -> Result:
    worst = max(cmp.ratio[k] for k in keys)
    ok = min(wrong.values()) > WRONG and not cmp.violations
    fig = f"printed off by >= {min(wrong.values()):.2f} (rel); corrected fast: observed/certificate {worst:.1e}"
    return Result(
        ok,
        fig,
        {"printed_rel_err": wrong, "ratios": {k: cmp.ratio[k] for k in keys}},
        observed=min(wrong.values()),
        bound=WRONG,
        precision="float64",
        counterexample=cex,
    )


@check(id="fast.I7.masked_dot", label="Lemma I.7",
       name="Causal dot-product terms: printed D6, D8, gv (f^M for f^M^T) fail; corrected suffix-sum fast terms "
       "within certificate",
       kind="ALG", expected="WRONG-AS-PRINTED", spec=(91,), uses=("fast.I6.masked_primitives",),
       mutants=("corrected for printed",), inherits=(43, 78))  # fmt: skip
def check_I7(ctx: Context) -> Result:
    r"""Lemma I.7: the printed masked D6, D8, D2 and $g_v$ against the exact masked gradient, and the shipped fast
    causal terms against their certificates. Mutant: the corrected forms in place of the printed ones."""
    wrong, cmp, cex = _masked_printed_vs_fast(
        ctx, 135, {"D6": pr.D6_as_printed, "D8": pr.D8_as_printed, "D2": pr.D2_as_printed, "gv": pr.dW_V_as_printed}
    )
    return _masked_result(wrong, cmp, ("layers[0].D6", "layers[0].D8", "layers[0].D2", "layers[0].dW_V"), cex)


@check(id="fast.I8.masked_hadamard", label="Lemma I.8",
       name="Causal Hadamard terms: printed D7, D4 fail; corrected fast D7, D4 and gw (Part 3) within certificate",
       kind="ALG", expected="WRONG-AS-PRINTED", spec=(92,), uses=("fast.I6.masked_primitives",),
       mutants=("corrected for printed",), inherits=(43,))  # fmt: skip
def check_I8(ctx: Context) -> Result:
    r"""Lemma I.8: the printed masked D7, D4 against the exact ones; the shipped fast D7, D4, $g_w$ within their
    certificates. Mutant: the corrected forms in place of the printed ones."""
    wrong, cmp, cex = _masked_printed_vs_fast(ctx, 136, {"D7": pr.D7_as_printed, "D4": pr.D4_as_printed})
    return _masked_result(wrong, cmp, ("layers[0].D7", "layers[0].D4", "layers[0].dW"), cex)
