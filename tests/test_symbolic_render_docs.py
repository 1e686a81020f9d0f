"""STYLE §1.4 (one pinned printer) and the generated docs/derivations (spec §2.2–2.9): notation and drift."""

import doctest
from pathlib import Path

import pytest
import sympy as sp

from symbolic import docs, render

ROOT = Path(__file__).resolve().parents[1]


def test_hadamard_prints_as_odot_and_transpose_as_top():
    n, d = sp.symbols("n d")
    f, q, X = sp.MatrixSymbol("f", n, n), sp.MatrixSymbol("q", n, n), sp.MatrixSymbol("X", n, d)
    tex = render.render_latex(sp.HadamardProduct(f, q).T * X)
    assert r"\odot" in tex and r"\circ" not in tex and r"^{\top}" in tex
    assert "⊙" in render.render_pretty(sp.HadamardProduct(f, q))
    assert render.shape_latex(f * X) == r"\in \mathbb{R}^{n \times d}"


def test_activation_atoms_print_as_greek():
    assert render.render_latex(sp.Symbol("phi'_{12}")) == r"\varphi'_{12}"


def test_render_doctests_pass():
    assert doctest.testmod(render).failed == 0


@pytest.mark.paper("Lemma D.17")
def test_generated_pages_are_byte_deterministic():
    assert docs.pages() == docs.pages()


@pytest.mark.paper("Lemma D.17")
def test_committed_docs_match_the_generator():
    changed = docs.write_docs(ROOT / "docs" / "derivations", check=True)
    assert changed == [], f"regenerate with `python -m symbolic render`: {changed}"
