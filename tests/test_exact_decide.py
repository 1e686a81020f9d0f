"""The registry's decision layer (proofs_check.decide): float64 first, mpmath before a failure counts; the schema."""

import math

import mpmath
import numpy as np
import pytest

from proofs_check import decide as dc
from reference.backend import FLOAT64


def test_a_float64_failure_is_recomputed_in_mpmath_before_it_counts():
    def claim(bk, x):
        return [("eq", "(x + 1) - x = 1", (x + 1) - x, bk.ones(x.shape))]

    rows, bk = dc.judge(claim, {"x": np.array([1e17])})
    assert bk.is_mp and all(r.holds for r in rows)


def test_a_printed_form_that_holds_makes_a_falsification_check_disagree():
    def claim(bk, x):
        return [("ne", "printed equals corrected", 2 * x, x + x)]

    rows, bk = dc.judge(claim, {"x": np.array([0.5, 1.5])})
    assert bk.is_mp and not rows[0].holds
    res = dc.decide(claim, [{"x": np.array([0.5])}])
    assert not res.ok and "FAILS" in res.figure and res.counterexample is None


def test_a_violated_inequality_fails_in_both_precisions():
    def claim(bk, x):
        return [("le", "x <= x/2", x[0], x[0] / 2)]

    res = dc.decide(claim, [{"x": np.array([1.0])}])
    assert not res.ok and res.precision == "mpmath dps=50" and res.data["slack"]["x <= x/2"] == 2.0
    assert (res.observed, res.bound) == (1.0, 0.5)


def test_an_inequality_that_holds_reports_its_two_sides_as_observed_and_bound():
    def claim(bk, x):
        return [("le", "x/4 <= x", x[0] / 4, x[0]), ("le", "x/2 <= x", x[0] / 2, x[0])]

    res = dc.decide(claim, [{"x": np.array([2.0])}])
    assert res.ok and res.precision.split(";")[0] == "float64" and (res.observed, res.bound) == (1.0, 2.0)


def test_a_refuted_printed_form_stores_a_replayable_counterexample():
    def claim(bk, x):
        return [("ne", "printed 2x vs x", 2 * x, x), ("eq", "corrected x vs x", x, x)]

    res = dc.decide(claim, [{"x": np.array([0.5, 1.5])}])
    assert res.ok and res.precision.split(";")[0] == "mpmath dps=50"
    assert res.counterexample["inputs"]["x"] == [0.5, 1.5] and res.counterexample["errors"]["printed 2x vs x"] == 1


def test_every_tolerance_is_a_unit_roundoff_times_a_stated_condition_number():
    mp = dc.mp_backend()
    assert dc.tolerance("eq", FLOAT64) == 2.0**-53 * dc.COND_ID
    assert dc.tolerance("eq", mp) == pytest.approx(1e-50 * dc.COND_ID)
    assert dc.tolerance("eq", FLOAT64, cond=8.0) == 2.0**-50
    # central differences: eta^2/6 M3 + u M0/eta with eta = 1e-6 and condition 5e3 stays below the float64 tolerance
    assert dc.TOL_FD64 > (1e-12 / 6 + 2.0**-53 / 1e-6) * 5e3
    assert dc.tolerance("ne", mp) == dc.WRONG
    with pytest.raises(ValueError, match="row kind"):
        dc.tolerance("approx", FLOAT64)


def test_a_malformed_row_is_refused_by_its_shape():
    with pytest.raises(ValueError, match="kind, name, a, b"):
        dc.row(("eq", "x", 1.0), FLOAT64)


def test_the_re_decision_leaves_the_global_mpmath_precision_alone():
    before = mpmath.mp.dps

    def claim(bk, x):
        return [("eq", "(x + 1) - x = 1", (x + 1) - x, bk.ones(x.shape))]

    res = dc.decide(claim, [{"x": np.array([1e17])}])
    assert res.ok and res.precision.split(";")[0] == "mpmath dps=50" and mpmath.mp.dps == before


@pytest.mark.parametrize("lhs", [math.inf, math.nan])
def test_an_inequality_with_an_infinite_or_nan_left_side_never_holds(lhs):
    """inf <= bound + 2 tol max(|inf|, |bound|) used to pass (the slack scale was inf); it must fail."""
    r = dc.row(("le", "x", lhs, 1.0), FLOAT64)
    assert not r.holds and r.gross
    assert dc.row(("le", "x", 1.0, math.inf), FLOAT64).holds  # a finite value under an infinite bound does hold
