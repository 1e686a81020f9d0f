"""reference.proptest.oracle: the derived tolerance passes correct code, and a failure says where and how to rerun."""

import numpy as np
import pytest

from reference.attention import attention_forward, attention_vjp
from reference.model import Layer
from reference.proptest import Case, OracleFailure, check, judge, reference_fields, verify
from reference.proptest.mutants import correct_attention, float32_inside
from reference.proptest.oracle import C_REF, U64
from reference.proptest.precision import UNIT_ROUNDOFF, rounder


def _case(n=3, d=2, causal=True, beta=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d))
    lay = Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(3)))
    return Case(X, (lay,), rng.uniform(-1, 1, (n, d)), beta=beta, causal=causal)


def test_the_reference_itself_passes_over_drawn_cases():
    verify(correct_attention, max_examples=25)


def test_the_reference_run_in_float32_passes_as_float32_and_fails_as_float64():
    case = _case()
    v = check(float32_inside, case, precision="float32")
    assert v.ok and max(f.ratio for f in v.fields.values()) < 1
    with pytest.raises(OracleFailure):
        check(float32_inside, case, precision="float64")


def test_the_tolerance_is_c_times_the_roundoff_ratio_times_the_reference_error_plus_the_floor():
    case = _case().rounded(rounder("float32"))
    ref = reference_fields(case)
    v = judge({k: ref[k] for k in ("output", "dX")}, case, "float32")
    for f in v.fields.values():
        assert f.tol == pytest.approx(C_REF * UNIT_ROUNDOFF["float32"] / U64 * f.ref_err + f.floor, rel=1e-12)
        assert f.user_err == pytest.approx(f.ref_err, rel=1e-9)  # the user *is* the float64 reference here


def test_a_field_zero_through_cancellation_is_judged_against_the_gradient_scale():
    # one token: P = p1 - p2 = 0 exactly, so dL/dW = 0; a user's uncentred X^T (p1 - p2) X may leave rounding
    # noise of a few roundings of the gradient's scale (n + d of them here), which must pass; 1e-3 must not
    case = _case(n=1, d=2, causal=False)
    ref = reference_fields(case)
    scale = max(np.abs(a).max() for k, a in ref.items() if k != "output")
    noisy = {"output": ref["output"], "dW": ref["layers[0].dW"] + (case.n + case.d) * U64 * scale}
    assert judge(noisy, case).ok
    wrong = {"output": ref["output"], "dW": ref["layers[0].dW"] + 1e-3}
    assert not judge(wrong, case).ok


def test_a_failure_names_field_entry_configuration_values_and_a_reproducer_that_rebuilds_the_case():
    case = _case(beta=0.5)

    def off_by_one_entry(X, W_Q, W_K, W_V, G, *, beta, causal, heads):
        out = correct_attention(X, W_Q, W_K, W_V, G, beta=beta, causal=causal, heads=heads)
        out["dW_V"][1, 0] += 1e-9
        return out

    with pytest.raises(OracleFailure) as e:
        check(off_by_one_entry, case)
    msg = str(e.value)
    assert "field layers[0].dW_V is wrong at entry (1, 0)" in msg
    assert "n=3, d=2, layers=1, heads=1, beta=0.5" in msg and "causal=True" in msg
    f = e.value.verdict.failing[0]
    assert f"yours = {f.user!r}" in msg and f"high precision (dps=40) = {f.hp!r}" in msg
    line = msg.split("reproduce: ", 1)[1]
    assert line.startswith("reference.proptest.check(off_by_one_entry, Case(")
    rebuilt = eval(line[line.index("Case(") : line.rindex(", framework=")], {"np": np, "Case": Case, "Layer": Layer})
    assert repr(rebuilt) == repr(case)


def test_a_nan_from_the_user_is_a_failure_of_that_field_not_an_exception():
    case = _case()
    ref = reference_fields(case)
    bad = dict(ref)
    bad["dX"] = ref["dX"].copy()
    bad["dX"][0, 0] = np.nan
    v = judge({"output": ref["output"], "dX": bad["dX"]}, case)
    assert [f.name for f in v.failing] == ["dX"]


def test_a_user_on_other_inputs_than_the_case_is_caught_in_the_output():
    def ignores_the_mask(X, W_Q, W_K, W_V, G, *, beta, causal, heads):
        c = attention_forward(X, W_Q, W_K, W_V, beta=beta, causal=False, heads=heads)
        return {"output": c.out, "dX": attention_vjp(G, c).dX}

    with pytest.raises(OracleFailure, match="field (output|dX) is wrong"):
        check(ignores_the_mask, _case(causal=True))


def test_unknown_fields_missing_output_and_bad_shapes_are_refused_by_name():
    case = _case()
    ref = reference_fields(case)
    with pytest.raises(ValueError, match="unknown field 'dQ'"):
        judge({"output": ref["output"], "dQ": ref["dX"]}, case)
    with pytest.raises(ValueError, match="expected the forward 'output'"):
        judge({"dX": ref["dX"]}, case)
    with pytest.raises(ValueError, match=r"result\['dX'\]: expected shape \(3, 2\)"):
        judge({"output": ref["output"], "dX": ref["dX"].T}, case)
    with pytest.raises(ValueError, match="precision: expected one of"):
        judge({"output": ref["output"]}, case, "float8")


def test_a_case_refuses_a_width_that_the_heads_do_not_divide():
    c = _case(d=3)
    with pytest.raises(ValueError, match="heads: expected a divisor of d = 3, got 2"):
        Case(c.X, c.layers, c.G, heads=2)


def test_bfloat16_rounding_is_to_nearest_with_8_significand_bits():
    r = rounder("bfloat16")
    assert r(np.array([1 + 2.0**-8]))[0] == 1.0  # a tie rounds to even
    assert r(np.array([1 + 3 * 2.0**-8]))[0] == 1 + 2.0**-6
    assert r(np.array([0.1]))[0] == pytest.approx(0.1, rel=2.0**-8)
