"""Issue 13 items 3, 4, 8 for the reference: no silent NaN/inf, traces own their data, validation in blocks.

Item 3: float64 overflow anywhere in forward or backward is a ValueError naming the layer, the quantity and what to
change, never an array of NaN (and no numpy warning escapes). Item 4: mutating X, a weight or a loss target in place
after ``forward`` cannot change ``backward``. Item 8: finiteness of a 10^9-row broadcast X is checked in blocks.
"""

import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, seed
from hypothesis import strategies as st

from reference import HalfSquaredError, Layer, LinearLoss, backward, forward, value_and_grad
from reference import validate as v


def _problem(seed_=0, n=5, d=3, m=2):
    rng = np.random.default_rng(seed_)
    X = rng.uniform(-1, 1, (n, d))
    layers = [Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(4))) for _ in range(m)]
    return X, layers, rng.uniform(-1, 1, (n, d))


def _no_warnings(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning escaping would fail here
        return fn(*args, **kw)


# -- item 3: no silent NaN ----------------------------------------------------------------------------------------


def test_issue_13_huge_input_is_refused_naming_the_layer_and_the_logits():
    X, layers, _ = _problem()
    with pytest.raises(ValueError, match=r"layer 1: the attention logits .* not finite .*scale X or the weights"):
        _no_warnings(forward, X * 1e200, layers)


def test_issue_13_cube_overflow_is_refused_naming_the_g_output():
    X, layers, _ = _problem()
    with pytest.raises(ValueError, match=r"layer 1: the g_i output cube\(Z W_g\) is not finite .*cube activation"):
        _no_warnings(forward, X * 1e110, layers[:1], activation="cube", residual=True)


def test_issue_13_backward_overflow_is_refused_naming_the_layer_and_the_gradient():
    X, layers, G = _problem()
    tr = forward(X * 1e60, layers[:1], activation="cube")  # finite forward: |Z W_g|^3 ~ 1e180 < 1e308
    with pytest.raises(ValueError, match=r"layer 1: the backward .* not finite"):
        _no_warnings(backward, tr, G * 1e200)


def test_issue_13_loss_overflow_is_refused():
    X, layers, _ = _problem()
    tr = forward(X * 1e60, layers[:1], activation="cube")
    with pytest.raises(ValueError, match=r"loss: the value or dL/dT_m is not finite"):
        _no_warnings(value_and_grad, tr, HalfSquaredError(np.zeros_like(X)))


def test_the_mpmath_backend_has_no_overflow_where_float64_refuses():
    X, layers, G = _problem(1, n=3, d=2, m=1)
    tr = forward(X * 1e200, layers, backend="mpmath", dps=30)  # logits ~ 1e400: beyond float64, not beyond mpf
    assert all(tr.backend.ctx.isfinite(x) for x in tr.output.flat)
    assert max(abs(x) for x in tr.output.flat) > 1e190  # the output is a convex combination of rows of X W_V


@seed(13)
@given(st.integers(0, 300), st.sampled_from(["identity", "cube", "tanh", "gelu", "softplus"]), st.booleans())
def test_forward_and_backward_either_refuse_clearly_or_return_finite_numbers(k, activation, residual):
    X, layers, G = _problem(k)
    scale = 10.0**k
    try:
        tr = _no_warnings(forward, X * scale, layers, activation=activation, residual=residual)
        g = _no_warnings(backward, tr, G)
    except ValueError as e:
        assert str(e).startswith("layer ") and "not finite in float64" in str(e) and "expected" in str(e)
        return
    for a in [tr.output, *g.dT] + [x for lg in g.layers for x in (lg.dW, lg.dW_V, lg.dW_Q, lg.dW_K, lg.dW_g)]:
        assert np.isfinite(a).all()


# -- item 4: traces own their data ---------------------------------------------------------------------------------


def _grads_bytes(g):
    return [a.tobytes() for a in g.dT] + [
        x.tobytes() for lg in g.layers for x in (lg.dW_Q, lg.dW_K, lg.dW, lg.dW_V, lg.dW_g)
    ]


@pytest.mark.parametrize("target", ["X", "W_Q", "W_K", "W_V", "W_g", "loss target"])
def test_issue_13_mutating_an_input_after_forward_does_not_change_backward(target):
    X, layers, _ = _problem(2)
    Y = np.zeros_like(X)
    loss = HalfSquaredError(Y)
    tr = forward(X, layers, activation="tanh", residual=True)
    want = _grads_bytes(backward(tr, value_and_grad(tr, loss)[1]))
    arr = {"X": X, "loss target": Y}.get(target)
    arr = getattr(layers[0], target) if arr is None else arr
    arr *= 3.0  # in place
    arr[0, 0] = 7.0
    assert _grads_bytes(backward(tr, value_and_grad(tr, loss)[1])) == want


def test_trace_arrays_are_read_only():
    X, layers, _ = _problem(3)
    tr = forward(X, layers, activation="tanh")
    for a in (tr.X, tr.output, tr.caches[0].attn.heads[0].f, tr.layers[0].W_V, tr.caches[1].T_in):
        with pytest.raises(ValueError, match="read-only"):
            a[0, 0] = 1.0


@seed(4)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["X", "W_Q", "W_K", "W_V", "W_g", "C"]))
def test_any_in_place_change_after_forward_leaves_backward_unchanged(s, target):
    X, layers, _ = _problem(s % 1000)
    C = np.random.default_rng(s).uniform(-1, 1, X.shape)
    loss = LinearLoss(C)
    tr = forward(X, layers, activation="gelu")
    want = _grads_bytes(backward(tr, value_and_grad(tr, loss)[1]))
    arr = {"X": X, "C": C}.get(target)
    arr = getattr(layers[s % 2], target) if arr is None else arr
    arr += np.random.default_rng(s + 1).uniform(-1, 1, arr.shape)
    assert _grads_bytes(backward(tr, value_and_grad(tr, loss)[1])) == want


# -- item 8: validation in blocks ----------------------------------------------------------------------------------

# The old check built an n x d boolean array: 10^8 x 4 bytes = 381 MiB. A block is 4 MiB of rows
# (validate.FINITE_BLOCK_BYTES); 16 MiB leaves room for numpy's reduction buffers.
PEAK_BYTES = 16 * 2**20


def _peak(fn, *args):
    tracemalloc.start()
    try:
        fn(*args)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_issue_13_a_finite_broadcast_x_of_1e8_rows_is_accepted_in_bounded_memory():
    X = np.broadcast_to(np.array([0.5, -1.0, 2.0, 3.0]), (10**8, 4))
    assert _peak(v.matrix, "X", X, (None, None)) < PEAK_BYTES


def test_issue_13_a_broadcast_x_of_1e9_rows_with_an_inf_is_refused_in_bounded_memory():
    X = np.broadcast_to(np.array([0.5, np.inf, 2.0, 3.0]), (10**9, 4))
    with pytest.raises(ValueError, match=r"X: expected finite entries, got inf at index \(0, 1\)"):
        tracemalloc.start()
        try:
            v.matrix("X", X, (None, None))
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    assert peak < PEAK_BYTES


def test_a_nan_deep_in_a_memory_mapped_x_is_found_with_its_index(tmp_path):
    X = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float64, shape=(300_000, 8))
    X[:] = 1.0
    X[234_567, 5] = np.nan
    with pytest.raises(ValueError, match=r"got nan at index \(234567, 5\)"):
        v.matrix("X", X, (None, None))


@seed(8)
@given(st.integers(1, 5000), st.integers(1, 6), st.integers(0, 10**6), st.sampled_from([np.nan, np.inf, -np.inf]))
def test_blocked_finiteness_agrees_with_the_elementwise_check(rows, cols, pos, bad):
    X = np.ones((rows, cols)) * 1e300  # sums overflow to inf: the block must still be accepted
    idx = None
    if pos % 3:
        idx = np.unravel_index(pos % X.size, X.shape)
        X[idx] = bad
    if idx is None:
        assert v.matrix("X", X, (None, None)) is X
    else:
        with pytest.raises(ValueError, match=rf"at index \({idx[0]}, {idx[1]}\)"):
            v.matrix("X", X, (None, None))
