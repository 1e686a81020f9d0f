"""reference.proptest.strategies: drawn cases respect the conventions, stay exact in every format and shrink small."""

import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from reference.block import ACTIVATIONS
from reference.model import Layer
from reference.proptest import Case
from reference.proptest import strategies as pst
from reference.proptest.precision import rounder

FAST = settings(max_examples=25, deadline=None, database=None)


@FAST
@given(pst.dims(max_n=6, max_d=6, max_heads=3))
def test_heads_divide_the_width_and_shapes_stay_in_range(dims):
    n, d, h = dims
    assert 1 <= n <= 6 and 1 <= d <= 6 and 1 <= h <= 3 and d % h == 0


@FAST
@given(pst.model_cases(max_n=4, max_d=4, max_layers=2))
def test_model_cases_are_valid_and_exact_in_bfloat16(case):
    assert isinstance(case, Case) and 1 <= case.m <= 2 and case.activation in ACTIVATIONS
    for L in case.layers:
        assert isinstance(L, Layer) and L.W_Q.shape == (case.d, case.d)
        assert np.array_equal(rounder("bfloat16")(L.W_V), L.W_V)  # grid entries: exact in every format
    assert case.G.shape == (case.n, case.d) and np.isfinite(case.G).all()


@FAST
@given(pst.attention_cases(regimes=("near_duplicate",)))
def test_near_duplicate_tokens_differ_by_a_few_units_of_2_to_the_minus_20(case):
    spread = np.abs(case.X - case.X[0]).max()
    assert spread <= 8 * pst.NEAR
    assert np.array_equal(rounder("float32")(case.X), case.X)  # |x0| <= 1: the spread is exact in float32


@FAST
@given(pst.attention_cases(causal=True, beta=1.0, heads=2))
def test_fixed_conventions_are_respected(case):
    assert case.causal and case.beta == 1.0 and case.heads == 2 and case.d % 2 == 0 and case.is_attention


@FAST
@given(pst.attention_cases())
def test_a_case_prints_as_python_that_rebuilds_it_exactly(case):
    again = eval(repr(case), {"np": np, "Case": Case, "Layer": Layer})  # noqa: S307 - our own repr
    assert repr(again) == repr(case)
    assert np.array_equal(again.X, case.X) and np.array_equal(again.G, case.G)


@pytest.mark.slow  # ~35 s of shrinking
def test_a_property_needing_two_tokens_and_two_columns_shrinks_to_exactly_that():
    smallest = find(pst.attention_cases(), lambda c: c.n >= 2 and c.d >= 2, settings=settings(database=None))
    assert (smallest.n, smallest.d) == (2, 2)


@FAST
@given(st.data())
def test_losses_are_reference_losses_that_give_an_upstream_gradient(data):
    n, d = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    loss = data.draw(pst.losses(n, d))
    X, lay = np.full((n, d), 0.5), Layer(*(np.eye(d),) * 3)
    assert pst.upstream(X, [lay], loss).shape == (n, d)


def test_an_unknown_regime_or_kind_is_refused_with_the_options():
    with pytest.raises(ValueError, match="regime: expected one of"):
        pst.inputs(2, 2, "wild")
    with pytest.raises(ValueError, match="kind: expected 'attention' or 'model'"):
        find(pst.cases("layer"), lambda c: True)
