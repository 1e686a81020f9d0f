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
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

KINDS = ("DEF", "ID", "INEQ", "ASYM", "ALG")
STATUSES = ("OK", "WRONG-AS-PRINTED", "GAP", "AMBIG")

# verdict words for a check that agrees with its expected status (kind ASYM reports a trend)
_AGREE = {"OK": "holds", "WRONG-AS-PRINTED": "wrong as printed", "GAP": "gap", "AMBIG": "ambiguous"}
CONTRADICTS = "CONTRADICTS"
ERROR = "ERROR"


@dataclass(frozen=True)
class Context:
    """What a check may depend on: the profile and the seed. Nothing else is global."""

    quick: bool = True
    seed: int = 0

    def rng(self, salt: int = 0) -> np.random.Generator:
        """A generator seeded by (seed, salt), so each check draws its own replayable stream."""
        return np.random.default_rng([self.seed, salt])


@dataclass
class Result:
    """What a check observed. ``figure`` is one line for the table; ``data`` is JSON-serialisable detail."""

    ok: bool
    figure: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Check:
    id: str
    label: str
    name: str
    kind: str
    expected: str
    spec: tuple[int, ...]
    uses: tuple[str, ...]
    fn: Callable[[Context], Result]
    module: str

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
) -> Callable[[Callable[[Context], Result]], Callable[[Context], Result]]:
    """Register a check function under ``id`` (decorator)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r} (check {id!r})")
    if expected not in STATUSES:
        raise ValueError(f"expected must be one of {STATUSES}, got {expected!r} (check {id!r})")

    def deco(fn: Callable[[Context], Result]) -> Callable[[Context], Result]:
        if id in REGISTRY:
            raise ValueError(f"check id {id!r} registered twice ({REGISTRY[id].module}, {fn.__module__})")
        REGISTRY[id] = Check(id, label, name, kind, expected, tuple(spec), tuple(uses), fn, fn.__module__)
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

    @property
    def contradicts(self) -> bool:
        return self.verdict in (CONTRADICTS, ERROR)


def verdict_for(chk: Check, ok: bool) -> str:
    if not ok:
        return CONTRADICTS
    return "trend" if chk.kind == "ASYM" and chk.expected == "OK" else _AGREE[chk.expected]


def run_check(chk: Check, ctx: Context) -> Record:
    """Run one check; an exception becomes verdict ERROR with the traceback in ``data``."""
    t0 = time.perf_counter()
    try:
        res = chk.fn(ctx)
        verdict, figure, data = verdict_for(chk, res.ok), res.figure, res.data
    except Exception as exc:  # a crashing check is reported, never hidden
        verdict, figure = ERROR, f"{type(exc).__name__}: {exc}"
        data = {"traceback": traceback.format_exc()}
    wall = time.perf_counter() - t0
    profile = "quick" if ctx.quick else "full"
    cmd = f"altgrad check --{profile} --seed {ctx.seed} --only {chk.id}"
    return Record(
        chk.id, chk.label, chk.name, chk.kind, chk.expected, list(chk.spec), list(chk.uses),
        verdict, figure, data, ctx.seed, profile, round(wall, 3), cmd,
    )  # fmt: skip


def select(registry: dict[str, Check], only: list[str] | None) -> list[Check]:
    """Checks whose id or paper label matches one of ``only`` (case-insensitive); all when ``only`` is empty."""
    if not only:
        return list(registry.values())
    wanted = [o.lower() for o in only]
    chosen = [c for c in registry.values() if c.id.lower() in wanted or c.label.lower() in wanted]
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
             progress=STDERR) -> list[Record]:  # fmt: skip
    """Run ``checks`` and return their records **in the order given**, whatever order they finish in.

    ``jobs > 1``: a ``ProcessPoolExecutor`` of ``jobs`` spawned processes on this machine. ``scheduler``: the
    address of a Dask distributed scheduler (optional extra ``altgrad[dask]``; its workers need altgrad
    installed). Every check runs with the same seed and profile as in a serial run, so the records are identical
    apart from ``wall_s`` (and the timings inside [ASYM] figures). Progress goes to ``progress`` (a text stream,
    stderr by default, None for silence).
    """
    checks = list(checks)
    total = len(checks)
    progress = sys.stderr if progress == STDERR else progress
    if scheduler:
        return _run_dask(checks, ctx, scheduler, progress)
    if jobs <= 1 or total <= 1:
        out = []
        for k, chk in enumerate(checks, 1):
            if progress is not None:
                print(f"[{k}/{total}] {chk.id} ...", file=progress, flush=True)
            rec = run_check(chk, ctx)
            if progress is not None and rec.wall_s > 3:
                print(f"    {rec.verdict} in {rec.wall_s:.1f} s", file=progress, flush=True)
            out.append(rec)
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
    return [results[c.id] for c in checks]


def _run_dask(checks: list[Check], ctx: Context, scheduler: str, progress) -> list[Record]:
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
    return [results[c.id] for c in checks]
