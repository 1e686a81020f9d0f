"""The monomial features (fastpath.features.monomials) are the plan's recurrence, bit for bit, and the monomials.

The degree-1 rows are written in one call (a copy of z, or scale * z), the rest by the plan's steps: the same float
products in the same order as the one-multiply-per-step recurrence, so the features are bit-identical to it; and
each row equals z^alpha (times the scale) up to the rounding of |alpha| - 1 products (+1 with a scale).
"""

from fractions import Fraction

import numpy as np
import pytest

from fastpath.features import monomial_plan, monomials
from fastpath.lowrank import U_ROUND


def _stepwise(Z, plan, scale=None):
    """The recurrence one plan step at a time (every step, degree 1 included): the reference order."""
    F = np.empty((plan.rank, Z.shape[0]))
    F[0] = 1.0 if scale is None else scale
    for dst, lo, hi, v in plan.steps:
        F[dst : dst + hi - lo] = F[lo:hi] * Z[:, v][None, :]  # (hi - lo, c)
    return F


@pytest.mark.parametrize(("d", "g"), [(1, 0), (1, 5), (3, 0), (3, 1), (3, 4), (4, 6), (7, 3)])
@pytest.mark.parametrize("scaled", [False, True])
def test_features_equal_the_stepwise_recurrence_bit_for_bit(d, g, scaled):
    rng = np.random.default_rng(d * 10 + g)
    Z = rng.uniform(-1.5, 1.5, (37, d))
    scale = rng.uniform(0.1, 3.0, 37) if scaled else None
    plan = monomial_plan(d, g)
    want = _stepwise(Z, plan, scale)
    assert np.array_equal(monomials(Z, plan, scale=scale), want)
    buf = np.full((plan.rank, 64), np.nan)  # a reused, larger buffer: only its first 37 columns are written
    assert np.array_equal(monomials(Z, plan, buf, scale), want)


@pytest.mark.parametrize(("d", "g"), [(2, 5), (4, 6)])
def test_every_feature_row_is_its_monomial_to_rounding(d, g):
    # scale * z^alpha as |alpha| rounded products: relative error <= (1 + u)^|alpha| - 1 <= gamma_g <= 2 g u
    # (Higham Lemma 3.1), against the exact rational product
    rng = np.random.default_rng(g)
    Z = rng.uniform(-1.5, 1.5, (12, d))
    scale = rng.uniform(0.5, 2.0, 12)
    plan = monomial_plan(d, g)
    F = monomials(Z, plan, scale=scale)
    for a, e in enumerate(plan.exponents):
        for i in range(Z.shape[0]):
            exact = Fraction(scale[i])
            for v in range(d):
                exact *= Fraction(Z[i, v]) ** int(e[v])
            assert abs(Fraction(F[a, i]) - exact) <= Fraction(2 * g * U_ROUND) * abs(exact)
