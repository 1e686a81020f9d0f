r"""Def. 3.1 / Lemma 3.4 through the hand chain rule: a loss made of unit losses of *all* the outputs.

Paper: Def. 3.1 ($L = \sum_{j,k}\ell_{jk}$, each $\ell_{jk}: \mathbb R^{n\times d}\to\mathbb R$ differentiable),
Lemma 3.4 / C.4 Part 1 ($\partial L/\partial T_{i-1} = \sum_{j,k} G_i(j,k)\,\partial s_{jk}/\partial T_{i-1}$);
spec §2.2, catalogue #6, #9, #27.

Each $\ell_{jk}(s)$ is an atom with one partial atom $\lambda_{jk,ab} = \partial\ell_{jk}/\partial s_{ab}$ per
output entry, so the statement covers every choice of unit losses. With
$G_{ab} = \sum_{jk}\lambda_{jk,ab}$ the lemma says that $\partial L/\partial X$ is the attention VJP (R1) at $G$.
(:mod:`symbolic.literal` checks the same with SymPy's own differentiation of undefined functions.)

Shape legend: n = tokens, d = width; G (n, d).
"""

from __future__ import annotations

import sympy as sp

from symbolic.explicit import Attention, attention


def unit_loss_model(n: int, d: int, causal: bool = False) -> tuple[Attention, sp.Expr, sp.Matrix]:
    """(model, L = sum of unit-loss atoms, G = dL/ds in partial atoms)."""
    m = attention(n, d, causal=causal)
    outs = tuple(m.s)  # row-major s_11, s_12, ...
    L = sp.S.Zero
    G = sp.zeros(n, d)
    for j in range(n):
        for k in range(d):
            ell = sp.Symbol(f"ell_{{{j + 1}{k + 1}}}")
            lam = [sp.Symbol(f"lambda_{{{j + 1}{k + 1},{a + 1}{b + 1}}}") for a in range(n) for b in range(d)]
            m.chain.define(ell, "multi", outs, partials=lam, group="loss")
            L += ell
            G += sp.Matrix(n, d, lam)
    return m, L, G
