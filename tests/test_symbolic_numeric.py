"""Third route (spec §2.2–2.9; STYLE §0 item 5): lambdified SymPy derivations vs reference mpmath at dps = 50."""

import mpmath
import pytest

from symbolic import numeric as nu


@pytest.mark.paper("Lemma D.17")
def test_lambdified_terms_match_the_reference_to_forty_digits():
    report = nu.compare_case(nu.CASES[0], seed=0)
    assert set(report) >= {"dX", "dW", "dW_Q", "dW_K", "dW_V", "D2", "D4", "D6", "D7", "D8"}
    assert all(mpmath.mpf(v) <= nu.TOL for v in report.values())


@pytest.mark.slow
@pytest.mark.paper("Lemma K.2")
@pytest.mark.parametrize("case", nu.CASES, ids=lambda c: c.name)
def test_every_numeric_case_matches_the_reference(case):
    report = nu.compare_case(case, seed=1)
    assert all(mpmath.mpf(v) <= nu.TOL for v in report.values())


def test_rational_inputs_are_bounded_by_one():
    import numpy as np

    M = nu.rational_matrix(np.random.default_rng(0), 3, 2)
    assert all(abs(x) <= 1 for row in M for x in row)
