r"""Number systems: the formulas are written once and evaluated in float64 (numpy) or in mpmath.

The mpmath backend stores matrices as numpy object arrays of ``mpmath.mpf``; numpy's ``@``, ``*``, ``sum`` and
comparisons work on them unchanged, so only the transcendental functions need a backend method. Precision is never
set globally: :meth:`Backend.precision` is a ``workdps`` block that callers wrap around a *whole* computation
(mpmath arithmetic uses the precision in force when an operation runs, not when a number was made).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

BACKENDS = ("float64", "mpmath", "arb")  # "arb": ball arithmetic, optional extra altgrad[certify] (reference.arb)

_mp_exp = np.frompyfunc(mpmath.exp, 1, 1)
_mp_log = np.frompyfunc(mpmath.log, 1, 1)
_mp_tanh = np.frompyfunc(mpmath.tanh, 1, 1)
_mp_erf = np.frompyfunc(mpmath.erf, 1, 1)
_mp_mpf = np.frompyfunc(mpmath.mpf, 1, 1)
_np_erf = np.frompyfunc(math.erf, 1, 1)


@dataclass(frozen=True)
class Backend:
    """Elementwise functions and array construction for one number system.

    ``name`` is ``"float64"`` or ``"mpmath"``; ``dps`` is the mpmath working precision in decimal digits.
    """

    name: str
    dps: int = 50

    @property
    def is_mp(self) -> bool:
        return self.name == "mpmath"

    @contextlib.contextmanager
    def precision(self) -> Iterator[None]:
        """Scope the mpmath precision (``workdps``) around a computation; a no-op for float64."""
        if self.is_mp:
            with mpmath.workdps(self.dps):
                yield
        else:
            yield

    # -- conversion ------------------------------------------------------------------------------------------
    def asarray(self, a: Any) -> np.ndarray:
        """float64 array -> backend array (exact for mpmath: every float64 is an mpf)."""
        a = np.asarray(a)
        if not self.is_mp:
            return a.astype(np.float64, copy=False)
        if a.dtype == object:
            return _mp_mpf(a).astype(object)
        return _mp_mpf(a.astype(np.float64)).astype(object)

    def scalar(self, x: Any) -> Any:
        return mpmath.mpf(x) if self.is_mp else float(x)

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.is_mp:
            return np.full(shape, mpmath.mpf(0), dtype=object)
        return np.zeros(shape)

    def ones(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.is_mp:
            return np.full(shape, mpmath.mpf(1), dtype=object)
        return np.ones(shape)

    def eye(self, d: int) -> np.ndarray:
        out = self.zeros((d, d))
        for i in range(d):
            out[i, i] = self.scalar(1)
        return out

    @property
    def neg_inf(self) -> Any:
        return mpmath.mpf("-inf") if self.is_mp else -np.inf

    # -- elementwise functions ---------------------------------------------------------------------------------
    def exp(self, a: np.ndarray) -> np.ndarray:
        return _mp_exp(a).astype(object) if self.is_mp else np.exp(a)

    def log(self, a: np.ndarray) -> np.ndarray:
        return _mp_log(a).astype(object) if self.is_mp else np.log(a)

    def tanh(self, a: np.ndarray) -> np.ndarray:
        return _mp_tanh(a).astype(object) if self.is_mp else np.tanh(a)

    def erf(self, a: np.ndarray) -> np.ndarray:
        if self.is_mp:
            return _mp_erf(a).astype(object)
        return _np_erf(a).astype(np.float64)

    def softplus(self, a: np.ndarray) -> np.ndarray:
        r"""$\log(1 + e^x)$, stable in float64 (``logaddexp``); exact in mpmath (no overflow)."""
        if self.is_mp:
            return self.log(1 + self.exp(a))
        return np.logaddexp(0.0, a)

    def sigmoid(self, a: np.ndarray) -> np.ndarray:
        if self.is_mp:
            return 1 / (1 + self.exp(-a))
        return 0.5 * (1.0 + np.tanh(0.5 * a))  # overflow-free form of 1/(1+e^-x)

    @property
    def pi(self) -> Any:
        return mpmath.pi if self.is_mp else math.pi

    def sqrt(self, x: Any) -> Any:
        return mpmath.sqrt(x) if self.is_mp else math.sqrt(x)


FLOAT64 = Backend("float64")


def get_backend(backend: str, dps: int = 50) -> Backend:
    """Look a backend up by name; ``dps`` (decimal digits) matters for mpmath and arb only."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}")
    if isinstance(dps, bool) or not isinstance(dps, int) or dps < 15:
        raise ValueError(f"dps: expected an integer >= 15 (decimal digits), got {dps!r}")
    if backend == "arb":
        from reference.arb import arb_backend

        return arb_backend(dps)
    return Backend(backend, dps)


def to_float(a: Any) -> np.ndarray:
    """Backend array -> float64 array (rounding each mpf to nearest)."""
    a = np.asarray(a)
    if a.dtype == object:
        return np.vectorize(float, otypes=[np.float64])(a) if a.size else a.astype(np.float64)
    return a.astype(np.float64, copy=False)
