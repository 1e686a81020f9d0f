r"""Exact checks of the weak points of SPEC §4 that the exact model decides: W12, the pipeline consumes the loss only
through $\partial L/\partial T_m$ (Definition 3.1 and Lemma 3.4 used as an interface).
"""

from __future__ import annotations

from proofs_check.decide import DPS, TOL_FD_MP
from proofs_check.registry import Context, Result, check
from reference import HalfSquaredError, backward, forward, value_and_grad
from reference.backend import get_backend
from reference.fd import fd_gradients
from reference.testing import fd_fields, grad_fields, random_problem, worst_rel_err


@check(id="ref.HSE.loss_agnostic", label="Weak point W12", name="Pipeline consumes only dL/dT_m",
       kind="DEF", expected="OK", spec=(6,), uses=("ref.def3.1.losses",), mutants=("different_upstream",))  # fmt: skip
def check_loss_agnostic(ctx: Context) -> Result:
    r"""Weak point W12 (spec #6): two different losses with the same $\partial L/\partial T_m$ have the same gradient
    in every parameter. Route: the closed-form backward of the linear loss $\langle C, T_m\rangle$ (seeded by C)
    against mpmath central differences of a *different* loss, the half squared error $\tfrac12\|T_m - Y\|^2$ with
    target $Y = T_m - C$ (computed at 50 digits, so its $\partial L/\partial T_m = C$ up to $10^{-50}$), which never
    sees C as a gradient. Tolerance: the central-difference tolerance of :mod:`proofs_check.decide` (1e-20).
    Mutant: the target $T_m - 2C$, a loss whose $\partial L/\partial T_m = 2C$ differs: its gradient must differ."""
    rng = ctx.rng(21)
    p = random_problem(rng, 6, 2, 2)
    tr = forward(p.X, p.layers, backend="mpmath", dps=DPS)
    g_linear = backward(tr, value_and_grad(tr, p.loss)[1])  # seeded by C
    k = 2 if ctx.mutated("different_upstream") else 1
    with get_backend("mpmath", DPS).precision():  # the target at 50 digits, like the trace
        other = HalfSquaredError(tr.output - k * p.loss.C)  # a different loss, dL/dT_m = k C at the trace's T_m
    field, e = worst_rel_err(grad_fields(g_linear), fd_fields(fd_gradients(p.X, p.layers, other, dps=DPS)))
    return Result(e < TOL_FD_MP, f"linear-loss closed form vs FD of the half squared loss: {e:.1e} ({field})",
                  {"worst_field": field}, observed=e, bound=TOL_FD_MP, precision=f"mpmath dps={DPS}")  # fmt: skip
