"""The certificates' own float64 arithmetic stays above the exact values of their formulas (docs/certificate.md,
Step 0').

Second route: the same formulas at 60 digits in mpmath (a scoped ``workdps``), and exact rationals for sums. Each
evaluation must be at or above the exact value, and close to it: within a relative $10^{-9}$ (the largest Step 0'
factor used here is $1 + 4mu$ with $m \\le 2^{10}$, about $5 \\cdot 10^{-13}$; the rest is float64 rounding). The
printed forms the code no longer uses ($e^{2\\sigma}(1+\\varepsilon)/(1-\\varepsilon) - 1$, $1 - \\tanh^2$) fall below
the exact value on the same grids, so these tests can fail.
"""

from fractions import Fraction

import mpmath
import numpy as np
import pytest

from fastpath.aposteriori import _sech2_up
from fastpath.certificate import rho_tau
from fastpath.directed import own_up

SIGMA = (0.0, 1e-17, 1e-15, 1e-12, 1e-9, 1e-6, 1e-3, 0.1, 0.3)
EPS = (1e-15, 1e-13, 1e-12, 1e-9, 1e-6, 1e-3, 0.1, 0.3)


def _rho_exact(s: float, e: float):
    with mpmath.workdps(60):
        return mpmath.exp(2 * mpmath.mpf(s)) * (1 + mpmath.mpf(e)) / (1 - mpmath.mpf(e)) - 1


def _grid():
    S, E = np.meshgrid(SIGMA, EPS, indexing="ij")
    return S.ravel(), E.ravel()


@pytest.mark.paper("Lemma C.13")
def test_rho_and_tau_are_upper_bounds_of_their_exact_values_and_tight():
    S, E = _grid()
    rho, tau = rho_tau(S, E)
    for s, e, r, t in zip(S, E, rho, tau, strict=True):
        ex = _rho_exact(s, e)
        with mpmath.workdps(60):
            assert mpmath.mpf(float(r)) >= ex and (mpmath.mpf(float(r)) - ex) / ex <= 1e-9, (s, e)
            if ex < 1:
                ext = ex / (1 - ex)
                assert mpmath.mpf(float(t)) >= ext and (mpmath.mpf(float(t)) - ext) / ext <= 1e-9, (s, e)


def test_the_printed_rho_falls_below_its_exact_value_on_the_same_grid():
    S, E = _grid()
    old = np.exp(2 * S) * (1 + E) / (1 - E) - 1  # cancels: about u / rho relative, either sign
    with mpmath.workdps(60):
        below = [float(o) < _rho_exact(s, e) for s, e, o in zip(S, E, old, strict=True)]
    assert any(below)


def test_rho_is_infinite_where_the_certificate_has_no_relative_structure():
    rho, tau = rho_tau(np.array([0.0, 400.0, 0.0, 0.5]), np.array([0.6, 1e-8, 1e-8, 1e-3]))
    assert np.isinf(rho[:2]).all() and np.isinf(tau[:2]).all()  # eps >= 1/2; 2 sigma beyond exp's range
    assert np.isfinite(rho[2]) and rho[3] > 1 and np.isinf(tau[3])  # rho >= 1: tau infinite, refused


@pytest.mark.parametrize("n", [2, 100, 1000])
def test_a_sum_moved_up_by_its_chain_length_bounds_the_exact_sum(n):
    rng = np.random.default_rng(n)
    for scale in (1.0, 1e-300, 1e300 / n):
        x = rng.uniform(0, 1, n) * scale * np.where(rng.uniform(size=n) < 0.5, 1.0, 2.0**-30)  # mixed magnitudes
        got = own_up(float(np.sum(x)), n)
        exact = sum(Fraction(float(v)) for v in x)
        assert Fraction(float(got)) >= exact
        assert Fraction(float(got)) <= exact * (1 + Fraction(1, 10**9)) + Fraction(2.0**-1074)


def test_sech_squared_is_an_upper_bound_where_one_minus_tanh_squared_is_not():
    x = np.concatenate([np.linspace(0, 20, 201), [30.0, 200.0, 400.0, 800.0]])
    got = _sech2_up(x)
    old = 1 - np.tanh(x) ** 2
    below = 0
    with mpmath.workdps(60):
        for xi, g, o in zip(x, got, old, strict=True):
            ex = mpmath.sech(mpmath.mpf(float(xi))) ** 2
            assert mpmath.mpf(float(g)) >= ex
            if ex > 1e-300:
                assert (mpmath.mpf(float(g)) - ex) / ex <= 1e-9
            below += mpmath.mpf(float(o)) < ex
    assert below > 0
