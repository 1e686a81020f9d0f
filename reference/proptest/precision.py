r"""Floating-point formats a user may compute in: unit roundoff and rounding of float64 data to each format.

$u = 2^{-p}$ for a format with $p$ significand bits (implicit bit included), round to nearest: float64 p = 53,
float32 p = 24, float16 p = 11, bfloat16 p = 8 (IEEE 754-2008; bfloat16 is float32 with 16 fraction bits dropped).
numpy has no bfloat16, so :func:`rounder` rounds float32 bit patterns to nearest-even on the upper 16 bits (after
float64 -> float32: a double rounding, which is what torch does for a float32 tensor; the oracle only needs the
result to be a bfloat16 number, since the reference runs on the rounded values). A value beyond a format's range
becomes inf, which the reference then refuses by name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}


def _to_bfloat16(a: np.ndarray) -> np.ndarray:
    """Round to the nearest bfloat16 (ties to even), returned as float64 values. Shape preserved."""
    with np.errstate(over="ignore"):  # beyond float32's range: inf, as IEEE rounding gives
        bits = np.asarray(a, dtype=np.float64).astype(np.float32).view(np.uint32)
    bits = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return bits.view(np.float32).astype(np.float64)


def rounder(precision: str) -> Callable[[np.ndarray], np.ndarray]:
    """The map float64 array -> the nearest values of ``precision``, still as a float64 array."""
    if precision not in UNIT_ROUNDOFF:
        raise ValueError(f"precision: expected one of {tuple(UNIT_ROUNDOFF)}, got {precision!r}")
    if precision == "float64":
        return lambda a: np.array(a, dtype=np.float64)
    if precision == "bfloat16":
        return _to_bfloat16
    dt = np.float32 if precision == "float32" else np.float16

    def to(a: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):  # beyond the format's range: inf, as IEEE rounding gives
            return np.asarray(a, dtype=np.float64).astype(dt).astype(np.float64)

    return to


__all__ = ["UNIT_ROUNDOFF", "rounder"]
