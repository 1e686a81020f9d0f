r"""Growth of the certificate across layers: how much is the layer's |J| (unavoidable), how much our slack (issue 10).

Paper: Lemma H.4 (spec §2.10) refined entrywise (:mod:`fastpath.aposteriori`), Lemmas H.2, J.3. The backward of
layer i maps $\partial L/\partial T_i \mapsto \partial L/\partial T_{i-1} = J_i^\top\, \partial L/\partial T_i$, with
$J_i = \partial T_i/\partial T_{i-1}$ (nd × nd). An upstream error known only through $|e| \le E_i$ entrywise can reach
$\max_{|e| \le E_i} |J_i^\top e| = |J_i|^\top E_i$ at every entry (take e = E ⊙ sign of that row of $J_i^\top$): no
entrywise certificate can give the gradient below a layer less than $|J_i|^\top E_i$, whatever else it knows about
that layer. Our propagated bound $E_{i-1}$ (``backward(...).bound.dT[i-1]``) covers this worst case plus the
layer's own kernel and forward errors, so $E_{i-1} \ge |J_i|^\top E_i$ must hold entrywise (a violation is a bug).

Measured per layer (data): the growth of the worst case, median $|J_i|^\top E_i$ / median $E_i$ (the part of the
per-layer loss that is $|J|$ itself), the slack $E_{i-1} / |J_i|^\top E_i$ (ours), and the growth of the actual error,
median $|\tilde g_{i-1} - g_{i-1}|$ / median $|\tilde g_i - g_i|$ (it stays near 1: the error's signs do not align with
$J$). The exact $J_i$ is the float64 reference's, one backward per unit upstream vector (nd of them), at the exact
input $T_{i-1}$; a failing row is re-decided with the 50-digit mpmath reference.

Shape legend: n tokens, d width, m layers.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

import fastpath
import reference
from fastpath.compare import random_layers
from proofs_check.decide import decide
from proofs_check.registry import Context, Result, check

D = 4


def abs_jacobian_t(T, L, E, cfg, bk=None) -> np.ndarray:
    r"""$|J|^\top E$ for the layer map $T \mapsto T'$ of ``L`` at T: (n, d); float64, or mpmath at ``bk.dps``."""
    n, d = T.shape
    kw = {} if bk is None else dict(backend="mpmath", dps=bk.dps)
    rt = reference.forward(T, [L], **cfg, **kw)
    out = np.zeros((n, d)) if bk is None else bk.zeros((n, d))
    for a, k in itertools.product(range(n), range(d)):
        if E[a, k] != 0:
            u = np.zeros((n, d))
            u[a, k] = 1.0
            row = np.abs(np.asarray(reference.backward(rt, u).dX))  # (n, d) = |J^T e_ak|, row (a, k) of |J|
            out = out + row * (E[a, k] if bk is None else bk.scalar(float(E[a, k])))
    return out


@dataclasses.dataclass
class Stack:
    """A seeded residual tanh stack, its fast trace and gradients, and the exact layer inputs and gradients."""

    cfg: dict
    layers: list
    Ts: list  # exact T_0 ... T_m, (n, d) each
    g_exact: list  # exact dL/dT_0 ... dL/dT_m
    g_fast: list
    bound: list  # our bounds of |g_fast - g_exact|, per T_i


def stack(rng, n: int, m: int, causal: bool, heads: int, eps: float) -> Stack:
    X, layers, dL = rng.uniform(-1, 1, (n, D)), random_layers(rng, D, m), rng.uniform(-1, 1, (n, D))
    cfg = dict(causal=causal, heads=heads, residual=True, activation="tanh")
    tr = fastpath.forward(X, layers, eps=eps, method="lowrank", allow_vacuous=True, block=8 if causal else None,
                          **cfg)  # fmt: skip
    g = fastpath.backward(tr, dL)
    Ts = [X]
    for L in layers:
        Ts.append(reference.forward(Ts[-1], [L], **cfg).output)
    ge = [None] * m + [dL]
    for i in reversed(range(m)):
        ge[i] = reference.backward(reference.forward(Ts[i], [layers[i]], **cfg), ge[i + 1]).dX
    return Stack(cfg, layers, Ts, ge, list(g.dT), list(g.bound.dT))


def steps(s: Stack, no_growth: bool = False) -> list[dict]:
    """Per layer j (1-based, below the top): E_j, ours E_{j-1}, |J_j|^T E_j and the summary factors.

    ``no_growth`` (a mutant): the propagated bound replaced by the incoming one, $E_{j-1} := E_j$ (the actual error
    barely grows, so a bound that does not grow is plausible; it is not rigorous)."""
    out = []
    m = len(s.layers)
    for j in range(m - 1, 0, -1):  # the top layer m receives an exact upstream gradient (E_m = 0)
        E = s.bound[j]
        ours = E if no_growth else s.bound[j - 1]
        JE = abs_jacobian_t(s.Ts[j - 1], s.layers[j - 1], E, s.cfg)
        act_in, act_out = np.abs(s.g_fast[j] - s.g_exact[j]), np.abs(s.g_fast[j - 1] - s.g_exact[j - 1])
        sl = ours / JE
        out.append(dict(layer=j, E=E, ours=ours, JE=JE,
                        J_growth=float(np.median(JE) / np.median(E)), our_growth=float(np.median(ours) / np.median(E)),
                        slack_min=float(sl.min()), slack_median=float(np.median(sl)), slack_max=float(sl.max()),
                        actual_growth=float(np.median(act_out) / np.median(act_in)),
                        ratio_in=float(np.median(act_in / E)), ratio_out=float(np.median(act_out / ours))))  # fmt: skip
    return out


def _claim_growth(bk, s: Stack, st: dict):
    """One row per layer: max over entries of |J|^T E / ours <= 1 (the decisive entry recomputed in mpmath)."""
    r = st["JE"] / st["ours"]
    top = np.unravel_index(np.argmax(r), r.shape)
    if bk.is_mp:
        JE = abs_jacobian_t(s.Ts[st["layer"] - 1], s.layers[st["layer"] - 1], st["E"], s.cfg, bk)
        yield ("le", f"layer {st['layer']}: |J|^T E <= our bound", JE[top], bk.scalar(float(st["ours"][top])))
    else:
        yield ("le", f"layer {st['layer']}: |J|^T E <= our bound", float(st["JE"][top]), float(st["ours"][top]))


@check(
    id="fast.cert.layer_growth",
    label="Lemma H.4",
    name="Per-layer growth of the propagated gradient bound: >= |J|^T E (the exact worst case of an entrywise "
    "bound) everywhere; the |J| factor and our slack reported",
    kind="INEQ",
    expected="OK",
    spec=(83,),
    uses=("fast.cert.aposteriori",),
    mutants=("bound not grown through the layer", "bound divided by 10"),
)
def check_layer_growth(ctx: Context) -> Result:
    r"""Module docstring. Residual tanh stacks, d = 4, n = 24, eps = 1e-6, X, dL ~ U[-1, 1]; quick: m = 4
    non-causal and causal (blocks of 8 tokens), one head; full: also two heads and two more seeds. One ``le`` row per
    layer below the top. Mutants: the propagated bound not grown ($E_{j-1} := E_j$) and divided by 10; both fall
    below the exact worst case $|J|^\top E$ (killed).
    """
    grid = [(4, False, 1, 0), (4, True, 1, 0)]
    if not ctx.quick:
        grid += [(4, False, 2, 1), (4, True, 2, 1), (4, False, 1, 2), (4, True, 1, 3)]
    cases, summary = [], []
    for m, causal, heads, salt in grid:
        s = stack(ctx.rng(4300 + salt), 24, m, causal, heads, 1e-6)
        for st in steps(s, no_growth=ctx.mutated("bound not grown through the layer")):
            if ctx.mutated("bound divided by 10"):
                st = {**st, "ours": st["ours"] / 10}
            cases.append(dict(s=s, st=st))
            scalars = {k: v for k, v in st.items() if not isinstance(v, np.ndarray)}
            summary.append(scalars | dict(causal=causal, heads=heads))
    res = decide(_claim_growth, cases, ctx=ctx)
    med = {k: float(np.median([r[k] for r in summary])) for k in ("J_growth", "our_growth", "slack_median",
                                                                  "actual_growth")}  # fmt: skip
    lo_sl = min(r["slack_min"] for r in summary)
    fig = (f"{len(summary)} layer steps: worst case |J|^T E grows x{med['J_growth']:.2f}/layer (median), our bound "
           f"x{med['our_growth']:.2f}, our slack over |J|^T E median {med['slack_median']:.2f} (min {lo_sl:.2f}), "
           f"the actual error x{med['actual_growth']:.2f}; {res.figure}")  # fmt: skip
    return dataclasses.replace(res, figure=fig, data={**res.data, "steps": summary, "median": med})
