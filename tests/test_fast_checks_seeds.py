"""Issue 13 item 6: the fast-path checks agree with their expected status, and kill their mutants, for every seed
0..49 and a few huge seeds (quick profile). Slow: run with --runslow."""

import pytest

from proofs_check import registry as reg

REGISTRY = reg.load_all()
FAST = [c for c in REGISTRY.values() if c.module.startswith("proofs_check.checks.fast_")]
SEEDS = [*range(50), 2**31 - 1, 2**63 + 5, 2**80]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_every_fast_check_holds_and_kills_its_mutants_for_this_seed(seed):
    ctx = reg.Context(quick=True, seed=seed)
    bad = {}
    for chk in FAST:
        rec = reg.run_check(chk, ctx)
        if rec.contradicts or rec.mutants_survived:
            bad[chk.id] = (rec.verdict, rec.figure, rec.mutants_survived)
    assert not bad, bad
