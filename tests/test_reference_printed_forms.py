"""WRONG-AS-PRINTED statements (spec §2.3, §0.4): the printed forms fail on a seeded example, the corrected hold.

A printed form is called wrong only when it fails in mpmath at 50 digits (not a float64 artefact): relative error
above 1e-3 (TOLERANCES["PRINTED_WRONG"]), while the corrected form agrees with finite differences to 1e-20.
"""

import numpy as np
import pytest

from reference import backward, forward, value_and_grad
from reference import printed as pr
from reference.attention import head_vjp
from reference.compare import TOLERANCES, rel_err
from reference.fd import fd_gradients
from reference.testing import random_problem

WRONG, TOL_FD = TOLERANCES["PRINTED_WRONG"], TOLERANCES["FD_mpmath_dps50"]


@pytest.fixture(scope="module")
def one_head():
    p = random_problem(np.random.default_rng(2024), 7, 3, 1, loss="half_squared", with_g=False)
    tr = forward(p.X, p.layers, beta=1.0, backend="mpmath", dps=50)
    G = value_and_grad(tr, p.loss)[1]
    c = tr.caches[0].attn.heads[0]
    hg = head_vjp(G, c)
    fd = fd_gradients(p.X, p.layers, p.loss, beta=1.0, dps=50, with_dT=False)
    return c, G, hg, fd


def test_the_weight_matrix_of_the_example_is_not_symmetric(one_head):
    c = one_head[0]
    assert float(rel_err(c.W, c.W.T)) > 0.1


@pytest.mark.paper("Lemma D.17")
def test_printed_five_term_sum_is_wrong_and_corrected_sum_is_right(one_head):
    c, G, hg, fd = one_head
    assert float(rel_err(pr.dX_as_printed(G, c), fd.dX)) > WRONG
    assert float(rel_err(hg.dX, fd.dX)) < TOL_FD


@pytest.mark.paper("Lemma D.17")
@pytest.mark.parametrize("term", ["D2", "D4", "D6", "D7", "D8"])
def test_each_printed_term_differs_from_its_corrected_form(one_head, term):
    c, G, hg, _ = one_head
    assert float(rel_err(pr.PRINTED_TERMS[term](G, c), hg.terms[term])) > WRONG


@pytest.mark.paper("Lemma G.3")
def test_printed_value_weight_gradient_is_wrong_and_corrected_is_right(one_head):
    c, G, hg, fd = one_head
    assert float(rel_err(pr.dW_V_as_printed(G, c), fd.layers[0]["dW_V"])) > WRONG
    assert float(rel_err(hg.dW_V, fd.layers[0]["dW_V"])) < TOL_FD


@pytest.mark.paper("Algorithm 1")
def test_algorithm_1_line_19_misses_the_p2_part_of_dW(one_head):
    c, G, hg, fd = one_head
    assert float(rel_err(pr.dW_as_printed_alg1_line19(G, c), fd.layers[0]["dW"])) > WRONG
    assert float(rel_err(hg.dW, fd.layers[0]["dW"])) < TOL_FD


@pytest.mark.paper("Lemma F.4")
def test_dW_as_printed_in_F4_is_right_at_beta_one(one_head):
    c, G, hg, fd = one_head
    printed = c.X.T @ (hg.P @ c.X)  # F.4: X^T p X, no beta (beta = 1 here)
    assert float(rel_err(printed, fd.layers[0]["dW"])) < TOL_FD


@pytest.mark.paper("Lemma D.17")
def test_printed_terms_fail_even_with_a_symmetric_weight():
    # spec §2.3: with symmetric W the W/W^T swap is harmless, but f vs f^T still breaks D6, D7, D8
    rng = np.random.default_rng(5)
    p = random_problem(rng, 7, 3, 1, loss="half_squared", with_g=False)
    L = p.layers[0]
    sym = type(L)(W_Q=L.W_Q, W_K=L.W_Q, W_V=L.W_V)  # W = W_Q W_Q^T is symmetric
    tr = forward(p.X, [sym], beta=1.0, backend="mpmath", dps=50)
    g = backward(tr, value_and_grad(tr, p.loss)[1])
    G, c = g.layers[0].G, tr.caches[0].attn.heads[0]
    assert float(rel_err(pr.dX_as_printed(G, c), g.dX)) > WRONG
