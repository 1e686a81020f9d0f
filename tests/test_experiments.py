"""Weak-point experiments (spec §4): each runs in the quick profile and returns well-formed JSON data; the helpers
(the shipped fast path at a fixed degree, the exact backward maps, fits) agree with the exact reference."""

import json
import math

import numpy as np
import pytest

from proofs_check import experiments as ex
from proofs_check.experiments import stacks as sk
from proofs_check.experiments import stats as st
from proofs_check.experiments.scaling import EXPONENT_OK, head_madds
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
    "scaling": {"work", "verdicts", "timing", "checks"},
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
def test_fixed_degree_shipped_fast_backward_matches_the_exact_gradient_at_high_degree():
    rng = np.random.default_rng(1)
    for heads in (1, 2):
        X, layers = sk.residual_stack(rng, 48, 4, 2)
        tr = forward(X, layers, heads=heads, **sk.RESIDUAL)
        C = rng.uniform(-1, 1, X.shape)
        exact = backward(tr, C)
        fb = sk.fast_grads(X, layers, C, 16, heads=heads, **sk.RESIDUAL)
        assert st.errs(fb.dX, exact.dX)["rel"] < 1e-10
        for i in range(2):
            assert st.errs(fb.layers[i].dW, exact.layers[i].dW)["rel"] < 1e-9
            assert st.errs(fb.layers[i].dW_V, exact.layers[i].dW_V)["rel"] < 1e-9


@pytest.mark.paper("Lemma H.4")
def test_one_layer_maps_compose_to_the_reference_backward_of_the_stack():
    rng = np.random.default_rng(3)
    X, layers = sk.residual_stack(rng, 12, 4, 3)
    tr = forward(X, layers, **sk.RESIDUAL)
    C = rng.uniform(-1, 1, X.shape)
    exact = backward(tr, C)
    for i in range(3):
        assert np.abs(sk.exact_map(tr, i, exact.dT[i + 1]) - exact.dT[i]).max() < 1e-13


def test_operator_norm_is_the_max_row_sum_of_the_jacobian_and_bounds_every_vector():
    rng = np.random.default_rng(4)
    n, d = 6, 2
    X = rng.uniform(-1, 1, (n, d))
    tr = forward(X, [Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(4)))], **sk.RESIDUAL)
    E = np.eye(n * d).reshape(n * d, n, d)
    M = np.stack([sk.exact_map(tr, 0, e).ravel() for e in E], axis=1)  # column k = map(e_k)
    norm = sk.linf_operator_norm(tr, 0, 0)
    assert abs(norm - np.abs(M).sum(axis=1).max()) < 1e-12
    for _ in range(20):
        v = rng.uniform(-1, 1, (n, d))
        assert np.abs(sk.exact_map(tr, 0, v)).max() <= norm * np.abs(v).max() * (1 + 1e-12)
    assert sk.power_iteration(tr, 0, rng) <= norm * (1 + 1e-9)


def test_slope_fit_has_a_t_interval_that_covers_a_known_slope():
    assert abs(st.t_quantile(10) - 2.228138851986273) < 1e-6
    rng = np.random.default_rng(5)
    x = np.arange(12.0)
    y = 1.0 + 0.5 * x + rng.normal(0, 0.1, x.size)
    f = st.fit_line(x, y)
    assert f["lo"] < 0.5 < f["hi"] and f["hi"] - f["lo"] < 0.2
    assert st.fit_line([1, 2], [1, 2])["lo"] == -math.inf  # two points: no interval


@pytest.mark.paper("Theorem 4.1")
def test_counted_work_rule_accepts_the_fast_path_and_rejects_the_dense_control():
    sc = ex.result("scaling", True, 0)
    for key, v in sc["verdicts"].items():
        assert v["exponent"] <= EXPONENT_OK < v["control_exponent"], key
        assert v["ok"], key
    assert sc["verdicts"]["fast"]["control_exponent"] > 1.9


def test_dense_madds_are_derived_from_the_shapes_the_reference_used():
    from reference.attention import head_forward

    rng = np.random.default_rng(6)
    for n in (8, 16):
        c = head_forward(rng.uniform(-1, 1, (n, 3)), np.eye(3), np.eye(3), 1.0, False)
        assert head_madds(c) > n * n  # quadratic in n
    m8 = head_madds(head_forward(np.ones((8, 3)), np.eye(3), np.eye(3), 1.0, False))
    m16 = head_madds(head_forward(np.ones((16, 3)), np.eye(3), np.eye(3), 1.0, False))
    assert 3.5 < m16 / m8 < 4.0


def test_depth_conclusion_names_the_cells_it_rests_on_with_per_layer_factors_and_intervals():
    dd = ex.result("depth", True, 0)
    c = dd["conclusion"]
    assert c["supports_1_over_poly_for_m_n_o1"] in (False, None)
    assert "m = O(log n)" in c["text"] and "per layer" in c["text"]
    for f in dd["fits"]:
        lo, hi = f["growth_interval"]
        assert lo <= f["growth_per_layer"] <= hi and {"n", "beta", "scale", "g"} <= set(f)
        assert f"n={f['n']}, beta={f['beta']}, scale={f['scale']:g}, g={f['g']}" in c["text"]
    if c["supports_1_over_poly_for_m_n_o1"] is False:
        assert len(c["cells_growing"]) >= 2 and 2 * len(c["cells_growing"]) >= len(dd["fits"])


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
