r"""The streamed exact head (:mod:`fastpath.dense`): the dense kernel in O(n·b + n·d) memory (issue 14, d = 8 at
n = 2^16 within the memory budget).

Tolerances. The streamed head and the float64 reference differ only in rounding (the summation order of the column
sums over row blocks, and BLAS's blocking of the logits). Every comparison below is against the head's a-posteriori
certificate (:mod:`fastpath.certificate`), which bounds |computed − exact| entrywise by $\gamma$ of the summed
length times the computed magnitudes, for the fast evaluation and the float64 reference together ($r_r$ of
:func:`fastpath.bounds.rounding_rel`); the second route checks the same bound against a 50-digit mpmath reference.
"""

import tracemalloc

import numpy as np
import pytest
from mp_oracle import assert_within_bounds_against_mpmath

import fastpath
import reference
from fastpath.compare import compare
from fastpath.dense import dense_backward, row_block, streamed_contractions, working_set
from fastpath.layer import head_forward
from reference.model import Layer


def _authors(n, d, seed=0):
    """The authors' inputs (X ~ N(0, 1), W the Q factors of Gaussian d×d matrices) and an upstream G ~ U[-1, 1]."""
    rng = np.random.default_rng([14, n, d, seed])
    X = rng.standard_normal((n, d))
    layers = [Layer(*(np.linalg.qr(rng.standard_normal((d, d)))[0] for _ in range(3)))]
    return X, layers, rng.uniform(-1, 1, (n, d))


def _heads(tr):
    return [st for c in tr.caches for st in c.heads]


@pytest.mark.paper("Lemma C.4")
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("heads", [1, 2])
def test_the_streamed_exact_head_equals_the_reference_within_its_certificate(causal, heads):
    """Several row blocks (n = 120, blocks of 25); every output, gradient and the five terms against the float64
    reference, within the certificate, which is finite and informative (below 1e-9 of each field's scale)."""
    n, d = 120, 4
    X, layers, dL = _authors(n, d)
    budget = working_set(n, d, d // heads, 25)
    c = compare(X, layers, dL, eps=1e-6, method="exact", memory_budget=budget, causal=causal, heads=heads)
    assert c.method == "exact"
    assert not c.violations, c.violations
    tr = fastpath.forward(X, layers, eps=1e-6, method="exact", memory_budget=budget, causal=causal, heads=heads)
    assert all(st.dense.block == 25 and not st.dense.kept for st in _heads(tr))
    g = fastpath.backward(tr, dL)
    assert float(np.max(g.bound.dX)) <= 1e-9 * float(np.abs(g.dX).max())


@pytest.mark.parametrize("causal", [False, True])
def test_an_exact_forward_head_streams_its_dense_output(causal):
    """exact_forward: the low-rank factors serve the backward, the output is the streamed exact one."""
    n, d = 160, 4
    X, layers, dL = _authors(n, d, 1)
    layers = [Layer(*(w / 2 for w in (L.W_Q, L.W_K, L.W_V))) for L in layers]  # a rank that fits the budget below
    budget = working_set(n, d, d, 30)  # blocks of 30 rows
    kw = dict(eps=1e-3, method="lowrank", exact_forward=True, causal=causal, memory_budget=budget)
    c = compare(X, layers, dL, **kw)
    assert not c.violations, c.violations
    (st,) = _heads(fastpath.forward(X, layers, **kw))
    assert st.exact_forward and st.dense.block == 30
    rt = reference.forward(X, layers, causal=causal)
    assert np.abs(st.s - rt.output).max() <= 1e-9 * np.abs(rt.output).max()  # informative; the bound holds above


@pytest.mark.paper("Theorem 4.2")
@pytest.mark.parametrize("causal", [False, True])
def test_the_certificate_of_a_streamed_exact_head_holds_against_mpmath(causal):
    """The second route: 50-digit mpmath forward and backward, blocks of 5 rows of n = 24."""
    n, d = 24, 2
    X, layers, dL = _authors(n, d, 2)
    tr = fastpath.forward(X, layers, method="exact", memory_budget=working_set(n, d, d, 5), causal=causal)
    assert _heads(tr)[0].dense.block == 5
    g = fastpath.backward(tr, dL)
    assert_within_bounds_against_mpmath(X, layers, dL, tr, g, ("dW_V", "dW_Q"), causal=causal)


@pytest.mark.parametrize("causal", [False, True])
def test_a_head_whose_attention_matrix_fits_keeps_it_and_is_bit_identical_to_the_reference(causal):
    """b = n (the budget holds f): the reference's dense head itself, no recomputation counted."""
    n, d = 64, 4
    X, layers, dL = _authors(n, d, 3)
    tr = fastpath.forward(X, layers, method="exact", causal=causal)
    (st,) = _heads(tr)
    assert st.dense.kept and st.dense.block == n
    rt = reference.forward(X, layers, causal=causal)
    np.testing.assert_array_equal(tr.output, rt.output)
    np.testing.assert_array_equal(fastpath.backward(tr, dL).dX, reference.backward(rt, dL).dX)
    streamed = fastpath.forward(X, layers, method="exact", causal=causal, memory_budget=working_set(n, d, d, 16))
    assert streamed.madds == tr.madds  # the forward executes the same contractions, in blocks
    hs, ms = dense_backward(_heads(streamed)[0].dense, dL)
    hk, mk = dense_backward(st.dense, dL)
    assert ms - mk == sum(k for *_, k in streamed_contractions(n, d, d, 16, "backward"))
    assert ms - mk >= n * n * (d + 1)  # at least the logits and exps recomputed once


def test_forward_and_backward_stay_below_a_memory_budget_smaller_than_one_attention_matrix():
    """n = 2048, d = 2: one f is 32 MiB; the budget 6 MiB gives blocks of 42 rows. tracemalloc counts every numpy
    allocation of the forward, the backward and both certificates. Measured peak 4.73 MB (in the backward): 4 (b, n)
    arrays of the current block (f_b, p1, p2, P in the backward; the logits and softmax's three in a
    recomputation), 2.75 MB, and about 60 (n, d) arrays of the head, the trace and the certificates, 1.98 MB;
    :func:`fastpath.dense.working_set` models 6 (b, n) and 64 (n, d) arrays."""
    n, d, budget = 2048, 2, 6 * 2**20
    X, layers, dL = _authors(n, d, 4)
    assert n * n * 8 > 4 * budget
    tracemalloc.start()
    try:
        tr = fastpath.forward(X, layers, method="exact", memory_budget=budget)
        g = fastpath.backward(tr, dL)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (st,) = _heads(tr)
    assert not st.dense.kept and st.dense.block == row_block(n, d, d, budget)
    assert np.isfinite(g.bound.dX).all()
    assert peak < budget, f"peak {peak} bytes >= memory_budget {budget}"


def test_a_memory_budget_too_small_for_one_row_is_refused_by_name():
    n, d = 256, 4
    X, layers, _ = _authors(n, d, 5)
    need = working_set(n, d, d, 1)
    with pytest.raises(ValueError, match=rf"memory_budget: .*needs at least {need} bytes.*memory_budget = {need - 1}"):
        fastpath.forward(X, layers, method="exact", memory_budget=need - 1)
    with pytest.raises(ValueError, match="memory_budget"):  # the head level too (the auto rule picks exact here)
        head_forward(X, *(getattr(layers[0], k) for k in ("W_Q", "W_K", "W_V")), 1 / d, eps=1e-6, kind="chebyshev",
                     causal=False, budget=need - 1, method="exact")  # fmt: skip


def test_issue_14_the_auto_rule_on_the_authors_inputs_runs_the_exact_head_within_the_budget():
    """The reproducer scaled down: d = 8, eps = 1e-6, beta = 1/8, method "auto" (rank >= n -> exact). At n = 2^16
    the dense head asked numpy for the 32 GiB f; here f would be 32 MiB against a 24 MiB budget."""
    n, d, budget = 2048, 8, 24 * 2**20
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d))
    layers = [Layer(*(np.linalg.qr(rng.standard_normal((d, d)))[0] for _ in range(3)))]
    assert n * n * 8 > budget
    tracemalloc.start()
    try:
        tr = fastpath.forward(X, layers, eps=1e-6, beta=1 / d, memory_budget=budget)
        g = fastpath.backward(tr, rng.uniform(-1, 1, (n, d)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    (st,) = _heads(tr)
    assert st.method == "exact" and not st.dense.kept
    assert np.isfinite(g.bound.dX).all() and peak < budget
