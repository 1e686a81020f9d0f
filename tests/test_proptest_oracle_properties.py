"""Properties of the oracle and of the model that the strategies make cheap to state (issue 12 items 2 and 6).

Exact identities are asserted exactly: the strategies' inputs are multiples of 1/8 and the scalings are powers of
two, so a rescaled product is the same float64 number.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference.model import Layer, backward, forward
from reference.proptest import Case, judge, reference_fields, verify
from reference.proptest import strategies as pst
from reference.proptest.precision import UNIT_ROUNDOFF, rounder

FAST = settings(max_examples=20, deadline=None)


def _layer(case: Case, **w) -> Case:
    L = case.layers[0]
    new = Layer(*(w.get(k, getattr(L, k)) for k in ("W_Q", "W_K", "W_V", "W_g")))
    return Case(**{**case.__dict__, "layers": (new, *case.layers[1:])})


def reference_model(X, layers, G, *, beta, causal, heads, residual, activation):
    """The reference itself behind the numpy model-kind signature (exercises that adapter path)."""
    tr = forward(X, [Layer(**L) for L in layers], beta=beta, causal=causal, heads=heads, residual=residual,
                 activation=activation)  # fmt: skip
    g = backward(tr, G)
    out = {"output": tr.output, "dX": g.dX}
    for i, lg in enumerate(g.layers):
        out |= {
            f"layers[{i}].{k}": getattr(lg, k) for k in ("dW_Q", "dW_K", "dW_V", "dW_g") if getattr(lg, k) is not None
        }
    return out


def test_the_reference_model_passes_through_the_numpy_model_adapter():
    verify(reference_model, kind="model", max_examples=15)


@FAST
@given(pst.attention_cases(), st.sampled_from(["output", "dX", "dW_Q", "dW_K", "dW_V"]), st.data())
def test_one_entry_off_by_a_millionth_of_the_field_scale_is_always_caught(case, field, data):
    ref = reference_fields(case)
    name = field if field in ("output", "dX") else f"layers[0].{field}"
    a = ref[name].copy()
    idx = tuple(data.draw(st.integers(0, s - 1)) for s in a.shape)
    scale = max(np.abs(v).max() for v in ref.values())
    a[idx] += 1e-6 * max(scale, 1.0)
    fields = {"output": ref["output"], field: a} if field != "output" else {"output": a}
    v = judge(fields, case)
    assert not v.ok and v.failing[0].name == name and v.failing[0].entry == idx


@FAST
@given(pst.model_cases(), st.sampled_from([0.5, 2.0, 4.0]))
def test_scaling_W_Q_by_c_and_W_K_by_1_over_c_changes_only_their_gradients(case, c):
    a = reference_fields(case)
    L = case.layers[0]
    b = reference_fields(_layer(case, W_Q=c * L.W_Q, W_K=L.W_K / c))
    for k in a:
        if k == "layers[0].dW_Q":
            assert np.array_equal(b[k], a[k] / c)
        elif k == "layers[0].dW_K":
            assert np.array_equal(b[k], a[k] * c)
        else:
            assert np.array_equal(b[k], a[k]), k  # W = W_Q W_K^T is the same float64 matrix


@FAST
@given(pst.attention_cases(beta=1.0), st.sampled_from([0.5, 2.0]))
def test_beta_times_c_equals_W_Q_times_c(case, c):
    L = case.layers[0]
    a = reference_fields(Case(**{**case.__dict__, "beta": c}))
    b = reference_fields(_layer(case, W_Q=c * L.W_Q))
    assert np.array_equal(a["output"], b["output"]) and np.array_equal(a["dX"], b["dX"])


@FAST
@given(pst.model_cases(max_layers=1))
def test_with_zero_values_a_residual_layer_without_block_is_the_identity(case):
    c = Case(**{**_layer(case, W_V=np.zeros_like(case.X[:1].T @ case.X[:1]), W_g=None).__dict__, "residual": True})
    assert np.array_equal(reference_fields(c)["output"], c.X)


@FAST
@given(pst.attention_cases(max_n=1))
def test_one_token_attends_to_itself_only(case):
    L = case.layers[0]
    out = reference_fields(case)["output"]
    assert np.abs(out - case.X @ L.W_V).max() <= 2 * case.d * UNIT_ROUNDOFF["float64"] * np.abs(case.X @ L.W_V).max()


@FAST
@given(st.lists(st.floats(-1e30, 1e30, allow_nan=False, allow_subnormal=False), min_size=1, max_size=8),
       st.sampled_from(["float32", "float16", "bfloat16"]))  # fmt: skip
def test_rounding_to_a_format_is_idempotent_and_within_half_an_ulp(xs, precision):
    x = np.array(xs)
    r = rounder(precision)
    y = r(x)
    assert np.array_equal(r(y), y)
    tiny, top = {"float32": (2.0**-126, 3.4e38), "float16": (2.0**-14, 65504.0), "bfloat16": (2.0**-126, 3.38e38)}[
        precision
    ]
    sel = (np.abs(x) >= tiny) & (np.abs(x) <= top)  # the normal range: relative error at most u
    assert (np.abs(y - x)[sel] <= UNIT_ROUNDOFF[precision] * np.abs(x)[sel]).all()


@FAST
@given(st.lists(st.floats(-3e38, 3e38, allow_nan=False, allow_subnormal=False), min_size=1, max_size=8))
def test_bfloat16_rounding_agrees_with_torch(xs):
    torch = pytest.importorskip("torch", reason="cross-check with PyTorch: pip install 'altgrad[torch]'")
    x32 = np.array(xs, dtype=np.float32).astype(np.float64)  # torch rounds float32 -> bfloat16: same input
    ours = rounder("bfloat16")(x32)
    theirs = torch.tensor(x32, dtype=torch.float32).to(torch.bfloat16).to(torch.float64).numpy()
    assert np.array_equal(ours, theirs)
