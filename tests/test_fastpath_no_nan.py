"""fastpath.model._no_nan (bounds only: NaN means 'no bound', i.e. inf) scans each array once and copies only
arrays that hold NaN: its result must equal the plain rule ``np.where(np.isnan(x), inf, x)`` bit for bit."""

import math

import numpy as np

from fastpath.model import _no_nan


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
