"""Lemma 3.4 / C.4, H.2, J.3, K.2, I.5: the closed-form backward against mpmath finite differences.

Tolerances (reference/compare.py TOLERANCES): closed form in mpmath vs mpmath central differences at dps = 50,
per gradient field, < 1e-20 (the FD error is ~1e-33); float64 vs mpmath < 1e-12, normwise over the whole gradient
(per field it can be larger where a field is tiny through cancellation: collapsed tokens, spec Appendix B).
"""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import backward, forward, value_and_grad
from reference.compare import TOLERANCES
from reference.fd import fd_directional, fd_gradients
from reference.testing import (
    LOSSES,
    directional_errors,
    fd_fields,
    grad_fields,
    random_problem,
    whole_rel_err,
    worst_rel_err,
)

TOL_FD = TOLERANCES["FD_mpmath_dps50"]
TOL_64 = TOLERANCES["float64_vs_mpmath"]

# The acceptance grid of issue 2: n, d, m, causal, heads, residual, beta, loss.
GRID = list(itertools.product((5, 8), (2, 4), (1, 2, 3), (False, True), (1, 2), (False, True), (None, 1.0), LOSSES))


def _sample(grid, k, seed):
    """A seeded sample of the grid that still contains every value of every axis."""
    rng = np.random.default_rng(seed)
    picked = [grid[i] for i in rng.choice(len(grid), size=k, replace=False)]
    return picked


def _check_case(case, seed, entrywise):
    n, d, m, causal, heads, residual, beta, loss = case
    cfg = dict(causal=causal, heads=heads, residual=residual, beta=beta, activation="tanh")
    p = random_problem(np.random.default_rng(seed), n, d, m, loss=loss)
    tr = forward(p.X, p.layers, backend="mpmath", dps=50, **cfg)
    gm = backward(tr, value_and_grad(tr, p.loss)[1])
    if entrywise:
        field, e = worst_rel_err(grad_fields(gm), fd_fields(fd_gradients(p.X, p.layers, p.loss, dps=50, **cfg)))
    else:
        errs = directional_errors(gm, fd_directional(p.X, p.layers, p.loss, seed=seed, dps=50, **cfg))
        field = max(errs, key=errs.get)
        e = errs[field]
    assert e < TOL_FD, f"{field}: closed form vs mpmath FD rel err {e:.2e} at {case}"
    tf = forward(p.X, p.layers, **cfg)
    g64 = backward(tf, value_and_grad(tf, p.loss)[1])
    e64 = whole_rel_err(grad_fields(g64), grad_fields(gm))
    assert e64 < TOL_64, f"float64 vs mpmath normwise rel err {e64:.2e} at {case}"


@pytest.mark.paper("Lemma C.4")
@pytest.mark.parametrize("case", _sample(GRID, 6, 0), ids=str)
def test_closed_form_matches_mpmath_finite_differences_entrywise(case):
    _check_case(case, 1, entrywise=True)


@pytest.mark.paper("Lemma C.4")
@pytest.mark.parametrize("case", _sample(GRID, 24, 1), ids=str)
def test_closed_form_matches_mpmath_directional_differences_on_a_grid_sample(case):
    _check_case(case, 2, entrywise=False)


@pytest.mark.slow
@pytest.mark.paper("Lemma C.4")
@pytest.mark.parametrize("case", GRID, ids=str)
def test_closed_form_matches_mpmath_finite_differences_on_the_whole_grid(case):
    _check_case(case, 3, entrywise=False)


@pytest.mark.paper("Lemma H.2")
@pytest.mark.parametrize("activation", ["identity", "tanh", "gelu", "softplus", "cube", "relu"])
def test_every_activation_backpropagates_like_finite_differences(activation):
    # relu: inputs are random floats, so no pre-activation sits exactly on the kink (probability 0)
    p = random_problem(np.random.default_rng(7), 5, 2, 2)
    cfg = dict(activation=activation, residual=True)
    tr = forward(p.X, p.layers, backend="mpmath", dps=50, **cfg)
    gm = backward(tr, value_and_grad(tr, p.loss)[1])
    field, e = worst_rel_err(grad_fields(gm), fd_fields(fd_gradients(p.X, p.layers, p.loss, dps=50, **cfg)))
    assert e < TOL_FD, (field, e)


@pytest.mark.paper("Lemma 3.4")
@given(st.integers(0, 2**32 - 1), st.floats(-3, 3), st.floats(-3, 3))
def test_backward_is_linear_in_the_upstream_gradient(seed, a, b):
    rng = np.random.default_rng(seed)
    p = random_problem(rng, 6, 4, 2)
    tr = forward(p.X, p.layers, heads=2, causal=True, residual=True, activation="tanh")
    U, V = rng.uniform(-1, 1, (2, 6, 4))
    gu, gv, gw = backward(tr, U), backward(tr, V), backward(tr, a * U + b * V)
    for k, val in grad_fields(gw).items():
        combo = a * grad_fields(gu)[k] + b * grad_fields(gv)[k]
        scale = abs(a) * np.abs(grad_fields(gu)[k]).max() + abs(b) * np.abs(grad_fields(gv)[k]).max()
        assert np.abs(val - combo).max() <= 1e-13 * max(scale, 1e-300), k  # rounding of a few O(1) sums


@pytest.mark.paper("Lemma C.4")
@given(
    st.integers(1, 6), st.integers(1, 3), st.sampled_from([1, 2]), st.booleans(), st.booleans(),
    st.sampled_from(["tanh", "gelu"]), st.floats(0.25, 1.5), st.integers(0, 2**32 - 1),
)  # fmt: skip
def test_gradient_matches_mpmath_differences_on_random_small_shapes(n, dh, heads, causal, residual, act, R, seed):
    d = dh * heads
    rng = np.random.default_rng(seed)
    p = random_problem(rng, n, d, 2, scale=R)
    cfg = dict(causal=causal, heads=heads, residual=residual, activation=act)
    tr = forward(p.X, p.layers, backend="mpmath", dps=50, **cfg)
    gm = backward(tr, value_and_grad(tr, p.loss)[1])
    errs = directional_errors(gm, fd_directional(p.X, p.layers, p.loss, seed=seed, dps=50, **cfg))
    # entries bounded by R in [0.25, 1.5] (spec §0.3 fixture range): a non-residual stack collapses the tokens and
    # makes the upper layer's gradient tiny by cancellation; at 50 digits that still leaves > 20 correct digits
    assert max(errs.values()) < TOL_FD, errs


@pytest.mark.paper("Definition 3.1")
def test_the_gradient_depends_on_the_loss_only_through_dL_dT_m():
    from reference import CustomLoss, LinearLoss

    p = random_problem(np.random.default_rng(3), 5, 2, 2)
    tr = forward(p.X, p.layers, residual=True)
    C = np.random.default_rng(4).uniform(-1, 1, (5, 2))
    other = CustomLoss(lambda T, bk: ((T * T).sum() * 7, C))  # a different value, the same dL/dT_m
    g1 = backward(tr, value_and_grad(tr, LinearLoss(C))[1])
    g2 = backward(tr, value_and_grad(tr, other)[1])
    for k, val in grad_fields(g1).items():
        assert np.array_equal(val, grad_fields(g2)[k]), k
