r"""Proving a fast result's certificate on one input: |fast - exact| <= bound, entry by entry, by ball arithmetic.

The exact model is evaluated in Arb (:mod:`reference.arb`) on the same float64 inputs: every exact entry $e$ is
enclosed in a ball $[m \pm r]$. For a fast entry $\tilde e$ with certificate $b$ the claim $|\tilde e - e| \le b$ is

* **proved** when the upper end of the ball $|\tilde e - [m \pm r]|$ is $\le b$ (exact comparison of Arb numbers);
* **disproved** when its lower end is $> b$ (then the certificate is violated: a bug, never expected);
* **undecided** otherwise: the ball is too wide to tell; raise ``dps``.

What is proved is the certificate against the closed form evaluated exactly on the given floats; that the closed
form is the derivative is proved symbolically (``symbolic/``). Issue 11; the certificate is that of
:func:`fastpath.backward` (spec §2.10 and its a-posteriori refinement).

Needs the optional extra ``altgrad[certify]`` (python-flint).

Shape legend: n tokens, d width, m layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

import fastpath
import reference
from fastpath.compare import _forward_fields, all_fields
from reference import arb as A

REFERENCE_KEYS = ("beta", "causal", "heads", "residual", "activation")


@dataclass
class FieldProof:
    """The outcome for one field: counts of proved / undecided / disproved entries and the proved margin."""

    entries: int
    proved: int
    undecided: list[tuple[int, ...]] = field(default_factory=list)
    disproved: list[tuple[int, ...]] = field(default_factory=list)
    margin: float = math.inf  # min over entries of bound - upper(|fast - exact|), rounded down (>= 0 when proved)
    worst_ratio: float = 0.0  # max over entries of upper(|fast - exact|) / bound (<= 1 when proved)
    max_rel_radius: float = 0.0  # widest exact ball, relative to the field's largest midpoint

    @property
    def ok(self) -> bool:
        return self.proved == self.entries


@dataclass
class Certification:
    """:func:`certify_fast`'s answer: per field, and overall ``proved`` (every entry of every field)."""

    fields: dict[str, FieldProof]
    dps: int
    method: str = ""

    @property
    def proved(self) -> bool:
        return all(f.ok for f in self.fields.values())

    @property
    def disproved(self) -> dict[str, list[tuple[int, ...]]]:
        return {k: f.disproved for k, f in self.fields.items() if f.disproved}

    @property
    def undecided(self) -> dict[str, list[tuple[int, ...]]]:
        return {k: f.undecided for k, f in self.fields.items() if f.undecided}

    @property
    def margin(self) -> float:
        return min((f.margin for f in self.fields.values()), default=math.inf)

    def summary(self) -> str:
        if self.proved:
            worst = max((f.worst_ratio for f in self.fields.values()), default=0.0)
            return (f"proved: every entry of {len(self.fields)} fields within its certificate "
                    f"(largest |fast - exact| / bound {worst:.3g})")  # fmt: skip
        if self.disproved:
            return f"DISPROVED: the certificate fails in {sorted(self.disproved)}"
        return (f"undecided in {sorted(self.undecided)}: the enclosures at dps={self.dps} are too wide; "
                f"rerun with a larger dps")  # fmt: skip


def _prove_field(fast: np.ndarray, exact: np.ndarray, bound: np.ndarray) -> FieldProof:
    flint = A.flint_module()
    fast, bound = np.asarray(fast, dtype=np.float64), np.asarray(bound, dtype=np.float64)
    exact = np.asarray(exact, dtype=object)
    if fast.shape != exact.shape or bound.shape != exact.shape:
        raise ValueError(f"certify: shapes differ: fast {fast.shape}, exact {exact.shape}, bound {bound.shape}")
    out = FieldProof(entries=int(exact.size), proved=0)
    scale = float(np.abs(A.midpoints(exact)).max()) if exact.size else 0.0
    for idx in np.ndindex(exact.shape):
        ball = A.to_ball(exact[idx])
        diff = abs(flint.arb(float(fast[idx])) - ball)  # a ball enclosing |fast - exact|
        b = flint.arb(float(bound[idx]))
        hi, lo = diff.upper(), diff.lower()
        if hi <= b:
            out.proved += 1
            out.margin = min(out.margin, A.lower_float(b - hi))
        elif lo > b:
            out.disproved.append(tuple(int(i) for i in idx))
        else:
            out.undecided.append(tuple(int(i) for i in idx))
        if float(bound[idx]) > 0:
            out.worst_ratio = max(out.worst_ratio, A.upper_float(hi) / float(bound[idx]))
        elif float(hi) > 0:
            out.worst_ratio = math.inf
        if scale > 0:
            out.max_rel_radius = max(out.max_rel_radius, A.upper_float(ball.rad()) / scale)
    return out


def certify_fast(X, layers, dL_dout, *, eps=1e-8, dps: int = 30, **cfg) -> Certification:
    r"""Run the fast path and prove its certificate entrywise against an Arb enclosure of the exact model.

    Args are those of :func:`fastpath.forward` (``eps`` and the model's conventions in ``cfg``) plus ``dL_dout``
    (n, d), the upstream gradient, and ``dps``, the Arb working precision in decimal digits. Every output
    (T_i, Attn_i) and every gradient field (dT_i, dW_Q, dW_K, dW, dW_V, dW_g, G_i, the five terms) is checked.
    Returns a :class:`Certification`; ``.proved`` is True when every entry is proved within its bound.
    """
    A.flint_module()  # the optional extra, with its install hint
    ft = fastpath.forward(X, layers, eps=eps, **cfg)
    fg = fastpath.backward(ft, dL_dout)
    ref_cfg = {k: v for k, v in cfg.items() if k in REFERENCE_KEYS}
    bk = reference.backend.get_backend("arb", dps)
    rt = reference.forward(X, layers, backend="arb", dps=dps, **ref_cfg)
    rg = reference.backward(rt, np.asarray(dL_dout, dtype=np.float64))
    fast = {**all_fields(fg, ft), **_forward_fields(ft.T, ft.attn)}
    exact = {**all_fields(rg, rt), **_forward_fields(rt.T, rt.attn)}
    bound = {**all_fields(fg.bound, ft), **_forward_fields(ft.bound_T, ft.bound_attn)}
    with bk.compute():
        fields = {k: _prove_field(fast[k], exact[k], bound[k]) for k in exact}
    return Certification(fields, dps, getattr(ft, "method", ""))


__all__ = ["Certification", "FieldProof", "certify_fast"]
