"""Lemma I.1 / C.13 scalar step (spec §2.5): polynomials with a proved relative error bound on [-R, R].

The certified bound must dominate the true error, which we measure independently with mpmath at 40 digits on a
dense grid plus the endpoints; the Chebyshev certificate must also be tight (within 2x of that measurement, so it
certifies the polynomial rather than a loose analytic bound).
"""

import math

import mpmath
import numpy as np
import pytest

from fastpath.poly import (
    GRID_STEPS_PER_OCTAVE,
    R_MIN,
    _certified,
    certified_poly,
    certify,
    chebyshev_coeffs,
    round_up_R,
    taylor_bound,
    taylor_coeffs,
)


def _sampled_rel_err(coeffs, R, points=2001):
    """max |P(x) e^-x - 1| on an even grid of [-R, R] in mpmath (a lower estimate of the true max)."""
    with mpmath.workdps(40):
        c = [mpmath.mpf(float(v)) for v in coeffs[::-1]]
        xs = [mpmath.mpf(R) * (2 * i / (points - 1) - 1) for i in range(points)]
        return float(max(abs(mpmath.polyval(c, x) * mpmath.exp(-x) - 1) for x in xs))


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize("R", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("g", [3, 8, 14])
def test_taylor_remainder_bound_dominates_the_measured_error(R, g):
    coeffs = taylor_coeffs(g)
    bound = taylor_bound(coeffs, R)
    seen = _sampled_rel_err(coeffs, R)
    assert seen <= bound, f"Taylor g={g} R={R}: measured {seen:.3e} > bound {bound:.3e}"


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize("R", [0.25, 1.4, 4.0])
@pytest.mark.parametrize("g", [4, 9, 16])
def test_chebyshev_certificate_dominates_and_is_tight(R, g):
    coeffs = chebyshev_coeffs(g, R)
    cert = certify(coeffs, R)
    seen = _sampled_rel_err(coeffs, R)
    assert seen <= cert, f"Chebyshev g={g} R={R}: measured {seen:.3e} > certificate {cert:.3e}"
    assert cert <= 2 * seen, f"certificate {cert:.3e} is loose against the measured {seen:.3e}"


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize("kind", ["chebyshev", "taylor"])
@pytest.mark.parametrize("eps", [1e-4, 1e-8, 1e-12])
def test_selected_degree_is_the_smallest_that_reaches_eps(kind, eps):
    pc = certified_poly(1.3, eps, kind)
    assert pc.err <= eps
    if pc.degree > 0:
        g = pc.degree - 1
        lower = taylor_bound(taylor_coeffs(g), pc.R) if kind == "taylor" else certify(chebyshev_coeffs(g, pc.R), pc.R)
        assert lower > eps, f"degree {g} already certifies {lower:.3e} <= {eps:g}"


@pytest.mark.paper("Lemma I.1")
def test_chebyshev_needs_no_more_degree_than_taylor():
    for R in (0.5, 2.0, 4.0):
        for eps in (1e-4, 1e-10):
            assert certified_poly(R, eps).degree <= certified_poly(R, eps, "taylor").degree


@pytest.mark.paper("Lemma I.1")
def test_certificates_are_cached_on_the_rounded_range():
    _certified.cache_clear()
    a = certified_poly(1.001, 1e-6)
    b = certified_poly(1.0005, 1e-6)  # same grid point
    assert a is b
    assert _certified.cache_info().hits == 1
    assert a.R >= 1.001 and a.R <= 1.001 * 2 ** (1 / GRID_STEPS_PER_OCTAVE)


def test_range_is_rounded_up_to_the_grid():
    for R in (0.0, 1e-9, 0.37, 1.0, 3.3, 17.0):
        Rg = round_up_R(R)
        assert Rg >= R and Rg >= R_MIN
        assert Rg <= max(R_MIN, R * 2 ** (1 / GRID_STEPS_PER_OCTAVE) * (1 + 1e-12))


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize("eps", [0.0, 1.0, -1e-3, 2.0, math.nan])
def test_eps_outside_the_open_unit_interval_is_refused(eps):
    with pytest.raises(ValueError, match=r"eps: expected a number in \(0, 1\)"):
        certified_poly(1.0, eps)


def test_unknown_polynomial_kind_is_refused():
    with pytest.raises(ValueError, match="poly: expected one of"):
        certified_poly(1.0, 1e-6, "remez")


def test_an_unreachable_degree_is_refused_with_the_range_in_the_message():
    with pytest.raises(ValueError, match=r"R = .*expected a larger eps"):
        certified_poly(400.0, 1e-12, "taylor")


@pytest.mark.paper("Lemma I.1")
def test_degree_growth_follows_log_one_over_eps():
    degs = [certified_poly(1.0, 10.0**-k).degree for k in (3, 6, 9, 12)]
    assert degs == sorted(degs) and degs[-1] > degs[0]
    assert np.all(np.diff(degs) <= 4), degs


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize(("Rbar", "g"), [(1.0, 16), (0.5, 3), (3.0, 20)])
def test_taylor_rel_bound_dominates_the_error_at_minus_rbar_and_is_nearly_tight(Rbar, g):
    """Spec §0.5 item 1: the worst point is x = -Rbar and the bound is asymptotically tight (ratio 0.95 at 1, 16)."""
    from fastpath.poly import taylor_rel_bound

    with mpmath.workdps(60):
        x = -mpmath.mpf(Rbar)
        seen = abs(mpmath.fsum(x**j / mpmath.factorial(j) for j in range(g + 1)) * mpmath.exp(-x) - 1)
        exact = mpmath.mpf(Rbar) ** (g + 1) * mpmath.e**Rbar / mpmath.factorial(g + 1)
        assert seen <= taylor_rel_bound(Rbar, g)
        # rounded up to float64 (one ulp, 2^-52 relative) after a 1e-24 slack, and no more
        assert exact <= taylor_rel_bound(Rbar, g) <= exact * (1 + mpmath.mpf(2) ** -51)
        assert seen / exact > (0.94 if (Rbar, g) == (1.0, 16) else 0.5)  # spec §0.5 item 1 measured 0.95


def test_taylor_rel_bound_cache_returns_a_fresh_evaluation_and_still_refuses_bad_input():
    """The cache (a pure function of the exact float and g) answers with the uncached computation's float, for an
    int, a float and a numpy float of the same value, and bad input is refused by name before the cache is asked."""
    from fastpath.poly import _taylor_rel_bound, taylor_rel_bound

    for Rbar, g in [(1.0, 16), (0.5, 3), (2, 7)]:
        fresh = _taylor_rel_bound.__wrapped__(float(Rbar), g)
        assert taylor_rel_bound(Rbar, g) == fresh == taylor_rel_bound(np.float64(Rbar), g)
        assert taylor_rel_bound(Rbar, g) == fresh  # the second call is answered by the cache
    with pytest.raises(ValueError, match="Rbar"):
        taylor_rel_bound(np.ones(2), 3)
    with pytest.raises(ValueError, match="g: expected"):
        taylor_rel_bound(1.0, 2.0)


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize("Rbar", [0.0, 0.3, 2.0, 9.0])
@pytest.mark.parametrize("eps", [1e-3, 1e-9, 1e-15])
def test_min_taylor_degree_is_the_smallest_degree_whose_bound_reaches_eps(Rbar, eps):
    from fastpath.poly import min_taylor_degree, taylor_rel_bound

    g = min_taylor_degree(Rbar, eps)
    assert taylor_rel_bound(Rbar, g) <= eps
    assert g == 0 or taylor_rel_bound(Rbar, g - 1) > eps


def test_min_taylor_degree_says_none_reaches_eps_with_g_max_plus_one():
    from fastpath.poly import min_taylor_degree

    assert min_taylor_degree(50.0, 1e-12, g_max=20) == 21


def _sampled_shifted_err(coeffs, R, shift, points=2001):
    """max |P(x) e^-x - 1| with P(x) = sum c_j (x + shift)^j, on an even grid of [-R, R] at 40 digits."""
    with mpmath.workdps(40):
        c = [mpmath.mpf(float(v)) for v in coeffs[::-1]]
        xs = [mpmath.mpf(R) * (2 * i / (points - 1) - 1) for i in range(points)]
        return float(max(abs(mpmath.polyval(c, x + shift) * mpmath.exp(-x) - 1) for x in xs))


@pytest.mark.paper("Lemma I.1")
def test_issue_9_eps_5e_14_at_R_5_is_certified_not_refused():
    """Spec §0.5 item 6: the old up-front refusal claimed float64 could not reach what degree 26 reaches."""
    pc = certified_poly(5.0, 5e-14)
    assert pc.err <= 5e-14 and pc.shift == 0.0
    assert _sampled_rel_err(pc.coeffs, pc.R) <= pc.err  # the float64 coefficients returned are the ones certified


@pytest.mark.paper("Lemma I.1")
def test_the_shifted_basis_certifies_far_below_the_monomial_floor():
    pc = certified_poly(5.0, 1e-15, basis="shifted")
    assert pc.shift == pc.R and pc.err <= 1e-15
    seen = _sampled_shifted_err(pc.coeffs, pc.R, pc.shift)
    assert seen <= pc.err <= 2 * seen  # certified and tight, as for the monomial basis
    with mpmath.workdps(40):
        want = mpmath.fsum(abs(mpmath.mpf(float(c))) * (2 * mpmath.mpf(pc.R)) ** j for j, c in enumerate(pc.coeffs))
    assert want <= pc.abs_sum <= want * (1 + 1e-15)  # max over [-R, R] of sum |c_j| |x + R|^j


def test_a_monomial_refusal_names_what_was_tried_and_the_candidate_that_reaches_eps():
    with pytest.raises(ValueError) as exc:
        certified_poly(5.0, 1e-15)
    msg = str(exc.value)
    assert "monomial coefficients (attained error" in msg and "at degrees" in msg
    assert "in powers of (x + R) degree" in msg and "basis='shifted'" in msg
    assert "cannot" not in msg and "below what float64" not in msg


@pytest.mark.parametrize(("R", "eps"), [(0.5, 1e-21), (20.0, 1e-10)])
def test_a_refusal_where_no_candidate_reaches_eps_lists_both_bases(R, eps):
    with pytest.raises(ValueError, match=r"tried Chebyshev .* monomial .*; Chebyshev .* powers of \(x \+") as exc:
        certified_poly(R, eps)
    assert "basis='shifted'" not in str(exc.value)  # no candidate reached it: nothing to suggest


def test_taylor_search_starts_where_the_exact_remainder_allows_and_certifies_large_ranges():
    pc = certified_poly(10.0, 1e-4, "taylor")  # the bound first grows with g (R^(g+1)/(g+1)! peaks at g ~ R)
    assert pc.err <= 1e-4 and taylor_bound(taylor_coeffs(pc.degree - 1), pc.R) > 1e-4


def test_a_refusal_is_cached_like_a_certificate():
    _certified.cache_clear()
    for _ in range(2):
        with pytest.raises(ValueError, match="no candidate polynomial certifies"):
            certified_poly(20.0, 1e-10)
    assert _certified.cache_info().hits == 1
