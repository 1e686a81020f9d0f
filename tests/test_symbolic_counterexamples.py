"""Lemma D.17, G.3, Algorithm 1 line 19, Lemma I.7 as printed (spec §0.4, §2.3): exact counterexamples."""

import pytest
import sympy as sp

from symbolic import counterexamples as cx


@pytest.mark.paper("Lemma D.17")
@pytest.mark.parametrize("name", sorted(cx.PRINTED))
def test_every_printed_form_differs_exactly_and_the_correction_holds(name):
    c = cx.counterexample(name)
    assert c.printed_fails
    assert c.corrected_holds


@pytest.mark.paper("Lemma D.17")
@pytest.mark.parametrize("name", ["D8", "D7", "D6", "dX", "dW_V"])
def test_the_f_versus_fT_error_survives_a_symmetric_W(name):
    c = cx.counterexample(name, symmetric_W=True)
    assert c.printed_fails and c.corrected_holds


@pytest.mark.paper("Lemma I.7")
@pytest.mark.parametrize("name", ["D8", "D6", "D7", "dW_V"])
def test_causal_printed_forms_also_fail(name):
    c = cx.counterexample(name, causal=True)
    assert c.printed_fails and c.corrected_holds


@pytest.mark.paper("Lemma D.17")
def test_printed_D8_minus_true_is_the_rational_function_of_e_shown_in_the_docs():
    c = cx.counterexample("D8")
    t = cx.T
    assert sp.cancel(c.difference[0, 1] - (t - 1) / (t + 1)) == 0
    assert sp.cancel(c.difference[1, 0] + (t - 1) / (t + 1)) == 0
    assert c.value[0][1].startswith("0.46211715726000975850")  # tanh(1/2)


@pytest.mark.paper("Algorithm 1")
def test_line_19_misses_minus_XT_p2_X():
    c = cx.counterexample("gw")
    assert any(sp.numer(sp.together(e)).as_poly(cx.T) is None or e != 0 for e in c.difference)
    assert c.printed_fails


def test_unknown_printed_name_is_rejected_with_the_choices():
    with pytest.raises(ValueError, match="name: expected one of"):
        cx.counterexample("D5")
