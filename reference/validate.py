"""Input validation shared by every public entry point.

Every error names the argument, the expected and the actual shape or value (ValueError for values and shapes,
TypeError for types), so a bad input never becomes a silent wrong number.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import mpmath
import numpy as np

from reference.backend import MPF

FINITE_BLOCK_BYTES = 1 << 22  # finiteness is checked in row blocks of about 4 MiB: no O(n d) temporary (issue 13.8)


def matrix(name: str, a: Any, shape: tuple[int | None, ...], *, allow_mp: bool = False) -> np.ndarray:
    """Check that ``a`` is a finite float64 ndarray (or, with ``allow_mp``, an object array of mpf) of ``shape``.

    ``None`` in ``shape`` matches any positive length.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy ndarray of float64, got {type(a).__name__}")
    if a.dtype == object:
        if not allow_mp:
            raise TypeError(f"{name}: expected dtype float64, got object (mpmath arrays need backend='mpmath')")
        if not all(isinstance(v, MPF) for v in a.flat):
            raise TypeError(f"{name}: an object array must hold mpmath.mpf entries only")
    elif a.dtype != np.float64:
        raise TypeError(f"{name}: expected dtype float64, got {a.dtype}")
    want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
    if a.ndim != len(shape) or any(s is not None and s != t for s, t in zip(shape, a.shape, strict=True)):
        raise ValueError(f"{name}: expected shape {want}, got {a.shape}")
    if any(t == 0 for t in a.shape):
        raise ValueError(f"{name}: expected non-empty dimensions {want}, got {a.shape}")
    bad = _first_non_finite(a)
    if bad is not None:
        val = a[bad] if a.dtype == object else float(a[bad])
        raise ValueError(f"{name}: expected finite entries, got {val!r} at index {bad}")
    return a


def _first_non_finite(a: np.ndarray) -> tuple[int, ...] | None:
    """Index of the first NaN/inf entry, or None; float64 arrays are scanned in blocks of leading-axis slices.

    A broadcast or memory-mapped X of 10^9 rows is checked with O(block) extra memory, never an n x d boolean array.
    """
    if a.dtype == object:
        for idx in np.ndindex(*a.shape):
            if not mpmath.isfinite(a[idx]):
                return idx
        return None
    row_bytes = max(1, a.itemsize * (a.size // a.shape[0]))
    step = max(1, FINITE_BLOCK_BYTES // row_bytes)
    for r0 in range(0, a.shape[0], step):
        blk = a[r0 : r0 + step]
        with np.errstate(all="ignore"):
            total = np.add.reduce(blk, axis=None)  # one pass, no temporary; NaN/inf in -> NaN/inf out
        if not np.isfinite(total):  # a non-finite entry, or finite entries whose sum overflowed: look closer
            bad = np.argwhere(~np.isfinite(blk))  # (k, ndim), bounded by the block
            if len(bad):
                return (r0 + int(bad[0][0]), *(int(i) for i in bad[0][1:]))
    return None


def positive_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
        raise ValueError(f"{name}: expected a positive integer, got {v!r}")
    return int(v)


def flag(name: str, v: Any) -> bool:
    if not isinstance(v, bool | np.bool_):
        raise TypeError(f"{name}: expected a bool, got {type(v).__name__} {v!r}")
    return bool(v)


def real(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real | MPF):
        raise TypeError(f"{name}: expected a real number, got {type(v).__name__} {v!r}")
    # a float (np.float64 included) is decided by math.isfinite, the same answer as mpmath's for every float without
    # the conversion to mpf (about 12 us a call); ints (possibly beyond float64) and mpf numbers go to mpmath
    if not (math.isfinite(v) if isinstance(v, float) else mpmath.isfinite(v)):
        raise ValueError(f"{name}: expected a finite number, got {v!r}")
    return v  # type: ignore[return-value]


def choice(name: str, v: Any, options: tuple[str, ...] | list[str]) -> str:
    if not isinstance(v, str) or v not in options:
        raise ValueError(f"{name}: expected one of {tuple(options)}, got {v!r}")
    return v
