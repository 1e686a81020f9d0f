r"""SymPy differentiates the literal forward map (true ``exp``, true quotient, undefined losses) by itself.

Paper: Def. 1.2 (attention), Def. 3.1 (L as a sum of unit losses), Lemma 3.4 / C.4 (closed form of the gradient
as the upstream gradient contracted with the Jacobian); spec §2.2.

This is the validation route for :mod:`symbolic.chain`: here ``sympy.diff`` applies the chain rule itself to

.. math::
    s_{ij} = \sum_l \frac{e^{S_{il}}}{\sum_k e^{S_{ik}}}\,(X W_V)_{lj},\qquad
    L = \sum_{j,k} \ell_{jk}(s_{11}, \dots, s_{nd}),

with each unit loss $\ell_{jk}$ an *undefined* SymPy function of all $nd$ outputs (Def. 3.1 allows any).
Afterwards the result is rewritten in atoms ($e^{S_{ij}} \to a_{ij}$, $(\sum_k a_{ik})^{-p} \to r_i^p$,
$\partial_{ab}\ell_{jk}(s) \to \lambda_{jk,ab}$) so it can be compared exactly with the hand chain rule.
Requires n >= 2 (for n = 1 SymPy folds $e^{S}/e^{S}$ to 1 before differentiating).

Shape legend: n = tokens, d = width.
"""

from __future__ import annotations

import sympy as sp

from symbolic.explicit import Attention


def literal_output(m: Attention) -> sp.Matrix:
    r"""$s = D^{-1}\exp(S)\,X W_V$ with true exponentials (single head, slots equal). Shape (n, d)."""
    if len(m.heads) != 1 or m.unslot:
        raise ValueError("m: the literal route is written for one head and slots=False")
    if m.n < 2:
        raise ValueError(f"m: the literal route needs n >= 2, got n = {m.n}")
    hd = m.heads[0]
    A = sp.Matrix(m.n, m.n, lambda i, j: sp.exp(hd.S[i, j]) if m.mask[i, j] else 0)
    f = sp.Matrix(m.n, m.n, lambda i, j: A[i, j] / sum(A.row(i)))
    return f * hd.h


def atomize(expr: sp.Expr, m: Attention) -> sp.Expr:
    r"""Rewrite $e^{kS_{ij}} \to a_{ij}^k$ and $(\sum_k a_{ik})^{-p} \to r_i^p$ (single head)."""
    hd = m.heads[0]
    pairs = [(hd.S[i, j], hd.a[i, j]) for i in range(m.n) for j in range(m.n) if m.mask[i, j]]

    # exp(k S) shows up with small integer k (SymPy merges exp(S) * exp(S) into exp(2 S)): look it up first
    table: dict[sp.Expr, sp.Expr] = {}
    for S, a in pairs:  # the first atom with a given logit wins, as in identifications()
        for k in (1, 2, 3, 4, -1, -2, -3, -4):
            table.setdefault(sp.expand(k * S), a**k)

    def exp_atom(e: sp.exp) -> sp.Expr:
        arg = e.args[0]
        if arg in table:
            return table[arg]
        expanded = sp.expand(arg)
        if expanded in table:
            return table[expanded]
        for S, a in pairs:
            ratio = sp.cancel(arg / S)
            if ratio.is_Rational:
                return a**ratio
        raise ValueError(f"expr: cannot express exp({arg}) through the logits")

    expr = expr.replace(lambda e: isinstance(e, sp.exp), exp_atom)
    ident = identifications(m)
    sums = {sum(hd.a.row(i)).xreplace(ident): hd.r[i] for i in range(m.n)}

    def is_recip(e: sp.Expr) -> bool:
        return e.is_Pow and e.base in sums and e.exp.is_Integer and e.exp < 0

    return expr.replace(is_recip, lambda e: sums[e.base] ** (-e.exp))


def identifications(m: Attention) -> dict[sp.Symbol, sp.Expr]:
    r"""Relations between atoms that the literal route cannot help using, to apply to the chain-rule side.

    Two atoms with the same logit polynomial are the same number (at d = 1, $S_{ij} = S_{ji}$), and a row with
    a single unmasked entry (causal row 1) has $r_i = a_{ii}^{-1}$; SymPy folds both before differentiating.
    """
    hd = m.heads[0]
    first: dict[sp.Expr, sp.Symbol] = {}
    out: dict[sp.Symbol, sp.Expr] = {}
    for i in range(m.n):
        for j in range(m.n):
            if m.mask[i, j]:
                a = first.setdefault(hd.S[i, j], hd.a[i, j])
                if a != hd.a[i, j]:
                    out[hd.a[i, j]] = a
    for i in range(m.n):
        row = [hd.a[i, j] for j in range(m.n) if m.mask[i, j]]
        if len(row) == 1:
            out[hd.r[i]] = 1 / out.get(row[0], row[0])
    return out


def literal_dX(m: Attention) -> sp.Matrix:
    r"""$\partial\langle G, s\rangle/\partial X$ by ``sympy.diff`` of the literal map, in atoms. Shape (n, d)."""
    s = literal_output(m)
    L = sum(m.G[i, j] * s[i, j] for i in range(m.n) for j in range(m.d))
    return m.X.applyfunc(lambda x: atomize(sp.diff(L, x), m))


def unit_losses(m: Attention) -> tuple[sp.Expr, sp.Matrix, list[sp.Symbol]]:
    r"""Def. 3.1: $L = \sum_{jk}\ell_{jk}(s)$ with undefined $\ell_{jk}$; also $G = \partial L/\partial s$ in atoms.

    Returns (L, G, lambdas): G[a, b] $= \sum_{jk} \lambda_{jk,ab}$ where $\lambda_{jk,ab}$ is the atom for
    $\partial\ell_{jk}/\partial s_{ab}$ evaluated at $s$. Shapes: G (n, d).
    """
    s = literal_output(m)
    args = list(s)
    L = sp.S.Zero
    G = sp.zeros(m.n, m.d)
    lambdas = []
    for j in range(m.n):
        for k in range(m.d):
            ell = sp.Function(f"ell_{{{j + 1}{k + 1}}}")
            L += ell(*args)
            for a in range(m.n):
                for b in range(m.d):
                    lam = sp.Symbol(f"lambda_{{{j + 1}{k + 1},{a + 1}{b + 1}}}")
                    lambdas.append(lam)
                    G[a, b] += lam
    return L, G, lambdas


def atomize_loss_partials(expr: sp.Expr, m: Attention) -> sp.Expr:
    r"""Rewrite each $\partial_{ab}\ell_{jk}$ evaluated at $s$ (a SymPy ``Subs``) as the atom $\lambda_{jk,ab}$."""

    def lam(sub: sp.Subs) -> sp.Symbol:
        der = sub.expr  # Derivative(ell(xi_1, ..., xi_N), xi_p)
        fn = der.expr
        (var, count) = der.variable_count[0]
        if len(der.variable_count) != 1 or count != 1:
            raise ValueError(f"expr: expected a first partial derivative, got {der}")
        p = list(fn.args).index(var)
        a, b = divmod(p, m.d)
        jk = fn.func.__name__[len("ell_{") : -1]
        return sp.Symbol(f"lambda_{{{jk},{a + 1}{b + 1}}}")

    expr = expr.replace(lambda e: isinstance(e, sp.Subs), lam)
    return atomize(expr, m)


def literal_unit_loss_dX(m: Attention) -> tuple[sp.Matrix, sp.Matrix]:
    r"""($\partial L/\partial X$ by ``sympy.diff`` for $L = \sum\ell_{jk}(s)$, and $G = \partial L/\partial s$)."""
    L, G, _ = unit_losses(m)
    dX = m.X.applyfunc(lambda x: atomize_loss_partials(sp.diff(L, x), m))
    return dX, G
