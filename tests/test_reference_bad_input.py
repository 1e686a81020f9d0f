"""Bad input gets a clear error naming the argument, the expected and the actual value (never a wrong number)."""

import numpy as np
import pytest

from reference import Layer, LinearLoss, backward, forward, value_and_grad
from reference.blocked import layer_gradient_blocked


def _layer(d, W_g=False):
    rng = np.random.default_rng(0)
    return Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(3)), W_g=rng.uniform(-1, 1, (d, d)) if W_g else None)


X = np.random.default_rng(1).uniform(-1, 1, (5, 4))


@pytest.mark.parametrize(
    ("kwargs", "exc", "words"),
    [
        (dict(X=np.ones(5)), ValueError, ["X", "expected shape", "(5,)"]),
        (dict(X=np.ones((5, 4), dtype=np.float32)), TypeError, ["X", "float64", "float32"]),
        (dict(X=np.ones((5, 4), dtype=int)), TypeError, ["X", "float64", "int64"]),
        (dict(X=[[1.0, 2.0]]), TypeError, ["X", "ndarray", "list"]),
        (dict(X=np.array([[np.nan, 1, 2, 3.0]])), ValueError, ["X", "finite"]),
        (dict(X=np.array([[np.inf, 1, 2, 3.0]])), ValueError, ["X", "finite"]),
        (dict(heads=3), ValueError, ["heads", "divisor of d = 4", "3"]),
        (dict(heads=0), ValueError, ["heads", "positive integer", "0"]),
        (dict(activation="swish"), ValueError, ["activation", "tanh", "swish"]),
        (dict(backend="float32"), ValueError, ["backend", "mpmath", "float32"]),
        (dict(backend="mpmath", dps=5), ValueError, ["dps", ">= 15", "5"]),
        (dict(causal="yes"), TypeError, ["causal", "bool", "yes"]),
        (dict(beta=float("nan")), ValueError, ["beta", "finite"]),
        (dict(beta="1/d"), TypeError, ["beta", "real number"]),
        (dict(layers=[]), TypeError, ["layers", "non-empty list"]),
        (dict(layers=[_layer(3)]), ValueError, ["layers[0].W_Q", "(4, 4)", "(3, 3)"]),
        (dict(layers=[Layer(np.eye(4), np.eye(4), np.eye(4), W_g=np.eye(3))]), ValueError, ["layers[0].W_g", "(4, 4)"]),
        (dict(layers=[_layer(4), "layer"]), TypeError, ["layers[1]", "Layer", "str"]),
    ],
    ids=lambda v: str(v)[:40] if not isinstance(v, dict) else ",".join(v),
)
def test_forward_rejects_bad_input_with_a_message_naming_the_argument(kwargs, exc, words):
    args = dict(X=X, layers=[_layer(4)]) | kwargs
    with pytest.raises(exc) as info:
        forward(args.pop("X"), args.pop("layers"), **args)
    for w in words:
        assert w in str(info.value), (w, str(info.value))


def test_backward_rejects_an_upstream_gradient_of_the_wrong_shape():
    tr = forward(X, [_layer(4)])
    with pytest.raises(ValueError, match=r"dL_dout: expected shape \(5, 4\), got \(4, 5\)"):
        backward(tr, np.ones((4, 5)))


def test_backward_rejects_a_non_finite_upstream_gradient():
    tr = forward(X, [_layer(4)])
    G = np.ones((5, 4))
    G[2, 1] = np.nan
    with pytest.raises(ValueError, match="dL_dout: expected finite entries"):
        backward(tr, G)


def test_backward_rejects_something_that_is_not_a_trace():
    with pytest.raises(TypeError, match="trace: expected a reference Trace"):
        backward({"X": X}, np.ones((5, 4)))


def test_an_object_array_is_refused_by_the_float64_backend():
    Xo = X.astype(object)
    with pytest.raises(TypeError, match="X: expected dtype float64, got object"):
        forward(Xo, [_layer(4)])


def test_losses_check_their_own_shapes():
    tr = forward(X, [_layer(4)])
    with pytest.raises(ValueError, match=r"C: expected shape \(5, 4\), got \(4, 4\)"):
        value_and_grad(tr, LinearLoss(np.ones((4, 4))))
    with pytest.raises(TypeError, match="loss: expected a callable"):
        value_and_grad(tr, "mse")


def test_cross_entropy_rejects_labels_out_of_range():
    from reference import CrossEntropy

    tr = forward(X, [_layer(4)])
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 3\)"):
        value_and_grad(tr, CrossEntropy(np.ones((4, 3)), np.array([0, 1, 2, 3, 0])))


def test_blocked_gradient_rejects_a_bad_block_size():
    W = np.eye(4)
    with pytest.raises(ValueError, match="block: expected a positive integer, got 0"):
        layer_gradient_blocked(X, W, W, W, np.ones((5, 4)), block=0)
