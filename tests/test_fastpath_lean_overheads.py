"""Overheads cut from the fast path (issue 14 item 4) give the results of the plain forms they replace.

* fastpath.model._no_nan (bounds only: NaN means 'no bound', i.e. inf) scans each array once and copies only
  arrays that hold NaN: its result must equal the plain rule ``np.where(np.isnan(x), inf, x)`` bit for bit.
* fastpath.layer.attention_backward returns a single head's five terms as they are, instead of ``0 + D``: equal
  values (``0 + x`` differs from x only in the sign of a zero), and several heads are summed bit for bit as before.
"""

import math

import numpy as np

from fastpath import layer
from fastpath.compare import random_layers
from fastpath.model import _no_nan
from reference.attention import TERM_NAMES


def plain(x):
    """The rule as first written: every float array rebuilt with np.where."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(plain(v) for v in x)
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        return np.where(np.isnan(x), math.inf, x)
    return math.inf if isinstance(x, float) and math.isnan(x) else x


def same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return type(a) is type(b) and (a == b or (a != a and b != b))


def test_no_nan_equals_the_plain_rule_bit_for_bit_on_aliased_nan_inf_and_empty_arrays():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0, 1, (50, 3))
    dirty = clean.copy()
    dirty[[3, 7], [0, 2]] = np.nan
    dirty[5, 1] = np.inf
    neg = -clean  # signed entries, -0.0 included
    neg[0, 0] = -0.0
    cert = {"kern": ["not an array", 3], "E_s": [dirty], "e_in": clean, "e_attn": dirty, "e_inner": dirty,
            "e_U": np.zeros((0, 3)), "e_out": neg, "s": math.nan, "t": 2.5, "i": np.arange(4),
            "pair": (clean, np.array([np.nan]))}  # fmt: skip
    got = _no_nan(cert)
    assert same(got, plain(cert))
    assert np.isinf(got["e_attn"][3, 0]) and got["s"] == math.inf
    assert np.isnan(dirty).sum() == 2  # the input is left as it was


def test_attention_backward_terms_equal_the_plain_sum_over_heads_for_one_and_two_heads(monkeypatch):
    rng = np.random.default_rng(3)
    n, d = 40, 4
    X, G = rng.uniform(-1, 1, (n, d)), rng.uniform(-1, 1, (n, d))
    L = random_layers(rng, d, 1, with_g=False)[0]
    seen, head_backward = [], layer.head_backward
    monkeypatch.setattr(layer, "head_backward", lambda *a, **kw: seen.append(head_backward(*a, **kw)) or seen[-1])
    for heads in (1, 2):
        seen.clear()
        states, _ = layer.attention_forward(X, L.W_Q, L.W_K, L.W_V, beta=1 / d, causal=False, heads=heads,
                                            eps=1e-8, kind="chebyshev", budget=2**30)  # fmt: skip
        got = layer.attention_backward(states, X, G).terms
        assert len(seen) == heads
        for t in TERM_NAMES:
            plain_sum = sum(g.terms[t] for g in seen[1:]) + seen[0].terms[t]
            assert np.array_equal(got[t], plain_sum)  # equal values (-0.0 == 0.0)
            assert heads == 1 or got[t].tobytes() == plain_sum.tobytes()
