r"""Directed rounding in float64: upper bounds of exact sums, norms and products, for certified ranges.

Paper: none (the float64 side of spec §2.5's range R; used by :mod:`fastpath.ranges`). After each float64
operation on numbers the result is moved one float towards $+\infty$ (:func:`up`, ``np.nextafter``): round-to-nearest
is within half an ulp of the exact result (also for subnormals), so the moved float bounds the exact operation on the
same operands from above (:func:`down`: from below). A sum of N floats, by any order, satisfies
$|\hat s - s| \le \gamma_{N-1} \sum |x|$ (Higham, *Accuracy and Stability*, Lemma 3.1 / §4.2), and a product
$A B$ by BLAS $|\widehat{AB} - AB| \le \gamma_d |A||B|$ plus, from underflow, at most $d\,2^{-1074}$ per entry;
for non-negative terms $s \le \hat s (1 + 2(N-1)u)$, as $1/(1-u)^{m} \le 1 + 2mu$ for $mu \le 1/2$. These
enter as relative factors :func:`rel` $= 1 + 2mu$ and :func:`gam` $= 2mu \ge \gamma_m$ (exact float64 numbers) and
absolute terms $m\,2^{-1074}$, each followed by :func:`up`.

Also the exact column extremes of a tall array (:func:`col_min_max`) that the box bounds start from.

Shape legend: n rows, d columns.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from fastpath.lowrank import U_ROUND

TINY = 2.0**-1074  # smallest subnormal: the absolute error of one underflowing product is at most TINY / 2


def up(x):
    """The next float64 towards +inf: an upper bound of the exact result of the float operation that made x."""
    return np.nextafter(x, np.inf)


def down(x):
    """The next float64 towards -inf: a lower bound of the exact result of the float operation that made x."""
    return np.nextafter(x, -np.inf)


def rel(m: int) -> float:
    r"""$1 + 2mu$, exactly representable: covers $(1-u)^{-m}$ for $mu \le 1/2$."""
    if m * U_ROUND > 0.5:
        raise ValueError(f"directed: chain length {m} too long for float64 rounding bounds (expected m u <= 1/2)")
    return 1.0 + 2 * m * U_ROUND


def gam(m: int) -> float:
    r"""$2mu \ge \gamma_m$ for $mu \le 1/2$, exactly representable."""
    return rel(m) - 1.0


def sum_up(x: np.ndarray, axis=None):
    """Upper bound of the exact sum of the non-negative floats x along ``axis``."""
    N = x.size if axis is None else x.shape[axis]
    return up(up(x.sum(axis=axis)) * rel(max(N - 1, 0)))


def norms_up(Z: np.ndarray) -> np.ndarray:
    r"""Upper bounds of the exact row norms $\|z_i\|_2$: (n, d) -> (n,).

    $\widehat{\sum_t z_t^2} \ge (1-u)^d \sum_t z_t^2 - d\,2^{-1074}$ (d rounded squares and sums of non-negative
    terms, underflow absolute), so $\|z\|^2 \le \hat s (1 + 2du) + d\,2^{-1074}$, then the square root upwards.
    """
    d = Z.shape[1]
    s = np.einsum("ij,ij->i", Z, Z)  # (n,)
    return up(np.sqrt(up(up(s * rel(d)) + d * TINY)))


def absmatmul_up(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Upper bound of the exact |A| |B|: (n, d), (d, m) -> (n, m), including underflow (d 2^-1074 per entry)."""
    d = A.shape[1]
    return up(up(up(np.abs(A) @ np.abs(B)) * rel(d)) + d * TINY)


def matmul_encl(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""$(\widehat{AB}, \delta)$ with $|\widehat{AB} - AB| \le \delta$ entrywise (exact AB): (n, d), (d, m)."""
    d = A.shape[1]
    return A @ B, up(up(absmatmul_up(A, B) * gam(d)) + d * TINY)  # gamma_d |A||B| + underflow


LIBM = 1.0 + 2.0**-40  # covers numpy's exp, expm1, arctanh, tanh, cosh (a few ulps: SVML <= 4, glibc <= 2) up to 2^12


def forward_chain(d: int) -> int:
    """The chain length m of :func:`own_up` for one head's forward bound at width d (both certificates): two d-term
    sums (the input error through |W|) and at most 64 scalar operations."""
    return 4 * d + 64


def own_up(x, m: int, f: int = 4):
    r"""An upper bound of a non-negative quantity whose float64 evaluation ``x`` took a chain of at most m
    arithmetic operations and f elementary functions (the certificates' own arithmetic, docs/certificate.md,
    *Step 0'*): sums, products and quotients of non-negative numbers, $1 - y$ with $0 \le y \le 1/2$ (relative error
    at most that of y), and numpy's exp, expm1, tanh, cosh of arguments that are themselves upper bounds (increasing
    functions). Each operation moves its result by a factor in $[1 - u, 1 + u]$, each function by one in
    $[1/\mathrm{LIBM}, \mathrm{LIBM}]$ (:data:`LIBM`), a subtraction $1 - y$ at most doubles a relative error; so the
    exact value is at most ``x`` $(1 - u)^{-2m}$ LIBM$^f \le$ ``x`` rel(2m) LIBM$^f$ (rel: $1 + 4mu$), the product
    moved one float up. inf stays inf."""
    return up(x * (rel(2 * m) * LIBM**f))


def prod_up(*xs: float) -> float:
    """Upper bound of the exact product of non-negative floats."""
    out = 1.0
    for x in xs:
        out = float(up(out * x))
    return out


def col_min_max(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact column minima and maxima of Z (n, d) -> (d,), (d,): reduced along a contiguous axis (groups of rows
    side by side, then across the groups), several times faster than ``Z.min(0)`` for small d."""
    n, d = Z.shape
    g = max(1, 4096 // d)  # rows per group
    h = (n // g) * g
    if h == 0:
        return Z.min(0), Z.max(0)
    W = np.ascontiguousarray(Z[:h]).reshape(-1, g * d)  # (h/g, g d)
    lo, hi = W.min(0).reshape(g, d).min(0), W.max(0).reshape(g, d).max(0)  # (d,) each
    if h < n:
        lo, hi = np.minimum(lo, Z[h:].min(0)), np.maximum(hi, Z[h:].max(0))
    return lo, hi


def abs_box(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A box of |Z| from the column extremes of Z: (d,), (d,) -> zeros (d,), the exact maxima of |Z| (d,). For
    two non-negative boxes the box bound (``fastpath.ranges._box_max``) is decided by the upper corners alone, so
    the lower end 0 gives the same bound as the exact minima of |Z|."""
    return np.zeros_like(lo), np.maximum(-lo, hi)


def overflow_safe(fn):
    """Run a bound with float64 overflow silent, and turn a NaN (inf - inf after an overflow) into +inf: an
    overflowing bound is vacuous, never NaN."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            out = fn(*args, **kwargs)
        if isinstance(out, np.ndarray):
            return np.where(np.isnan(out), np.inf, out)
        return math.inf if out != out else out

    return wrapper


__all__ = ["LIBM", "TINY", "abs_box", "absmatmul_up", "col_min_max", "down", "gam", "matmul_encl", "norms_up",
           "forward_chain", "overflow_safe", "own_up", "prod_up", "rel", "sum_up", "up"]  # fmt: skip
