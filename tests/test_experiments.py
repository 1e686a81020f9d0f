"""Weak-point experiments (spec §4): each runs in the quick profile and returns well-formed JSON data; the shared
machinery (fixed-degree low-rank backward, linear backward maps, fits) agrees with the exact reference."""

import json
import math

import numpy as np
import pytest

from proofs_check import experiments as ex
from proofs_check.experiments import _common as cm
from reference import backward, forward
from reference.model import Layer

EXPECTED_KEYS = {
    "depth": {"sweeps", "fits", "amplification", "degree_needed", "conclusion"},
    "bounded_entries": {"stacks", "scales_leaving_logit_regime", "text"},
    "looseness": {"rows", "table", "all_hold"},
    "beta_scale": {"rows", "logit_range", "beta_free_only_for_beta_1"},
    "forward_error": {"rows", "forward_over_backward", "fastpath_pipeline", "forward_error_significant"},
    "phi_prime": {"rows", "fits", "unbounded_growth_shown"},
    "degree_formula": {"rows", "fits", "better_fit"},
    "relative_error": {"losses", "gap_shown"},
    "rank_bound": {"rows", "all_hold"},
    "scaling": {"rows", "fits", "checks"},
}


def test_every_experiment_is_listed_with_its_expected_keys():
    assert set(ex.NAMES) == set(EXPECTED_KEYS)


@pytest.mark.parametrize("name", ex.NAMES)
def test_each_experiment_runs_quick_and_returns_strict_json_with_settings(name):
    data = ex.result(name, True, 0)
    text = json.dumps(data, allow_nan=False)  # no NaN/inf leaks: they are written as strings
    assert json.loads(text) == data
    assert "settings" in data and data["settings"]["seed"] == 0
    assert EXPECTED_KEYS[name] <= set(data), sorted(EXPECTED_KEYS[name] - set(data))


@pytest.mark.parametrize("name", ex.NAMES)
def test_plot_is_optional_and_never_required(name, tmp_path):
    out = ex.module(name).plot(ex.result(name, True, 0), str(tmp_path / f"{name}.png"))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert out is None
    else:
        assert out is not None and (tmp_path / f"{name}.png").exists()


def test_unknown_experiment_names_are_refused():
    with pytest.raises(ValueError, match="expected one of"):
        ex.module("nope")


def test_same_seed_gives_the_same_tables():
    a = ex.module("looseness").run(True, 3)
    b = ex.module("looseness").run(True, 3)
    assert a == b


@pytest.mark.paper("Lemma E.11")
def test_fixed_degree_fast_backward_matches_the_exact_gradient_at_high_degree():
    rng = np.random.default_rng(1)
    for heads in (1, 2):
        X, layers = cm.residual_stack(rng, 48, 4, 2)
        tr = forward(X, layers, residual=True, activation="tanh", heads=heads)
        C = rng.uniform(-1, 1, X.shape)
        exact = backward(tr, C)
        fb = cm.fast_backward(tr, C, 16)
        assert cm.errs(fb.dT[0], exact.dX)["rel"] < 1e-10
        for i in range(2):
            dW = exact.layers[i].dW if heads == 1 else exact.layers[i].dW.sum(axis=0)
            assert cm.errs(fb.dW[i], dW)["rel"] < 1e-9
            assert cm.errs(fb.dW_V[i], exact.layers[i].dW_V)["rel"] < 1e-9


@pytest.mark.paper("Lemma I.1")
def test_taylor_lift_reproduces_the_truncated_exponential_entrywise():
    rng = np.random.default_rng(2)
    Q, K = rng.uniform(-1, 1, (7, 3)), rng.uniform(-1, 1, (6, 3))
    U0, V0 = cm.taylor_lift(Q, K, 0.5, 5)
    S = 0.5 * Q @ K.T
    want = sum(S**t / math.factorial(t) for t in range(6))
    assert U0.shape == (7, cm.rank(3, 5)) == (7, math.comb(8, 5))
    assert np.abs(U0 @ V0.T - want).max() < 1e-13


@pytest.mark.paper("Lemma H.4")
def test_batched_backward_map_equals_the_reference_backward_one_layer_at_a_time():
    rng = np.random.default_rng(3)
    X, layers = cm.residual_stack(rng, 12, 4, 3)
    tr = forward(X, layers, residual=True, activation="tanh")
    C = rng.uniform(-1, 1, X.shape)
    exact = backward(tr, C)
    for i in range(3):
        got = cm.layer_vjp_batch(tr, i, exact.dT[i + 1][None])[0]
        assert np.abs(got - exact.dT[i]).max() < 1e-13


def test_operator_norm_is_the_max_row_sum_of_the_dense_jacobian_and_bounds_every_vector():
    rng = np.random.default_rng(4)
    n, d = 6, 2
    X = rng.uniform(-1, 1, (n, d))
    tr = forward(X, [Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(4)))], residual=True, activation="tanh")
    E = np.eye(n * d).reshape(n * d, n, d)
    M = cm.layer_vjp_batch(tr, 0, E).reshape(n * d, n * d).T  # column k = map(e_k)
    norm = cm.linf_operator_norm(tr, [0], batch=5)
    assert abs(norm - np.abs(M).sum(axis=1).max()) < 1e-12
    for _ in range(20):
        v = rng.uniform(-1, 1, (1, n, d))
        assert np.abs(cm.layer_vjp_batch(tr, 0, v)).max() <= norm * np.abs(v).max() * (1 + 1e-12)
    assert cm.power_iteration(tr, 0, rng) <= norm * (1 + 1e-9)


def test_slope_fit_has_a_t_interval_that_covers_a_known_slope():
    assert abs(cm.t_quantile(10) - 2.228138851986273) < 1e-6
    rng = np.random.default_rng(5)
    x = np.arange(12.0)
    y = 1.0 + 0.5 * x + rng.normal(0, 0.1, x.size)
    f = cm.fit_line(x, y)
    assert f["lo"] < 0.5 < f["hi"] and f["hi"] - f["lo"] < 0.2
    assert cm.fit_line([1, 2], [1, 2])["lo"] == -math.inf  # two points: no interval


def test_taylor_degree_search_meets_its_bound():
    for R, eps in ((0.5, 1e-6), (2.0, 1e-8)):
        g = cm.min_taylor_degree(R, eps)
        assert cm.taylor_rel_bound(R, g) <= eps < cm.taylor_rel_bound(R, g - 1)


def test_depth_conclusion_states_its_answer_with_the_reasoning():
    c = ex.result("depth", True, 0)["conclusion"]
    assert c["supports_1_over_poly_for_m_n_o1"] in (False, None)
    assert "m = O(log n)" in c["text"] and "per layer" in c["text"]


@pytest.mark.paper("Lemma C.14")
def test_looseness_table_has_both_constants_and_every_bound_holds():
    lo = ex.result("looseness", True, 0)
    assert lo["all_hold"] and not lo["violations"]
    lemmas = {t["lemma"] for t in lo["table"]}
    for want in (
        "Lemma C.14",
        "Lemma C.15",
        "Lemma C.16",
        "Lemma C.18",
        "Lemma C.19",
        "Lemma F.5",
        "Lemma G.4",
        "Lemma H.2",
    ) + tuple(f"Lemma E.{k}" for k in range(2, 12) if k not in (1,)):
        assert want in lemmas, want
