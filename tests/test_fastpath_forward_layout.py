"""The non-causal forward's layout (issue 14 item 4): features built several blocks at a time, the k-side state
transposed once, and the Cauchy-Schwarz rounding scale kept from the range computation change no number.

Each test compares with the route it replaces bit for bit (``np.array_equal``, exact ints for the counted work):
the replacements reorder no floating-point operation, so no tolerance applies.
"""

import numpy as np
import pytest

from fastpath import head, layer
from fastpath.compare import random_layers
from fastpath.ranges import FAST_RTOL, cs_bound, logit_ranges
from fastpath.work import Work


def _head(n, d, seed, recentre=False, block=None):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d)) + (1.5 if recentre else 0.0)
    L = random_layers(rng, d, 1, with_g=False)[0]
    return layer.head_forward(X, L.W_Q, L.W_K, L.W_V, 1 / d, eps=1e-6, kind="chebyshev", causal=False,
                              budget=2**30, block=block, recentre=recentre, row_degrees=False)  # fmt: skip


@pytest.mark.parametrize(("n", "block", "span", "recentre"), [(300, 64, 2, False), (301, 37, 3, True),
                                                               (100, 128, 2, False), (257, 16, 1, True)])  # fmt: skip
def test_feature_spans_are_the_block_features_bit_for_bit_and_count_the_same_work(n, block, span, recentre):
    st = _head(n, 4, 1, recentre=recentre, block=block)
    assert st.recentred == recentre
    for side in "qk":
        w_one, w_span = Work(), Work()
        one = head.Feats(st, w_one, keep=False)
        got = [(t0, t1, F.copy()) for t0, t1, F in head.Feats(st, w_span, keep=False).spans(side, n, span)]
        assert [(t0, t1) for t0, t1, _ in got] == [(t0, min(n, t0 + block)) for t0 in range(0, n, block)]
        for t0, t1, F in got:
            assert np.array_equal(F, getattr(one, side)(t0, t1))
        assert w_span.madds == w_one.madds == st.rank * n


def test_right_with_the_state_transposed_once_is_right_bit_for_bit():
    rng = np.random.default_rng(2)
    F, S = rng.normal(size=(35, 50)), rng.normal(size=(35, 9))
    w1, w2, c1, c2 = Work(), Work(), Work(), Work()
    assert np.array_equal(head.right(w1, F, S), head.right(w2, F, np.ascontiguousarray(S.T), transposed=True))
    a = head.right(w1, F, S, c1, 5)
    b = head.right(w2, F, np.ascontiguousarray(S.T), c2, 5, transposed=True)
    assert np.array_equal(a, b) and (w1.madds, c1.madds) == (w2.madds, c2.madds)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_kept_cauchy_schwarz_scale_is_cs_bound_of_the_head(seed):
    rng = np.random.default_rng(seed)
    q, k = rng.normal(size=(200, 3)) * 10.0 ** rng.uniform(-3, 3), rng.normal(size=(150, 3))
    assert logit_ranges(q, k, 0.7, rtol=FAST_RTOL).cs == cs_bound(q, k, 0.7)
    st = _head(300, 4, seed)
    assert st.cs is not None and st.R_cs == cs_bound(st.q, st.k, st.beta)
    st.cs = None  # the property computes it when not kept
    assert st.R_cs == cs_bound(st.q, st.k, st.beta)


def test_the_kept_scale_is_infinite_where_the_norms_overflow():
    q = np.full((4, 2), 1e200)
    assert logit_ranges(q, q, 1.0, rtol=FAST_RTOL).cs == cs_bound(q, q, 1.0) == np.inf
