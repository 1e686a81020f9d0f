r"""Issue 10: the a-posteriori certificate holds (fast vs float64 reference, and vs mpmath), and it informs.

Tightness is measured as in the issue: per field, the median over entries of |fast - exact| / bound. The
thresholds below are regression guards one order of magnitude under what this grid measured when the
certificate was written (medians 1e-3..3e-3 for dX, 1e-4..5e-4 for dW at one layer; roughly a factor 10 less
per extra layer), not the issue's targets, which a rigorous entrywise bound cannot reach: for an error known only
through $|e| \le E$, $\max_{|e| \le E} |J e| = |J| E$, so absolute-value propagation is already the tightest
entrywise bound, and the measured errors enjoy cancellations (random-sign sums over tokens) no worst case has.
"""

import itertools

import numpy as np
import pytest
from mp_oracle import assert_within_bounds_against_mpmath

import fastpath
from fastpath.compare import compare, random_layers

GRID = list(itertools.product((96,), (1, 2), (False, True), (1e-3, 1e-6, 1e-9), (1, 2)))


def _case(n, m, causal, eps, heads, certificate="a-posteriori"):
    rng = np.random.default_rng([10, n, m, int(causal), heads])
    X, layers, dL = rng.uniform(-1, 1, (n, 4)), random_layers(rng, 4, m), rng.uniform(-1, 1, (n, 4))
    return compare(X, layers, dL, eps=eps, causal=causal, heads=heads, residual=True, activation="tanh",
                   method="lowrank", certificate=certificate, block=32)  # fmt: skip


@pytest.mark.paper("Theorem 4.2")
@pytest.mark.parametrize("case", GRID)
def test_the_a_posteriori_certificate_is_never_violated_and_is_informative(case):
    c = _case(*case)
    assert not c.violations, c.violations
    m = case[1]
    floor = 1e-4 * 10.0 ** -(m - 1)  # see the module docstring
    for k in ("dT[0]", "layers[0].dW_V"):
        assert c.median_ratio[k] >= floor, f"{k}: median ratio {c.median_ratio[k]:.1e} < {floor:.0e}"
    assert c.median_ratio["layers[0].dW"] >= floor / 10


@pytest.mark.paper("Lemma H.4")
@pytest.mark.parametrize("case", [(96, 2, True, 1e-6, 1), (96, 2, False, 1e-9, 2)])
def test_the_a_posteriori_certificate_is_tighter_than_the_a_priori_one(case):
    post, prior = _case(*case), _case(*case, certificate="a-priori")
    for k in ("dT[0]", "layers[0].dW", "layers[0].dW_V"):
        assert post.median_ratio[k] >= 10 * prior.median_ratio[k], k  # measured 50x..1e6x on this grid
    # the first layer's forward: both are rho-times-magnitude bounds, the a-posteriori one per entry (~4x here)
    assert post.median_ratio["Attn[1]"] >= prior.median_ratio["Attn[1]"]


@pytest.mark.paper("Theorem 4.2")
@pytest.mark.parametrize("causal", [False, True])
def test_the_certificate_holds_against_the_mpmath_reference(causal):
    """The second route: 50-digit mpmath forward and backward (no float64 rounding in the exact side)."""
    rng = np.random.default_rng(31)
    n, d = 6, 2
    X, layers, dL = rng.uniform(-1, 1, (n, d)), random_layers(rng, d, 2), rng.uniform(-1, 1, (n, d))
    kw = dict(causal=causal, residual=True, activation="tanh")
    tr = fastpath.forward(X, layers, eps=1e-6, method="lowrank", **kw)
    g = fastpath.backward(tr, dL)
    assert_within_bounds_against_mpmath(X, layers, dL, tr, g, ("dW_V",), **kw)


def test_the_certificate_cost_is_counted_and_linear_in_n():
    rng = np.random.default_rng(2)
    layers = random_layers(rng, 2, 1)
    cost = []
    for n in (512, 1024):
        X = rng.uniform(-1, 1, (n, 2))
        tr = fastpath.forward(X, layers, degree=3, method="lowrank")
        g = fastpath.backward(tr, X)
        assert tr.cert_madds > 0 and g.cert_madds > 0
        cost.append(tr.cert_madds + g.cert_madds)
    assert 1.9 <= cost[1] / cost[0] <= 2.1  # O(n r d), never n x n


@pytest.mark.paper("Lemma H.4")
@pytest.mark.parametrize("causal", [False, True])
def test_the_certificate_bounds_one_head_whose_inputs_carry_a_known_error(causal):
    """docs/certificate.md Steps 0-3 with E_X, E_G > 0: the fast head at X + E_X, G - E_G against the exact head at
    X, G (exact perturbations on binary grids), every field; the registry check ``fast.cert.aposteriori`` re-decides
    a violation in mpmath, here none may occur in float64 either (largest error/bound measured 0.90, for s)."""
    from proofs_check.checks.fast_certificate import head_case

    rng = np.random.default_rng([10, int(causal)])
    c = head_case(rng, n=40, d=2, causal=causal, eps=1e-6, e_x=2.0**-13, e_g=2.0**-13)
    from reference.backend import FLOAT64

    ex = c.exact(FLOAT64)
    for k, f in c.fast.items():
        assert (np.abs(f - ex[k]) <= c.bound[k]).all(), k


def test_the_certificate_work_is_at_most_the_fast_paths_at_one_layer():
    """Counted work (deterministic): Cauchy-Schwarz grouping, the exact-input shortcuts and the one-column forms of
    docs/certificate.md, with the columns carried by the fast path's own passes (no feature block built for the
    certificate), bring the certificate of one non-causal layer to 0.46 of the fast path's multiply-adds (0.78 with
    a pass of its own, 2.75 before the grouping)."""
    rng = np.random.default_rng([20240826, 256, 1, 0, 1])
    X, layers, dL = rng.uniform(-1, 1, (256, 4)), random_layers(rng, 4, 1), rng.uniform(-1, 1, (256, 4))
    tr = fastpath.forward(X, layers, eps=1e-6, residual=True, activation="tanh", method="lowrank")
    g = fastpath.backward(tr, dL)
    assert (tr.cert_madds + g.cert_madds) / (tr.madds + g.madds) <= 0.5


def test_the_certificate_benchmark_measures_a_case_without_violation():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "certificate_bench.py"
    spec = importlib.util.spec_from_file_location("certificate_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rec = bench.case(64, 2, True, 1e-6, 2)
    assert rec["violations"] == [] and rec["refused"] == [] and rec["vacuous"] == []
    assert set(rec["fields"]) >= {"T_m", "dX", "dW[1]", "dW_V[1]", "dW[2]", "dW_V[2]"}
    assert rec["madds_fraction"] > 0 and rec["fields"]["dX"]["max"] <= 1


def test_the_entrywise_sup_of_tanh_second_derivative_bounds_it_on_every_interval():
    """Step 4's tanh refinement (aposteriori._tanh_d2_sup) against a dense grid of each interval (2001 points, whose
    spacing cannot hide a larger value: |tanh'''| <= 2 makes the grid's miss at most 1e-3 * E, far below the
    margin the test allows here, which is none: the grid maximum itself must not exceed the bound)."""
    from fastpath.aposteriori import _tanh_d2_sup

    rng = np.random.default_rng(4)
    U, E = rng.uniform(-3, 3, 400), rng.uniform(0, 0.5, 400) * rng.choice([1, 1e-3, 1e-8], 400)
    b = _tanh_d2_sup(U, E)
    for u, e, bb in zip(U, E, b, strict=True):
        t = np.tanh(np.linspace(u - e, u + e, 2001))
        assert np.abs(2 * t * (1 - t * t)).max() <= bb
    assert b.max() <= 4 / (3 * np.sqrt(3)) and b.mean() < 0.6  # never above the global sup, and usually below
