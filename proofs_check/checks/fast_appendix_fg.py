r"""Appendices F and G of arXiv:2408.13233v2 on the fast path: the fast weight gradients.

* Lemma F.5 (#75): $g_w = \beta[(X^\top U_3)(V_3^\top X) - (X^\top U_4)(V_4^\top X)]$ approximates dL/dW within
  $\beta n^2 \|X\|_\infty^2 (\|\tilde p_1 - p_1\|_\infty + \|\tilde p_2 - p_2\|_\infty)$ (Algorithm 1 line 19 drops
  the $p_2$ part).
* Lemma G.4 (#79): printed $g_v = (X^\top U_1)(V_1^\top G) = X^\top \tilde f G$ approximates the printed
  $X^\top f G$, which is not dL/dW_V (Lemma G.3, #78); the corrected $(X^\top V_1)(U_1^\top G)$ is within
  $n^2\|X\|_\infty\delta_f\|G\|_\infty$ of $X^\top f^\top G$.

Shape legend: n tokens, d width, r rank.
"""

from __future__ import annotations

from dataclasses import replace

from proofs_check.checks.fast_common import fast_backward, ineq_result, mx, one_head, within
from proofs_check.decide import WRONG
from proofs_check.registry import Context, Result, check
from reference import printed as pr
from reference.attention import head_vjp, logit_gradient
from reference.compare import rel_err

ROUND_N2 = 1e-12  # float64 rounding of the fast and exact d x d sums of n^2 O(1) terms: ~n^2 u = 1e-12 at n = 80


@check(id="fast.F5.dW", label="Lemma F.5",
       name="Fast dL/dW = beta[(X^T U3)(V3^T X) - (X^T U4)(V4^T X)] within beta n^2 |X|^2 (|dp1| + |dp2|)",
       kind="INEQ", expected="OK", spec=(75,), uses=("fast.C15.p1", "fast.C16.p2"),
       mutants=("p2 part dropped",))  # fmt: skip
def check_F5(ctx: Context) -> Result:
    r"""Lemma F.5: the shipped fast $g_w$ against the reference dL/dW and the bound of spec §2.4.

    Mutant: Algorithm 1 line 19, $g_w = \beta (X^\top U_3)(V_3^\top X)$ without the $p_2$ part."""
    L = one_head(ctx.rng(131), 80, 4, eps=1e-6)
    c, X = L["c"], L["X"]
    fast = fast_backward(L, eps=1e-6).dW
    if ctx.mutated("p2 part dropped"):  # Algorithm 1 line 19 with f~: the p1 factors only
        fast = L["beta"] * pr.dW_as_printed_alg1_line19(L["G"], replace(c, f=L["ft"]))  # (d, d)
    _, p1, p2 = logit_gradient(L["G"], c.f, c.h, c.s)  # (n, n) each, exact
    _, p1t, p2t = logit_gradient(L["G"], L["ft"], c.h, c.s)  # with f~ (exact K)
    exact = head_vjp(L["G"], c).dW
    n = X.shape[0]
    bound = L["beta"] * n * n * mx(X) ** 2 * (mx(p1t - p1) + mx(p2t - p2)) + ROUND_N2
    err = mx(fast - exact)
    return ineq_result(err, bound, f"|gw~ - gw| / bound(F.5) = {err / bound:.1e}", {"err": err, "bound": bound})


@check(id="fast.G4.dWV", label="Lemma G.4",
       name="Fast dL/dW_V: printed (X^T U1)(V1^T G) fails; corrected (X^T V1)(U1^T G) within n^2 |X| delta_f |G|",
       kind="INEQ", expected="WRONG-AS-PRINTED", spec=(79, 78), uses=("fast.C13.relative_error",),
       mutants=("corrected for printed",))  # fmt: skip
def check_G4(ctx: Context) -> Result:
    r"""Lemma G.4: its conclusion is about dL/dW_V, so the printed $X^\top \tilde f G$ is wrong as printed (it
    approximates $X^\top f G$ of G.3); the corrected $(X^\top V_1)(U_1^\top G)$ holds the bound.

    Mutant: the corrected order put in place of the printed one (the check must then fail to find the error)."""
    L = one_head(ctx.rng(132), 80, 4, eps=1e-6)
    X, G, c = L["X"], L["G"], L["c"]
    exact = head_vjp(G, c).dW_V
    corrected = fast_backward(L, eps=1e-6).dW_V  # (X^T V1)(U1^T G) = X^T f~^T G, the shipped fast backward
    printed = pr.dW_V_as_printed(G, replace(c, f=L["ft"]))  # G.4 as printed: X^T f~ G (G.3's form with f~)
    if ctx.mutated("corrected for printed"):
        printed = corrected
    wrong = float(rel_err(printed, exact))
    n = X.shape[0]
    bound = n * n * mx(X) * mx(L["ft"] - c.f) * mx(G) + ROUND_N2
    err = mx(corrected - exact)
    ok = wrong > WRONG and within(err, bound)
    return Result(
        ok,
        f"printed off by {wrong:.2f} (rel); corrected err/bound(G.4) = {err / bound:.1e}",
        {"printed_rel_err": wrong, "err": err, "bound": bound},
        observed=wrong,
        bound=WRONG,
        precision="float64",
        counterexample={"n": n, "d": 4, "seed": ctx.seed, "salt": 132},
    )
