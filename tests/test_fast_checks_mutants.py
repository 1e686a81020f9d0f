"""Falsifiability of the fast-path checks (issue 9 item 2): every check that counts as verified declares at least
one mutant, a plausible wrong variant of what it checks, and its own evidence rejects every one (quick, seed 0).
A check that no mutant can flip is registered as an illustration and never counted."""

import pytest

from proofs_check import registry as reg

REGISTRY = reg.load_all()
FAST = [c for c in REGISTRY.values() if c.module.startswith("proofs_check.checks.fast_")]
COUNTED = [c for c in FAST if not c.illustration]


def test_every_fast_check_is_a_counted_check_with_mutants_or_an_illustration():
    for c in FAST:
        assert c.illustration or c.mutants, c.id
    assert len(COUNTED) >= len(FAST) - 3  # illustrations stay the exception


@pytest.mark.parametrize("cid", [pytest.param(c.id, marks=pytest.mark.paper(c.label), id=c.id) for c in COUNTED])
def test_each_fast_check_kills_every_mutant_it_declares(cid):
    chk = REGISTRY[cid]
    ctx = reg.Context(quick=True, seed=0)
    for name in chk.mutants:
        killed, why = reg.run_mutant(chk, ctx, name)
        assert killed, (name, why)
