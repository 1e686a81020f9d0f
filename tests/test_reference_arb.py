"""The Arb (ball arithmetic) reference: enclosures contain the mpmath values, radii are tiny, certificates are proved.

Issue 11. Skipped, with the install hint, when python-flint (the ``certify`` extra) is absent.
"""

from __future__ import annotations

import sys

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference
from reference import arb as A
from reference.testing import grad_fields, random_problem

flint = pytest.importorskip("flint", reason='the Arb backend needs python-flint: pip install "altgrad[certify]"')

CONFIGS = st.tuples(
    st.integers(2, 7),  # n
    st.sampled_from([2, 4]),  # d
    st.integers(1, 2),  # m
    st.booleans(),  # causal
    st.booleans(),  # residual
    st.sampled_from(["identity", "tanh", "gelu", "softplus", "cube"]),
    st.sampled_from([None, 1.0]),  # beta
    st.integers(0, 2**32 - 1),  # seed
)


def _both(n, d, m, causal, residual, act, beta, seed, dps_arb, dps_mp):
    rng = np.random.default_rng(seed)
    p = random_problem(rng, n, d, m)
    G = rng.uniform(-1, 1, (n, d))
    heads = 2 if d % 2 == 0 and n % 2 else 1
    cfg = dict(causal=causal, residual=residual, activation=act, beta=beta, heads=heads)
    ta = reference.forward(p.X, p.layers, backend="arb", dps=dps_arb, **cfg)
    tm = reference.forward(p.X, p.layers, backend="mpmath", dps=dps_mp, **cfg)
    return ta, reference.backward(ta, G), tm, reference.backward(tm, G)


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIGS)
def test_every_ball_contains_the_mpmath_value_at_60_digits(cfg):
    # Arb at 40 digits encloses the exact value with radius ~1e-38 relative; mpmath at 60 digits is within ~1e-57
    # of it (unit roundoff 1e-60 times the small condition numbers of these problems), far inside every ball.
    ta, ga, tm, gm = _both(*cfg, dps_arb=40, dps_mp=60)
    fa, fm = grad_fields(ga), grad_fields(gm)
    for k in fa:
        assert A.contains(fa[k], fm[k]).all(), k
    for i, (a, m) in enumerate(zip(ta.T, tm.T, strict=True)):
        assert A.contains(a, m).all(), f"T[{i}]"


@pytest.mark.parametrize("n", [8, 64])
def test_radii_at_200_bits_are_below_1e_40_relative_to_each_field(n):
    # dps = 58 gives ceil(58 log2 10) + 10 = 203 bits
    assert A.digits_to_bits(58) >= 200
    rng = np.random.default_rng([11, n])
    p = random_problem(rng, n, 4, 2)
    t = reference.forward(p.X, p.layers, backend="arb", dps=58, residual=True, activation="tanh", causal=True)
    g = reference.backward(t, rng.uniform(-1, 1, (n, 4)))
    for k, v in grad_fields(g).items():
        scale = np.abs(A.midpoints(v)).max()
        assert A.radii(v).max() <= 1e-40 * scale, k


def test_the_ball_of_a_known_constant_contains_it_and_excludes_its_neighbours():
    bk = reference.backend.get_backend("arb", 30)
    with bk.compute():
        third = bk.asarray(np.array([1.0])) / 3
        e = bk.exp(bk.asarray(np.array([1.0])))
    ctx = mpmath.MPContext()
    ctx.dps = 50
    assert A.contains(third, np.array([ctx.mpf(1) / 3], dtype=object)).all()
    assert not A.contains(third, np.array([1 / 3 + 1e-17])).any()  # a float64 neighbour lies outside
    assert A.contains(e, np.array([ctx.e], dtype=object)).all()
    assert A.radii(e)[0] < 1e-28


def test_float64_inputs_become_exact_balls_and_midpoints_round_trip():
    x = np.random.default_rng(3).uniform(-1, 1, (5, 3))
    b = A.as_arb_array(x)
    assert (A.radii(b) == 0).all() and (A.midpoints(b) == x).all()
    ctx = mpmath.MPContext()
    ctx.dps = 80
    v = ctx.mpf(-2) / 7
    assert A.to_ball(v).rad() == 0 and A.contains(A.as_arb_array(np.array([v], dtype=object)), [v]).all()


def test_an_undecidable_comparison_raises_instead_of_guessing():
    bk = reference.backend.get_backend("arb", 20)
    with bk.compute():
        z = bk.asarray(np.array([1.0])) / 3 * 3 - 1  # a ball around 0 with a nonzero radius
        with pytest.raises(ValueError, match="undecided"):
            _ = z > 0


def test_the_arb_backend_leaves_the_flint_and_mpmath_precisions_as_they_were():
    before, mp_before = flint.ctx.prec, mpmath.mp.dps
    p = random_problem(np.random.default_rng(1), 4, 2, 1)
    reference.backward(reference.forward(p.X, p.layers, backend="arb", dps=45), np.ones((4, 2)))
    assert flint.ctx.prec == before and mpmath.mp.dps == mp_before


def test_certify_fast_proves_the_certificate_and_reports_a_violation_as_disproved():
    from fastpath.certify import _prove_field, certify_fast
    from fastpath.compare import random_layers

    rng = np.random.default_rng(5)
    X, layers, G = rng.uniform(-1, 1, (16, 4)), random_layers(rng, 4, 2), rng.uniform(-1, 1, (16, 4))
    c = certify_fast(X, layers, G, eps=1e-6, residual=True, activation="tanh", causal=True)
    assert c.proved and not c.disproved and not c.undecided, c.summary()
    assert all(f.worst_ratio <= 1 for f in c.fields.values())
    # the same machinery must catch a certificate that is too small (a mutant: bound / 1e6 where the error is real)
    bk = reference.backend.get_backend("arb", 30)
    exact = A.as_arb_array(np.array([1.0, 2.0]))
    with bk.compute():
        fp = _prove_field(np.array([1.0 + 1e-9, 2.0]), exact, np.array([1e-15, 0.0]))
    assert fp.disproved == [(0,)] and fp.proved == 1


def test_without_python_flint_the_arb_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "flint", None)  # import flint now raises ImportError
    monkeypatch.setattr(A, "_FLINT", [])
    p = random_problem(np.random.default_rng(0), 3, 2, 1)
    with pytest.raises(ImportError, match=r"altgrad\[certify\]"):
        reference.forward(p.X, p.layers, backend="arb")
    assert not A.available()
    # everything else keeps working
    t = reference.forward(p.X, p.layers, backend="mpmath", dps=20)
    assert t.T[-1].shape == (3, 2)


def test_arb_computations_in_threads_are_identical_to_sequential_ones():
    # python-flint's precision is process-global: the backend serialises Arb work under a lock, so threads running
    # at different precisions beside an mpmath computation give exactly the sequential balls
    from concurrent.futures import ThreadPoolExecutor

    p = random_problem(np.random.default_rng(9), 6, 4, 2)
    G = np.random.default_rng(10).uniform(-1, 1, (6, 4))

    def run(dps):
        g = reference.backward(reference.forward(p.X, p.layers, backend="arb", dps=dps, residual=True), G)
        return [(x.mid().str(60), x.rad().str(5)) for x in np.asarray(g.dX).flat]

    def run_mp():
        g = reference.backward(reference.forward(p.X, p.layers, backend="mpmath", dps=60, residual=True), G)
        return [str(x) for x in np.asarray(g.dX).flat]

    seq = {dps: run(dps) for dps in (20, 40)}
    seq_mp = run_mp()
    with ThreadPoolExecutor(4) as ex:
        for _ in range(10):
            futs = [(dps, ex.submit(run, dps)) for dps in (20, 40, 20, 40)]
            fm = ex.submit(run_mp)
            assert all(f.result() == seq[dps] for dps, f in futs)
            assert fm.result() == seq_mp


def test_the_python_examples_of_the_enclosures_page_run_and_prove_what_they_say():
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "enclosures.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 2
    ns: dict = {}
    for b in blocks:
        exec(compile(b, str(page), "exec"), ns)  # noqa: S102 - our own documentation
    assert ns["arb"].radii(ns["grads"].dX).max() < 1e-35
    assert ns["c"].proved and not ns["c"].disproved


def test_bad_input_to_the_ball_helpers_names_the_argument_and_what_was_expected():
    with pytest.raises(TypeError, match="to_ball: expected a float"):
        A.to_ball("1.5")
    with pytest.raises(ValueError, match="NaN"):
        A.to_ball(float("nan"))
    with pytest.raises(ValueError, match=r"contains: expected value broadcastable .*\(2, 3\)"):
        A.contains(A.as_arb_array(np.zeros((2, 3))), np.zeros((4,)))
