"""The whole symbolic proof suite (spec §2.2–2.9): every statement at every size, each proof under 20 s."""

import pytest

from symbolic.proofs import STATEMENTS, prove_all


def test_quick_suite_proves_every_statement():
    records = prove_all(quick=True)
    assert {r.name for r in records} == set(STATEMENTS)
    assert all(r.holds for r in records)


@pytest.mark.slow
def test_full_suite_proves_everything_in_under_two_minutes():
    records = prove_all()
    assert all(r.holds for r in records), [r for r in records if not r.holds]
    assert max(r.seconds for r in records) < 20
    assert sum(r.seconds for r in records) < 120
