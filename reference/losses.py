r"""Losses (Def. 3.1, Remark 3.2). Everything downstream depends on the loss only through $\partial L/\partial T_m$.

A loss is a callable ``loss(T_m, bk) -> (value, dL/dT_m)``; :func:`value_and_grad` applies one to a trace.
Shape legend: n = tokens, d = width, v = vocabulary size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reference import validate as v
from reference.attention import softmax
from reference.backend import FLOAT64, Backend


def _own(loss, *names: str) -> None:
    """Snapshot the loss's arrays (read-only copies): mutating the caller's target later cannot change it."""
    for k in names:
        a = getattr(loss, k)
        if isinstance(a, np.ndarray):
            a = a.copy()
            a.setflags(write=False)
            object.__setattr__(loss, k, a)


@dataclass(frozen=True)
class LinearLoss:
    r"""$L = \langle C, T_m \rangle$; $\partial L/\partial T_m = C$."""

    C: np.ndarray  # (n, d)

    def __post_init__(self):
        _own(self, "C")

    def __call__(self, T, bk: Backend = FLOAT64):
        v.matrix("C", self.C, T.shape, allow_mp=True)
        C = bk.asarray(self.C)
        return (C * T).sum(), C


@dataclass(frozen=True)
class HalfSquaredError:
    r"""$L = \tfrac12 \|T_m - Y\|_F^2$; $\partial L/\partial T_m = T_m - Y$."""

    Y: np.ndarray  # (n, d)

    def __post_init__(self):
        _own(self, "Y")

    def __call__(self, T, bk: Backend = FLOAT64):
        v.matrix("Y", self.Y, T.shape, allow_mp=True)
        R = T - bk.asarray(self.Y)  # (n, d)
        return (R * R).sum() / 2, R


@dataclass(frozen=True)
class CrossEntropy:
    r"""Remark 3.2: $Y_{pred} = \mathrm{rowsoftmax}(T_m W_{out})$, $L = -\sum_j \log (Y_{pred})_{j, y_j}$.

    $\partial L/\partial T_m = (Y_{pred} - Y_{gt}) W_{out}^\top$ with one-hot $Y_{gt}$. ``labels`` are class
    indices (n,); ``W_out`` is the output head (d, v).
    """

    W_out: np.ndarray  # (d, v)
    labels: np.ndarray  # (n,) int

    def __post_init__(self):
        _own(self, "W_out", "labels")

    def __call__(self, T, bk: Backend = FLOAT64):
        n, d = T.shape
        v.matrix("W_out", self.W_out, (d, None), allow_mp=True)
        lab = np.asarray(self.labels)
        if lab.shape != (n,) or not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(f"labels: expected an integer array of shape ({n},), got {lab.dtype} {lab.shape}")
        nv = self.W_out.shape[1]
        if lab.min() < 0 or lab.max() >= nv:
            raise ValueError(f"labels: expected class indices in [0, {nv}), got range [{lab.min()}, {lab.max()}]")
        Wo = bk.asarray(self.W_out)
        logits = T @ Wo  # (n, v)
        Yp = softmax(logits, bk)  # (n, v)
        rows = np.arange(n)
        zmax = logits.max(axis=1)  # (n,)
        lse = zmax + bk.log(bk.exp(logits - zmax[:, None]).sum(axis=1))  # (n,) log-sum-exp
        value = (lse - logits[rows, lab]).sum()
        Ygt = 0 * Yp
        Ygt[rows, lab] = Ygt[rows, lab] + 1  # (n, v) one-hot
        return value, (Yp - Ygt) @ Wo.T  # (n, d)


@dataclass(frozen=True)
class CustomLoss:
    """Any user loss: ``fn(T_m, bk) -> (value, dL/dT_m)`` (Def. 3.1 allows any differentiable loss)."""

    fn: Callable

    def __call__(self, T, bk: Backend = FLOAT64):
        value, grad = self.fn(T, bk)
        v.matrix("dL/dT_m returned by the custom loss", np.asarray(grad), T.shape, allow_mp=True)
        return value, np.asarray(grad)


def value_and_grad(trace, loss):
    """Apply ``loss`` to ``trace.output`` in the trace's number system; returns (L, dL/dT_m)."""
    if not callable(loss):
        raise TypeError(f"loss: expected a callable loss(T, bk) -> (value, grad), got {type(loss).__name__}")
    with np.errstate(all="ignore"):  # checked below
        value, grad = loss(trace.output, trace.backend)
    if not trace.backend.is_mp and not (np.isfinite(value) and np.isfinite(grad).all()):
        raise ValueError(
            f"loss: the value or dL/dT_m is not finite in float64 (largest |T_m| = "
            f"{float(np.abs(trace.output).max()):.3g}); expected a loss whose value and gradient fit float64: "
            "scale the inputs or the loss target down, or use backend='mpmath'"
        )
    return value, grad
