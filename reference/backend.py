r"""Number systems: the formulas are written once and evaluated in float64 (numpy) or in mpmath.

The mpmath backend stores matrices as numpy object arrays of mpf numbers; numpy's ``@``, ``*``, ``sum`` and
comparisons work on them unchanged, so only construction and the transcendental functions need a backend method.

**Precision and threads.** mpmath's global context (``mpmath.mp``) is process-wide: ``mpmath.workdps`` in one thread
changes the precision every other thread computes at (issue 13 item 5). This package never reads or sets it.
``Backend("mpmath", dps)`` carries its *own* ``mpmath.MPContext`` at ``dps`` digits (made by :func:`mp_context`,
fresh per backend): every number it makes (``asarray``, ``scalar``, ``zeros``...) is an mpf *of that context*, and
mpf arithmetic runs at the precision of its left operand's context, so a whole computation stays at ``dps`` digits
whatever any other thread does to ``mpmath.mp``. Nothing in this package reads or sets ``mpmath.mp``;
:meth:`Backend.precision` is a deprecated scope kept for callers elsewhere (see its docstring).

Thread safety: two threads may use two backends (two ``forward`` calls each make their own) concurrently; one
backend (one context) should not be shared by threads that compute with it at the same time, because some mpmath
functions raise a context's precision temporarily while they run. Code that needs mpmath outside a backend takes a
context from :func:`mp_context` instead of ``mpmath.workdps``.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import mpmath
import numpy as np
from mpmath.ctx_mp_python import _mpf

BACKENDS = ("float64", "mpmath", "arb")  # "arb": ball arithmetic, optional extra altgrad[certify] (reference.arb)
MPF = _mpf  # base class of the mpf type of every mpmath context (``mpmath.mpf`` is only the global one's)

_np_erf = np.frompyfunc(math.erf, 1, 1)


def mp_context(dps: int) -> mpmath.MPContext:
    """A fresh mpmath context at ``dps`` decimal digits, independent of ``mpmath.mp`` and of every other context.

    Use ``ctx.mpf``, ``ctx.exp``, ``ctx.fsum``... of the returned context; arithmetic on its mpf numbers runs at
    its precision. Cost: about a millisecond per context.
    """
    if isinstance(dps, bool) or not isinstance(dps, int) or dps < 1:
        raise ValueError(f"dps: expected a positive integer (decimal digits), got {dps!r}")
    ctx = mpmath.MPContext()
    ctx.dps = dps
    ctx.mpf.__reduce__ = _reduce_mpf  # picklable (process pools): restored into a context of the same precision
    ctx.mpf.__copy__ = ctx.mpf.__deepcopy__ = lambda x, *memo: x  # immutable: a copy keeps its context
    return ctx


def _reduce_mpf(x):
    return _restore_mpf, (x._mpf_, x.context.prec)


@functools.lru_cache(maxsize=16)
def _restore_context(prec: int) -> mpmath.MPContext:
    ctx = mp_context(15)
    ctx.prec = prec
    return ctx


def _restore_mpf(value: tuple, prec: int):
    """Unpickle an mpf of a private context (exact: the 4-tuple is the number itself)."""
    return _restore_context(prec).mpf(value)


def _elementwise(fn, a: np.ndarray) -> np.ndarray:
    return np.frompyfunc(fn, 1, 1)(a).astype(object)


@dataclass(frozen=True)
class Backend:
    """Elementwise functions and array construction for one number system.

    ``name`` is ``"float64"`` or ``"mpmath"``; ``dps`` is the mpmath working precision in decimal digits. An mpmath
    backend owns ``ctx``, a private ``mpmath.MPContext`` at ``dps`` digits (module docstring: thread safety).
    """

    name: str
    dps: int = 50
    ctx: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.name == "mpmath" and self.ctx is None:
            object.__setattr__(self, "ctx", mp_context(self.dps))

    def __reduce__(self):
        return Backend, (self.name, self.dps)  # a pickled backend gets a fresh context of its own

    @property
    def is_mp(self) -> bool:
        return self.name == "mpmath"

    def precision(self):
        """The former name of :meth:`compute`, kept for callers outside this package. It never touches mpmath's
        global context: an mpmath backend's numbers carry their precision in ``self.ctx``."""
        return self.compute()

    @contextlib.contextmanager
    def compute(self) -> Iterator[None]:
        """The scope a whole computation of the reference runs in (``reference.forward``/``backward`` enter it).

        Nothing for float64 and mpmath (an mpmath backend's precision lives in its own context ``ctx``); for the Arb
        backend (:class:`reference.arb.ArbBackend`) the lock and working precision of python-flint.
        """
        yield

    # -- conversion ------------------------------------------------------------------------------------------
    def asarray(self, a: Any) -> np.ndarray:
        """float64 array -> backend array (exact for mpmath: every float64 is an mpf of ``ctx``).

        An object array of mpf numbers (of any context) is rounded to ``ctx``'s precision.
        """
        a = np.asarray(a)
        if not self.is_mp:
            return a.astype(np.float64, copy=False)
        if a.dtype != object:
            a = a.astype(np.float64)
        return _elementwise(self.ctx.mpf, a)

    def scalar(self, x: Any) -> Any:
        return self.ctx.mpf(x) if self.is_mp else float(x)

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.is_mp:
            return np.full(shape, self.ctx.mpf(0), dtype=object)
        return np.zeros(shape)

    def ones(self, shape: tuple[int, ...]) -> np.ndarray:
        if self.is_mp:
            return np.full(shape, self.ctx.mpf(1), dtype=object)
        return np.ones(shape)

    def eye(self, d: int) -> np.ndarray:
        out = self.zeros((d, d))
        for i in range(d):
            out[i, i] = self.scalar(1)
        return out

    @property
    def neg_inf(self) -> Any:
        return self.ctx.mpf("-inf") if self.is_mp else -np.inf

    # -- elementwise functions ---------------------------------------------------------------------------------
    def exp(self, a: np.ndarray) -> np.ndarray:
        return _elementwise(self.ctx.exp, a) if self.is_mp else np.exp(a)

    def log(self, a: np.ndarray) -> np.ndarray:
        return _elementwise(self.ctx.log, a) if self.is_mp else np.log(a)

    def tanh(self, a: np.ndarray) -> np.ndarray:
        return _elementwise(self.ctx.tanh, a) if self.is_mp else np.tanh(a)

    def erf(self, a: np.ndarray) -> np.ndarray:
        if self.is_mp:
            return _elementwise(self.ctx.erf, a)
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
        return +self.ctx.pi if self.is_mp else math.pi

    def sqrt(self, x: Any) -> Any:
        return self.ctx.sqrt(x) if self.is_mp else math.sqrt(x)


FLOAT64 = Backend("float64")


def get_backend(backend: str | Backend, dps: int = 50) -> Backend:
    """Look a backend up by name (a fresh mpmath context per call); ``dps`` (decimal digits) matters for
    mpmath and arb only.

    A :class:`Backend` instance is returned as it is (its ``dps`` wins), so a caller can reuse one context.
    """
    if isinstance(backend, Backend):
        return backend
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
