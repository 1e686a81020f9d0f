"""The forward certificate's lean forms (issue 14 item 4) give the results of the plain forms they replace, bit for bit.

* fastpath.certificate._bnd reuses its temporaries: the same operations on the same operands as the expression
  ``tau * M + (1 + tau) * ((1 + rr) * ME + rr * M)`` (IEEE + and * are commutative), for every broadcast used.
* fastpath.certificate.head_kernel skips ``E_X @ |W|`` on an exact input (E_X = 0): the fields equal the plain
  formula of its Step 1 written out here, and an input error still enters.
* fastpath.certificate.forward_bound on an exact input uses the row ``up * max_j E_h,j`` without a concatenated
  (n, d_h) column block: equal to the bound with the block concatenated, refined (Step 1') or not.
* fastpath.centring.centred_cs_floor is a lower bound of the mean-centred Cauchy-Schwarz range that
  fastpath.layer._centring's gate compares (decided in exact rational arithmetic), so the gate's decision is unchanged.
"""

import math
from fractions import Fraction

import numpy as np
import pytest

import fastpath
from fastpath import certificate as C
from fastpath.centring import centred_cs_floor
from fastpath.compare import random_layers
from fastpath.directed import forward_chain, own_up
from fastpath.layer import head_forward
from fastpath.lowrank import gamma
from fastpath.ranges import cs_bound
from fastpath.work import Work


def bits(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64)).view(np.uint64)


@pytest.mark.parametrize(
    "tau_shape, me_shape", [((50, 1), (50, 7)), ((50, 1), (1, 7)), ((), (50, 7)), ((), ()), ((50, 1), ())]
)
def test_bnd_in_place_equals_the_plain_expression_bit_for_bit(tau_shape, me_shape):
    rng = np.random.default_rng(0)
    tau = rng.uniform(0, 1e-3, tau_shape) if tau_shape else 3e-4
    M, ME = rng.uniform(0, 2, (50, 7)), rng.uniform(0, 1e-9, me_shape) if me_shape else 0.0
    for rr in (0.0, 1e-13, 0.3):
        want = tau * M + (1 + tau) * ((1 + rr) * ME + rr * M)
        assert np.array_equal(bits(C._bnd(tau, M, ME, rr)), bits(want))


def plain_kernel(st, X, E_X):
    """Step 1 of fastpath.certificate as written before the exact-input shortcut."""
    g_d = gamma(X.shape[1] + 2)
    E = [E_X @ np.abs(W) + g_d * (np.abs(X) @ np.abs(W)) for W in (st.W_Q, st.W_K, st.W_V)]
    kmax, ekmax = float(C._rownorm(st.k).max()), float(C._rownorm(E[1]).max())
    sigma = abs(st.beta) * (C._rownorm(E[0]) * kmax + C._rownorm(np.abs(st.q) + E[0]) * ekmax)
    return E, sigma


@pytest.mark.parametrize("input_error", [False, True])
def test_head_kernel_equals_the_plain_step_1_with_and_without_an_input_error(input_error):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (300, 6))
    L = random_layers(rng, 6, 1, scale=1.0, with_g=False)[0]
    st = head_forward(X, L.W_Q, L.W_K, L.W_V, 1 / 6, eps=1e-6, kind="chebyshev", causal=False, budget=2**30)
    E_X = rng.uniform(0, 1e-9, X.shape) if input_error else np.zeros(X.shape)
    hk = C.head_kernel(st, X, E_X)
    (E_q, E_k, E_h), sigma = plain_kernel(st, X, E_X)
    for got, want in ((hk.E_q, E_q), (hk.E_k, E_k), (hk.E_h, E_h), (hk.sigma, sigma)):
        assert np.array_equal(bits(got), bits(want))
    assert hk.exact_in is (not input_error)


def concatenated_bound(st, hk, fz):
    """forward_bound's first bound on an exact input with the E_h row concatenated as an (n, d_h) block."""
    n, d_h = st.h.shape
    M = fz.FY * hk.up
    M = np.concatenate([M[:, :d_h], np.broadcast_to(hk.up * hk.E_h.max(axis=0), (n, d_h)), M[:, d_h:]], axis=1)
    tau = hk.tau[:, None]
    return tau * M[:, :d_h] + (1 + tau) * ((1 + hk.rr) * M[:, d_h : 2 * d_h] + hk.rr * M[:, :d_h])


@pytest.mark.parametrize("degree", [None, 8])
def test_forward_bound_on_an_exact_input_equals_the_bound_with_the_concatenated_block(degree):
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, (400, 4))
    L = random_layers(rng, 4, 1, scale=0.3, with_g=False)[0]
    st = head_forward(X, L.W_Q, L.W_K, L.W_V, 1 / 4, eps=1e-6, kind="chebyshev", causal=False, budget=2**30,
                      degree=degree)  # fmt: skip
    hk = C.head_kernel(st, X, np.zeros(X.shape))
    fz = C._carry(st, C.forward_columns(st, hk), Work())
    refine = fz.info["refine"]
    assert refine is (degree is not None)  # degree 8 at this range: error ~1e-21, below the rounding sigma
    want = own_up(concatenated_bound(st, hk, fz), forward_chain(X.shape[1]))  # Step 0': the bound's own arithmetic
    got = C.forward_bound(st, hk, Work(), fz)
    if refine:
        assert (got <= want).all()  # Step 1' is taken only where it is smaller
    else:
        assert np.array_equal(bits(got), bits(want))


def exact_centred_cs_squared(q, k, beta, mq, mk) -> Fraction:
    """beta^2 max_i ||fl(q_i - mq)||^2 max_j ||fl(k_j - mk)||^2 in exact rational arithmetic."""

    def top(Z, m):
        D = Z - m  # the float differences cs_bound sees
        return max(sum(Fraction(float(x)) ** 2 for x in row) for row in D)

    return Fraction(abs(beta)) ** 2 * top(q, mq) * top(k, mk)


@pytest.mark.parametrize("seed, offset", [(3, 0.0), (4, 0.7), (5, 3.0), (6, 50.0)])
def test_the_centring_gates_lower_bound_is_below_the_exact_centred_cauchy_schwarz_range(seed, offset):
    rng = np.random.default_rng(seed)
    q, k = rng.uniform(-1, 1, (60, 5)) + offset, rng.uniform(-1, 1, (50, 5)) - offset
    mq, mk = q.mean(axis=0), k.mean(axis=0)
    floor = centred_cs_floor(q, k, 0.4)
    assert Fraction(floor) ** 2 <= exact_centred_cs_squared(q, k, 0.4, mq, mk)
    assert floor <= cs_bound(q - mq, k - mk, 0.4)


def test_the_centring_gates_lower_bound_is_close_where_the_means_are_small():
    """Many tokens about 0 (the small-logit inputs): ||mean|| << max ||row||, so the floor decides the gate."""
    rng = np.random.default_rng(9)
    q, k = rng.uniform(-1, 1, (4000, 12)), rng.uniform(-1, 1, (4000, 12))
    mq, mk = q.mean(axis=0), k.mean(axis=0)
    assert 0.95 * cs_bound(q - mq, k - mk, 0.1) <= centred_cs_floor(q, k, 0.1) <= cs_bound(q - mq, k - mk, 0.1)


def test_a_floor_that_ignores_the_mean_is_caught_by_the_exact_check():
    """The check above is not vacuous: dropping the ||m_q||, ||m_k|| terms overstates the range on offset inputs."""
    rng = np.random.default_rng(7)
    q, k = rng.uniform(-1, 1, (60, 5)) + 3.0, rng.uniform(-1, 1, (50, 5)) - 3.0
    wrong = 0.4 * float(np.sqrt((q * q).sum(axis=1)).max()) * float(np.sqrt((k * k).sum(axis=1)).max())
    assert Fraction(wrong) ** 2 > exact_centred_cs_squared(q, k, 0.4, q.mean(axis=0), k.mean(axis=0))


def test_auto_recentring_decides_as_the_full_gate_on_offset_and_centred_inputs():
    rng = np.random.default_rng(8)
    for off, want in ((0.0, False), (1.0, True)):
        X = rng.uniform(-1, 1, (500, 4)) + off
        layers = random_layers(rng, 4, 1, scale=1.4, with_g=False)
        auto = fastpath.forward(X, layers, eps=1e-6, recentre="auto", allow_vacuous=True)
        assert auto.recentred is want
        assert math.isfinite(float(np.max(auto.bound_attn[0])))
