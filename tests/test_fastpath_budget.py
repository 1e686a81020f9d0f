"""Lemma C.13 rank vs memory (spec §2.5): the two budget refusals of fastpath.lowrank share one message, and the
optimistic degree they use before certifying never exceeds the degree a certified polynomial needs."""

import math
import re
from fractions import Fraction

import mpmath
import pytest

from fastpath.lowrank import check_budget, precheck_budget
from fastpath.poly import certified_poly, degree_lower_estimate, exact_taylor_coeffs, round_up_R
from reference.backend import mp_context


@pytest.mark.paper("Lemma C.13")
def test_both_budget_refusals_name_range_eps_degree_rank_and_budget_with_their_relation():
    cert = certified_poly(4.0, 1e-10)
    with pytest.raises(ValueError) as exact:
        check_budget(4.0, 1e-10, cert, 8, 8, 1024)
    with pytest.raises(ValueError) as estimate:
        precheck_budget(4.0, 1e-10, 8, 8, 1024)
    assert re.search(
        rf"R = 4 \(certified on .*\), eps = 1e-10, degree = {cert.degree}, rank = C\(8\+", str(exact.value)
    )
    assert "needs >=" not in str(exact.value) and "optimistic" not in str(exact.value)
    g = degree_lower_estimate(round_up_R(4.0), 1e-10)
    assert re.search(rf"R = 4, eps = 1e-10, degree >= {g} \(optimistic estimate\), rank >= C\(8\+", str(estimate.value))
    for err in (exact, estimate):
        assert str(err.value).startswith("eps: infeasible rank for the memory budget")
        assert "memory_budget = 1024 bytes" in str(err.value)


@pytest.mark.parametrize("R", [0.5, 2.0, 5.0])
@pytest.mark.parametrize("eps", [1e-3, 1e-8, 1e-12])
def test_the_optimistic_degree_is_never_above_the_certified_degree(R, eps):
    assert degree_lower_estimate(round_up_R(R), eps) <= certified_poly(R, eps).degree


def test_exact_taylor_coefficients_are_one_over_j_factorial_in_the_callers_context_only():
    before = mpmath.mp.dps
    mp = mp_context(40)
    coeffs = exact_taylor_coeffs(30, mp)
    assert mpmath.mp.dps == before
    assert len(coeffs) == 31
    for j, c in enumerate(coeffs):
        # 40 digits: relative error of one correctly rounded division, 10^-39 with room
        exact = Fraction(1, math.factorial(j))
        man, exp = c.man_exp  # c = man * 2^exp exactly
        assert abs(Fraction(man) * Fraction(2) ** exp - exact) <= exact * Fraction(1, 10**39)
