"""Lemma D.9 / D.17 in index notation (spec §2.3): proved for all n, d; equal to explicit entries at n = 2, 3, 4."""

import pytest

from symbolic import index as ix
from symbolic.chain import is_zero_polynomial
from symbolic.explicit import attention, derive_term

TERMS = ["D8", "D4", "D2", "D7", "D6"]


@pytest.mark.paper("Lemma D.17")
@pytest.mark.parametrize("term", TERMS)
def test_index_derivation_matches_the_closed_form_for_all_sizes(term):
    assert ix.proved_for_all_sizes(term)


@pytest.mark.paper("Lemma D.17")
def test_canonical_comparison_rejects_the_printed_D8():
    Xm, Gm, Vm = ix.base_mat(ix.X), ix.base_mat(ix.G), ix.base_mat(ix.WV)
    f = ix.IMat("n", "n", lambda i, j: ix.mul(ix.ind(ix.r, i), ix.ind(ix.a, i, j)))
    printed = ix.matmul(ix.matmul(f, Gm), ix.transpose(Vm)).at(ix.u, ix.v)  # f G W_V^T
    derived = ix.unslot(ix.derive("D8")["D8"])
    assert ix.canonical(ix.add(derived, ix.scale(-1, ix.simplify(printed)))) != {}
    del Xm


def _agrees(term, n, d=2):
    der = ix.unslot(ix.derive(term)[term])
    m = attention(n, d, slots=True)
    hd = m.heads[0]
    table = {ix.X: m.X, ix.W: m.W, ix.WV: m.W_V, ix.G: m.G, ix.a: hd.a, ix.r: hd.r}
    E = derive_term(m, term)
    return all(
        is_zero_polynomial(ix.instantiate(der, n, d, table, (i, j)).subs(ix.beta, hd.beta) - E[i, j])
        for i in range(n)
        for j in range(d)
    )


@pytest.mark.paper("Lemma D.17")
@pytest.mark.parametrize("term", TERMS)
@pytest.mark.parametrize("n", [2, 3])
def test_index_form_instantiated_equals_explicit_entries(term, n):
    assert _agrees(term, n)


@pytest.mark.slow
@pytest.mark.paper("Lemma D.17")
@pytest.mark.parametrize("term", TERMS)
def test_index_form_instantiated_at_four_tokens_equals_explicit_entries(term):
    assert _agrees(term, 4)
