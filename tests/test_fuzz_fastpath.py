"""Fuzz suite (issues 10 and 13): randomized fast-vs-exact trials up to the refusal boundary.

Each trial draws a shape, a configuration and an input pattern (uniform, all-equal rows, one huge row, rank-1 X,
alternating signs) with a scale drawn log-uniformly so that the logit range reaches past what the polynomial can
certify. A trial must end in one of two ways: a ValueError that is one of fastpath's documented refusals, or a
result whose every certificate is finite, not vacuous (the attention bound below max |V|, the dL/dX bound below
max |dL/dX| or, where dL/dX cancels, below the kernel's relative accuracy times its natural size), and never
violated. A violation seen in float64 is re-decided against the 50-digit mpmath
reference before it counts. Seeded; the default run does 200 trials (Taylor polynomials, whose certificate is a
closed form), ``--runslow`` 10^4 (Chebyshev and Taylor).
"""

import re

import numpy as np
import pytest

import fastpath
import reference
from fastpath.compare import all_fields, random_layers

REFUSALS = (r"^X: layer \d+: the .* certificate of .* is vacuous", r"^dL_dout: (layer \d+: )?the .* certificate of",
            r"^X: layer \d+: .* (not finite|beyond what float64)", r"^eps: ", r"^X: the logits",
            r"^X: the low-rank normalizer")  # fmt: skip
ACTS = ("identity", "tanh", "relu", "gelu", "softplus", "cube")
PATTERNS = ("uniform", "equal_rows", "huge_row", "rank1", "alternating")


def _input(rng, pattern: str, n: int, d: int, scale: float) -> np.ndarray:
    X = rng.uniform(-1, 1, (n, d))
    if pattern == "equal_rows":
        X = np.repeat(X[:1], n, axis=0)
    elif pattern == "huge_row":
        X[rng.integers(n)] *= 8.0
    elif pattern == "rank1":
        X = np.outer(rng.uniform(-1, 1, n), rng.uniform(-1, 1, d))
    elif pattern == "alternating":
        X = np.where((np.arange(n)[:, None] + np.arange(d)[None, :]) % 2 == 0, 1.0, -1.0) * rng.uniform(0.5, 1, (n, d))
    return X * scale


def _trial(seed: int, kinds: tuple[str, ...] = ("chebyshev", "taylor")) -> str:
    rng = np.random.default_rng([13, seed])
    d = int(rng.choice([1, 2, 3, 4]))
    heads = int(rng.choice([h for h in (1, 2) if d % h == 0]))
    n, m = int(rng.integers(2, 25)), int(rng.integers(1, 4))
    cfg = dict(causal=bool(rng.integers(2)), heads=heads, residual=bool(rng.integers(2)),
               activation=str(rng.choice(ACTS)), beta=None if rng.integers(2) else 1.0)  # fmt: skip
    eps = float(rng.choice([1e-2, 1e-4, 1e-6, 1e-9]))
    method = str(rng.choice(["auto", "lowrank"]))
    poly = str(rng.choice(kinds))
    scale = float(np.exp(rng.uniform(np.log(0.1), np.log(6.0))))
    X = _input(rng, str(rng.choice(PATTERNS)), n, d, scale)
    layers = random_layers(rng, d, m, scale=scale, with_g=bool(rng.integers(2)))
    dL = rng.uniform(-1, 1, (n, d))
    try:
        tr = fastpath.forward(X, layers, eps=eps, method=method, poly=poly, **cfg)
        g = fastpath.backward(tr, dL)
    except ValueError as e:
        assert any(re.search(p, str(e)) for p in REFUSALS), f"seed {seed}: undocumented error {e!r}"
        return "refused"
    rg = reference.backward(reference.forward(X, layers, **cfg), dL)
    fast, exact, bound = all_fields(g, tr), all_fields(rg, tr), all_fields(g.bound, tr)
    for k, b in bound.items():
        assert np.isfinite(b).all(), f"seed {seed}: non-finite bound in {k}"
    # not vacuous (fastpath.model docstring): below max |dX|, or below the kernel's relative accuracy times the
    # natural size of dX (its five terms and skip path) when dX cancels
    floor = max(2.0**-26, 4 * tr.cert_err)
    natural = max(float(np.abs(v).max()) for v in g.layers[0].terms.values()) + float(np.abs(g.layers[0].G).max())
    assert float(g.bound.dX.max()) < max(float(np.abs(g.dX).max()), floor * natural), f"seed {seed}: vacuous dX"
    for c, st_ in zip(tr.caches, tr.bound_attn, strict=True):
        assert float(st_.max()) < max(float(np.abs(h.h).max()) for h in c.heads), f"seed {seed}: vacuous Attn"
    bad = [k for k in exact if (np.abs(fast[k] - exact[k]) > bound[k]).any()]
    if bad:  # re-decide in mpmath before counting (STYLE §3.9)
        rm = reference.backward(reference.forward(X, layers, backend="mpmath", dps=50, **cfg), dL)
        em = {k: np.array(v, dtype=float) for k, v in all_fields(rm, tr).items()}
        bad = [k for k in bad if (np.abs(fast[k] - em[k]) > bound[k]).any()]
    assert not bad, f"seed {seed}: certificate violated in {bad}"
    return "certified"


def _run(trials: int, offset: int, kinds: tuple[str, ...] = ("chebyshev", "taylor")) -> dict:
    counts = {"refused": 0, "certified": 0}
    for s in range(offset, offset + trials):
        counts[_trial(s, kinds)] += 1
    return counts


def test_fuzz_200_trials_end_in_a_certified_result_or_a_documented_refusal():
    counts = _run(200, 0, kinds=("taylor",))  # Taylor certificates are closed forms: the quick run stays quick
    assert counts["certified"] >= 100, counts  # most of the draws are certifiable; refusals are the edge


@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(20))
def test_fuzz_ten_thousand_trials_end_in_a_certified_result_or_a_documented_refusal(chunk):
    counts = _run(500, 200 + 500 * chunk)  # 20 chunks of 500 seeded trials: 10^4 in all, parallel with -n
    assert counts["certified"] >= 250, counts
