r"""The oracle: judge a user's forward output and gradients against the reference with a *derived* tolerance.

Spec §0.3 (tolerances say where they come from); the flash-attention pattern (STYLE §1.7). For one
:class:`~reference.proptest.case.Case` the reference is evaluated twice on the inputs the user actually sees: in
float64 (``ref``) and in mpmath at ``dps`` digits (``hp``, the truth to ~1e-38). For every field $k$ the user
returns (the output $T_m$, $\partial L/\partial X$, each layer's $\partial L/\partial W_Q, W_K, W_V, W_g$ and the
merged $\partial L/\partial W$), with $\|\cdot\|$ the entrywise max over the field:

.. math::
    \|\mathrm{user}_k - \mathrm{hp}_k\| \;\le\; c \,\frac{u}{u_{64}}\, \|\mathrm{ref}_k - \mathrm{hp}_k\|
    \;+\; (n + d)\, u\, S_k .

* $u$ is the unit roundoff of the user's precision (``UNIT_ROUNDOFF``), $u_{64} = 2^{-53}$. The float64
  reference's own error, scaled by $u/u_{64}$, is what the same arithmetic would lose at the user's precision:
  conditioning (saturated softmax, near-duplicate tokens, deep stacks) enters through the *measured* error, not a
  guessed rtol.
* $c = 2$ (``C_REF``) is flash-attention's factor: a correct implementation may round in a different order and
  lose up to twice what the plain reference loses.
* The floor is the rounding error a correct evaluation carries whatever its order, $\kappa u S_k$ with
  $\kappa = m\,(n + d + \sigma)$ per layer: $n u$ from the softmax row sums and from $f h$, $d u$ from each
  inner product over width, and $\sigma u$ from the logits: $S_{ij}$ is rounded with absolute error about
  $u\sigma$, $\sigma = \beta \max_{ij} (|T| |W| |T|^\top)_{ij}$ bounding the logits, and $\exp$ turns that
  into relative error $\sigma u$ of $f$ (the float64 reference may round its logits luckily; a user's kernel
  may not). The scale $S_k$ is what the field is built from: for the output the largest $|T_i|$ or
  $|h| = |T W_V|$ of any layer (rows of $f$ sum to one, so $|f h| \le \max |h|$, while the output itself can
  be small through cancellation); for a gradient field the largest entry of the whole gradient (normwise, as
  :func:`reference.testing.whole_rel_err`) or, if larger, the largest summand $\|T_{i-1}\| \|G_i\|$ of
  $\partial L/\partial W_V = T_{i-1}^\top f^\top G_i$ over the layers. So a field tiny through cancellation
  ($\partial L/\partial W$ at n = 1, where $P = 0$; near-duplicate tokens; a whole gradient that cancels, e.g.
  with $W_V = 0$) is judged against the scale of the terms that cancelled, not its own tiny value. This is
  flash-attention's "error of doing any arithmetic on the reference" floor, written out.

Errors are computed exactly enough: ``hp`` is kept as a float64 pair (hi, lo) with hi + lo = hp to ~1e-32, so
$\mathrm{user} - \mathrm{hi}$ is exact (Sterbenz) wherever the user is close, and subtracting ``lo`` is one more
rounding of an already small number. mpmath precision is never set globally: the reference backend scopes it and the
(hi, lo) split uses a private ``mpmath.MPContext``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np

from reference.model import backward, forward
from reference.proptest.case import Case
from reference.proptest.precision import UNIT_ROUNDOFF, rounder

C_REF = 2.0  # flash-attention's factor (STYLE §1.7): twice the plain reference's own error
DPS = 40  # high-precision digits: rounding ~1e-40, far below float64's 1e-16 being measured
U64 = UNIT_ROUNDOFF["float64"]


def _evaluate(case: Case, backend: str, dps: int = DPS):
    tr = forward(case.X, list(case.layers), beta=case.beta, causal=case.causal, heads=case.heads,
                 residual=case.residual, activation=case.activation, backend=backend, dps=dps)  # fmt: skip
    g = backward(tr, case.G)
    out = {"output": tr.output, "dX": g.dX}
    for i, lg in enumerate(g.layers):
        for k in ("dW_Q", "dW_K", "dW_V", "dW", "dW_g"):
            if getattr(lg, k) is not None:
                out[f"layers[{i}].{k}"] = getattr(lg, k)
    return out, tr, g


def reference_fields(case: Case, backend: str = "float64", dps: int = DPS) -> dict[str, np.ndarray]:
    """Output $T_m$ and every gradient of the reference on ``case``; float64 or mpf object arrays by name.

    Names: ``output``, ``dX``, ``layers[i].dW_Q``, ``.dW_K``, ``.dW_V``, ``.dW`` (merged $W_Q W_K^\\top$; (d, d) for
    one head, (h, d, d) for h heads) and ``.dW_g`` when the layer has a block.
    """
    return _evaluate(case, backend, dps)[0]


def rounding_scale(tr, grads) -> tuple[float, float, float]:
    r"""(kappa, S_output, S_gradient_terms) of the module docstring from the float64 trace and gradients.

    kappa = m (n + d + sigma); S_output = max |h|, |T_i|; S_gradient_terms = max over layers of
    $\|T_{i-1}\|_\infty \|G_i\|_\infty$, which bounds every product $x_{ki} f_{jk} G_{jc}$ summed in
    $\partial L/\partial W_V = T^\top f^\top G$ (rows of f are probabilities).
    """
    n, d = tr.X.shape
    s_terms = max(
        float(np.abs(c.T_in).max()) * float(np.abs(lg.G).max()) for c, lg in zip(tr.caches, grads.layers, strict=True)
    )
    kappa, s_out = 0.0, 0.0
    for c in tr.caches:
        for hc in c.attn.heads:
            A = np.abs(hc.X)  # (n, d)
            sigma = abs(float(hc.beta)) * float((A @ np.abs(hc.W) @ A.T).max())  # bound on |S| (n, n)
            kappa = max(kappa, n + d + sigma)
            s_out = max(s_out, float(np.abs(hc.h).max()))
        s_out = max(s_out, float(np.abs(c.T_out).max()))
    return len(tr.caches) * kappa, s_out, s_terms


def field_names(case: Case) -> tuple[str, ...]:
    """The names :func:`reference_fields` produces for ``case`` (aliases ``dW_Q`` etc. allowed when m = 1)."""
    names = ["output", "dX"]
    for i, L in enumerate(case.layers):
        names += [f"layers[{i}].{k}" for k in ("dW_Q", "dW_K", "dW_V", "dW")]
        if L.W_g is not None:
            names.append(f"layers[{i}].dW_g")
    return tuple(names)


def _split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """mpf object array -> (hi, lo) float64 arrays with hi + lo equal to it to ~1e-32 relative."""
    ctx = mpmath.MPContext()
    ctx.prec = 256  # private context: the global mpmath precision is never touched
    hi = np.vectorize(float, otypes=[np.float64])(a)
    lo = np.array([float(ctx.mpf(x) - ctx.mpf(h)) for x, h in zip(a.flat, hi.flat, strict=True)]).reshape(a.shape)
    return hi, lo


@dataclass(frozen=True)
class FieldVerdict:
    """One field's numbers: errors against the high-precision value, the tolerance and the worst entry."""

    name: str
    ok: bool
    user_err: float  # ||user - hp||_inf
    ref_err: float  # ||float64 reference - hp||_inf
    tol: float  # C_REF * u/u64 * ref_err + floor
    floor: float  # kappa u S
    entry: tuple  # index of the worst |user - hp|
    user: float
    ref: float
    hp: float

    @property
    def ratio(self) -> float:
        """user_err / tol: below 1 passes."""
        return self.user_err / self.tol if self.tol else (0.0 if self.user_err == 0 else np.inf)


@dataclass(frozen=True)
class Verdict:
    """All fields of one case; ``ok`` when every field passes."""

    case: Case
    precision: str
    fields: dict[str, FieldVerdict]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.fields.values())

    @property
    def failing(self) -> list[FieldVerdict]:
        """Failing fields, worst (largest error / tolerance) first."""
        return sorted((f for f in self.fields.values() if not f.ok), key=lambda f: -f.ratio)


class OracleFailure(AssertionError):
    """A user's field differs from the reference by more than the derived tolerance; the message says where."""

    def __init__(self, message: str, verdict: Verdict):
        super().__init__(message)
        self.verdict = verdict


def _normalise(result, case: Case) -> dict[str, np.ndarray]:
    """The user's mapping -> float64 arrays under canonical names; short names dW_Q.. allowed for one layer."""
    if not isinstance(result, dict) or not result:
        raise TypeError(f"result: expected a non-empty dict of field name -> array, got {type(result).__name__}")
    names = field_names(case)
    out = {}
    for key, val in result.items():
        k = f"layers[0].{key}" if case.m == 1 and f"layers[0].{key}" in names else key
        if k not in names:
            raise ValueError(f"result: unknown field {key!r}; expected names from {names}")
        out[k] = np.asarray(val, dtype=np.float64)
    if "output" not in out:
        raise ValueError(f"result: expected the forward 'output' among the fields, got {sorted(result)}")
    return out


def judge(result, case: Case, precision: str = "float64", dps: int = DPS) -> Verdict:
    """Judge a user's fields (a dict name -> array, computed at ``precision``) on ``case``; never raises on a miss.

    ``case`` must already hold the inputs the user saw (see :func:`check`, which rounds them).
    """
    if precision not in UNIT_ROUNDOFF:
        raise ValueError(f"precision: expected one of {tuple(UNIT_ROUNDOFF)}, got {precision!r}")
    user = _normalise(result, case)
    ref, tr, grads = _evaluate(case, "float64")
    hp = {k: _split(a) for k, a in reference_fields(case, "mpmath", dps).items()}
    u = UNIT_ROUNDOFF[precision]
    kappa, scale_out, scale_terms = rounding_scale(tr, grads)
    scale_grad = max([scale_terms] + [float(np.abs(hi).max()) for k, (hi, _) in hp.items() if k != "output"])
    verdicts = {}
    for k, a in user.items():
        hi, lo = hp[k]
        if a.shape != hi.shape:
            raise ValueError(f"result[{k!r}]: expected shape {hi.shape}, got {a.shape}")
        err = np.abs((a - hi) - lo) if np.isfinite(a).all() else np.where(np.isfinite(a), np.abs(a - hi), np.inf)
        ref_err = float(np.abs((ref[k] - hi) - lo).max())
        floor = kappa * u * (scale_out if k == "output" else scale_grad)
        tol = C_REF * (u / U64) * ref_err + floor
        idx = np.unravel_index(int(np.argmax(err)), err.shape)
        user_err = float(err[idx])
        verdicts[k] = FieldVerdict(k, bool(user_err <= tol), user_err, ref_err, tol, floor, tuple(int(i) for i in idx),
                                   float(a[idx]), float(ref[k][idx]), float(hi[idx] + lo[idx]))  # fmt: skip
    return Verdict(case, precision, verdicts)


def failure_message(verdict: Verdict, reproducer: str) -> str:
    """Names the field, the entry, the configuration, both values, the high-precision value and a reproducer."""
    worst = verdict.failing[0]
    u = UNIT_ROUNDOFF[verdict.precision]
    lines = [
        f"altgrad oracle: field {worst.name} is wrong at entry {worst.entry} ({verdict.precision} implementation)",
        f"  yours = {worst.user!r}, float64 reference = {worst.ref!r}, high precision (dps={DPS}) = {worst.hp!r}",
        f"  |yours - hp|_max = {worst.user_err:.3e} > tolerance {worst.tol:.3e} = {C_REF:g} x (u/u64 = {u / U64:.3g})"
        f" x reference error {worst.ref_err:.3e} + floor kappa u S = {worst.floor:.3e}",
        f"  configuration: {verdict.case.conventions()}",
    ]
    if len(verdict.failing) > 1:
        lines.append(
            "  also wrong: " + ", ".join(f"{f.name} ({f.user_err:.2e} > {f.tol:.2e})" for f in verdict.failing[1:])
        )
    lines.append(f"  reproduce: {reproducer}")
    return "\n".join(lines)


def check(fn, case: Case, precision: str = "float64", *, dps: int = DPS, reproducer: str | None = None) -> Verdict:
    r"""Run ``fn(case_as_seen) -> {field: array}`` and raise :class:`OracleFailure` unless every field passes.

    ``case`` is rounded to ``precision`` first (the user computes on those inputs, the reference too), then
    ``fn`` gets the rounded case. ``reproducer`` is the one-line call to print, with ``CASE`` standing for
    ``repr(case)``. Returns the :class:`Verdict` when it passes.
    """
    seen = case.rounded(rounder(precision))
    verdict = judge(fn(seen), seen, precision, dps)
    if not verdict.ok:
        line = (reproducer or f"reference.proptest.oracle.check(fn, CASE, precision={precision!r})").replace(
            "CASE", repr(case)
        )
        raise OracleFailure(failure_message(verdict, line), verdict)
    return verdict


__all__ = ["C_REF", "DPS", "FieldVerdict", "OracleFailure", "Verdict", "check", "field_names", "judge",
           "reference_fields"]  # fmt: skip
