"""The staircase's degree rule (fastpath.staircase, issue 14 item 1): the signed range is refined only as far as the
polynomial degree needs, and stays a rigorous upper bound.

Two routes: the exact maximum max_ij |beta q_i . k_j| in rational arithmetic (``fractions.Fraction``, no
tolerance) on small cases, where the rule is forced on (``DEGREE_RULE_MIN_PAIRS`` = 0, a small budget so the
staircase stops before it has seen every pair); and the degree the full refinement (no eps given, today's stop
rules) takes on the two benchmark inputs of issue 14, which the rule must reproduce with fewer exact logits. A
mutant stop rule that returns the lower bound instead of the upper one must fall below the exact maximum.
"""

import math

import numpy as np
import pytest

from fastpath import ranges, staircase
from fastpath.compare import random_layers
from fastpath.poly import round_up_R
from fastpath.ranges import FAST_RTOL, logit_ranges
from fastpath.staircase import certified_degree
from tests.test_fastpath_ranges import exact_max


def gemm_input(n: int):
    """q, k, beta of benchmarks/gemm_rate.py (X ~ U[-1, 1], d = 4, seed 0, beta = 1/4)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (n, 4))
    L = random_layers(rng, 4, 1, with_g=False)[0]
    return X @ L.W_Q, X @ L.W_K, 0.25


def peers_input(n: int, d: int):
    """q, k, beta of benchmarks/peers_bench.py's "small" problem (its seed and draw order)."""
    rng = np.random.default_rng([20240826, n, d, 0])
    X = rng.uniform(-1, 1, (n, d))
    W_Q, W_K = (rng.uniform(-1 / math.sqrt(d), 1 / math.sqrt(d), (d, d)) for _ in range(2))
    return X @ W_Q, X @ W_K, 1.0 / d


@pytest.mark.paper("Lemma I.1")
def test_the_degree_rule_keeps_the_degree_of_the_full_refinement_with_fewer_exact_logits():
    eps = 1e-8  # benchmarks/gemm_rate.py's input and eps (n = 2^18)
    q, k, beta = gemm_input(2**18)
    rule, full = logit_ranges(q, k, beta, rtol=FAST_RTOL, eps=eps), logit_ranges(q, k, beta, rtol=FAST_RTOL)
    assert certified_degree(rule.signed, eps) == certified_degree(full.signed, eps) is not None
    assert round_up_R(rule.signed) == round_up_R(full.signed)  # here even the same grid point: the same polynomial
    assert 5 * rule.pairs < 3 * full.pairs  # the counted work of both ranges: 29.7M vs 52.5M exact logits
    assert rule.absolute == full.absolute  # the rule touches the signed range only


def test_the_degree_rule_is_off_where_the_staircase_is_small_as_on_the_d12_forward():
    # benchmarks/acceptance14.py forward_d12: the staircase holds far fewer than DEGREE_RULE_MIN_PAIRS pairs, so
    # the range (and the certificate) is exactly the one without the rule
    q, k, beta = peers_input(40960, 12)
    assert logit_ranges(q, k, beta, rtol=FAST_RTOL, eps=1e-4) == logit_ranges(q, k, beta, rtol=FAST_RTOL)


def forced_rule(monkeypatch, mutant: bool = False) -> dict:
    """The rule on at any budget; with ``mutant``, a staircase that returns the lower bound it stopped at (instead
    of the upper bound in hand) whenever the degree rule stopped it. Returns a dict recording whether it fired."""
    monkeypatch.setattr(staircase, "DEGREE_RULE_MIN_PAIRS", 0)
    fired, good_enough, bound = {}, staircase.good_enough, staircase.staircase_bound

    def recording(b_, lo, b, rtol, degree=None):
        ok = good_enough(b_, lo, b, rtol, degree)
        if ok and degree is not None and not good_enough(b_, lo, b, rtol):  # stopped by the degree rule alone
            fired["lo"] = lo
        return ok

    def stair(*a, **kw):
        fired.pop("lo", None)
        out = bound(*a, **kw)
        if "lo" not in fired:
            return out
        fired["signed"] = fired["lo"]  # only the signed range is given the rule (its call comes first)
        return (fired["lo"], *out[1:]) if mutant else out

    monkeypatch.setattr(staircase, "good_enough", recording)
    monkeypatch.setattr(ranges, "staircase_bound", stair)
    return fired


CASES = [(seed, n, eps) for seed in range(4) for n in (48, 96) for eps in (1e-8, 1e-4)]


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize(("seed", "n", "eps"), CASES)
def test_the_degree_rule_bound_is_at_least_the_exact_maximum(monkeypatch, seed, n, eps):
    q, k, beta = gemm_input(n) if seed == 0 else peers_input(n, 4 + seed)
    forced_rule(monkeypatch)
    got = logit_ranges(q, k, beta, rtol=FAST_RTOL, budget=4 * n, eps=eps)
    exact = exact_max(q, k, beta)
    assert got.signed >= exact
    full = logit_ranges(q, k, beta, rtol=FAST_RTOL, budget=4 * n)
    assert certified_degree(got.signed, eps) <= certified_degree(full.signed, eps)


def test_a_stop_rule_returning_the_lower_bound_falls_below_the_exact_maximum(monkeypatch):
    caught = 0
    for seed, n, eps in CASES:
        q, k, beta = gemm_input(n) if seed == 0 else peers_input(n, 4 + seed)
        fired = forced_rule(monkeypatch, mutant=True)
        got = logit_ranges(q, k, beta, rtol=FAST_RTOL, budget=4 * n, eps=eps)
        if "signed" in fired:  # the degree rule stopped the signed range: the mutant returned its lower bound
            assert got.signed < exact_max(q, k, beta)
            caught += 1
        monkeypatch.undo()
    assert caught >= 4  # the rule does fire on these inputs, and each time the mutant is caught
