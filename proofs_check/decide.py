r"""The registry's decision layer: a claim is judged in float64 first and re-decided in mpmath before a failure counts.

Paper: the rules of SPEC §0.1 (how each tag is tested), §0.3 (tolerances), issue 13 item 6 (every tolerance derived).

A **claim** is a function ``claim(bk, **inputs) -> list of rows``; it is written once and evaluated in both number
systems (``bk`` is a :class:`reference.backend.Backend`). A row is a tuple ``(kind, name, a, b)`` or
``(kind, name, a, b, cond)``:

* ``eq`` holds when $\|a - b\|_\infty \le \tau\,\max(1, \|b\|_\infty)$; ``value`` is that relative error.
* ``fd`` holds when $\|a - b\|_\infty / \|b\|_\infty \le \tau_{FD}$ (b = finite differences); ``value`` is that
  relative error.
* ``le`` holds when $a \le b + 2\tau \max(|a|, |b|)$ (a scalar inequality, up to the rounding of both sides);
  ``value`` is the slack $a / b$.
* ``ne`` holds when $\|a - b\|_\infty / \|b\|_\infty > 10^{-3}$ (a printed form must fail; only mpmath may decide
  it); ``value`` is that relative error.

Deciding (:func:`judge`): every row is evaluated in float64. When all rows hold and none is ``ne``, float64 decides.
Otherwise the **whole claim** is recomputed in mpmath at :data:`DPS` digits from the same float64 inputs (each float64
is an mpf exactly), and mpmath decides: a float64 rounding artefact never counts as a failure, and a printed form is
called wrong only when it fails at 50 digits.

Tolerances (issue 13 item 6): each is a unit roundoff times a stated condition number.

* ``eq``: $\tau = u \cdot \kappa$ with $u$ the unit roundoff of the number system ($2^{-53}$ in float64,
  $10^{-\mathrm{dps}}$ in mpmath) and $\kappa$ = :data:`COND_ID` = $2^{20}$ unless the row states its own. Why
  $2^{20}$: the identities here are evaluated on fixtures with n, d $\le 64$ and entries $\le 3$ in magnitude; each
  side is a sum of at most $n d \le 2^{12}$ products of at most 8 factors, whose float64 error is at most
  $\gamma_k \|{\rm summands}\| \le 2^{12} \cdot 2^{4} u$ times the scale $\max(1, \|b\|_\infty)$ when the
  summands are bounded by $2^{4}$ times that scale (softmax weights $\le 1$, logits $\le 9$): $2^{16} u$, and
  $2^{20}$ leaves a margin of 16. Measured over the quick fixtures (seeds 0-3, 19) the worst identity error is
  $9.3u$ (the reordering check of Lemma F.5). $2^{20}u = 1.2 \cdot 10^{-10}$ is SPEC §0.3's TOL_ID, and still
  $10^{7}$ times smaller than any error a printed form makes.
  The mpmath tolerance is $10^{-50} \cdot 2^{20} \approx 10^{-44}$ by the same count.
* ``fd``: central differences with step $\eta$ have error $\le \frac{\eta^2}{6} M_3 + \frac{u M_0}{\eta}$ (Taylor
  remainder plus rounding of the two function values). float64, $\eta = 10^{-6}$ (SPEC §0.3): $\frac{\eta^2}{6} =
  1.7 \cdot 10^{-13}$, $u/\eta = 1.1 \cdot 10^{-10}$, so with the ratios
  $M_3/\|b\|, M_0/\|b\| \le \kappa_{FD} = 5 \cdot 10^{3}$ the error is below $10^{-6}$ = :data:`TOL_FD64`.
  mpmath, $\eta = 10^{-\lfloor \mathrm{dps}/3 \rfloor} = 10^{-16}$:
  $10^{-33}\kappa + 10^{-34}\kappa \le 10^{-20}$ = :data:`TOL_FD_MP` for $\kappa \le 10^{12}$.
* ``le``: both sides carry a relative rounding error of at most $u\kappa$, so $a \le b$ is accepted when
  $a \le b + 2u\kappa \max(|a|, |b|)$; a float64 failure is re-decided in mpmath with $u = 10^{-50}$.
* ``ne``: $10^{-3}$ (SPEC §0.3 ``PRINTED_WRONG``) is $10^{41}$ times the mpmath rounding of the rows; it is a
  threshold on a *genuine* error (the printed forms are off by 0.05–3), not a rounding tolerance.

mpmath work runs with a per-call precision (:func:`mp_backend`); nothing here sets mpmath's global precision.

Shape legend: a and b of one row have the same shape (any), or are scalars.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from proofs_check.registry import Context, Result
from reference.backend import FLOAT64, Backend, get_backend
from reference.compare import TOLERANCES, max_abs, rel_err

DPS = 50  # digits of the mpmath re-decision
U64 = 2.0**-53  # float64 unit roundoff
COND_ID = 2.0**20  # condition number of the identities (see the module docstring)
TOL_FD64 = 1e-6  # float64 central differences, step 1e-6 (derivation above; SPEC §0.3)
TOL_FD_MP = TOLERANCES["FD_mpmath_dps50"]  # 1e-20, derivation above and in reference/compare.py
WRONG = TOLERANCES["PRINTED_WRONG"]  # 1e-3: a printed form is wrong when off by more (SPEC §0.3)
GROSS = 2.0**20  # a float64 failure by more than this factor is no rounding artefact (see gross())
TINY = float(np.finfo(np.float64).tiny)  # positivity written as an inequality: tiny <= min
KINDS = ("eq", "fd", "le", "ne")

Claim = Callable[..., Iterable[tuple]]


def unit_roundoff(bk: Backend) -> float:
    """$u$ of the number system: $2^{-53}$ for float64, $10^{-\\mathrm{dps}}$ for mpmath (rounded to nearest)."""
    return 10.0 ** (-bk.dps) if bk.is_mp else U64


def precision_name(bk: Backend) -> str:
    """The schema's ``precision`` field: ``"float64"`` or ``"mpmath dps=50"``."""
    return f"mpmath dps={bk.dps}" if bk.is_mp else "float64"


def mp_backend(dps: int = DPS) -> Backend:
    """The backend of the re-decision: mpmath at ``dps`` digits, its precision scoped per call by
    :meth:`Backend.precision` (never set globally)."""
    return get_backend("mpmath", dps)


@dataclass
class Row:
    """One judged row of a claim: ``value`` (error or slack), the tolerance it was held against, and the verdict."""

    kind: str
    name: str
    value: float  # relative error (eq, fd, ne) or slack a/b (le)
    holds: bool
    tol: float  # what value was held against (eq/fd: max error; le: 1 = slack limit; ne: min error)
    lhs: float | None = None  # le rows: the two sides, for the result schema (observed, bound)
    rhs: float | None = None
    gross: bool = False  # fails by more than GROSS times its tolerance: no rounding explains it (see judge)

    @property
    def margin(self) -> float:
        """How close the row is to failing: > 1 fails (``ne``: tol/value, others value/tol)."""
        if self.kind == "ne":
            return self.tol / self.value if self.value > 0 else math.inf
        return self.value / self.tol if self.tol > 0 else (0.0 if self.value == 0 else math.inf)


def tolerance(kind: str, bk: Backend, cond: float = COND_ID) -> float:
    """The tolerance of a row of ``kind`` in ``bk`` (module docstring for each derivation)."""
    if kind == "eq" or kind == "le":
        return unit_roundoff(bk) * cond
    if kind == "fd":
        return TOL_FD_MP if bk.is_mp else TOL_FD64
    if kind == "ne":
        return WRONG
    raise ValueError(f"row kind: expected one of {KINDS}, got {kind!r}")


def row(item: tuple, bk: Backend) -> Row:
    """Judge one row ``(kind, name, a, b[, cond])`` in the number system ``bk``."""
    if len(item) not in (4, 5):
        raise ValueError(f"row: expected (kind, name, a, b[, cond]), got a tuple of length {len(item)}")
    kind, name, a, b = item[:4]
    cond = item[4] if len(item) == 5 else COND_ID
    tol = tolerance(kind, bk, cond)
    if kind == "le":
        lhs, rhs = a, b
        if not (math.isfinite(float(lhs)) and math.isfinite(float(rhs))):  # an infinite or NaN side: no slack (the
            ok = math.isfinite(float(lhs)) and float(lhs) <= float(rhs)  # scale would be inf and pass inf <= x)
            return Row(kind, name, math.inf if not ok else 0.0, ok, 1.0, float(lhs), float(rhs), not ok)
        slack = float(lhs / rhs) if rhs != 0 else (0.0 if lhs == 0 else math.inf)
        scale = 2 * tol * max(abs(lhs), abs(rhs))
        ok, gross = lhs <= rhs + scale, lhs > rhs + GROSS * scale
        return Row(kind, name, slack, bool(ok), 1.0, float(lhs), float(rhs), bool(gross))
    a, b = np.asarray(a), np.asarray(b)
    if kind == "eq":
        num, den = max_abs(a - b) if a.size else 0.0, max_abs(b) if b.size else 0.0
        err = float(num / max(1, den))
        return Row(kind, name, err, err <= tol, tol, gross=err > GROSS * tol)
    err = float(rel_err(a, b))
    if kind == "fd":
        return Row(kind, name, err, err <= tol, tol, gross=err > GROSS * tol)
    return Row(kind, name, err, err > tol, tol)  # "ne"


def evaluate(claim: Claim, inputs: dict, bk: Backend) -> list[Row]:
    """Evaluate ``claim`` on ``inputs`` in ``bk``: float arrays are converted (exactly), other inputs passed as is."""
    with bk.precision():
        args = {k: bk.asarray(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v for k, v in inputs.items()}
        return [row(it, bk) for it in claim(bk, **args)]


def judge(claim: Claim, inputs: dict, dps: int = DPS, *, mutant: bool = False) -> tuple[list[Row], Backend]:
    """Rows of ``claim`` in float64; recomputed in mpmath when one fails or a printed form is to be refuted.

    ``mutant``: the run checks a declared wrong variant (:meth:`Context.mutated`). A mutant is killed without the
    re-decision when float64 already rejects it grossly (``Row.gross``: off by more than :data:`GROSS` times the
    row's tolerance, which for an ``eq`` row would need a condition number of $2^{40}$, against the fixtures'
    $2^{16}$) and no printed form is to be refuted; a
    statement's own verdict is always re-decided in mpmath before a failure counts.
    """
    rows = evaluate(claim, inputs, FLOAT64)
    if all(r.holds for r in rows) and not any(r.kind == "ne" for r in rows):
        return rows, FLOAT64
    if mutant and any(r.gross for r in rows) and not any(r.kind == "ne" for r in rows):
        return rows, FLOAT64
    bk = mp_backend(dps)
    return evaluate(claim, inputs, bk), bk


# -- the proof by enclosure (issue 11): the same claim in Arb ball arithmetic, when python-flint is installed ---------

PROVED = "proved by enclosure (Arb)"
AGREES = "agrees to 50 digits (mpmath)"
REFUTED = "printed form refuted by enclosure (Arb)"


def _max_hi(a) -> float:
    """A float64 >= max_i |a_i| for balls (an upper bound of the infinity norm)."""
    from reference import arb as A

    a = np.asarray(a, dtype=object)
    return max((A.upper_float(abs(A.to_ball(x))) for x in a.flat), default=0.0)


def _max_lo(a) -> float:
    """A float64 <= max_i |a_i| for balls (a lower bound of the infinity norm)."""
    from reference import arb as A

    a = np.asarray(a, dtype=object)
    return max((A.lower_float(abs(A.to_ball(x))) for x in a.flat), default=0.0)


def enclosed_row(item: tuple, tol_of) -> str:
    r"""Decide one row rigorously from balls: ``"proved"``, ``"disproved"`` or ``"undecided"`` (fd rows: the latter).

    eq: $\max|a-b| / \max(1, \max|b|) \le \tau$ proved from the upper end of the numerator and the lower end of
    the denominator; ne: the printed form's relative error $> 10^{-3}$ proved from the opposite ends; le: $a \le b$
    from a's upper and b's lower end. ``tol_of(kind, cond)`` gives the tolerance (that of the mpmath decision).
    """
    from reference import arb as A

    kind, _, a, b = item[:4]
    cond = item[4] if len(item) == 5 else COND_ID
    if kind == "fd":
        return "undecided"  # finite differences are approximations: nothing to enclose
    if kind == "le":
        if A.upper_float(a) <= A.lower_float(b):
            return "proved"
        return "disproved" if A.lower_float(a) > A.upper_float(b) else "undecided"
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    diff = a - b
    if kind == "eq":
        tol = tol_of("eq", cond)
        hi, lo = _max_hi(diff) / max(1.0, _max_lo(b)), _max_lo(diff) / max(1.0, _max_hi(b))
        return "proved" if hi <= tol else ("disproved" if lo > tol else "undecided")
    # ne: a printed form is wrong when its relative error exceeds WRONG
    lo, hi = _max_lo(diff) / _max_hi(b), _max_hi(diff) / max(_max_lo(b), TINY)
    return "proved" if lo > WRONG else ("disproved" if hi <= WRONG else "undecided")


def enclose(claim: Claim, inputs: dict, dps: int = DPS) -> dict[str, str] | None:
    """Every row of ``claim`` decided from Arb balls (:func:`enclosed_row`); None when python-flint is absent or
    the claim uses an operation the ball backend does not support (then the mpmath decision stands)."""
    from reference import arb as A

    if not A.available():
        return None
    bk = get_backend("arb", dps)
    mp = mp_backend(dps)
    try:
        with bk.compute():
            args = {k: bk.asarray(v) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
                    for k, v in inputs.items()}  # fmt: skip
            return {it[1]: enclosed_row(it, lambda kind, cond: tolerance(kind, mp, cond)) for it in claim(bk, **args)}
    except (TypeError, ValueError, AttributeError, ArithmeticError, NotImplementedError):
        return None


def _listable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size <= 400 else f"array {v.shape}"
    if isinstance(v, (int, float, str, bool)) or v is None:
        return v
    return repr(v)


def decide(claim: Claim, cases: list[dict], *, ctx: Context | None = None, note: str = "",
           data: dict | None = None) -> Result:  # fmt: skip
    """Judge ``claim`` on every case and fill the one result schema.

    The figure gives the worst value per row over the cases (largest error or slack, smallest printed error).
    ``observed``/``bound`` are those of the row closest to failing (for ``le`` rows its two sides, so that
    observed/bound is the slack; otherwise the error and its tolerance). ``precision`` names what decided
    (``"mpmath dps=50"`` when any case needed the re-decision). ``counterexample``: the first case in which a
    printed form (``ne`` row) was refuted, with its inputs, the seed and the errors.
    """
    worst: dict[str, Row] = {}
    systems: set[str] = set()
    per_case = []
    counterexample = None
    for k, inputs in enumerate(cases):
        rows, bk = judge(claim, inputs, mutant=ctx is not None and ctx.mutant is not None)
        systems.add(precision_name(bk))
        per_case.append({r.name: r.value for r in rows})
        for r in rows:
            w = worst.get(r.name)
            worse = w is None or (r.value < w.value if r.kind == "ne" else r.value > w.value)
            if w is None or not r.holds or (w.holds and worse):
                worst[r.name] = r
        refuted = {r.name: r.value for r in rows if r.kind == "ne" and r.holds}
        if counterexample is None and refuted:
            counterexample = {"case": k, "seed": None if ctx is None else ctx.seed, "errors": refuted,
                              "precision": precision_name(bk),
                              "inputs": {key: _listable(v) for key, v in inputs.items()}}  # fmt: skip
    proof = None
    if ctx is None or ctx.mutant is None:  # the statement's own verdict: prove it where balls can
        status: dict[str, str] = {}
        for inputs in cases:
            enc = enclose(claim, inputs)
            if enc is None:
                status = {}
                break
            for name, st in enc.items():
                status[name] = "disproved" if "disproved" in (st, status.get(name)) else (
                    "undecided" if "undecided" in (st, status.get(name)) else "proved")  # fmt: skip
        for name, st in status.items():
            if st == "disproved" and name in worst:  # the rigorous answer overrides a rounded one
                worst[name].holds = False
        if status and all(st == "proved" for st in status.values()):
            proof = PROVED  # every row, finite-difference rows included, is decided by the balls
        elif any(st == "proved" and worst.get(n) is not None and worst[n].kind == "ne" for n, st in status.items()):
            proof = REFUTED  # the printed form is proved wrong; the rest agrees to 50 digits or with FD
        elif status:
            proof = AGREES
    ok = all(r.holds for r in worst.values())
    decided = next((s for s in systems if s.startswith("mpmath")), "float64")
    fig = "; ".join(f"{r.name} {r.value:.1e}{'' if r.holds else ' FAILS'}" for r in worst.values())
    fig = (note + "; " if note else "") + fig + f" [{len(cases)} case(s), decided in {decided}]"
    out = {
        "rows": {r.name: {"kind": r.kind, "value": r.value, "holds": r.holds, "tol": r.tol} for r in worst.values()},
        "precision_that_decided": decided,
        "per_case": per_case,
    }
    if proof is not None:
        out["proof"] = proof
        if proof in (PROVED, REFUTED):
            decided = f"{decided}; {proof}"
            fig += f" [{proof}]"
    slack = {r.name: r.value for r in worst.values() if r.kind == "le"}
    if slack:
        out["slack"] = slack
    if counterexample is not None:
        out["counterexample"] = counterexample
    out.update(data or {})
    key = max(worst.values(), key=lambda r: (not r.holds, r.margin), default=None)
    observed = bound = None
    if key is not None:
        observed, bound = (key.lhs, key.rhs) if key.kind == "le" else (key.value, key.tol)
    return Result(ok, fig, out, observed=observed, bound=bound, precision=decided, counterexample=counterexample)
