"""Lemma D.17 / D.9 (spec §2.3): the five corrected terms, the three paths and their sum, proved exactly."""

import pytest

from symbolic.proofs import FIVE_TERM_SIZES, STATEMENTS, prove

TERMS = ["D8", "D4", "D2", "D7", "D6"]
PATHS = ["query", "key", "value", "dX"]


@pytest.mark.paper("Lemma D.17")
@pytest.mark.parametrize("term", TERMS)
@pytest.mark.parametrize("size", [(1, 1, 1), (2, 2, 1), (3, 1, 1)])
def test_each_corrected_term_equals_its_chain_rule_path(term, size):
    assert prove(term, *size).holds


@pytest.mark.paper("Lemma D.9")
@pytest.mark.parametrize("name", PATHS)
def test_paths_and_their_sum_equal_the_chain_rule_at_two_by_two(name):
    assert prove(name, 2, 2).holds


@pytest.mark.paper("Lemma D.17")
def test_five_term_statements_list_every_small_size_and_four_by_two():
    wanted = {(n, d, 1) for n in (1, 2, 3) for d in (1, 2)} | {(4, 2, 1)}
    for name in TERMS + PATHS:
        assert set(STATEMENTS[name].sizes) == wanted == set(FIVE_TERM_SIZES)


@pytest.mark.slow
@pytest.mark.paper("Lemma D.17")
@pytest.mark.parametrize("name", TERMS + PATHS)
def test_five_terms_paths_and_sum_hold_at_every_listed_size(name):
    for size in STATEMENTS[name].sizes:
        pr = prove(name, *size)
        assert pr.holds, size
        assert pr.seconds < 20
