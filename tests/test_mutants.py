"""Falsifiability (issue 9 item 2): every check counted as verified declares mutants and its evidence kills them all.

One case per check id of the whole registry, so that a failure names the check: a check that is not an illustration
must declare at least one mutant (a plausible wrong variant of what it checks), agree with its expected status, and
its own evidence must reject every declared mutant (quick profile, seed 0). An illustration declares none and says
in its docstring why it is not counted.
"""

import pytest

from proofs_check import registry as reg

REGISTRY = reg.load_all()
COUNTED = [c for c in REGISTRY.values() if not c.illustration]
ILLUSTRATIONS = [c for c in REGISTRY.values() if c.illustration]


@pytest.mark.parametrize("cid", [pytest.param(c.id, marks=pytest.mark.paper(c.label), id=c.id) for c in COUNTED])
def test_every_counted_check_declares_a_mutant_and_kills_every_one(cid):
    chk = REGISTRY[cid]
    assert chk.mutants, f"{cid}: no mutant declared (declare one, or register it as an illustration with a reason)"
    rec = reg.run_check(chk, reg.Context(quick=True, seed=0))
    assert not rec.contradicts, f"{cid}: {rec.verdict}: {rec.figure} {rec.data.get('traceback', '')}"
    assert rec.mutants_survived == {}, f"{cid}: surviving mutants {rec.mutants_survived}"
    assert rec.mutants_killed == list(chk.mutants) and rec.verified


def test_illustrations_are_few_declare_no_mutant_and_say_why_they_are_not_counted():
    assert len(ILLUSTRATIONS) <= len(REGISTRY) // 10
    for c in ILLUSTRATIONS:
        assert not c.mutants, f"{c.id}: an illustration declares no mutant"
        assert c.fn.__doc__ and "llustration" in c.fn.__doc__, f"{c.id}: the docstring must say why it is not counted"
