"""The non-causal backward's own block size (fastpath.layer.backward_block): same result, same counted work."""

import numpy as np
import pytest

import fastpath
from fastpath import layer
from fastpath.compare import random_layers
from fastpath.lowrank import working_set_bytes


def _head(n: int, d: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d))
    L = random_layers(rng, d, 1, with_g=False)[0]
    st = layer.head_forward(X, L.W_Q, L.W_K, L.W_V, 1 / d, eps=1e-8, kind="chebyshev", causal=False,
                            budget=2**30, recentre=False)  # fmt: skip
    return X, st, rng.uniform(-1, 1, (n, d))


def test_the_backward_block_is_at_least_the_forwards_and_fits_the_budget():
    assert layer.backward_block(210, 10**6, 4, 4, 936, 2**31) == layer.BACKWARD_BLOCK
    assert layer.backward_block(210, 500, 4, 4, 64, 2**31) == 500  # never more than n
    assert layer.backward_block(10626, 2**16, 4, 4, 64, 2**31) == layer.BACKWARD_BLOCK
    small = working_set_bytes(10626, 4, 4, 128)  # a budget that holds blocks of 128 tokens, not 256
    assert layer.backward_block(10626, 2**16, 4, 4, 64, small) == 128
    assert layer.backward_block(10626, 2**16, 4, 4, 64, 1) == 64  # the forward's block was admitted by the budget


@pytest.mark.paper("Lemma E.11")
def test_the_non_causal_backward_gives_the_same_gradients_and_work_with_its_larger_block():
    n, d = 3000, 4
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (n, d))
    layers = random_layers(rng, d, 1, with_g=False)
    G = rng.uniform(-1, 1, (n, d))
    runs = []
    for block in (None, 64):  # default: the backward takes its own larger block; 64: both passes use 64
        tr = fastpath.forward(X, layers, eps=1e-8, beta=1 / d, block=block)
        runs.append((tr, fastpath.backward(tr, G)))
    (t1, g1), (t2, g2) = runs
    st1, st2 = t1.caches[0].heads[0], t2.caches[0].heads[0]
    assert st1.back_block > st1.block and st2.back_block == 0  # an explicit block is kept for the backward too
    assert g1.madds == g2.madds  # every product and feature is counted per entry: the blocking does not matter
    # both are within their certified bounds of the exact gradient, so they differ by at most the two bounds
    assert (np.abs(g1.dX - g2.dX) <= g1.bound.dX + g2.bound.dX).all()
