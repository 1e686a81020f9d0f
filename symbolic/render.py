r"""The one pinned printer: every formula in the docs and the CLI goes through :func:`render_latex` or
:func:`render_pretty`.

STYLE §1.4 (SymPy anchor): SymPy prints the Hadamard product as ``\circ`` (sympy/sympy#28785 is open), so the
project pins its own printers: $\odot$ for Hadamard, $^{\top}$ for transposes, $\operatorname{diag}(K)$,
$\mathbf 1_n$, and Greek names for the atoms $\varphi$, $\lambda$, $\ell$. All settings are fixed here (no
global SymPy state is touched), so output is byte-for-byte reproducible for a given SymPy version.

>>> import sympy as sp
>>> n, d = sp.symbols("n d")
>>> f, X = sp.MatrixSymbol("f", n, n), sp.MatrixSymbol("X", n, d)
>>> render_latex(f.T * X)
'f^{\\top} X'
>>> shape_latex(f.T * X)
'\\in \\mathbb{R}^{n \\times d}'

Shape legend: none.
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.matrices.expressions.diagonal import DiagMatrix
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pretty.pretty import PrettyPrinter

LATEX_SETTINGS = {
    "mat_symbol_style": "plain",
    "mul_symbol": None,
    "fold_short_frac": False,
    "long_frac_ratio": None,
    "order": None,
}
PRETTY_SETTINGS = {"use_unicode": True, "wrap_line": False, "num_columns": 10_000, "order": None}

_GREEK = {"phi'": r"\varphi'", "phi": r"\varphi", "lambda": r"\lambda", "ell": r"\ell"}
_GREEK_TEXT = {"phi'": "φ'", "phi": "φ", "lambda": "λ", "ell": "ℓ"}
_NAME = re.compile(r"^(phi'|phi|lambda|ell)(.*)$")
# Names that already are LaTeX (they contain a backslash) are printed verbatim; for the unicode printer a few
# commands are translated.
_TEXT = (
    (r"\operatorname{rowsoftmax}", "rowsoftmax"), (r"\mathrm{Attn}", "Attn"), (r"\partial ", "∂"),
    (r"\partial", "∂"), (r"\varphi", "φ"), (r"\exp", "exp"), (r"\beta", "β"), (r"\ell", "ℓ"),
    (r"^{\top}", "ᵀ"), (r"\top", "ᵀ"), (r"\dots", "…"), (r"\ge", "≥"), (r"\odot", "⊙"), (r"[\![", "["),
    (r"]\!]", "]"), ("{", ""), ("}", ""), ("\\", ""),
)  # fmt: skip


def latex_name_to_text(name: str) -> str:
    """Unicode reading of a verbatim-LaTeX symbol name (for the pretty printer)."""
    for a, b in _TEXT:
        name = name.replace(a, b)
    return name.replace("\\", "")


class AltgradLatexPrinter(LatexPrinter):
    """LaTeX with the paper's notation (Hadamard $\\odot$, $^{\\top}$, diag, $\\mathbf 1$)."""

    printmethod = "_altgrad_latex"

    def _print_HadamardProduct(self, expr):
        prec = PRECEDENCE["Mul"]
        return r" \odot ".join(self.parenthesize(a, prec, strict=True) for a in expr.args)

    def _print_Transpose(self, expr):
        mat = expr.arg
        printed = self._print(mat)
        if isinstance(mat, sp.MatrixSymbol) and not any(ch in printed for ch in "^/ "):
            return f"{printed}^{{\\top}}"
        return rf"\left({self._print(mat)}\right)^{{\top}}"

    def _print_DiagMatrix(self, expr):
        return rf"\operatorname{{diag}}\left({self._print(expr.args[0])}\right)"

    def _print_OneMatrix(self, expr):
        return rf"\mathbf{{1}}_{{{self._print(expr.shape[0])}}}"

    def _print_Symbol(self, expr, style="plain"):
        if "\\" in expr.name:
            return expr.name
        m = _NAME.match(expr.name)
        if m:
            return _GREEK[m.group(1)] + m.group(2)
        return super()._print_Symbol(expr, style=style)


class AltgradPrettyPrinter(PrettyPrinter):
    """Unicode pretty printing with ⊙ for Hadamard and ᵀ-style transposes kept as SymPy prints them."""

    printmethod = "_altgrad_pretty"

    def _print_HadamardProduct(self, expr):
        from sympy.matrices.expressions.matadd import MatAdd
        from sympy.matrices.expressions.matmul import MatMul

        return self._print_seq(
            expr.args,
            None,
            None,
            "⊙",
            parenthesize=lambda x: isinstance(x, (MatAdd, MatMul, sp.HadamardProduct)),
        )

    def _print_DiagMatrix(self, expr):
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(f"diag({self._print(expr.args[0])})")

    def _print_Symbol(self, e, bold_name=False):
        from sympy.printing.pretty.stringpict import prettyForm

        if "\\" in e.name:
            return prettyForm(latex_name_to_text(e.name))
        m = _NAME.match(e.name)
        if m:
            return prettyForm(_GREEK_TEXT[m.group(1)] + m.group(2).replace("{", "").replace("}", ""))
        return super()._print_Symbol(e, bold_name)


def render_latex(expr: object) -> str:
    """LaTeX of ``expr`` (a SymPy object or a plain string, which is passed through)."""
    if isinstance(expr, str):
        return expr
    return AltgradLatexPrinter(LATEX_SETTINGS).doprint(expr)


def render_pretty(expr: object) -> str:
    """Unicode pretty form of ``expr`` (strings are passed through)."""
    if isinstance(expr, str):
        return expr
    return AltgradPrettyPrinter(PRETTY_SETTINGS).doprint(expr)


def shape_latex(expr: object) -> str:
    r"""``\in \mathbb{R}^{r \times c}`` for a matrix expression, '' otherwise."""
    shape = getattr(expr, "shape", None)
    if not shape or not getattr(expr, "is_Matrix", False) and not isinstance(expr, sp.MatrixExpr):
        return ""
    r, c = (render_latex(s) for s in shape)
    return rf"\in \mathbb{{R}}^{{{r} \times {c}}}"


def shape_text(expr: object) -> str:
    """'(r x c)' for a matrix expression, '' otherwise."""
    shape = getattr(expr, "shape", None)
    if not shape or not isinstance(expr, (sp.MatrixExpr, sp.MatrixBase)):
        return ""
    return f"({shape[0]} × {shape[1]})"


def diag(v: sp.MatrixExpr) -> sp.MatrixExpr:
    """diag(v) for an (n, 1) vector expression (prints as diag(v))."""
    return DiagMatrix(v)


def pretty_equation(lhs: object, rhs: object) -> str:
    """'lhs = rhs' as a (possibly multi-line) unicode picture, both sides through the pinned printer."""
    from sympy.printing.pretty.stringpict import prettyForm, stringPict

    pp = AltgradPrettyPrinter(PRETTY_SETTINGS)
    left = prettyForm(lhs) if isinstance(lhs, str) else pp._print(lhs)
    right = prettyForm(rhs) if isinstance(rhs, str) else pp._print(rhs)
    pic = prettyForm(*stringPict.next(left, " = ", right))
    return pic.render(wrap_line=False)
