r"""The claims registry: id, paper label, kind, expected status, dependencies, check function.

Semantics of a check
--------------------
A check function takes a :class:`Context` and returns a :class:`Result`. ``Result.ok`` is True when what was
observed *agrees with the expected status*:

* expected ``OK``: the statement holds (both sides agree within the stated tolerance, the bound holds, ...);
* expected ``WRONG-AS-PRINTED``: the printed form fails **and** the corrected form holds (a falsification check,
  with the counterexample in ``Result.data``);
* expected ``GAP`` / ``AMBIG``: the experiment that exposes the gap or the ambiguity ran and showed it;
* kind ``ASYM``: the fitted trend lies where the statement says.

A verdict that contradicts the expected status (``ok=False``) or a check that raises makes ``altgrad check`` exit
nonzero.

Falsifiability (mutants)
------------------------
Every check counted as *verified* names at least one **mutant**: a plausible wrong variant of the thing it checks
(a transposed f, a dropped beta, a quadratic algorithm, a bound with a smaller constant, a polynomial one degree too
low, ...). The check function reads :attr:`Context.mutant` and, when it names one of its mutants, runs the *same*
evidence on that wrong variant. A mutant is **killed** when the check's ``ok`` becomes False under it. A check
declared ``illustration=True`` is shown in the report but never counted as verified; it needs no mutant.

Inherited errors (spec §0.5 item 4)
-----------------------------------
``inherits`` lists the SPEC §3 numbers whose errors a statement receives from earlier statements; the verdict judges
the statement's own conclusion as printed, given its own definitions.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

KINDS = ("DEF", "ID", "INEQ", "ASYM", "ALG")
STATUSES = ("OK", "WRONG-AS-PRINTED", "GAP", "AMBIG")

# verdict words for a check that agrees with its expected status (kind ASYM reports a trend): expected_word
_AGREE = {"OK": "holds", "WRONG-AS-PRINTED": "wrong as printed", "GAP": "gap", "AMBIG": "ambiguous"}
CONTRADICTS = "CONTRADICTS"
ERROR = "ERROR"


def expected_word(status: str, kind: str | None = None) -> str:
    """The verdict word of a check that agrees with its SPEC §3 ``status``: ``"holds"``, ``"wrong as printed"``,
    ``"gap"``, ``"ambiguous"``; ``"trend"`` for a check of ``kind`` ASYM expected OK (it reports a fitted trend).

    The one home of this vocabulary (:func:`verdict_for`, the report and the CLI use it). Raises ValueError for a
    status outside :data:`STATUSES` or a kind outside :data:`KINDS`.
    """
    if status not in STATUSES:
        raise ValueError(f"status: expected one of {STATUSES}, got {status!r}")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind: expected None or one of {KINDS}, got {kind!r}")
    return "trend" if kind == "ASYM" and status == "OK" else _AGREE[status]


@dataclass(frozen=True)
class Context:
    """What a check may depend on: the profile and the seed. Nothing else is global."""

    quick: bool = True
    seed: int = 0
    mutant: str | None = None  # the wrong variant this run checks instead of the statement (None: the statement)

    def rng(self, salt: int = 0) -> np.random.Generator:
        """A generator seeded by (seed, salt), so each check draws its own replayable stream."""
        return np.random.default_rng([self.seed, salt])

    def mutated(self, name: str) -> bool:
        """True when this run checks the mutant ``name`` (a declared wrong variant) instead of the statement."""
        return self.mutant == name


@dataclass
class Result:
    """What a check observed. ``figure`` is one line for the table; ``data`` is JSON-serialisable detail."""

    ok: bool
    figure: str
    data: dict[str, Any] = field(default_factory=dict)
    # the one result schema (issue 9): the decisive number, what it was held against, and how it was decided
    observed: float | None = None  # the decisive measured figure (an error, a slack numerator, a fitted exponent...)
    bound: float | None = None  # what ``observed`` was held against (a bound, a tolerance, an expected value)
    precision: str | None = None  # what decided: "float64", "mpmath dps=50", "counted work", "exact (SymPy)", ...
    counterexample: dict[str, Any] | None = None  # the replayable failing input, where a printed form fails


@dataclass(frozen=True)
class CheckInfo:
    """What a check states: the fields every view of a check shares (the registry, the docs' catalogue)."""

    id: str
    label: str
    name: str
    kind: str
    expected: str
    spec: tuple[int, ...]
    uses: tuple[str, ...]


@dataclass(frozen=True)
class Check(CheckInfo):
    fn: Callable[[Context], Result]
    module: str
    mutants: tuple[str, ...] = ()
    illustration: bool = False
    inherits: tuple[int, ...] = ()

    @property
    def command(self) -> str:
        return f"altgrad check --only {self.id}"


REGISTRY: dict[str, Check] = {}


def check(
    *,
    id: str,
    label: str,
    name: str,
    kind: str,
    expected: str,
    spec: tuple[int, ...] = (),
    uses: tuple[str, ...] = (),
    mutants: tuple[str, ...] = (),
    illustration: bool = False,
    inherits: tuple[int, ...] = (),
) -> Callable[[Callable[[Context], Result]], Callable[[Context], Result]]:
    """Register a check function under ``id`` (decorator).

    ``mutants``: names of the wrong variants the check must reject (read back through :meth:`Context.mutated`).
    ``illustration``: shown, never counted as verified. ``inherits``: SPEC §3 numbers of inherited errors.
    """
    if len(set(mutants)) != len(mutants):
        raise ValueError(f"mutants: expected distinct names, got {mutants!r} (check {id!r})")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r} (check {id!r})")
    if expected not in STATUSES:
        raise ValueError(f"expected must be one of {STATUSES}, got {expected!r} (check {id!r})")

    def deco(fn: Callable[[Context], Result]) -> Callable[[Context], Result]:
        if id in REGISTRY:
            raise ValueError(f"check id {id!r} registered twice ({REGISTRY[id].module}, {fn.__module__})")
        REGISTRY[id] = Check(id, label, name, kind, expected, tuple(spec), tuple(uses), fn, fn.__module__,
                             tuple(mutants), bool(illustration), tuple(inherits))  # fmt: skip
        return fn

    return deco


def load_all() -> dict[str, Check]:
    """Import every check module listed in :data:`proofs_check.checks.MODULES`; return the registry."""
    from proofs_check import checks

    for mod in checks.MODULES:
        importlib.import_module(f"proofs_check.checks.{mod}")
    return REGISTRY


@dataclass
class Record:
    """One row of the report: the check's identity, what it observed, and the verdict."""

    id: str
    label: str
    name: str
    kind: str
    expected: str
    spec: list[int]
    uses: list[str]
    verdict: str
    figure: str
    data: dict[str, Any]
    seed: int
    profile: str
    wall_s: float
    command: str
    observed: float | None = None
    bound: float | None = None
    ratio: float | None = None  # observed / bound
    precision: str | None = None
    counterexample: dict[str, Any] | None = None
    inherits: list[int] = field(default_factory=list)
    illustration: bool = False
    mutants: list[str] = field(default_factory=list)  # declared
    mutants_killed: list[str] = field(default_factory=list)  # declared and rejected in this run
    mutants_survived: dict[str, str] = field(default_factory=dict)  # name -> why (figure or exception)

    @property
    def contradicts(self) -> bool:
        return self.verdict in (CONTRADICTS, ERROR)

    @property
    def verified(self) -> bool:
        """Counted as verified: agrees with its expected status, is no illustration, and killed every mutant."""
        return not self.contradicts and not self.illustration and bool(self.mutants) and not self.mutants_survived


def verdict_for(chk: Check, ok: bool) -> str:
    if not ok:
        return CONTRADICTS
    return expected_word(chk.expected, chk.kind)


def run_mutant(chk: Check, ctx: Context, name: str) -> tuple[bool, str]:
    """Run ``chk`` on its mutant ``name``: (killed, why). Killed means the check's ``ok`` became False.

    A mutant run that raises is *not* a kill (a crash is no evidence that the wrong variant was detected).
    """
    if name not in chk.mutants:
        raise ValueError(f"mutant: check {chk.id!r} declares {list(chk.mutants)}, got {name!r}")
    try:
        res = chk.fn(replace(ctx, mutant=name))
    except Exception as exc:
        return False, f"raised {type(exc).__name__}: {exc}"
    return (not res.ok), res.figure


def _ratio(observed: float | None, bound: float | None) -> float | None:
    if observed is None or bound is None:
        return None
    try:
        return float(observed) / float(bound) if float(bound) != 0 else None
    except (TypeError, ValueError, OverflowError):
        return None


def run_check(chk: Check, ctx: Context, *, mutants: bool = True) -> Record:
    """Run one check (and, with ``mutants``, each of its mutants); an exception becomes verdict ERROR."""
    t0 = time.perf_counter()
    res = None
    try:
        res = chk.fn(replace(ctx, mutant=None))
        verdict, figure, data = verdict_for(chk, res.ok), res.figure, res.data
    except Exception as exc:  # a crashing check is reported, never hidden
        verdict, figure = ERROR, f"{type(exc).__name__}: {exc}"
        data = {"traceback": traceback.format_exc()}
    killed: list[str] = []
    survived: dict[str, str] = {}
    if mutants and verdict != ERROR:
        for name in chk.mutants:
            k, why = run_mutant(chk, ctx, name)
            if k:
                killed.append(name)
            else:
                survived[name] = why
    wall = time.perf_counter() - t0
    profile = "quick" if ctx.quick else "full"
    cmd = f"altgrad check --{profile} --seed {ctx.seed} --only {chk.id}"
    observed = res.observed if res is not None else None
    bound = res.bound if res is not None else None
    return Record(
        chk.id, chk.label, chk.name, chk.kind, chk.expected, list(chk.spec), list(chk.uses),
        verdict, figure, data, ctx.seed, profile, round(wall, 3), cmd,
        observed=observed, bound=bound, ratio=_ratio(observed, bound),
        precision=res.precision if res is not None else None,
        counterexample=res.counterexample if res is not None else None,
        inherits=list(chk.inherits), illustration=chk.illustration, mutants=list(chk.mutants),
        mutants_killed=killed, mutants_survived=survived,
    )  # fmt: skip


def _matches(chk: Check, wanted: str) -> bool:
    """``wanted`` is a case-insensitive prefix of the check's label (``"lemma e"``) or of its id."""
    return chk.label.lower().startswith(wanted) or chk.id.lower().startswith(wanted)


def _statement(chk: Check) -> str:
    """The part of a label after its first word: "d.17" of "Lemma D.17", "w5" of "Weak point W5" -> "point w5"."""
    return chk.label.lower().split(" ", 1)[-1]


def select(registry: dict[str, Check], only: list[str] | None) -> list[Check]:
    """Checks whose id, label or label prefix matches one of ``only`` (case-insensitive); all when ``only`` is empty.

    An exact id or label selects just those checks; otherwise the term is a prefix of a label, of an id, or of the
    label's statement part: ``--only d.17`` selects "Lemma D.17", ``--only "Lemma E"`` every Lemma E.x.
    """
    if not only:
        return list(registry.values())
    seen: set[str] = set()
    for w in (o.strip().lower() for o in only):
        exact = [c for c in registry.values() if c.id.lower() == w or c.label.lower() == w]
        seen.update(
            c.id for c in exact or [c for c in registry.values() if _matches(c, w) or _statement(c).startswith(w)]
        )
    chosen = [c for c in registry.values() if c.id in seen]  # registry order
    if not chosen:
        labels = sorted({c.label for c in registry.values()})
        raise ValueError(f"--only: no check has id or label in {only}; known labels: {labels}")
    return chosen


def catalogue_coverage(registry: dict[str, Check]) -> tuple[list[int], list[int]]:
    """SPEC §3 catalogue numbers 1..100 named in some check's ``spec`` (covered) and the others (missing)."""
    covered = sorted({s for c in registry.values() for s in c.spec if 1 <= s <= 100})
    return covered, [k for k in range(1, 101) if k not in set(covered)]


# -- the sweep runner: serial, processes on one machine, or a Dask cluster ------------------------------------------


def run_by_id(cid: str, quick: bool, seed: int) -> Record:
    """Run the registered check ``cid`` in this process (the unit of work of the parallel runners).

    Loads every check module first, so a fresh worker process sees the same registry as the parent. The check
    gets the same :class:`Context` as in a serial run, hence the same random streams and the same result.
    """
    registry = load_all()
    if cid not in registry:
        raise KeyError(f"check {cid!r} is not registered in this process (is its module in checks.MODULES?)")
    return run_check(registry[cid], Context(quick=quick, seed=seed))


STDERR = "stderr"  # the default progress stream, looked up when a run starts (so it can be redirected)


def _progress(k: int, total: int, rec: Record, stream) -> None:
    if stream is not None:
        print(f"[{k}/{total}] {rec.id}: {rec.verdict} ({rec.wall_s:.1f} s)", file=stream, flush=True)


def run_many(checks: Sequence[Check], ctx: Context, *, jobs: int = 1, scheduler: str | None = None,
             progress=STDERR, on_record: Callable[[Record], Any] | None = None) -> list[Record]:  # fmt: skip
    """Run ``checks`` and return their records **in the order given**, whatever order they finish in.

    ``jobs > 1``: a ``ProcessPoolExecutor`` of ``jobs`` spawned processes on this machine. ``scheduler``: the
    address of a Dask distributed scheduler (optional extra ``altgrad[dask]``; its workers need altgrad
    installed). Every check runs with the same seed and profile as in a serial run, so the records are identical
    apart from ``wall_s`` (and the timings inside [ASYM] figures). Progress goes to ``progress`` (a text stream,
    stderr by default, None for silence). ``on_record`` is called with each :class:`Record` as soon as its check
    (and its mutants) finished, in the order they finish (the order given when serial); the returned list is
    unaffected by what it does, and an exception it raises stops the run.
    """
    checks = list(checks)
    total = len(checks)
    progress = sys.stderr if progress == STDERR else progress
    if scheduler:
        return _run_dask(checks, ctx, scheduler, progress, on_record)
    if jobs <= 1 or total <= 1:
        out = []
        for k, chk in enumerate(checks, 1):
            if progress is not None:
                print(f"[{k}/{total}] {chk.id} ...", file=progress, flush=True)
            rec = run_check(chk, ctx)
            if progress is not None and rec.wall_s > 3:
                print(f"    {rec.verdict} in {rec.wall_s:.1f} s", file=progress, flush=True)
            out.append(rec)
            if on_record is not None:
                on_record(rec)
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    results: dict[str, Record] = {}
    # spawn: a clean interpreter per worker (no fork of a threaded BLAS); workers re-import the check modules. The
    # workers keep the default BLAS threading of a serial run: fewer threads would change float64 summation orders
    # and so the last bits of some figures.
    with ProcessPoolExecutor(max_workers=min(jobs, total), mp_context=multiprocessing.get_context("spawn")) as ex:
        futs = {ex.submit(run_by_id, c.id, ctx.quick, ctx.seed): c.id for c in checks}
        for k, fut in enumerate(as_completed(futs), 1):
            rec = fut.result()
            results[futs[fut]] = rec
            _progress(k, total, rec, progress)
            if on_record is not None:
                on_record(rec)
    return [results[c.id] for c in checks]


def _run_dask(checks: list[Check], ctx: Context, scheduler: str, progress, on_record=None) -> list[Record]:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:
        raise RuntimeError(
            "--scheduler needs Dask distributed, the optional 'dask' extra: pip install 'altgrad[dask]'"
        ) from exc
    results: dict[str, Record] = {}
    with Client(scheduler) as client:
        futs = client.map(run_by_id, [c.id for c in checks], quick=ctx.quick, seed=ctx.seed, pure=False,
                          key=[f"altgrad-{c.id}-{ctx.seed}-{time.time_ns()}" for c in checks])  # fmt: skip
        names = {f.key: c.id for f, c in zip(futs, checks, strict=True)}
        for k, fut in enumerate(as_completed(futs), 1):
            rec = fut.result()
            results[names[fut.key]] = rec
            _progress(k, len(checks), rec, progress)
            if on_record is not None:
                on_record(rec)
    return [results[c.id] for c in checks]
