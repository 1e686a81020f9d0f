"""Falsifiability (issue 9 item 2): every verified check declares mutants, and its evidence kills every one of them.

Two parametrized tests, one case per check id so that a failure names the check: the exact checks (the ``exact_*``
modules) must each declare a mutant or be an illustration, and kill what they declare; every other registered check
that declares mutants must kill them too. The second set grows as the other check modules gain mutants; at the
merge the first test is meant to cover the whole registry.
"""

import pytest

from proofs_check import registry as reg

REGISTRY = reg.load_all()
OWNED_BY_H2A = {
    f"proofs_check.checks.{m}"
    for m in ("exact_main_text", "exact_appendix_c", "exact_appendix_c_lowrank", "exact_appendix_d",
              "exact_appendix_d_sums", "exact_appendix_fg", "exact_appendix_hjk", "exact_weak_points")
}  # fmt: skip
EXACT = [c for c in REGISTRY.values() if c.module in OWNED_BY_H2A]
OTHERS = [c for c in REGISTRY.values() if c.module not in OWNED_BY_H2A and c.mutants and not c.illustration]


def _params(checks):
    return [pytest.param(c.id, marks=pytest.mark.paper(c.label), id=c.id) for c in checks if not c.illustration]


def test_every_exact_module_is_registered_and_holds_checks():
    assert {c.module for c in EXACT} == OWNED_BY_H2A


@pytest.mark.parametrize("cid", _params(EXACT))
def test_every_exact_check_declares_a_mutant_and_kills_every_one(cid):
    chk = REGISTRY[cid]
    assert chk.mutants, f"{cid}: no mutant declared (declare one, or register it as an illustration with a reason)"
    rec = reg.run_check(chk, reg.Context(quick=True, seed=0))
    assert not rec.contradicts, f"{cid}: {rec.verdict}: {rec.figure} {rec.data.get('traceback', '')}"
    assert rec.mutants_survived == {}, f"{cid}: surviving mutants {rec.mutants_survived}"
    assert rec.mutants_killed == list(chk.mutants) and rec.verified


@pytest.mark.parametrize("cid", _params(OTHERS))
def test_every_check_that_declares_mutants_kills_them(cid):
    chk = REGISTRY[cid]
    rec = reg.run_check(chk, reg.Context(quick=True, seed=0))
    assert rec.mutants_survived == {}, f"{cid}: surviving mutants {rec.mutants_survived}"


def test_an_exact_illustration_says_in_its_docstring_why_it_is_not_counted():
    for c in EXACT:
        if c.illustration:
            assert c.fn.__doc__ and "Illustration" in c.fn.__doc__, c.id
            assert not c.mutants, f"{c.id}: an illustration declares no mutant"
