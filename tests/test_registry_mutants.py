"""The registry's falsifiability machinery: mutants are run, killed mutants recorded, surviving ones reported."""

from __future__ import annotations

import pytest

from proofs_check import registry as reg


def _toy(ctx: reg.Context) -> reg.Result:
    # the "statement": 2 + 2 == 4; mutant "off_by_one" checks 2 + 2 == 5 with the same comparison
    value = 2 + 2 + (1 if ctx.mutated("off_by_one") else 0)
    return reg.Result(value == 4, f"2 + 2 = {value}", observed=float(value), bound=4.0, precision="exact")


def _check(mutants: tuple[str, ...], fn=_toy) -> reg.Check:
    return reg.Check("toy", "Toy 1", "toy", "ID", "OK", (), (), fn, __name__, mutants)


def test_a_mutant_that_flips_the_verdict_is_recorded_as_killed():
    rec = reg.run_check(_check(("off_by_one",)), reg.Context())
    assert rec.verdict == "holds" and rec.mutants_killed == ["off_by_one"] and rec.mutants_survived == {}
    assert rec.verified and rec.observed == 4.0 and rec.ratio == 1.0 and rec.precision == "exact"


def test_a_mutant_that_the_check_ignores_survives_and_the_check_is_not_verified():
    rec = reg.run_check(_check(("off_by_one", "ignored")), reg.Context())
    assert rec.mutants_killed == ["off_by_one"] and set(rec.mutants_survived) == {"ignored"}
    assert not rec.verified


def test_a_mutant_run_that_raises_is_not_a_kill():
    def crashes_on_mutant(ctx):
        if ctx.mutant:
            raise RuntimeError("boom")
        return reg.Result(True, "fine")

    rec = reg.run_check(_check(("m",), crashes_on_mutant), reg.Context())
    assert rec.mutants_killed == [] and "RuntimeError" in rec.mutants_survived["m"]


def test_a_check_without_mutants_is_never_counted_as_verified():
    rec = reg.run_check(_check(()), reg.Context())
    assert rec.verdict == "holds" and not rec.verified


def test_an_undeclared_mutant_is_refused_by_name():
    with pytest.raises(ValueError, match="declares"):
        reg.run_mutant(_check(("off_by_one",)), reg.Context(), "other")


def test_only_accepts_an_id_an_exact_label_or_a_label_prefix():
    registry = reg.load_all()
    d17 = {c.label for c in reg.select(registry, ["d.17"])}
    assert d17 and all(lab.startswith("Lemma D.17") for lab in d17)
    lemma_e = {c.label for c in reg.select(registry, ["lemma e"])}
    assert lemma_e and all(lab.startswith("Lemma E.") for lab in lemma_e)
    some_id = next(iter(registry))
    assert [c.id for c in reg.select(registry, [some_id])] == [some_id]
    with pytest.raises(ValueError, match="--only"):
        reg.select(registry, ["no such statement"])
