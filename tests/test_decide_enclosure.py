"""Issue 11 item 3: the registry proves identities and refutations by Arb enclosure where python-flint is present."""

from __future__ import annotations

import numpy as np
import pytest

from proofs_check import decide
from reference.attention import softmax

pytest.importorskip("flint", reason='enclosures need python-flint: pip install "altgrad[certify]"')


def _claim(shift: float):
    # Definition 1.1: softmax is invariant to a per-row shift; the mutant shifts one row by a non-constant vector
    def claim(bk, z):
        c = bk.asarray(np.array([[shift], [0.0], [0.0]]))
        return [("eq", "shift", softmax(z + c, bk), softmax(z, bk))]

    return claim


def test_a_true_identity_is_proved_by_enclosure_and_says_so():
    z = np.random.default_rng(0).uniform(-2, 2, (3, 4))
    res = decide.decide(_claim(0.7), [{"z": z}])
    assert res.ok and res.data["proof"] == decide.PROVED and "proved by enclosure" in res.precision


def test_a_false_identity_is_disproved_by_the_balls_even_if_rounding_hid_it():
    z = np.random.default_rng(0).uniform(-2, 2, (3, 4))

    def wrong(bk, z):  # off by 1e-30: float64 and a loose tolerance cannot see it, the balls at 50 digits can
        return [("eq", "tiny", z + bk.scalar(1e-30), z, 1.0)]

    assert decide.enclose(wrong, {"z": z}) == {"tiny": "disproved"}


def test_a_printed_form_that_fails_is_proved_wrong_by_enclosure():
    z = np.random.default_rng(1).uniform(-2, 2, (3, 4))

    def printed(bk, z):  # softmax over the wrong axis against the right one
        return [("ne", "axis", softmax(z.T, bk).T, softmax(z, bk))]

    assert decide.enclose(printed, {"z": z}) == {"axis": "proved"}


def test_finite_difference_rows_are_never_claimed_as_proved():
    z = np.ones((2, 2))
    assert decide.enclose(lambda bk, z: [("fd", "d", z, z)], {"z": z}) == {"d": "undecided"}


def test_a_check_with_a_finite_difference_row_is_only_refuted_never_proved_as_a_whole():
    z = np.random.default_rng(1).uniform(-2, 2, (3, 4))

    def claim(bk, z):
        return [("ne", "axis", softmax(z.T, bk).T, softmax(z, bk)), ("fd", "vs FD", z, z)]

    res = decide.decide(claim, [{"z": z}])
    assert res.ok and res.data["proof"] == decide.REFUTED and decide.PROVED not in res.precision
