"""Error measures (entrywise max norm, spec §0.2) and the tolerance table (spec §0.3), each with its source."""

from __future__ import annotations

import mpmath
import numpy as np

# Each tolerance says where its number comes from.
TOLERANCES = {
    # spec §0.3 TOL_ID: identities computed without differencing, relative to max(1, |b|_inf).
    "ID_float64": 1e-10,
    # issue 2 acceptance: closed form vs mpmath central differences at dps = 50. The FD error is ~1e-33
    # (reference/fd.py), the closed form's own rounding ~1e-49, so 1e-20 leaves 10+ digits of margin.
    "FD_mpmath_dps50": 1e-20,
    # issue 2 acceptance: float64 vs mpmath on the small grid; float64 rounding of O(n d) sums of O(1)
    # terms is ~1e-15, so 1e-12 relative is a 1000x margin.
    "float64_vs_mpmath": 1e-12,
    # a printed formula is called wrong when it is off by more than this (relative): far above any rounding.
    "PRINTED_WRONG": 1e-3,
}


def max_abs(a) -> mpmath.mpf | float:
    """$\\|a\\|_\\infty$ = entrywise max of |a| (NOT the induced norm)."""
    a = np.asarray(a)
    if a.dtype == object:
        return max(abs(x) for x in a.flat)
    return float(np.abs(a).max())


def rel_err(a, b):
    """$\\|a - b\\|_\\infty / \\|b\\|_\\infty$ (b the trusted side); the raw difference when b is 0."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"rel_err: shapes differ, {a.shape} vs {b.shape}")
    if a.dtype == object or b.dtype == object:
        a, b = a.astype(object), b.astype(object)  # float64 entries become Python floats, exact
        num = max(abs(x - y) for x, y in zip(a.flat, b.flat, strict=True))
        den = max_abs(b)
        return num / den if den != 0 else num
    den = max_abs(b)
    num = max_abs(a - b)
    return num / den if den != 0 else num
