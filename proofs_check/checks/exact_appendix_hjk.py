r"""Exact checks of Appendices H–K, SPEC §3 #17, #21, #80–#81, #85, #89–#99: the non-attention block (H.2), the
causal mask (I.5, I.7), the residual connection (J.3), multi-head attention (K.2), numeric and SymPy side by side,
and the row-blocked exact gradient (spec §2.2).

Numeric route: the reference's closed form (float64 and mpmath) against mpmath central differences of the loss;
each check's mutant differentiates a wrong model in the closed form (the mask, the residual, the heads or φ'
dropped) and must be rejected by the differences of the right one.
"""

from __future__ import annotations

import numpy as np

from proofs_check.checks.exact_common import grid_result
from proofs_check.checks.exact_symbolic import proved
from proofs_check.decide import COND_ID, U64
from proofs_check.registry import Context, Result, check
from reference import backward, forward
from reference.attention import attention_matrix
from reference.blocked import layer_gradient_blocked
from reference.compare import rel_err
from reference.model import Layer


@check(id="ref.H2.G_i", label="Lemma H.2", name="G_i = (gT_i ⊙ phi'(Attn_i W_g)) W_g^T, dL/dW_g",
       kind="ID", expected="OK", spec=(81, 80, 17), uses=("ref.C4.closed_form",),
       mutants=("phi_prime_dropped",))  # fmt: skip
def check_H2(ctx: Context) -> Result:
    r"""Lemma H.2 (spec #80, #81, #17): $G_i = (\partial L/\partial T_i \odot \varphi'(\mathrm{Attn}_i W_g)) W_g^\top$
    and $\partial L/\partial W_g$, for tanh, gelu and softplus, against mpmath central differences. Mutant: the
    closed form of the model without φ (so φ' = 1) held against the differences of the model with φ."""
    rng = ctx.rng(15)
    cases = [dict(n=5, d=2, m=2, activation=a) for a in ("tanh", "gelu", "softplus")]
    return grid_result(ctx, cases, rng, {"phi_prime_dropped": {"activation": "identity"}})


@check(id="sym.H2.G_i", label="Lemma H.2", name="G_i = (gT o phi'(Attn W_g)) W_g^T, dL/dW_g, layer",
       kind="ID", expected="OK", spec=(80, 81), mutants=("f_transposed",))  # fmt: skip
def g_block(ctx: Context) -> Result:
    r"""Lemma H.2 (spec #80, #81), SymPy: $G_i$, $\partial L/\partial W_g$ and a whole layer proved for any φ.
    Mutant: $\varphi'_{ji}$ for $\varphi'_{ij}$ (and $f^\top$ for f)."""
    return proved(ctx, ["G_i", "dW_g", "layer"], "proved (any phi)")


@check(id="ref.I5.causal", label="Definition I.5", name="Causal f^M and the corrected masked gradients (I.7, I.8)",
       kind="ID", expected="OK", spec=(85, 89, 21), uses=("ref.C4.closed_form",),
       mutants=("mask_dropped",))  # fmt: skip
def check_causal(ctx: Context) -> Result:
    r"""Definition I.5 and Lemmas I.7, I.8 (spec #85, #89, #21): $f^M = D^{-1}(A \odot M)$ is lower triangular (the
    diagonal included) and row-stochastic (|row sum - 1| <= (2n + 1) u, as in Def. 1.1), and the corrected masked
    gradients match mpmath central differences. Mutant: the unmasked closed form against the masked model."""
    rng = ctx.rng(16)
    X = rng.uniform(-1, 1, (6, 3))
    f = attention_matrix(X, rng.uniform(-1, 1, (3, 3)), 1.0, causal=True)
    tri = float(np.abs(np.triu(f, 1)).max())
    rows = float(np.abs(f.sum(axis=1) - 1).max())
    cases = [dict(n=5, d=2, m=2, causal=True), dict(n=6, d=2, m=1, causal=True, beta=1.0)]
    res = grid_result(ctx, cases, rng, {"mask_dropped": {"causal": False}})
    res.ok = res.ok and tri == 0 and rows <= (2 * 6 + 1) * U64
    res.figure = f"upper triangle {tri:g}, |rowsum-1| {rows:.0e}; " + res.figure
    return res


@check(id="sym.I7.causal", label="Lemma I.7", name="causal five terms, dX, dW, dW_V (f -> f^M)", kind="ID",
       expected="WRONG-AS-PRINTED", spec=(89, 91, 92), inherits=(43,),
       mutants=("f_transposed", "printed_replaced_by_corrected"))  # fmt: skip
def causal(ctx: Context) -> Result:
    r"""Lemma I.7 (spec #89, #91, #92), SymPy: the causal five terms, dX, dW and dW_V (f replaced by $f^M$) proved;
    the printed D8, D6, D7 and $g_v$ refuted exactly at (2, 2) (the transposition error inherited from #43)."""
    names = ["causal.D8", "causal.D4", "causal.D2", "causal.D7", "causal.D6", "causal.dX", "causal.dW",
             "causal.dW_V"]  # fmt: skip
    return proved(ctx, names, "corrected proved", [(k, {"causal": True}) for k in ("D8", "D6", "D7", "dW_V")],
                  "; printed D8, D6, D7, gv refuted exactly at (2,2)")  # fmt: skip


@check(id="ref.J3.residual", label="Lemma J.3", name="Residual: dL/dX_R = dL/dY_R + VJP_H(dL/dY_R)",
       kind="ID", expected="OK", spec=(93, 94, 95, 96), uses=("ref.C4.closed_form", "ref.H2.G_i"),
       mutants=("residual_dropped",))  # fmt: skip
def check_residual(ctx: Context) -> Result:
    r"""Lemma J.3 (spec #93–#96): around a residual connection $Y = X + H(X)$, $\partial L/\partial X = \partial L/
    \partial Y + \mathrm{VJP}_H(\partial L/\partial Y)$; the residual stack against mpmath central differences.
    Mutant: the closed form without the residual (the identity path dropped)."""
    rng = ctx.rng(17)
    cases = [dict(n=5, d=2, m=2, residual=True, activation="tanh"), dict(n=5, d=2, m=3, residual=True)]
    return grid_result(ctx, cases, rng, {"residual_dropped": {"residual": False}})


@check(id="sym.J3.residual", label="Lemma J.3", name="residual rule, around Attn and around g",
       kind="ID", expected="OK", spec=(93, 94, 95), mutants=("f_transposed",))  # fmt: skip
def residual(ctx: Context) -> Result:
    r"""Lemma J.3 (spec #93–#95), SymPy: the residual rule around Attn and around a whole layer, for any φ."""
    return proved(ctx, ["residual.attn", "residual.layer"], "proved (any phi)")


@check(id="ref.K2.multihead", label="Lemma K.2", name="Multi-head (Def. K.1): per-head corrected gradients summed",
       kind="ID", expected="OK", spec=(98, 99), uses=("ref.C4.closed_form",),
       mutants=("full_width_scale",))  # fmt: skip
def check_multihead(ctx: Context) -> Result:
    r"""Definition K.1 and Lemma K.2 (spec #98, #99): multi-head gradients are the per-head corrected gradients
    summed (per-head β = 1/d_h); against mpmath central differences. Mutant: every head scaled by the full width,
    β = 1/d instead of 1/d_h."""
    rng = ctx.rng(18)
    cases = [dict(n=5, d=4, m=1, heads=2), dict(n=5, d=4, m=2, heads=2, causal=True, residual=True)]
    return grid_result(ctx, cases, rng, {"full_width_scale": {"beta": 0.25}})  # d = 4


@check(id="sym.K2.multihead", label="Lemma K.2", name="multi-head dX, dW_Q, dW_K, dW_V (per-head beta)",
       kind="ID", expected="OK", spec=(98, 99), mutants=("f_transposed",))  # fmt: skip
def multihead(ctx: Context) -> Result:
    r"""Lemma K.2 (spec #98, #99), SymPy: multi-head dX, dW_Q, dW_K, dW_V proved with a β per head."""
    return proved(ctx, ["mh.dX", "mh.dW_Q", "mh.dW_K", "mh.dW_V"])


@check(id="ref.blocked", label="spec §2.2 (blocked)", name="Row-blocked exact layer gradient = dense exact gradient",
       kind="ID", expected="OK", spec=(), uses=("ref.C4.closed_form",), mutants=("mask_dropped",))  # fmt: skip
def check_blocked(ctx: Context) -> Result:
    r"""Spec §2.2: the row-blocked exact layer gradient (memory O(block·n)) equals the dense one, with and without the
    causal mask (n = 203 is not a multiple of the block 64). Tolerance: the same sums in another order,
    $2^{20}u$ (:data:`proofs_check.decide.COND_ID`). Mutant: the blocked route without the mask against the dense
    masked one."""
    rng = ctx.rng(19)
    n, d = 203, 4
    errs = []
    for causal in (False, True):
        X = rng.uniform(-1, 1, (n, d))
        Ws = [rng.uniform(-1, 1, (d, d)) for _ in range(3)]
        G = rng.uniform(-1, 1, (n, d))
        tr = forward(X, [Layer(*Ws)], causal=causal)
        g = backward(tr, G).layers[0]
        blocked_causal = False if ctx.mutated("mask_dropped") else causal
        s, dX, dW, dWQ, dWK, dWV = layer_gradient_blocked(X, *Ws, G, causal=blocked_causal, block=64)
        dense = (tr.output, backward(tr, G).dX, g.dW, g.dW_Q, g.dW_K, g.dW_V)
        errs += [float(rel_err(a, b)) for a, b in zip((s, dX, dW, dWQ, dWK, dWV), dense, strict=True)]
    e, tol = max(errs), COND_ID * U64
    return Result(e <= tol, f"max rel diff {e:.1e} (n={n}, block=64, causal on/off)", observed=e, bound=tol,
                  precision="float64")  # fmt: skip
