"""Lemma I.7/I.8, K.2, 3.4 (spec §2.7, §2.9, §2.2): causal, multi-head, unit-loss decomposition, literal diff."""

import pytest

from symbolic.proofs import prove


@pytest.mark.paper("Lemma I.7")
@pytest.mark.parametrize("name", ["causal.D8", "causal.D4", "causal.D2", "causal.D7", "causal.D6",
                                  "causal.dX", "causal.dW", "causal.dW_V"])  # fmt: skip
def test_causal_forms_keep_their_shape_with_f_masked(name):
    assert prove(name, 3, 2).holds


@pytest.mark.paper("Lemma K.2")
@pytest.mark.parametrize("name", ["mh.dX", "mh.dW_Q", "mh.dW_K", "mh.dW_V"])
def test_two_heads_sum_the_per_head_formulas(name):
    assert prove(name, 2, 2, 2).holds


@pytest.mark.paper("Lemma 3.4")
def test_any_unit_losses_give_the_vjp_of_their_summed_gradient():
    assert prove("unit_loss", 2, 2).holds


@pytest.mark.paper("Lemma 3.4")
def test_sympy_diff_of_undefined_unit_losses_agrees():
    assert prove("literal.unit_loss", 2, 1).holds


@pytest.mark.paper("Lemma C.4")
@pytest.mark.parametrize("name", ["literal.dX", "literal.causal.dX"])
def test_sympy_diff_of_the_literal_map_agrees_with_the_hand_chain_rule(name):
    assert prove(name, 2, 2).holds


@pytest.mark.slow
@pytest.mark.paper("Lemma K.2")
def test_two_heads_of_width_two_sum_the_per_head_formulas():
    pr = prove("mh.dX", 2, 4, 2)  # d_h = 2: outside the suite's d <= 2 sizes, ~16 s
    assert pr.holds
