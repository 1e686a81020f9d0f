"""The hand chain rule with atoms (spec §2.2): rules, bad input, agreement with sympy.diff."""

import pytest
import sympy as sp

from symbolic.chain import Chain
from symbolic.explicit import attention, check_sizes, derive_dX
from symbolic.literal import identifications, literal_dX


def test_exp_recip_and_fn_atoms_follow_their_rules():
    x, a, r, p, dp = sp.symbols("x a r p dp")
    ch = Chain()
    ch.define(a, "exp", x**2)
    ch.define(r, "recip", 1 + a)
    ch.define(p, "fn", 3 * x, partials=(dp,))
    assert sp.expand(ch.d(a, x) - 2 * x * a) == 0
    assert sp.expand(ch.d(r, x) + r**2 * 2 * x * a) == 0
    assert sp.expand(ch.d(p, x) - 3 * dp) == 0


def test_bad_atom_kind_and_duplicate_are_rejected():
    a, x = sp.symbols("a x")
    ch = Chain()
    with pytest.raises(ValueError, match="kind: expected one of"):
        ch.define(a, "log", x)
    ch.define(a, "exp", x)
    with pytest.raises(ValueError, match="already defined"):
        ch.define(a, "exp", x)


@pytest.mark.parametrize(("args", "exc"), [((0, 1), ValueError), ((2, 2.0), TypeError), ((2, 3, 2), ValueError)])
def test_bad_sizes_name_the_argument(args, exc):
    with pytest.raises(exc, match=r"^(n|d|heads):"):
        check_sizes(*args)


@pytest.mark.paper("Lemma C.4")
@pytest.mark.parametrize("causal", [False, True])
def test_hand_chain_rule_equals_sympy_diff_of_exp(causal):
    m = attention(2, 1, causal=causal)
    lit = literal_dX(m)
    hand = derive_dX(m).xreplace(identifications(m))
    assert all(sp.expand(x - y) == 0 for x, y in zip(lit, hand, strict=True))
