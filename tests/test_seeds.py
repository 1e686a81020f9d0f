"""Issue 13 item 6: every valid seed gives the same verdicts. The exact checks agree with their expected status for
seeds 0..49 (slow) and for a few seeds by default, among them the two that broke derived-less tolerances (2, 19)
and a huge one (2**80). The SymPy proofs do not draw random numbers; they run at seed 0 elsewhere."""

import pytest

from proofs_check import registry as reg

REGISTRY = reg.load_all()
EXACT = [c for c in REGISTRY.values() if c.module.split(".")[-1].startswith("exact_")]
SEEDED = [c for c in EXACT if not c.id.startswith("sym.")]


def _disagreeing(checks, seed: int) -> list[str]:
    out = []
    for c in checks:
        rec = reg.run_check(c, reg.Context(quick=True, seed=seed), mutants=False)
        if rec.contradicts:
            out.append(f"{c.id}: {rec.verdict}: {rec.figure}")
    return out


@pytest.mark.parametrize("seed", [2, 19, 2**80])
def test_the_exact_checks_agree_with_their_status_for_a_seed_that_broke_a_guessed_tolerance(seed):
    assert _disagreeing(SEEDED, seed) == []


def test_the_softmax_check_that_failed_at_seeds_2_and_19_states_its_derived_tolerances():
    for seed in (2, 19):
        rec = reg.run_check(REGISTRY["ref.def1.1.softmax"], reg.Context(seed=seed), mutants=False)
        assert rec.verdict == "holds" and rec.observed <= rec.bound, rec.figure


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(50))
def test_the_exact_checks_agree_with_their_status_for_seeds_0_to_49(seed):
    assert _disagreeing(EXACT, seed) == []
