"""Dogfooding (issue 12 item 6): the project's public invariants as properties over reference.proptest strategies.

Each property draws whole cases (shapes, conventions, conditioning regimes) and shrinks to a small readable one.
Tolerances: exact identities are asserted exactly; reassociated float64 sums at 1e-13 relative (one layer, n, d <= 5
terms of O(1) magnitude, unit roundoff 1.1e-16, a 100x margin over the gamma_{2(n+d)} bound); whole models (whose
depth and regimes amplify reassociation) by the oracle's derived tolerance (reference.proptest.oracle); float64
against mpmath at TOLERANCES["float64_vs_mpmath"]; finite differences at TOLERANCES["FD_mpmath_dps50"]
(reference/compare.py).
"""

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.attention import attention_forward, attention_matrix, softmax
from reference.compare import TOLERANCES, rel_err
from reference.fd import fd_gradients
from reference.losses import LinearLoss
from reference.model import Layer
from reference.proptest import Case, reference_fields
from reference.proptest import strategies as pst
from reference.proptest.oracle import failure_message, judge
from reference.testing import whole_rel_err

FAST = settings(max_examples=20, deadline=None)
REASSOC = 1e-13  # see the module docstring


def _grads(case: Case, **over) -> dict:
    return reference_fields(Case(**{**case.__dict__, **over}))


@pytest.mark.paper("Definition 1.1")
@FAST
@given(pst.attention_cases())
def test_attention_rows_are_probabilities_with_masked_entries_exactly_zero(case):
    L = case.layers[0]
    f = attention_matrix(case.X, L.W_Q @ L.W_K.T, case.beta_value, case.causal)  # (n, n)
    assert (f >= 0).all() and np.abs(f.sum(axis=1) - 1).max() <= (case.n + 1) * 2.0**-53 * 2
    if case.causal:
        assert not np.triu(f, 1).any()


@pytest.mark.paper("Definition 1.1")
@FAST
@given(pst.matrices((3, 4), 8.0), st.sampled_from([-64.0, -1.0, 0.5, 32.0]))
def test_softmax_is_invariant_to_a_power_of_two_shift_of_a_row(z, c):
    # z on the grid k/8 * 8 and a power-of-two-ish c: z + c is exact, so only exp's rounding differs
    assert np.abs(softmax(z + c) - softmax(z)).max() <= 1e-13


@pytest.mark.paper("Definition I.2")
@FAST
@given(pst.attention_cases(causal=True), st.data())
def test_causal_outputs_of_a_prefix_depend_on_the_prefix_only(case, data):
    k = data.draw(st.integers(1, case.n))
    L = case.layers[0]
    full = attention_forward(case.X, L.W_Q, L.W_K, L.W_V, beta=case.beta_value, causal=True, heads=case.heads).out
    head = attention_forward(case.X[:k], L.W_Q, L.W_K, L.W_V, beta=case.beta_value, causal=True, heads=case.heads).out
    assert float(rel_err(head, full[:k])) <= REASSOC


@pytest.mark.paper("Definition I.2")
@FAST
@given(pst.model_cases(causal=True), st.data())
def test_causal_gradient_of_an_upstream_on_a_prefix_never_reaches_later_tokens(case, data):
    k = data.draw(st.integers(0, case.n - 1))
    G = case.G.copy()
    G[k:] = 0.0
    dX = _grads(case, G=G)["dX"]
    assert not dX[k:].any()  # exact: every term of Lemma D.17 multiplies a zero block


@pytest.mark.paper("Definition K.1")
@FAST
@given(pst.attention_cases(heads=2, max_d=4), st.booleans())
def test_swapping_two_heads_swaps_their_output_columns(case, swap):
    L, d = case.layers[0], case.d
    perm = np.r_[d // 2 : d, 0 : d // 2]  # head blocks exchanged
    conv = {"beta": case.beta_value, "causal": case.causal, "heads": 2}
    out = attention_forward(case.X, L.W_Q, L.W_K, L.W_V, **conv).out
    swapped = attention_forward(case.X, L.W_Q[:, perm], L.W_K[:, perm], L.W_V[:, perm], **conv).out
    assert np.array_equal(swapped, out[:, perm])  # the same arithmetic per head, in another place


@settings(max_examples=15, deadline=None)
@given(pst.model_cases(causal=False, max_n=4), st.randoms(use_true_random=False))
def test_without_a_mask_permuting_tokens_permutes_output_and_dX_and_keeps_weight_gradients(case, rnd):
    # whole models (deep stacks, saturated and near-duplicate regimes amplify reassociation beyond REASSOC): the
    # permuted run, put back in token order, is judged by the oracle's derived tolerance against the original case
    p = np.array(rnd.sample(range(case.n), case.n))
    inv = np.argsort(p)  # b[inv] is in the original token order
    b = _grads(case, X=case.X[p], G=case.G[p])
    verdict = judge(b | {"output": b["output"][inv], "dX": b["dX"][inv]}, case)
    assert verdict.ok, failure_message(verdict, f"permutation {p.tolist()} of {case.conventions()}")


@FAST
@given(pst.attention_cases(regimes=("bounded",)), pst.matrices((5, 4)))
def test_the_backward_pass_of_one_layer_is_linear_in_the_upstream_gradient(case, G2):
    # one layer on bounded inputs: the reassociation bound of the module docstring applies (a deep stack with a
    # cube activation amplifies rounding by 1e4 and needs the oracle's measured tolerance instead)
    G2 = G2[: case.n, : case.d]
    a, b, ab = reference_fields(case), _grads(case, G=G2), _grads(case, G=case.G + G2)
    ga = {k: a[k] + b[k] for k in a if k != "output"}
    assert whole_rel_err({k: ab[k] for k in ga}, ga) <= REASSOC * 10  # one more addition per entry


@FAST
@given(pst.attention_cases())
def test_beta_none_is_one_over_the_head_width(case):
    explicit = _grads(case, beta=1.0 / (case.d // case.heads))
    assert whole_rel_err(explicit, _grads(case, beta=None)) == 0.0


@pytest.mark.paper("Lemma D.17")
@settings(max_examples=15, deadline=None)
@given(pst.model_cases(max_n=4, max_d=4, regimes=("bounded",)))
def test_float64_agrees_with_mpmath_at_40_digits_on_bounded_inputs(case):
    lo, hi = reference_fields(case), reference_fields(case, "mpmath", 40)
    assert whole_rel_err(lo, hi, dps=40) <= TOLERANCES["float64_vs_mpmath"]


@pytest.mark.paper("Lemma D.17")
@settings(max_examples=4, deadline=None)
@given(pst.model_cases(max_n=2, max_d=2, max_layers=1, regimes=("bounded",)))
def test_closed_form_gradient_agrees_with_mpmath_finite_differences(case):
    conv = {"beta": case.beta, "causal": case.causal, "heads": case.heads, "residual": case.residual,
            "activation": case.activation}  # fmt: skip
    fd = fd_gradients(case.X, list(case.layers), LinearLoss(case.G), dps=30, with_dT=False, **conv)
    exact = reference_fields(case, "mpmath", 30)
    with mpmath.workdps(30):
        assert float(rel_err(exact["dX"], fd.dX)) <= TOLERANCES["FD_mpmath_dps50"] or not np.abs(case.G).any()
        for k in ("dW_Q", "dW_K", "dW_V"):
            assert float(rel_err(exact[f"layers[0].{k}"], fd.layers[0][k])) <= TOLERANCES["FD_mpmath_dps50"] or (
                float(rel_err(exact[f"layers[0].{k}"], fd.layers[0][k])) == 0.0
            )
    assert isinstance(case.layers[0], Layer)
