"""Lemma F.4, §C.2, G.3 (corrected), H.2, J.3 (spec §2.2, §2.6, §2.8): weight gradients, G_i, residual rule."""

import pytest
import sympy as sp

from symbolic.closed_forms import corrected_dX
from symbolic.explicit import attention, derive_dX
from symbolic.proofs import prove

SIZES = [(1, 2), (2, 1), (2, 2)]


@pytest.mark.paper("Lemma F.4")
@pytest.mark.parametrize("size", SIZES)
def test_dW_is_beta_XT_P_X(size):
    assert prove("dW", *size).holds


@pytest.mark.paper("Claim §C.2")
@pytest.mark.parametrize("name", ["dW_Q", "dW_K"])
def test_dWQ_and_dWK_follow_from_dW_through_the_product(name):
    assert prove(name, 2, 2).holds


@pytest.mark.paper("Lemma G.3")
@pytest.mark.parametrize("size", SIZES)
def test_dWV_is_XT_fT_G(size):
    assert prove("dW_V", *size).holds


@pytest.mark.paper("Lemma H.2")
@pytest.mark.parametrize("name", ["G_i", "dW_g", "layer"])
def test_block_gradients_hold_for_any_activation(name):
    assert prove(name, 2, 2).holds


@pytest.mark.paper("Lemma J.3")
@pytest.mark.parametrize("name", ["residual.attn", "residual.layer"])
def test_residual_rule_adds_the_identity_to_the_vjp(name):
    assert prove(name, 2, 2).holds


@pytest.mark.paper("Lemma D.9")
@pytest.mark.parametrize("beta", [1, sp.Rational(1, 2)])
def test_dX_identity_holds_at_beta_one_and_one_half(beta):
    m = attention(2, 2)
    b = m.heads[0].beta
    derived, closed = derive_dX(m).subs(b, beta), corrected_dX(m).subs(b, beta)
    assert all(sp.expand(x - y) == 0 for x, y in zip(derived, closed, strict=True))
    assert derive_dX(m).has(b)  # beta stays a free symbol in the general proof
