"""The fast-path checks (``proofs_check/checks/fast_*.py``): each runs in quick mode and agrees with its expected
status; ids, labels and the catalogue entries they cover follow SPEC §3 and §4; modules follow the paper's parts."""

import re

import pytest

from proofs_check import registry as reg
from proofs_check.checks import fast_appendix_i as fi

REGISTRY = reg.load_all()
FAST = [c for c in REGISTRY.values() if c.module.startswith("proofs_check.checks.fast_")]

# SPEC §3 entries these modules own (main text, appendices C/E/F/G/H/I/J/K on the fast path)
OWNED = {5, 10, 11, 12, 14, 15, 16, 18, 19, 20, 36, 37, 38, 39, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 75, 79,
         82, 83, 84, 86, 87, 88, 90, 91, 92, 97, 100}  # fmt: skip


def test_fast_modules_register_each_owned_entry():
    ours = {s for c in FAST for s in c.spec}
    assert ours >= OWNED, sorted(OWNED - ours)


def test_ids_and_labels_follow_the_paper_and_the_weak_point_list():
    paper = re.compile(r"^(Theorem|Lemma) [0-9A-K]+\.\d+( \(beta = 1\))?$|^Algorithm \d$|^Claim §[0-9A-K.]+$")
    for c in FAST:
        if c.id.startswith("exp."):
            assert re.match(r"^Weak point W\d+$", c.label) and c.id.split(".")[1] == c.label.split()[-1], c.id
        else:
            assert paper.match(c.label), c.label


def test_expected_statuses_follow_the_spec_for_the_gap_entries():
    gap = {5, 10, 11, 18, 83, 97, 100}
    for c in FAST:
        if c.id.startswith("cat.") and set(c.spec) & gap:
            assert c.expected == "GAP", c.id


def test_e_lemmas_judge_their_own_conclusion_and_record_the_inherited_transposition():
    """SPEC §0.5 item 4: the fast terms of E.3-E.10 hold (printed and corrected), the transposition is inherited."""
    for cid in ("fast.E3.D6", "fast.E5.D7", "fast.E6.D8", "fast.E8.D2", "fast.E10.D4"):
        c = REGISTRY[cid]
        assert c.expected == "OK" and 43 in c.inherits, cid
    assert REGISTRY["fast.E11.dX"].expected == "WRONG-AS-PRINTED" and 43 in REGISTRY["fast.E11.dX"].inherits


@pytest.mark.parametrize("cid", [pytest.param(c.id, marks=pytest.mark.paper(c.label), id=c.id) for c in FAST])
def test_every_fast_check_agrees_with_its_expected_status_and_fills_the_schema(cid):
    rec = reg.run_check(REGISTRY[cid], reg.Context(quick=True, seed=0), mutants=False)
    assert not rec.contradicts, (rec.verdict, rec.figure, rec.data.get("traceback"))
    assert rec.figure and rec.observed is not None and rec.precision
    assert rec.bound is not None or rec.illustration


@pytest.mark.paper("Algorithm 2")
def test_algorithm_2_listing_is_the_masked_product_and_its_off_by_one_is_not():
    import numpy as np

    rng = np.random.default_rng(0)
    U, V, v = rng.uniform(size=(9, 3)), rng.uniform(size=(9, 3)), rng.uniform(size=9)
    assert np.abs(fi.algorithm2_literal(U, V, v) - np.tril(U @ V.T) @ v).max() < 1e-14
    assert np.abs(fi.algorithm2_literal(U, V, v, strict=True) - np.tril(U @ V.T, -1) @ v).max() < 1e-14


def test_fast_check_modules_stay_within_400_lines():
    import pathlib

    for p in pathlib.Path(reg.__file__).parent.glob("checks/fast_*.py"):
        assert len(p.read_text().splitlines()) <= 400, p
