r"""Fast path against the exact reference, field by field, with the certificate (observed / bound).

Shared by the tests, the proofs_check checks and the benchmark (STYLE §1.7: one comparison helper, not copies).
A *violation* is an entry with $|\text{fast} - \text{exact}| > \text{bound}$; the ratio reported per field is
$\max |\text{fast} - \text{exact}| / \text{bound}$ over the entries (1 would mean the bound is attained), and
``median_ratio`` the median over the entries of the same quotient (issue 10's tightness measure; entries where both
are 0 count as 0). ``madds``/``cert_madds`` are the counted work of the fast path and of its certificate.

Shape legend: n tokens, d width, m layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import fastpath
import reference
from reference.model import Layer
from reference.testing import grad_fields


@dataclass
class Comparison:
    """Per field: observed max error, max observed/bound ratio, relative error; plus violations and the trace."""

    ratio: dict[str, float] = field(default_factory=dict)
    median_ratio: dict[str, float] = field(default_factory=dict)
    abs_err: dict[str, float] = field(default_factory=dict)
    rel_err: dict[str, float] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    degree: int = 0
    rank: int = 0
    R: float = 0.0
    madds: int = 0
    cert_madds: int = 0
    method: str = ""

    @property
    def worst(self) -> tuple[str, float]:
        k = max(self.ratio, key=lambda key: self.ratio[key])
        return k, self.ratio[k]


def all_fields(grads, trace) -> dict[str, np.ndarray]:
    """Every gradient field (:func:`reference.testing.grad_fields`), G, the five terms and the outputs T_i, Attn_i."""
    out = grad_fields(grads)
    for i, lg in enumerate(grads.layers):
        out[f"layers[{i}].G"] = lg.G
        for t, v in lg.terms.items():
            out[f"layers[{i}].{t}"] = v
    return out


def _forward_fields(T, attn) -> dict[str, np.ndarray]:
    out = {f"T[{i}]": t for i, t in enumerate(T)}
    out.update({f"Attn[{i + 1}]": a for i, a in enumerate(attn)})
    return out


def random_layers(rng: np.random.Generator, d: int, m: int, scale: float = 1.0, with_g: bool = True) -> list[Layer]:
    r"""Benchmark weights: entries Uniform$[-s/\sqrt d, s/\sqrt d]$, s = ``scale`` (issue 4), non-symmetric W."""
    w = scale / np.sqrt(d)
    return [
        Layer(*(rng.uniform(-w, w, (d, d)) for _ in range(3)), W_g=rng.uniform(-w, w, (d, d)) if with_g else None)
        for _ in range(m)
    ]


def compare(X, layers, dL, *, eps, **cfg) -> Comparison:
    """Run fast and exact on the same inputs; compare every output and gradient with its certificate.

    ``cfg`` goes to :func:`fastpath.forward`; ``allow_vacuous`` defaults to True here, because a comparison asks
    whether the certificate *holds* (and how tight it is), which a vacuous-certificate refusal would hide, and
    ``method`` defaults to ``"lowrank"``, because it is the polynomial path that is compared (``method="auto"``
    would run the exact kernel wherever the rank is not below n, as at the small n of most checks).
    """
    cfg.setdefault("allow_vacuous", True)
    cfg.setdefault("method", "lowrank")
    ft = fastpath.forward(X, layers, eps=eps, **cfg)
    fg = fastpath.backward(ft, dL)
    ref_cfg = {k: v for k, v in cfg.items() if k in ("beta", "causal", "heads", "residual", "activation")}
    rt = reference.forward(X, layers, **ref_cfg)
    rg = reference.backward(rt, dL)
    fast = {**all_fields(fg, ft), **_forward_fields(ft.T, ft.attn)}
    exact = {**all_fields(rg, rt), **_forward_fields(rt.T, rt.attn)}
    bound = {**all_fields(fg.bound, ft), **_forward_fields(ft.bound_T, ft.bound_attn)}
    c = Comparison(degree=ft.degree, rank=ft.rank, R=ft.R, madds=ft.madds + fg.madds,
                   cert_madds=ft.cert_madds + fg.cert_madds, method=ft.method)  # fmt: skip
    for k, e in exact.items():
        diff = np.abs(fast[k] - e)
        b = bound[k]
        c.abs_err[k] = float(diff.max())
        scale = float(np.abs(e).max())
        c.rel_err[k] = c.abs_err[k] / scale if scale > 0 else c.abs_err[k]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(diff == 0, 0.0, diff / b)
        c.ratio[k] = float(r.max())
        c.median_ratio[k] = float(np.median(r))
        if (diff > b).any():
            c.violations.append(k)
    return c


__all__ = ["Comparison", "all_fields", "compare", "random_layers"]
