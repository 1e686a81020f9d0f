r"""Issue 14 item 3: the clustered kernel (fastpath.clustered) against the exact kernel, gradients and certificate.

Two routes: the dense float64 reference (reference.attention, fastpath.compare) and, for the certificate, the
50-digit mpmath reference. The entrywise check derives its tolerance from the certificate (Step 1 of
fastpath.certificate): $|\tilde f - f| \le (\rho_i + r_r(1+\rho_i) + e_{ref}) f$ with $\rho_i$ from the operator's
per-row relative error, $r_r$ the product rounding of fastpath.bounds.rounding_rel (with the operator's kappa)
and $e_{ref}$ the float64 reference's own kernel error (fastpath.lowrank.exact_kernel_cert).
"""

import numpy as np
import pytest

import fastpath
import fastpath.clustered as cl
import reference
from fastpath.bounds import rounding_rel
from fastpath.certificate import head_kernel
from fastpath.compare import compare, random_layers
from fastpath.layer import head_forward
from fastpath.lowrank import exact_kernel_cert
from reference.attention import head_forward as ref_head_forward

EPS = 1e-6


def _inputs(dist: str, n: int, d: int, seed: int, scale: float = 1.0):
    """Small logits (U[-1, 1], weights U[+-scale/sqrt d]) or the authors' inputs (N(0,1), orthogonal weights)."""
    rng = np.random.default_rng([14, n, d, seed])
    if dist == "small":
        X = rng.uniform(-1, 1, (n, d))
        W = [rng.uniform(-scale, scale, (d, d)) / np.sqrt(d) for _ in range(3)]
    else:
        X = rng.standard_normal((n, d))
        W = [np.linalg.qr(rng.standard_normal((d, d)))[0] for _ in range(3)]
    return X, W


@pytest.fixture
def level(monkeypatch):
    """Force the number of clusters (2^level per side) instead of the cost model's choice; the operator is kept even
    where the dense head is modelled cheaper (small n), unless ``fallback``."""

    def force(lev, fallback=False):
        if not fallback:
            monkeypatch.setattr(cl, "DENSE_FALLBACK_MAX", 0)
        orig = cl.choose_level
        monkeypatch.setattr(cl, "choose_level", lambda q, k, beta, eps, kind, work, level=None, causal=False,
                            width=None, **kw: orig(q, k, beta, eps, kind, work, lev, causal, width, **kw))  # fmt: skip

    return force


def _ratio(X, W, beta, level_fn, lev, eps=EPS, causal=False) -> tuple[float, object]:
    """max over entries of |f~ - f| / bound (module docstring) for one head; returns (ratio, head state)."""
    level_fn(lev)
    st = head_forward(X, W[0], W[1], W[2], beta, eps=eps, kind="chebyshev", causal=causal, budget=2**31,
                      method="clustered")  # fmt: skip
    n = X.shape[0]
    f_fast = st.op.dense()  # (n, n)
    f_fastT = st.op.applyT(np.eye(n), fastpath.work.Work()).T  # (n, n) the transposed product, same bound
    f = ref_head_forward(X, W[0] @ W[1].T, W[2], beta, causal).f
    if causal:  # masked entries are exactly zero on both sides
        assert (f_fast[f == 0] == 0).all() and (f_fastT[f == 0] == 0).all()
        f, f_fast, f_fastT = (np.where(f > 0, a, 1.0) for a in (f, f_fast, f_fastT))
    hk = head_kernel(st, X, np.zeros_like(X))
    _, rr = rounding_rel(st, n, X.shape[1])
    e_ref = exact_kernel_cert(X, W[0], W[1], beta, st.R, eps).err
    rho = hk.rho[:, None]
    bound = (rho + rr * (1 + rho) + e_ref) * f
    return max(float((np.abs(f_fast - f) / bound).max()), float((np.abs(f_fastT - f) / bound).max())), st


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize(("dist", "scale", "n", "lev", "eps"), [("small", 1, 512, 0, EPS), ("small", 1, 512, 3, EPS),
                                                                ("small", 1, 256, 1, EPS), ("small", 1.5, 512, 2, EPS),
                                                                ("authors", 1, 1024, 5, 1e-3)])  # fmt: skip
def test_the_clustered_kernel_is_within_its_entrywise_relative_certificate(dist, scale, n, lev, eps, level):
    """The authors' inputs get polynomial pairs only at n = 1024, 32 clusters and eps = 1e-3 among small cases."""
    X, W = _inputs(dist, n, 4, 0, scale)
    ratio, st = _ratio(X, W, 0.25, level, lev, eps)
    assert st.method == "clustered" and st.op.plan.poly.any()
    assert ratio <= 1, ratio
    assert st.op.row_eps.max() <= eps * (1 + 1e-6)  # the target plus the exponent rounding (< 1e-12 here)


def test_where_the_dense_head_is_modelled_cheaper_it_is_used(level):
    X, W = _inputs("authors", 256, 4, 0)
    level(2, fallback=True)
    st = head_forward(X, *W, 0.25, eps=EPS, kind="chebyshev", causal=False, budget=2**31, method="clustered")
    assert st.method == "exact" and st.dense is not None


@pytest.mark.paper("Lemma I.1")
@pytest.mark.parametrize(("n", "lev"), [(1024, 0), (2048, 1)])
def test_the_causal_clustered_kernel_is_within_its_certificate_and_masks_exactly(n, lev, level):
    """Time blocks of 256 tokens clustered inside; pairs below the diagonal blocks polynomial, on them dense."""
    X, W = _inputs("small", n, 4, 0)
    ratio, st = _ratio(X, W, 0.25, level, lev, causal=True)
    assert st.op.plan.poly.any() and (st.op.plan.diag & ~st.op.plan.poly).any() and not st.op.plan.allowed.all()
    assert ratio <= 1, ratio


def test_a_case_mixing_polynomial_and_exact_pairs_is_within_its_certificate(level):
    """8 clusters per side, a quarter of the pairs dense (this seed): both kinds of pairs in one operator."""
    X, W = _inputs("small", 512, 4, 4)
    ratio, st = _ratio(X, W, 0.25, level, 3)
    assert ratio <= 1, ratio
    assert st.op.plan.poly.any() and not st.op.plan.poly.all()
    assert len(st.op.qs.idx) > 1 and len(st.op.ks.idx) > 1


def test_a_pair_range_from_rms_radii_is_caught(level, monkeypatch):
    """Mutant: R_IJ from the clusters' RMS radii sqrt(mean ||delta||^2) instead of the largest offset: the
    polynomial is certified on too short an interval and the entrywise check fails."""
    import fastpath.cluster_tree as ct
    from proofs_check.checks.fast_clustered import rms_ranges

    orig = ct.plan_pairs
    monkeypatch.setattr(ct, "plan_pairs", lambda *a, **kw: orig(*a, **{**kw, "pair_range": rms_ranges}))
    X, W = _inputs("small", 512, 4, 0)
    ratio, st = _ratio(X, W, 0.25, level, 1)
    assert st.op.plan.poly.any()
    assert ratio > 1, ratio


def test_a_dropped_column_factor_is_caught(level, monkeypatch):
    """Mutant: the per-column factor exp(beta c_I . k_j - bbar) replaced by 1."""
    orig = cl.build

    def build(*a, **kw):
        op = orig(*a, **kw)
        op.colf = [np.ones_like(c) for c in op.colf]
        op.D = op._pass(np.ones((op.q.shape[0], 1)), False, fastpath.work.Work())[:, 0]
        return op

    monkeypatch.setattr(cl, "build", build)
    X, W = _inputs("small", 512, 4, 0)
    ratio, _ = _ratio(X, W, 0.25, level, 1)
    assert ratio > 1, ratio


@pytest.mark.paper("Theorem 4.2")
@pytest.mark.parametrize(("dist", "heads", "lev", "n", "eps", "causal"), [
    ("small", 1, 0, 512, EPS, False), ("small", 2, 2, 512, EPS, False), ("small", 1, 3, 512, EPS, False),
    ("authors", 1, 5, 1024, 1e-3, False), ("small", 1, 0, 1024, EPS, True),
    ("small", 2, 0, 1024, EPS, True)])  # fmt: skip
def test_fast_gradients_on_the_clustered_kernel_are_within_the_certificate(dist, heads, lev, n, eps, causal, level):
    level(lev)
    X, W = _inputs(dist, n, 4, 0)
    rng = np.random.default_rng([14, heads, lev])
    layers = [reference.Layer(*W)]
    c = compare(X, layers, rng.uniform(-1, 1, X.shape), eps=eps, method="clustered", heads=heads, causal=causal)
    assert c.method == "clustered"
    assert not c.violations, c.violations
    assert all(np.isfinite(r) and r <= 1 for r in c.ratio.values())


@pytest.fixture
def force_poly(monkeypatch):
    """Every unmasked off-diagonal pair on its certified polynomial, whatever the cost model says (tiny n); causal
    time blocks of 4 tokens."""
    import fastpath.cluster_tree as ct

    orig = ct.plan_pairs
    monkeypatch.setattr(ct, "plan_pairs", lambda *a, **kw: orig(*a, **{**kw, "rule": "polynomial"}))
    monkeypatch.setattr(ct, "CAUSAL_MIN_TOKENS", 4)
    monkeypatch.setattr(cl, "DENSE_FALLBACK_MAX", 0)


@pytest.mark.paper("Theorem 4.2")
@pytest.mark.parametrize("causal", [False, True])
def test_the_clustered_certificate_holds_against_the_mpmath_reference(causal, force_poly):
    rng = np.random.default_rng(31)
    n, d = 8, 2
    X, layers, dL = rng.uniform(-1, 1, (n, d)), random_layers(rng, d, 2), rng.uniform(-1, 1, (n, d))
    kw = dict(residual=True, activation="tanh", causal=causal)
    tr = fastpath.forward(X, layers, eps=EPS, method="clustered", **kw)
    assert tr.method == "clustered"
    g = fastpath.backward(tr, dL)
    rg = reference.backward(reference.forward(X, layers, backend="mpmath", dps=50, **kw), dL)
    for fast, exact, bound in [(g.dX, rg.dX, g.bound.dX)] + [
        (a.dW, b.dW, c.dW) for a, b, c in zip(g.layers, rg.layers, g.bound.layers, strict=True)
    ]:
        assert (np.abs(fast - np.array(exact, dtype=float)) <= bound).all()


@pytest.mark.parametrize("kw", [{"certificate": "a-priori"}, {"exact_forward": True}])
def test_the_a_priori_certificate_and_the_exact_forward_hold_on_the_clustered_kernel(kw, level):
    level(1)
    X, W = _inputs("small", 512, 4, 5)
    rng = np.random.default_rng([14, 5])
    c = compare(X, [reference.Layer(*W)], rng.uniform(-1, 1, X.shape), eps=EPS, method="clustered", **kw)
    assert c.method == "clustered" and not c.violations, c.violations


def test_a_clustered_head_reports_the_largest_rank_of_its_polynomial_pairs(level):
    X, W = _inputs("small", 512, 4, 4)
    level(3)
    st = head_forward(X, *W, 0.25, eps=EPS, kind="chebyshev", causal=False, budget=2**31, method="clustered")
    ranks = st.op.plan.rank[st.op.plan.poly]  # ranks of the polynomial pairs
    assert ranks.size and st.rank == int(ranks.max()) < X.shape[0]
    tr = fastpath.forward(X, [reference.Layer(*W)], eps=EPS, beta=0.25, method="clustered")
    assert tr.method == "clustered" and tr.rank == max(s.rank for c in tr.caches for s in c.heads) < X.shape[0]


def test_the_clustered_work_is_counted_and_below_the_dense_head_on_small_logits():
    X, W = _inputs("small", 2048, 4, 2)
    fast = head_forward(X, *W, 0.25, eps=EPS, kind="chebyshev", causal=False, budget=2**31, method="clustered")
    dense = head_forward(X, *W, 0.25, eps=EPS, kind="chebyshev", causal=False, budget=2**31, method="exact")
    assert 0 < fast.madds < dense.madds / 2  # measured 1/5.6 here (one cluster, the re-centred polynomial)


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"degree": 3}, "degree"), ({"memory_budget": 1000}, "memory_budget"), ({"method": "clusterd"}, "method")],
)
def test_bad_input_to_the_clustered_method_is_named(kw, match):
    X, W = _inputs("small", 64, 4, 3)
    layers = [reference.Layer(*W)]
    with pytest.raises(ValueError, match=match):
        fastpath.forward(X, layers, eps=EPS, **({"method": "clustered"} | kw))


def test_a_level_out_of_range_is_named():
    X, W = _inputs("small", 64, 4, 3)
    with pytest.raises(ValueError, match="level"):
        cl.build(X @ W[0], X @ W[1], 0.25, EPS, "chebyshev", 2**31, fastpath.work.Work(), level=5)
