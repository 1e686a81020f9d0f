r"""The limits of the a-posteriori certificate (proofs_check/checks/fast_cert_limits.py, fast_cert_layers.py):
the adversary's first-order sensitivity against a finite difference, its kernels admissible and its errors below
the certificate, the |J|^T E worst case attained by a sign pattern, the mpmath re-decision path, and the trend
fit able to reject a bound that scales like the error."""

import numpy as np
import pytest

import reference
from proofs_check import registry as reg
from proofs_check.checks import fast_cert_layers as fl
from proofs_check.checks import fast_cert_limits as fc
from proofs_check.decide import mp_backend
from reference.backend import FLOAT64

REGISTRY = reg.load_all()


@pytest.fixture(scope="module")
def case():
    return fc.head_case(np.random.default_rng(41), 32, False, 1e-6)


@pytest.mark.paper("Lemma E.11")
@pytest.mark.parametrize("causal", [False, True])
def test_the_dx_sensitivity_is_the_first_order_change_of_the_exact_map(causal):
    hc = fc.head_case(np.random.default_rng(42), 24, causal, 1e-6)
    e = np.random.default_rng(1).standard_normal(hc.f.shape) * 1e-7
    base = fc.outputs(hc, hc.f)["dX"]
    moved = fc.outputs(hc, fc.perturbed(hc.f, e))["dX"]
    for a, k in [(0, 0), (5, 2), (23, 3)]:
        lin = float((fc.dx_sensitivity(hc, a, k) * e).sum())
        # second order: |e|^2 ~ 1e-14 relative to the first-order change ~ 1e-7, plus float64 rounding of the
        # difference of two evaluations (~1e-16 / 1e-7 relative): 1e-6 covers both by two orders
        assert lin == pytest.approx(moved[a, k] - base[a, k], rel=1e-6, abs=1e-20)


def test_the_adversary_uses_admissible_kernels_and_stays_within_the_certificate(case):
    adv, signs = fc.adversary(case)
    for key in [("s", 0, 1), ("dX", 3, 2), ("dX", 31, 0)]:
        E = fc.pattern(case, key)
        assert (np.abs(E) <= case.eps[:, None]).all()  # |A'/A - 1| <= eps_i: the certificate's own information
        assert signs[key] in (1.0, -1.0)
    for field in ("s", "dX"):
        assert (adv[field] <= case.cert[field]).all() and (adv[field] > 0).all()
    h = case.X @ case.W_V
    s = case.f @ h
    first = case.eps[:, None] * np.einsum("ij,ijc->ic", case.f, np.abs(h[None] - s[:, None]))  # eps sum f|h - s|
    assert adv["s"] == pytest.approx(first, rel=4e-6)  # exact minus first order: O(eps) relative, eps = 1e-6


def test_the_worst_case_of_an_entrywise_error_is_attained_by_a_sign_pattern():
    s = fl.stack(np.random.default_rng(7), 8, 2, False, 1, 1e-6)
    E = s.bound[1]
    JE = fl.abs_jacobian_t(s.Ts[0], s.layers[0], E, s.cfg)
    rt = reference.forward(s.Ts[0], [s.layers[0]], **s.cfg)
    for a, k in [(0, 0), (3, 2), (7, 3)]:
        # row (a, k) of J^T: J^T u = backward(u).dX is linear in u, so its (a, k) entry is <row, u>
        row = np.array([reference.backward(rt, np.eye(1, 32, t).reshape(8, 4)).dX[a, k] for t in range(32)])
        e = E.ravel() * np.sign(row)
        got = reference.backward(rt, e.reshape(8, 4)).dX[a, k]
        assert got == pytest.approx(JE[a, k], rel=1e-12)


def test_the_layer_growth_row_is_redecided_in_mpmath_with_the_same_verdict():
    s = fl.stack(np.random.default_rng(9), 6, 2, False, 1, 1e-6)
    st = fl.steps(s)[0]
    bk = mp_backend(30)
    ((_, _, lhs, rhs),) = list(fl._claim_growth(bk, s, st))
    ((_, _, lhs64, rhs64),) = list(fl._claim_growth(FLOAT64, s, st))
    assert float(lhs) == pytest.approx(lhs64, rel=1e-12) and float(rhs) == rhs64 and lhs <= rhs


def test_the_trend_fit_rejects_a_bound_that_scales_like_the_error():
    chk = REGISTRY["fast.cert.cancellation"]
    res = chk.fn(reg.Context(quick=True, seed=0, mutant="bound proportional to the error"))
    assert not res.ok and res.data["fits"]["key"]["slope"] == pytest.approx(0.0, abs=1e-9)


def test_the_attainable_rows_are_redecided_in_mpmath_to_the_float64_values():
    hc = fc.head_case(np.random.default_rng(3), 16, False, 1e-6)
    adv, signs = fc.adversary(hc)
    rows64 = list(fc._claim_attainable(FLOAT64, hc, adv, signs, 1.0))
    rows_mp = list(fc._claim_attainable(mp_backend(50), hc, adv, signs, 1.0))
    for r64, rmp in zip(rows64, rows_mp, strict=True):
        # the adversarial error is a difference of two evaluations of size ~1, itself ~eps = 1e-6 of them: float64
        # carries it to a relative ~u / eps * (n + d) ~ 1e-9
        assert float(rmp[2]) == pytest.approx(float(r64[2]), rel=1e-8)
        assert float(rmp[3]) == pytest.approx(float(r64[3]), rel=1e-8)
        assert rmp[2] <= rmp[3]
