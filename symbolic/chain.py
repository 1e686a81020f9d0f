r"""The chain rule by hand, over explicit entries, with transcendental functions kept as atoms.

Paper: Lemma 3.4 / C.4 (the gradient is the chain rule contracted with the upstream gradient); spec §2.2.

Every forward map in this project is a polynomial in the *base* symbols (entries of $X$, $W$, $W_V$, $G$, ...)
and in a few kinds of *atoms*, each standing for one transcendental or rational value:

.. math::
    a_{ij} = e^{S_{ij}},\qquad r_i = \Big(\sum_k a_{ik}\Big)^{-1},\qquad
    \varphi_{ij} = \varphi(U_{ij})\ \ (\text{derivative atom } \varphi'_{ij}),\qquad
    \ell = \ell(\sigma_1, \dots, \sigma_N)\ \ (\text{partial atoms } \partial_k \ell).

A :class:`Chain` stores the definition of each atom and differentiates by the rules
$\mathrm{d}a = a\,\mathrm{d}S$, $\mathrm{d}r = -r^2\,\mathrm{d}(\sum_k a_{ik})$,
$\mathrm{d}\varphi_{ij} = \varphi'_{ij}\,\mathrm{d}U_{ij}$,
$\mathrm{d}\ell = \sum_k \partial_k\ell\,\mathrm{d}\sigma_k$; SymPy only ever differentiates *polynomials*.
Two polynomials in independent atoms that expand to the same thing are equal after substituting the atoms'
true values, so ``expand(lhs - rhs) == 0`` is an exact proof of the identity at that size.

Shape legend: none (scalars); matrices are built in :mod:`symbolic.explicit`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import sympy as sp

KINDS = ("exp", "recip", "fn", "multi")


@dataclass(frozen=True)
class AtomDef:
    """Definition of one atom: ``kind`` in :data:`KINDS`, the argument(s), and derivative atoms if any."""

    kind: str
    arg: sp.Expr | tuple[sp.Expr, ...]
    partials: tuple[sp.Symbol, ...] = ()
    group: str = ""  # a label used to split a derivative into paths ("numerator", "normalizer", ...)


@dataclass
class Chain:
    r"""Atoms and their definitions; :meth:`d` is the total derivative $\mathrm{d}(\cdot)/\mathrm{d}\theta$.

    >>> x, a = sp.symbols("x a")
    >>> ch = Chain()
    >>> ch.define(a, "exp", 2 * x)
    >>> ch.d(3 * a, x)
    6*a
    """

    defs: dict[sp.Symbol, AtomDef] = field(default_factory=dict)
    _memo: dict[tuple[sp.Symbol, sp.Symbol], sp.Expr] = field(default_factory=dict)

    def define(
        self,
        atom: sp.Symbol,
        kind: str,
        arg: sp.Expr | tuple[sp.Expr, ...],
        partials: Iterable[sp.Symbol] = (),
        group: str = "",
    ) -> None:
        """Register ``atom`` := kind(arg). ``fn`` needs one partial atom, ``multi`` one per argument."""
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
        partials = tuple(partials)
        if kind == "fn" and len(partials) != 1:
            raise ValueError(f"partials: kind 'fn' needs exactly 1 derivative atom, got {len(partials)}")
        if kind == "multi" and len(partials) != len(arg):
            raise ValueError(f"partials: kind 'multi' needs {len(arg)} partial atoms, got {len(partials)}")
        if atom in self.defs:
            raise ValueError(f"atom: {atom} is already defined")
        self.defs[atom] = AtomDef(kind, arg, partials, group)
        self._memo.clear()

    def atoms_in(self, expr: sp.Expr) -> list[sp.Symbol]:
        """The defined atoms that occur in ``expr``, in a deterministic order."""
        return sorted((s for s in expr.free_symbols if s in self.defs), key=sp.default_sort_key)

    def d_atom(self, atom: sp.Symbol, theta: sp.Symbol) -> sp.Expr:
        """Total derivative of one atom with respect to the base symbol ``theta`` (memoised)."""
        key = (atom, theta)
        if key not in self._memo:
            df = self.defs[atom]
            if df.kind == "exp":
                out = atom * self.d(df.arg, theta)
            elif df.kind == "recip":
                out = -(atom**2) * self.d(df.arg, theta)
            elif df.kind == "fn":
                out = df.partials[0] * self.d(df.arg, theta)
            else:  # multi
                out = sp.Add(*(p * self.d(a, theta) for p, a in zip(df.partials, df.arg, strict=True)))
            self._memo[key] = out
        return self._memo[key]

    def d(self, expr: sp.Expr, theta: sp.Symbol, groups: Iterable[str] | None = None) -> sp.Expr:
        r"""Total derivative of ``expr`` with respect to ``theta``.

        With ``groups`` given, only the explicit partial (group ``"direct"``) and the top-level atoms whose
        group is listed contribute: this splits a gradient into the paths of spec §2.3.
        """
        expr = sp.sympify(expr)
        wanted = None if groups is None else set(groups)
        total = sp.diff(expr, theta) if wanted is None or "direct" in wanted else sp.S.Zero
        for atom in self.atoms_in(expr):
            if wanted is not None and self.defs[atom].group not in wanted:
                continue
            da = self.d_atom(atom, theta)
            if da != 0:
                total += sp.diff(expr, atom) * da
        return total

    def grad(self, expr: sp.Expr, thetas: sp.Matrix, groups: Iterable[str] | None = None) -> sp.Matrix:
        """The matrix of total derivatives of ``expr`` with respect to each entry of ``thetas``."""
        groups = None if groups is None else tuple(groups)
        return thetas.applyfunc(lambda t: self.d(expr, t, groups))


def is_zero_polynomial(expr: sp.Expr) -> bool:
    """Exact test: ``expr`` (a polynomial in independent symbols) expands to 0."""
    return sp.expand(expr) == 0


def matrices_equal(A: sp.Matrix, B: sp.Matrix) -> bool:
    """Exact entrywise equality of two matrices of polynomials (same shape required)."""
    if A.shape != B.shape:
        raise ValueError(f"B: expected shape {A.shape}, got {B.shape}")
    return all(is_zero_polynomial(a - b) for a, b in zip(A, B, strict=True))
