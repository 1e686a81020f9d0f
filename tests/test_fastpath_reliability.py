"""Issue 13 (fast path part): no crash, no silent wrong number, no certificate that says nothing.

Each test reproduces an item of the issue first (the issue's own reproducer where it gives one), then asserts the
documented behaviour: a correct, certified result, or a ValueError in the user's terms.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastpath
import reference
from fastpath.compare import compare, random_layers
from reference.model import Layer

# the refusals fastpath documents (fastpath.model docstring); anything else is a bug
REFUSALS = (r"^X: layer \d+: the .* certificate of .* is vacuous", r"^dL_dout: (layer \d+: )?the .* certificate of",
            r"^X: layer \d+: .* (not finite|beyond what float64)", r"^eps: ", r"^X: the logits")  # fmt: skip


def _is_documented_refusal(msg: str) -> bool:
    import re

    return any(re.search(p, msg) for p in REFUSALS)


def _issue_13_layer():
    X = np.array([[1.0] * 4, [-1.0] * 4])
    W = 1.7 * np.eye(4)
    return X, Layer(W_Q=W, W_K=W, W_V=np.eye(4))


@pytest.mark.parametrize("method", ["auto", "lowrank"])
@pytest.mark.parametrize("certificate", ["a-posteriori", "a-priori"])
@pytest.mark.parametrize("m", [1, 2])
def test_issue_13_item_1_no_overflow_error_on_the_reproducer(method, certificate, m):
    X, L = _issue_13_layer()
    try:
        tr = fastpath.forward(X, [L] * m, eps=1e-4, beta=1.0, method=method, certificate=certificate)
        g = fastpath.backward(tr, np.ones((2, 4)))
    except ValueError as e:  # documented refusal, never OverflowError
        assert _is_documented_refusal(str(e)), str(e)
        return
    rg = reference.backward(reference.forward(X, [L] * m, beta=1.0), np.ones((2, 4)))
    assert (np.abs(g.dX - rg.dX) <= g.bound.dX).all()
    assert np.isfinite(g.bound.dX).all()


def test_issue_13_item_2_the_vacuous_one_layer_certificate_is_refused_with_r_eps_and_advice():
    X, L = _issue_13_layer()  # R = 11.6, degree 31: the a-priori attention bound was 4.85 although |Attn| <= 1
    with pytest.raises(ValueError) as err:
        fastpath.forward(X, [L], eps=1e-4, beta=1.0, method="lowrank", certificate="a-priori")
    msg = str(err.value)
    for word in ("X: layer 1", "Attn_1", "vacuous", "R = 11.5", "eps = 0.0001", "degree 31", "allow_vacuous=True"):
        assert word in msg, f"{word!r} missing from: {msg}"


def test_issue_13_item_2_allow_vacuous_returns_the_certificate_anyway_and_it_still_holds():
    X, L = _issue_13_layer()
    tr = fastpath.forward(X, [L], eps=1e-4, beta=1.0, method="lowrank", certificate="a-priori", allow_vacuous=True)
    rt = reference.forward(X, [L], beta=1.0)
    assert float(tr.bound_attn[0].max()) >= 1.0  # vacuous: at least max |V| = 1
    assert (np.abs(tr.attn[0] - rt.attn[0]) <= tr.bound_attn[0]).all()


def test_issue_13_item_2_the_exact_method_certifies_the_reproducer_to_float64_rounding():
    X, L = _issue_13_layer()
    tr = fastpath.forward(X, [L, L], eps=1e-4, beta=1.0)  # auto: rank >= n = 2, so exact
    assert tr.method == "exact"
    g = fastpath.backward(tr, np.ones((2, 4)))
    rg = reference.backward(reference.forward(X, [L, L], beta=1.0), np.ones((2, 4)))
    assert (np.abs(g.dX - rg.dX) <= g.bound.dX).all()
    assert float(g.bound.dX.max()) < 1e-6 * float(np.abs(rg.dX).max())  # informative, not vacuous


@pytest.mark.parametrize("scale", [1e200, 1e160, 1e80])
def test_issue_13_item_3_huge_inputs_are_refused_in_the_users_terms(scale):
    X, L = _issue_13_layer()
    with pytest.raises(ValueError) as err:
        fastpath.forward(X * scale, [L], eps=1e-4)
    msg = str(err.value)
    assert msg.startswith("X: ") and "R: expected a finite number" not in msg, msg


def test_issue_13_item_3_an_overflowing_activation_is_a_clear_error_naming_the_layer():
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (16, 4)) * 1e30
    layers = [Layer(np.eye(4) * 1e-30, np.eye(4) * 1e-30, np.eye(4), W_g=np.eye(4) * 1e120)]
    with pytest.raises(ValueError, match=r"^X: layer 1: the block output g_1 is not finite"):
        fastpath.forward(X, layers, eps=1e-4, activation="cube")


@pytest.mark.parametrize("what", ["X", "W_V", "W_Q"])
def test_issue_13_item_4_mutating_inputs_after_forward_cannot_change_backward(what):
    rng = np.random.default_rng(3)
    X, layers, dL = rng.uniform(-1, 1, (64, 4)), random_layers(rng, 4, 2), rng.uniform(-1, 1, (64, 4))
    kw = dict(eps=1e-6, method="lowrank", residual=True, activation="tanh")
    clean = fastpath.backward(fastpath.forward(X.copy(), layers, **kw), dL)
    tr = fastpath.forward(X, layers, **kw)
    target = X if what == "X" else getattr(layers[0], what)
    target += 0.25  # in place, between forward and backward (the issue's reproducer)
    g = fastpath.backward(tr, dL)
    np.testing.assert_array_equal(g.dX, clean.dX)
    np.testing.assert_array_equal(g.layers[0].dW_V, clean.layers[0].dW_V)
    with pytest.raises(ValueError, match="read-only"):
        tr.X[0, 0] = 1.0


@st.composite
def _hostile(draw):
    d = draw(st.sampled_from([2, 4]))
    return dict(n=draw(st.integers(2, 40)), d=d, m=draw(st.integers(1, 3)), causal=draw(st.booleans()),
                residual=draw(st.booleans()), eps=draw(st.sampled_from([1e-3, 1e-6, 1e-9])),
                seed=draw(st.integers(0, 2**31 - 1)), scale=draw(st.sampled_from([0.5, 2.0, 5.0, 20.0])),
                act=draw(st.sampled_from(["identity", "tanh", "gelu", "relu", "cube"])),
                method=draw(st.sampled_from(["auto", "lowrank"])))  # fmt: skip


@given(_hostile())
def test_issue_13_property_any_input_gives_a_certified_result_or_a_documented_refusal(p):
    rng = np.random.default_rng(p["seed"])
    X = rng.uniform(-p["scale"], p["scale"], (p["n"], p["d"]))
    layers = random_layers(rng, p["d"], p["m"], scale=p["scale"])
    dL = rng.uniform(-1, 1, (p["n"], p["d"]))
    try:
        c = compare(X, layers, dL, eps=p["eps"], beta=1.0, causal=p["causal"], residual=p["residual"],
                    activation=p["act"], method=p["method"])  # fmt: skip
    except ValueError as e:
        assert _is_documented_refusal(str(e)), f"undocumented error {e!r} for {p}"
        return
    assert not c.violations, f"violations {c.violations} for {p}"
