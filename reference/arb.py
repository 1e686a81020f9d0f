r"""Ball arithmetic: the reference evaluated in Arb (python-flint), so "exact" is an enclosure, not an approximation.

Every number is a ball $[m \pm r]$ guaranteed to contain the exact real value of the closed-form expression evaluated
on the given float64 inputs. The formulas are the reference's own (:mod:`reference.model`, :mod:`reference.attention`,
:mod:`reference.block`, :mod:`reference.losses`), written once: :class:`ArbBackend` supplies the number system, the
way :class:`reference.backend.Backend` supplies float64 and mpmath. What an enclosure proves is the value of *the
closed form* on the given floats; that the closed form is the derivative is proved symbolically (``symbolic/``), so no
Arb finite differences are needed.

Arrays are numpy object arrays of ``flint.arb`` viewed as :class:`ArbArray`, whose matrix product runs in C through
``flint.arb_mat`` (about two orders faster than an object-array product). Comparisons that a ball cannot decide
(``x > 0`` for a ball containing 0: the relu kink) raise instead of guessing.

Precision and threads. python-flint keeps its working precision in one process-global context (``flint.ctx.prec``).
:meth:`ArbBackend.compute` therefore holds a module-level lock for the whole computation, sets the precision, and
restores the previous value on exit: concurrent Arb computations run one after another, never at each other's
precision. Code outside altgrad that changes ``flint.ctx`` while an altgrad computation runs is not protected.

The optional extra: ``pip install "altgrad[certify]"`` (python-flint). Without it, asking for ``backend="arb"``
raises an ImportError that says so; nothing else in altgrad needs it.

Shape legend: n tokens, d width.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from mpmath import libmp as mlib

from reference.backend import Backend

INSTALL_HINT = 'the Arb backend needs python-flint, the optional "certify" extra: pip install "altgrad[certify]"'
_LOCK = threading.RLock()  # python-flint's precision is process-global: one Arb computation at a time


_FLINT: list = []  # the imported module, once


def flint_module():
    """Import python-flint or raise an ImportError that names the extra to install."""
    if _FLINT:
        return _FLINT[0]
    try:
        import flint
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    _FLINT.append(flint)
    return flint


def available() -> bool:
    """True when python-flint can be imported."""
    try:
        flint_module()
    except ImportError:
        return False
    return True


def digits_to_bits(dps: int) -> int:
    """Working precision in bits for ``dps`` decimal digits (plus 10 guard bits)."""
    return math.ceil(dps * math.log2(10)) + 10


# -- conversion ------------------------------------------------------------------------------------------------------


def to_ball(x: Any):
    """One number -> an exact ``flint.arb`` ball (radius 0 for float64, ints and mpmath mpf; arb passes through).

    mpmath numbers are converted through their exact (mantissa, exponent) pair, so no decimal rounding occurs.
    """
    flint = _FLINT[0] if _FLINT else flint_module()
    if type(x) is flint.arb:
        return x
    if hasattr(x, "_mpf_"):  # mpmath.mpf of any context: (sign, mantissa, exponent, bitcount), exact
        sign, man, exp, _ = x._mpf_
        if not man:
            if exp == 0:  # zero
                return flint.arb(0)
            if x._mpf_ in (mlib.finf, mlib.fninf):
                return flint.arb("inf") if x._mpf_ == mlib.finf else flint.arb("-inf")
            raise ValueError("to_ball: got NaN, which no ball represents")
        return flint.arb(flint.arf((-int(man) if sign else int(man), int(exp))))
    if isinstance(x, bool | np.bool_):
        return flint.arb(int(x))
    if isinstance(x, int | np.integer):
        return flint.arb(int(x))
    if not isinstance(x, float | np.floating):
        raise TypeError(f"to_ball: expected a float, int, mpmath mpf or flint arb, got {type(x).__name__}")
    if math.isnan(x):
        raise ValueError("to_ball: got NaN, which no ball represents")
    return flint.arb(float(x))  # float64 is exact in a ball


_to_ball = np.frompyfunc(to_ball, 1, 1)


class ArbArray(np.ndarray):
    """An object array of ``flint.arb`` balls whose ``@`` runs through ``flint.arb_mat`` (rigorous, in C).

    Elementwise arithmetic is numpy's object loop over the balls. Comparisons that a ball cannot decide raise
    :class:`ValueError`. ``max`` along an axis (used only as a softmax / log-sum-exp shift, where any exact value
    is correct) returns, exactly, the midpoint of the ball with the largest midpoint.
    """

    def __array_finalize__(self, obj) -> None:  # keep the subclass through views, slices and transposes
        self._mat = None  # the arb_mat form of a 2-D array, built once when a product first needs it

    def __setitem__(self, key, value) -> None:
        self._mat = None  # an in-place write invalidates the cached matrix form
        base = self.base
        if isinstance(base, ArbArray):
            base._mat = None
        super().__setitem__(key, value)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = tuple(np.asarray(a) if isinstance(a, ArbArray) else a for a in inputs)
        if "out" in kwargs:
            kwargs["out"] = tuple(np.asarray(o) if isinstance(o, ArbArray) else o for o in kwargs["out"])
        if ufunc is np.matmul and method == "__call__" and not kwargs:
            return _wrap(_arb_matmul(*plain, mats=tuple(_cached_mat(a) for a in inputs), owners=inputs))
        if ufunc is np.maximum and method == "reduce":
            return _wrap(_shift_point(plain[0], **kwargs))
        if ufunc in _COMPARISONS and method == "__call__":
            return _decided_comparison(ufunc, *plain)
        out = getattr(ufunc, method)(*plain, **kwargs)
        return _wrap(out)


def _wrap(out):
    if isinstance(out, np.ndarray) and out.dtype == object:
        return out.view(ArbArray)
    return out


def as_arb_array(a: Any) -> ArbArray:
    """Any array (float64, int, mpf or arb objects) -> :class:`ArbArray` of exact balls. Same shape."""
    a = np.asarray(a)
    if a.size == 0:
        return np.empty(a.shape, dtype=object).view(ArbArray)
    if a.dtype.kind == "f":  # float64 -> ball is exact (flint.arb of a Python float has radius 0)
        flint = flint_module()
        return np.asarray(np.frompyfunc(flint.arb, 1, 1)(a.astype(np.float64).astype(object)), dtype=object).view(
            ArbArray
        )
    return np.asarray(_to_ball(a), dtype=object).view(ArbArray)


def _cached_mat(a):
    """The cached arb_mat of ``a`` (or of the array it transposes), else None. Only whole 2-D arrays are cached."""
    if not isinstance(a, ArbArray) or a.ndim != 2:
        return None
    if getattr(a, "_mat", None) is not None:
        return a._mat
    base = a.base
    if (isinstance(base, ArbArray) and base.ndim == 2 and getattr(base, "_mat", None) is not None
            and a.shape == base.shape[::-1] and a.strides == base.strides[::-1]
            and a.__array_interface__["data"][0] == base.__array_interface__["data"][0]):  # fmt: skip
        return base._mat.transpose()  # a is base.T
    return None


def _remember(a, mat) -> None:
    """Keep ``mat`` as the matrix form of ``a`` when ``a`` is a whole 2-D ArbArray owning its data."""
    if isinstance(a, ArbArray) and a.ndim == 2 and (a.base is None or not isinstance(a.base, ArbArray)):
        a._mat = mat


def _arb_matmul(a: np.ndarray, b: np.ndarray, mats=(None, None), owners=(None, None)) -> np.ndarray:
    """``a @ b`` for 1-D or 2-D object arrays of balls, through ``flint.arb_mat`` (exact inputs stay exact).

    ``mats``: already-built arb_mat forms of ``a`` and ``b`` (or None), so a matrix used in several products
    (the attention matrix f: f h, f^T G, f X) is converted once.
    """
    flint = flint_module()
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim > 2 or b.ndim > 2 or a.ndim == 0 or b.ndim == 0:
        return np.matmul(a.astype(object), b.astype(object))
    a2 = a.reshape(1, -1) if a.ndim == 1 else a
    b2 = b.reshape(-1, 1) if b.ndim == 1 else b
    if a2.shape[1] != b2.shape[0]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align")
    p, k = a2.shape
    q = b2.shape[1]
    if k == 0:
        out = np.full((p, q), flint.arb(0), dtype=object)
    else:
        arb = flint.arb
        A, B = mats
        if A is None or a.ndim != 2:
            A = flint.arb_mat(p, k, [x if type(x) is arb else to_ball(x) for x in a2.ravel().tolist()])
            _remember(owners[0], A)
        if B is None or b.ndim != 2:
            B = flint.arb_mat(k, q, [x if type(x) is arb else to_ball(x) for x in b2.ravel().tolist()])
            _remember(owners[1], B)
        out = np.array((A * B).entries(), dtype=object).reshape(p, q)  # (p, q)
    if a.ndim == 1 and b.ndim == 1:
        return out[0, 0]
    if a.ndim == 1:
        return out[0]
    if b.ndim == 1:
        return out[:, 0]
    return out


def _shift_point(a: np.ndarray, axis=None, keepdims=False, **kwargs) -> np.ndarray:
    """Exact midpoint of the ball with the largest midpoint along ``axis`` (a shift for softmax / log-sum-exp)."""
    flint = flint_module()
    where = kwargs.get("where", True)
    if not (where is True or (isinstance(where, np.ndarray) and where.all())):
        raise ValueError("max of an ArbArray: a 'where' mask is not supported")
    mids = np.asarray(np.frompyfunc(lambda x: float(to_ball(x).mid()), 1, 1)(a), dtype=np.float64)
    mids[np.isnan(mids)] = -math.inf
    top = mids.max(axis=axis, keepdims=keepdims)  # float64: the exact midpoint rounded to nearest, itself exact
    if np.ndim(top):
        return np.asarray(np.frompyfunc(flint.arb, 1, 1)(top.astype(object)), dtype=object)
    return flint.arb(float(top))


_COMPARISONS = {np.greater: ">", np.greater_equal: ">=", np.less: "<", np.less_equal: "<="}


def _decided_comparison(ufunc, a, b) -> np.ndarray:
    """Elementwise comparison that every ball decides; a ball that straddles the other side raises."""
    op = _COMPARISONS[ufunc]
    a_b, b_b = np.broadcast_arrays(np.asarray(a, dtype=object), np.asarray(b, dtype=object))
    out = np.empty(a_b.shape, dtype=bool)
    for idx in np.ndindex(a_b.shape):
        x, y = to_ball(a_b[idx]), to_ball(b_b[idx])
        yes = {">": x > y, ">=": x >= y, "<": x < y, "<=": x <= y}[op]
        no = {">": x <= y, ">=": x < y, "<": x >= y, "<=": x > y}[op]
        if yes == no:  # neither certainly true nor certainly false: the ball straddles the comparison point
            raise ValueError(
                f"Arb backend: the comparison {x} {op} {y} is undecided at this precision (a ball straddles the "
                "comparison point, e.g. relu at its kink); raise dps or use the mpmath backend"
            )
        out[idx] = bool(yes)
    return out


# -- the backend -----------------------------------------------------------------------------------------------------


def _elementwise(method: str):
    def one(x):
        return getattr(x if type(x) is _FLINT[0].arb else to_ball(x), method)()

    f = np.frompyfunc(one, 1, 1)

    def apply(a):
        flint_module()
        return _wrap(np.asarray(f(np.asarray(a)), dtype=object))

    return apply


_exp, _log, _tanh, _erf = (_elementwise(m) for m in ("exp", "log", "tanh", "erf"))


@dataclass(frozen=True)
class ArbBackend(Backend):
    """The Arb number system for the reference's formulas: every array is an :class:`ArbArray` of balls.

    ``dps`` is the working precision in decimal digits (``bits`` = that in bits plus 10 guard bits); the whole
    computation runs under :meth:`compute`, which serialises Arb work across threads.
    """

    name: str = "arb"
    dps: int = 50

    @property
    def is_mp(self) -> bool:  # object arrays of high-precision numbers (the reference's non-float64 code path)
        return True

    @property
    def bits(self) -> int:
        return digits_to_bits(self.dps)

    @contextlib.contextmanager
    def compute(self) -> Iterator[None]:
        """Hold the Arb lock and python-flint's working precision (``bits``) for the whole computation."""
        flint = flint_module()
        with _LOCK:
            old = flint.ctx.prec
            flint.ctx.prec = self.bits
            try:
                yield
            finally:
                flint.ctx.prec = old

    def asarray(self, a: Any) -> np.ndarray:
        return as_arb_array(a)

    def scalar(self, x: Any) -> Any:
        return to_ball(x)

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return as_arb_array(np.zeros(shape))

    def ones(self, shape: tuple[int, ...]) -> np.ndarray:
        return as_arb_array(np.ones(shape))

    def eye(self, d: int) -> np.ndarray:
        return as_arb_array(np.eye(d))

    @property
    def neg_inf(self) -> Any:
        return flint_module().arb("-inf")

    def exp(self, a: np.ndarray) -> np.ndarray:
        return _exp(a)

    def log(self, a: np.ndarray) -> np.ndarray:
        return _log(a)

    def tanh(self, a: np.ndarray) -> np.ndarray:
        return _tanh(a)

    def erf(self, a: np.ndarray) -> np.ndarray:
        return _erf(a)

    def softplus(self, a: np.ndarray) -> np.ndarray:
        return self.log(1 + self.exp(a))

    def sigmoid(self, a: np.ndarray) -> np.ndarray:
        return 1 / (1 + self.exp(-a))

    @property
    def pi(self) -> Any:
        return flint_module().arb.pi()

    def sqrt(self, x: Any) -> Any:
        return to_ball(x).sqrt()


def arb_backend(dps: int = 50) -> ArbBackend:
    """The Arb backend at ``dps`` decimal digits (python-flint must be installed)."""
    flint_module()
    return ArbBackend("arb", dps)


# -- reading balls -----------------------------------------------------------------------------------------------------


def midpoints(a: Any) -> np.ndarray:
    """Midpoints of the balls, rounded to the nearest float64. Same shape."""
    return np.vectorize(lambda x: float(to_ball(x).mid()), otypes=[np.float64])(np.asarray(a, dtype=object))


def radii(a: Any) -> np.ndarray:
    """Radii of the balls as float64 numbers rounded *up* (a rigorous upper bound on each radius). Same shape."""
    return np.vectorize(lambda x: _up(to_ball(x).rad()), otypes=[np.float64])(np.asarray(a, dtype=object))


def rel_radii(a: Any) -> np.ndarray:
    """radius / |midpoint| per ball (inf where the midpoint is 0 and the radius is not). Same shape."""
    r, m = radii(a), np.abs(midpoints(a))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r == 0, 0.0, r / m)


def contains(a: Any, value: Any) -> np.ndarray:
    """Elementwise: does ball ``a[i]`` contain ``value[i]`` (float64, int, mpmath mpf of any precision, or arb)?

    mpmath values are converted exactly (from their (sign, mantissa, exponent) triple, at a precision that holds
    the mantissa). Shapes broadcast.
    """
    flint = flint_module()
    a, value = np.asarray(a, dtype=object), np.asarray(value, dtype=object)
    try:
        a_b, v_b = np.broadcast_arrays(a, value)
    except ValueError:
        raise ValueError(
            f"contains: expected value broadcastable to the balls' shape {a.shape}, got {value.shape}"
        ) from None
    out = np.empty(a_b.shape, dtype=bool)
    with _LOCK:
        old = flint.ctx.prec
        try:
            for idx in np.ndindex(a_b.shape):
                v = v_b[idx]
                bits = int(v._mpf_[3]) + 8 if hasattr(v, "_mpf_") else 64  # the mantissa's bit count: exact
                flint.ctx.prec = max(old, 64, bits)
                out[idx] = bool(to_ball(a_b[idx]).contains(to_ball(v)))
        finally:
            flint.ctx.prec = old
    return out


def _up(x) -> float:
    """An arb/arf number -> the smallest float64 >= it (rigorous upward rounding)."""
    flint = flint_module()
    b = flint.arb(x) if not isinstance(x, flint.arb) else x
    f = float(b.upper())
    if not math.isfinite(f):
        return f
    while flint.arb(f) < b.upper():  # float() rounds to nearest: step up until certainly above
        f = math.nextafter(f, math.inf)
    return f


def upper_float(x) -> float:
    """Public form of the upward rounding: the smallest float64 >= the upper end of ball ``x``."""
    return _up(to_ball(x).upper())


def lower_float(x) -> float:
    """The largest float64 <= the lower end of ball ``x`` (rigorous downward rounding)."""
    return -_up((-to_ball(x)).upper())


__all__ = [
    "INSTALL_HINT",
    "ArbArray",
    "ArbBackend",
    "arb_backend",
    "as_arb_array",
    "available",
    "contains",
    "midpoints",
    "radii",
    "rel_radii",
    "lower_float",
    "to_ball",
    "upper_float",
]
