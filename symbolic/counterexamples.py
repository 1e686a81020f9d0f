r"""Exact counterexamples to the formulas the spec marks WRONG-AS-PRINTED.

Paper: Lemma D.17 (D6, D7, D8 carry $f$ where $f^\top$ belongs; D2, D4, D6, D7 have $W$ and $W^\top$ swapped),
Lemma G.3 ($\partial L/\partial W_V = X^\top f G$), Algorithm 1 line 19 ($gw = X^\top p_1 X$, the $-p_2$ part
missing), Lemma I.7 (causal D8); spec §0.4, §2.3, catalogue #12, #59, #78, #91.

How the numbers stay exact. The inputs are small integers and β = 1 (the appendix convention of the printed
formulas), so every logit $S_{ij}$ is an integer and every atom is an integer power of $e$:
$a_{ij} = t^{S_{ij}}$, $r_i = 1/\sum_k t^{S_{ik}}$ with $t = e$. Printed minus true is then a rational function
$R(t) \in \mathbb Q(t)$ evaluated at $t = e$. Because $e$ is transcendental (Hermite 1873), $R(e) = 0$ iff $R$ is the
zero rational function; so ``cancel`` returning a nonzero $R$ proves printed $\ne$ true *exactly* (no floating
point is involved; the 30-digit value is shown for reading only). "True" is the chain-rule derivation of
:mod:`symbolic.explicit` evaluated at the same inputs, and the corrected form is shown to equal it there.

Shape legend: n = 2 tokens, d = 2 width (non-symmetric W), or d = 2 with a symmetric W where stated.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symbolic import closed_forms as cf
from symbolic import explicit as ex

T = sp.Symbol("t")  # stands for e

# The point (chosen by hand, smallest integers for which every printed form below fails; see tests).
POINT = {
    "X": [[1, 0], [1, 1]],
    "W": [[0, 1], [0, 0]],  # non-symmetric
    "W_sym": [[0, 1], [1, 0]],  # symmetric (isolates the f -> f^T error)
    "W_V": [[1, 0], [0, 1]],
    "G": [[1, 0], [0, 1]],
}


@dataclass(frozen=True)
class Counterexample:
    """Printed minus true at :data:`POINT`: an exact matrix over $\\mathbb Q(t)$, $t = e$."""

    name: str
    label: str
    printed_latex: str
    corrected_latex: str
    symmetric_W: bool
    causal: bool
    difference: sp.Matrix  # printed - true, entries in Q(t)
    corrected_minus_true: sp.Matrix  # exactly 0
    value: list[list[str]]  # the difference at t = e, 30 significant digits

    @property
    def printed_fails(self) -> bool:
        return any(e != 0 for e in self.difference)

    @property
    def corrected_holds(self) -> bool:
        return all(e == 0 for e in self.corrected_minus_true)


PRINTED = {
    # name: (label, printed LaTeX, corrected LaTeX)
    "D8": ("Lemma D.17", r"f G W_V^{\top}", r"f^{\top} G W_V^{\top}"),
    "D4": ("Lemma D.17", r"p_1 X W", r"p_1 X W^{\top}"),
    "D2": ("Lemma D.17", r"-p_2 X W", r"-p_2 X W^{\top}"),
    "D7": ("Lemma D.17", r"(f \odot (h G^{\top})) X W^{\top}", r"p_1^{\top} X W"),
    "D6": ("Lemma D.17", r"-f\,\mathrm{diag}(K) X W^{\top}", r"-p_2^{\top} X W"),
    "dX": (
        "Lemma D.17",
        r"D_6 + D_7 + D_8 + D_2 + D_4\ \text{(printed)}",
        r"f^{\top} G W_V^{\top} + P X W^{\top} + P^{\top} X W",
    ),
    "dW_V": ("Lemma G.3", r"X^{\top} f G", r"X^{\top} f^{\top} G"),
    "gw": ("Algorithm 1", r"X^{\top} p_1 X\ \text{(line 19)}", r"X^{\top} (p_1 - p_2) X"),
}


def _point(m: ex.Attention, symmetric_W: bool) -> dict[sp.Symbol, sp.Expr]:
    """Substitution: base symbols -> integers (β = 1), atoms -> powers of t."""
    W = POINT["W_sym" if symmetric_W else "W"]
    sub: dict[sp.Symbol, sp.Expr] = {}
    for M, vals in ((m.X, POINT["X"]), (m.W, W), (m.W_V, POINT["W_V"]), (m.G, POINT["G"])):
        sub.update({s: sp.Integer(v) for s, v in zip(M, sum(vals, []), strict=True)})
    for s in (m.Xq, m.Xk, m.Xv):  # slots take the values of X
        sub.update({y: sub[x] for y, x in zip(s, m.X, strict=True)})
    hd = m.heads[0]
    sub[hd.beta] = sp.Integer(1)
    for i in range(m.n):
        for j in range(m.n):
            if m.mask[i, j]:
                sub[hd.a[i, j]] = T ** hd.S[i, j].xreplace(sub)
    for i in range(m.n):
        sub[hd.r[i]] = 1 / sum(hd.a.row(i).xreplace(sub))
    return sub


def _at(M: sp.Matrix, sub: dict) -> sp.Matrix:
    return M.xreplace(sub).applyfunc(sp.cancel)


def counterexample(name: str, *, symmetric_W: bool = False, causal: bool = False) -> Counterexample:
    """Evaluate printed, corrected and derived ``name`` exactly at :data:`POINT`."""
    if name not in PRINTED:
        raise ValueError(f"name: expected one of {sorted(PRINTED)}, got {name!r}")
    label, p_tex, c_tex = PRINTED[name]
    m = ex.attention(2, 2, causal=causal, slots=True)
    hd = m.heads[0]
    if name in ("D8", "D4", "D2", "D7", "D6"):
        true, printed, corrected = (
            ex.derive_term(m, name), cf.printed_terms(m, hd)[name], cf.corrected_terms(m, hd)[name]
        )  # fmt: skip
    elif name == "dX":
        true = sum((ex.derive_path(m, p) for p in ("query", "key", "value")), sp.zeros(2, 2))
        printed = sum(cf.printed_terms(m, hd).values(), sp.zeros(2, 2))
        corrected = sum(cf.corrected_terms(m, hd).values(), sp.zeros(2, 2))
    elif name == "dW_V":
        true, printed, corrected = ex.derive_weight(m, "W_V"), cf.printed_dWV(m, hd), cf.corrected_dWV(m, hd)
    else:  # gw
        true, printed, corrected = ex.derive_weight(m, "W"), cf.printed_gw_line19(m, hd), cf.corrected_dW(m, hd)
    sub = _point(m, symmetric_W)
    tv = _at(true, sub)
    diff = (_at(printed, sub) - tv).applyfunc(sp.cancel)
    cdiff = (_at(corrected, sub) - tv).applyfunc(sp.cancel)
    value = [[sp.N(diff[i, j].subs(T, sp.E), 30).__str__() for j in range(2)] for i in range(2)]
    return Counterexample(name, label, p_tex, c_tex, symmetric_W, causal, diff, cdiff, value)


def all_counterexamples() -> list[Counterexample]:
    """Every printed form at the non-symmetric point, the f-vs-f^T ones also with a symmetric W, and causal D8."""
    out = [counterexample(k) for k in PRINTED]
    out += [counterexample(k, symmetric_W=True) for k in ("D8", "D7", "D6", "dX", "dW_V")]
    out += [counterexample(k, causal=True) for k in ("D8", "D6", "D7", "dW_V")]
    return out
