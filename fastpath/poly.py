r"""The scalar step of the polynomial method: a polynomial $P \approx e^x$ with a *proved* relative error bound.

Paper: Lemma I.1 / Lemma C.13 (from [AS23]), step 1 of the construction in spec §2.5. We need a degree-g polynomial
$P(x) = \sum_{j \le g} c_j x^j$ with

.. math::
    \max_{x \in [-R, R]} \frac{|P(x) - e^x|}{e^x} \le \varepsilon_{\text{cert}},

where $R$ bounds every logit (spec §2.5; with the 1/d scale the logits lie in $[-R^2, R^2]$ for entry bound R, here
R is already the logit bound). Two constructions, both for the float64 coefficients actually used by the lift:

* ``"taylor"``: $c_j = 1/j!$ rounded to float64. Lagrange remainder: for $x \in [-R, R]$ the relative error of the
  exact Taylor polynomial is at most $R^{g+1} e^{R} / (g+1)!$ (the intermediate point $\xi$ satisfies
  $\xi - x \le R$). Rounding the coefficients adds $e^{R} \sum_j |c_j - 1/j!| R^j$, evaluated exactly.
* ``"chebyshev"`` (default, near-minimax): the interpolant of $e^x$ at the g+1 Chebyshev nodes of $[-R, R]$,
  computed in mpmath and rounded to float64. Its error is **certified, not sampled**: $[-R, R]$ is cut into
  Chebyshev-spaced cells; on a cell with centre m and half-width r the error
  $E(m+t) = e^{-m-t} P(m+t) - 1$ has the exactly computable Taylor series $\sum_k a_k t^k$
  ($a_k = e^{-m} \sum_{j} b_j (-1)^{k-j}/(k-j)!$ with $b_j = P^{(j)}(m)/j!$), so

  .. math::
      \max_{|t| \le r} |E(m+t)| \le \max_{|t| \le r} |a_0 + a_1 t + a_2 t^2|
      + \sum_{k=3}^{K} |a_k| r^k + e^{-m} B\, r^{g} \frac{r^{L} e^{r}}{L!},\quad B = \sum_j |b_j|,\ L = K - g + 1,

  the last term bounding the tail $k > K$ because $|a_k| \le e^{-m} B / (k-g)!$. The quadratic's maximum is exact
  (endpoints and vertex). Everything runs at 32 digits in a private ``mpmath.MPContext``
  (:func:`reference.backend.mp_context`, never the process-global ``mpmath.mp``, so threads cannot lower the
  precision the proof assumes); an explicit rounding slack $10^{-24}$ (relative to the magnitudes involved) is
  added, far above the 32-digit rounding and far below any $\varepsilon \ge 10^{-15}$ of interest.

The Taylor remainder $\bar R^{g+1} e^{\bar R}/(g+1)!$ (spec §0.5 item 1) lives in :func:`taylor_rel_bound` and the
degree search over it in :func:`min_taylor_degree`: the one home of both for the whole project.

Degree selection (:func:`certified_poly`): the smallest g whose certified bound is at most the target eps.
Results are cached with ``functools.lru_cache`` keyed on (R rounded *up* to the geometric grid $2^{j/8}$, eps), so the
certification is paid once per grid point; a certificate for a larger R is valid on every smaller interval.

Shape legend: g = degree; coefficients are a float64 vector of length g + 1, lowest degree first.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from reference.backend import mp_context

KINDS = ("chebyshev", "taylor")
BASES = ("monomial", "shifted")  # powers of x, or of (x + R) (spec §0.5 item 6: a far lower float64 floor)
STAGNATION = 8  # a search stops after this many degrees without a smaller attained error
_DPS = 32  # working digits for every certificate; the slack below is 8 orders of magnitude above the rounding
_SLACK_DIGITS = 24  # relative slack 10^-24 added to every certified quantity
GRID_STEPS_PER_OCTAVE = 8  # R is rounded up to 2^(j/8): at most 9% larger than the input's R
R_MIN = 2.0**-10  # smaller ranges are certified on [-2^-10, 2^-10]
DEGREE_MAX = 120


@dataclass(frozen=True)
class PolyCert:
    r"""A polynomial with a proved relative-error bound on $[-R, R]$ (Lemma I.1, scalar step).

    ``coeffs``: float64 $c_0..c_g$ (lowest first) of $P(x) = \sum_j c_j (x + s)^j$ with ``shift`` $s$ (0: the
    monomial basis every consumer expects; $s = R$ only when ``basis="shifted"`` was asked for, spec §0.5 item 6);
    ``err``: certified upper bound of $\max_{[-R,R]} |P(x) - e^x|/e^x$; ``abs_sum``:
    $\max_{[-R,R]} \sum_j |c_j| |x + s|^j = \sum_j |c_j| (R + s)^j$ (used by the rounding term).
    """

    kind: str
    degree: int
    R: float
    eps: float
    err: float
    coeffs: np.ndarray
    abs_sum: float
    shift: float = 0.0


def round_up_R(R: float) -> float:
    """R rounded up to the geometric grid $2^{j/8}$ (at least :data:`R_MIN`)."""
    if not (R >= 0 and math.isfinite(R)):
        raise ValueError(
            f"R (the logit range max |beta q_i . k_j|): expected a finite number >= 0, got {R!r}; a non-finite R "
            "means the logits overflow float64: expected smaller inputs X or weights"
        )
    if R <= R_MIN:
        return R_MIN
    j = math.ceil(math.log2(R) * GRID_STEPS_PER_OCTAVE - 1e-12)
    Rg = 2.0 ** (j / GRID_STEPS_PER_OCTAVE)
    while Rg < R:  # guard the float log2
        j += 1
        Rg = 2.0 ** (j / GRID_STEPS_PER_OCTAVE)
    return Rg


# -- constructions --------------------------------------------------------------------------------------------


def taylor_coeffs(g: int) -> np.ndarray:
    """$c_j = 1/j!$ rounded to float64, j = 0..g. Shape (g+1,)."""
    return np.array([1.0 / math.factorial(j) for j in range(g + 1)])


def chebyshev_coeffs(g: int, R: float, shift: float = 0.0) -> np.ndarray:
    r"""Monomial coefficients of the interpolant of $e^x$ at the g+1 Chebyshev nodes of $[-R, R]$. Shape (g+1,).

    Computed in mpmath (Chebyshev coefficients, then the exact change of basis) and rounded to float64. With
    ``shift`` s: the same interpolant's coefficients in powers of $(x + s)$, changed in mpmath, then rounded.
    """
    mp = mp_context(_DPS + 2 * g)
    N = g + 1
    Rm = mp.mpf(R)
    nodes = [mp.cos(mp.pi * (2 * i + 1) / (2 * N)) for i in range(N)]  # in [-1, 1]
    vals = [mp.exp(Rm * u) for u in nodes]
    # a_k = (2/N) sum_i e^{R u_i} T_k(u_i), with T_k(u_i) by the three-term recurrence (no trig per k)
    Tp, Tc = [mp.mpf(1)] * N, list(nodes)
    a = [mp.fsum(vals) / N]
    for _ in range(1, N):
        a.append(mp.fsum(v * t for v, t in zip(vals, Tc, strict=True)) * 2 / N)
        Tp, Tc = Tc, [2 * u * t - s for u, t, s in zip(nodes, Tc, Tp, strict=True)]
    # T_k(u) in monomials of u by the recurrence, then u = x / R
    mono = [mp.mpf(0)] * N
    Tprev, Tcur = [mp.mpf(1)], [mp.mpf(0), mp.mpf(1)]
    for k in range(N):
        if k >= 2:
            T = [mp.mpf(0)] + [2 * c for c in Tcur]
            for i, c in enumerate(Tprev):
                T[i] -= c
            Tprev, Tcur = Tcur, T
        for i, c in enumerate(Tprev if k == 0 else Tcur):
            mono[i] += a[k] * c
    return np.array([float(c) for c in _taylor_shift([mono[j] / Rm**j for j in range(N)], -mp.mpf(shift))])


def exact_taylor_coeffs(g: int, mp) -> list:
    r"""$c_j = 1/j!$, j = 0..g, as mpf numbers of the caller's private context ``mp`` (exact to its precision; never
    the global ``mpmath.mp``): the Taylor coefficients before any rounding to float64. Length g+1."""
    return [1 / mp.factorial(j) for j in range(g + 1)]


def _taylor_shift(c: list, m) -> list:
    r"""$b_j = P^{(j)}(m)/j!$ for $P(x) = \sum_j c_j x^j$ (so $P(x) = \sum_j b_j (x - m)^j$): synthetic division."""
    b, g = list(c), len(c) - 1
    for j in range(g + 1):
        for i in range(g - 1, j - 1, -1):
            b[i] += m * b[i + 1]
    return b


# -- certificates -----------------------------------------------------------------------------------------------


def _slack(mp):
    return mp.mpf(10) ** -_SLACK_DIGITS


def _mp_coeffs(mp, coeffs: np.ndarray) -> list:
    return [mp.mpf(float(c)) for c in coeffs]  # exact: every float64 is an mpf


def _up(x) -> float:
    """An mpf rounded up to the next float64 (inf when it overflows float64)."""
    f = float(x)
    return f if f >= x else float(np.nextafter(f, np.inf))


def taylor_rel_bound(Rbar: float, g: int) -> float:
    r"""$\bar R^{g+1} e^{\bar R}/(g+1)!$: the relative error bound of the degree-g Taylor polynomial of $e^x$ on
    $[-\bar R, \bar R]$ (spec §0.5 item 1, Lagrange remainder; the worst point is $x = -\bar R$).

    Evaluated at 32 digits in a private context, times $(1 + 10^{-24})$, rounded up to float64: a proved upper
    bound. With the 1/d scale and entry bound R read $\bar R = R^2$. ``inf`` when it exceeds float64.
    """
    if not (isinstance(Rbar, int | float) and math.isfinite(Rbar) and Rbar >= 0):
        raise ValueError(f"Rbar: expected a finite number >= 0, got {Rbar!r}")
    if isinstance(g, bool) or not isinstance(g, int) or g < 0:
        raise ValueError(f"g: expected an integer >= 0, got {g!r}")
    return _taylor_rel_bound(float(Rbar), g)


@functools.lru_cache(maxsize=4096)
def _taylor_rel_bound(Rbar: float, g: int) -> float:
    """:func:`taylor_rel_bound` after its checks, cached on the exact float (a pure function of (Rbar, g); the fresh
    mpmath context it builds costs about a millisecond, several times per call of the fast path at n = 2^10)."""
    mp = mp_context(_DPS)
    R = mp.mpf(Rbar)
    return _up(R ** (g + 1) * mp.exp(R) / mp.factorial(g + 1) * (1 + _slack(mp)))


def min_taylor_degree(Rbar: float, eps: float, g_max: int = 400) -> int:
    r"""Smallest g with :func:`taylor_rel_bound` $(\bar R, g) \le \varepsilon$ (spec §0.5 item 1); g_max + 1 if none.

    A search in logarithms (float) places g; the proved bound then decides the neighbours, so the answer is exact
    for the rounded-up bound.
    """
    eps = float(eps)
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps: expected a finite number > 0, got {eps!r}")
    x, g = float(Rbar), 0  # placed by the float logarithm of the bound (no overflow), then decided by the bound
    while x > 0 and g <= g_max and (g + 1) * math.log(x) - math.lgamma(g + 2) > math.log(eps) - x:
        g += 1
    while g > 0 and g - 1 <= g_max and taylor_rel_bound(Rbar, g - 1) <= eps:
        g -= 1
    while g <= g_max and taylor_rel_bound(Rbar, g) > eps:
        g += 1
    return g


def taylor_bound(coeffs: np.ndarray, R: float) -> float:
    r"""Proved bound of the relative error of the float64 Taylor polynomial on $[-R, R]$ (Lagrange remainder).

    :func:`taylor_rel_bound` $+ e^R \sum_j |c_j - 1/j!| R^j$, plus the slack, rounded up to float64.
    """
    g = len(coeffs) - 1
    mp = mp_context(_DPS)
    Rm = mp.mpf(R)
    exact = zip(_mp_coeffs(mp, coeffs), exact_taylor_coeffs(g, mp), strict=True)
    dev = mp.fsum(abs(c - e) * Rm**j for j, (c, e) in enumerate(exact))
    tot = (mp.mpf(taylor_rel_bound(float(R), g)) + mp.exp(Rm) * dev) * (1 + _slack(mp)) + _slack(mp)
    return _up(tot)


@functools.lru_cache(maxsize=8)
def _inv_factorials(n: int, dps: int) -> tuple:
    """$1/j!$, j = 0..n, at ``dps`` digits (cached per precision; mpf numbers are immutable)."""
    return tuple(exact_taylor_coeffs(n, mp_context(dps)))


def _cell_bound(mp, c: list, m, r, K: int, shift=0):
    r"""Bound of $|e^{-x}P(x) - 1|$ on the cell $[m - r, m + r]$ (module docstring); all mpf of context ``mp``.

    $P(x) = \sum_j c_j (x + s)^j$: its Taylor coefficients at m are those of $\sum_j c_j y^j$ at $y = m + s$.
    """
    g = len(c) - 1
    b = _taylor_shift(c, m + shift)  # b_j = P^{(j)}(m)/j!
    em = mp.exp(-m)
    inv = _inv_factorials(K + 1, mp.dps)
    a = []
    for k in range(K + 1):
        s = mp.fsum(b[j] * inv[k - j] if (k - j) % 2 == 0 else -b[j] * inv[k - j] for j in range(min(k, g) + 1))
        a.append(em * s)
    a[0] -= 1
    # exact max of the quadratic part on [-r, r]
    cand = [abs(a[0] - a[1] * r + a[2] * r * r), abs(a[0] + a[1] * r + a[2] * r * r)]
    if a[2] != 0:
        tv = -a[1] / (2 * a[2])
        if abs(tv) <= r:
            cand.append(abs(a[0] + a[1] * tv + a[2] * tv * tv))
    quad = max(cand)
    mid = mp.fsum(abs(a[k]) * r**k for k in range(3, K + 1))
    B = mp.fsum(abs(x) for x in b)
    L = K - g + 1
    tail = em * B * r**g * r**L * mp.exp(r) * inv[L] if L <= K + 1 else mp.mpf(0)
    scale = em * mp.fsum(abs(x) * (abs(m + shift) + r) ** j for j, x in enumerate(c)) + 1
    return quad + mid + tail + _slack(mp) * scale


def certify(coeffs: np.ndarray, R: float, cells_per_degree: int = 4, shift: float = 0.0) -> float:
    r"""Certified upper bound of $\max_{[-R,R]} |P(x) - e^x|/e^x$ for the float64 polynomial ``coeffs``.

    $P(x) = \sum_j c_j (x + s)^j$ with ``shift`` s (0: monomials), exactly as the float64 coefficients are given.

    Chebyshev-spaced cells (``cells_per_degree * (g + 1)`` of them), a second-order cell expansion with an exact
    remainder bound (module docstring). Returns a float64 rounded up. Runs in its own 32-digit context.
    """
    g = len(coeffs) - 1
    N = max(8, cells_per_degree * (g + 1))
    mp = mp_context(_DPS)
    c = _mp_coeffs(mp, coeffs)
    Rm = mp.mpf(R)
    edges = [-Rm * mp.cos(mp.pi * i / N) for i in range(N + 1)]
    edges[0], edges[-1] = -Rm, Rm
    worst = mp.mpf(0)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m, r = (lo + hi) / 2, (hi - lo) / 2
        # r is rounded; widen it a hair so the cells still cover [lo, hi]
        worst = max(worst, _cell_bound(mp, c, m, r * (1 + _slack(mp)), g + 12, mp.mpf(shift)))
    return _up(worst)


def _abs_sum(coeffs: np.ndarray, R: float, shift: float = 0.0) -> float:
    mp = mp_context(_DPS)
    return _up(mp.fsum(abs(c) * (mp.mpf(R) + shift) ** j for j, c in enumerate(_mp_coeffs(mp, coeffs))))


def _start_degree(R: float, eps: float) -> int:
    """A lower estimate of the degree: the smallest g with $(R/2)^{g+1}/(g+1)! \\le \\varepsilon/4$."""
    return max(0, _first_degree(R / 2, eps / 4) - 1)


def sampled_error(coeffs: np.ndarray, R: float, shift: float = 0.0) -> float:
    r"""Error *attained* (a lower bound of the max, not an upper one): $|e^{-x}P(x) - 1|$ at the $4(g+1)$ Chebyshev
    extrema and the endpoints, $P(x) = \sum_j c_j (x + s)^j$.

    A candidate whose attained error exceeds eps cannot be certified at eps, so :func:`certify` runs only on
    candidates this does not rule out (about once per selection).
    """
    N = 4 * len(coeffs)
    mp = mp_context(_DPS)
    c = _mp_coeffs(mp, coeffs)[::-1]
    xs = [mp.mpf(R) * mp.cos(mp.pi * i / N) for i in range(N + 1)]
    return float(max(abs(mp.polyval(c, x + shift) * mp.exp(-x) - 1) for x in xs))


def float64_floor(R: float) -> float:
    r"""$u\,e^{2R}$: the relative accuracy float64 monomial coefficients and features can reach at $x = -R$.

    Rounding $c_j$ (or a feature product) costs $u \sum_j |c_j| R^j \approx u e^{R}$ absolutely, against
    $e^{-R}$ in the worst case (20 to 180 times less in practice, spec §0.5 item 6). An estimate for reports only:
    no refusal rests on it; a target is refused only when no candidate certifies it (:func:`certified_poly`).
    """
    return 2.0**-53 * math.exp(min(2 * R, 700.0))


def _search(Rg: float, eps: float, kind: str, shift: float) -> tuple[PolyCert | None, str]:
    """Certify candidates of increasing degree until one reaches eps or the attained error stops improving.

    Returns (certificate, "") or (None, a description of what was tried and the smallest error it attained).
    """
    # Taylor: no degree below min_taylor_degree can pass (the float64 bound includes the exact remainder)
    g0 = g = _start_degree(Rg, eps) if kind == "chebyshev" else min_taylor_degree(Rg, eps, DEGREE_MAX)
    best, g_best = math.inf, g
    while g <= DEGREE_MAX and g <= g_best + STAGNATION:
        if kind == "taylor":
            coeffs = taylor_coeffs(g)
            est = err = taylor_bound(coeffs, Rg)
        else:
            coeffs = chebyshev_coeffs(g, Rg, shift)
            est = sampled_error(coeffs, Rg, shift)  # attained: est > eps rules the candidate out
            err = certify(coeffs, Rg, shift=shift) if est <= eps else math.inf
        if est < best:
            best, g_best = est, g
        if err <= eps:
            coeffs.setflags(write=False)
            return PolyCert(kind, g, Rg, eps, err, coeffs, _abs_sum(coeffs, Rg, shift), shift), ""
        g += 1
    what = "Taylor coefficients 1/j! (bound" if kind == "taylor" else "Chebyshev interpolants with float64 "
    what += "" if kind == "taylor" else ("monomial coefficients (attained error" if not shift else
                                         f"coefficients in powers of (x + {shift:g}) (attained error")  # fmt: skip
    return None, f"{what} {best:.3g} at best, degree {g_best}) at degrees {g0}..{g - 1}"


@functools.lru_cache(maxsize=512)
def _certified(Rg: float, eps: float, kind: str, basis: str = "monomial") -> PolyCert | str:
    """The certificate, or the refusal message: a refusal is cached too, so a refused target is searched once."""
    shift = Rg if basis == "shifted" else 0.0
    found, tried = _search(Rg, eps, kind, shift)
    if found is not None:
        return found
    hint = ""
    if kind == "chebyshev" and basis == "monomial":  # spec §0.5 item 6: try the basis with the lower floor too
        alt, alt_tried = _search(Rg, eps, kind, Rg)
        tried += "; " + (alt_tried or f"in powers of (x + R) degree {alt.degree} certifies {alt.err:.3g}")
        if alt is not None:
            hint = "; or pass basis='shifted' (a lift must then append the coordinate sqrt(R) to queries and keys)"
    return (
        f"eps: no candidate polynomial certifies relative error {eps:g} on [-R, R] with R = {Rg:g}; tried {tried}; "
        f"expected a larger eps or a smaller logit range R{hint}"
    )


def degree_lower_estimate(R: float, eps: float) -> int:
    r"""An optimistic degree: the smallest g with $(R/4)^{g+1}/(g+1)! \le \varepsilon$.

    Below the degree any polynomial needs in practice (the minimax relative error of $e^x$ on $[-R, R]$ is about
    $2 (R/2)^{g+1}/(g+1)!$ or more); used to refuse hopeless ranks before paying for a certificate.
    """
    return _first_degree(R / 4, eps)


def _first_degree(x: float, eps: float) -> int:
    r"""Smallest g <= DEGREE_MAX with $x^{g+1}/(g+1)! \le \varepsilon$, i.e. :func:`taylor_rel_bound`
    $(x, g) \le \varepsilon e^{x}$: :func:`min_taylor_degree` at the target $\varepsilon e^x$ (DEGREE_MAX if none)."""
    if x >= DEGREE_MAX + 1:  # x^k/k! grows up to k = x, so x^(g+1)/(g+1)! >= x > 1 > eps for every g <= DEGREE_MAX
        return DEGREE_MAX
    return min(DEGREE_MAX, min_taylor_degree(float(x), eps * math.exp(x), DEGREE_MAX))


def certified_poly(R: float, eps: float, kind: str = "chebyshev", basis: str = "monomial") -> PolyCert:
    r"""Smallest-degree polynomial of the given ``kind`` with a certified relative error $\le$ ``eps`` on $[-R, R]$.

    The float64 coefficients actually returned are the ones certified. A target is refused only when no candidate
    tried certifies it, and the message names the candidates and the smallest error they attained (spec §0.5
    item 6); ``basis="shifted"`` returns coefficients in powers of $(x + R)$ (``PolyCert.shift = R``), whose float64
    floor is far lower, for consumers that evaluate that basis.

    Paper: Lemma I.1 (degree $g = O(\max\{\log(1/\varepsilon)/\log(\log(1/\varepsilon)/R), R\})$ for logits in
    $[-R, R]$; spec §2.5 and W14). The returned certificate is for R rounded up to the grid (:func:`round_up_R`).
    """
    if kind not in KINDS:
        raise ValueError(f"poly: expected one of {KINDS}, got {kind!r}")
    if basis not in BASES or (basis == "shifted" and kind != "chebyshev"):
        raise ValueError(f"basis: expected one of {BASES} ('shifted' with kind='chebyshev'), got {basis!r}")
    eps = float(eps)
    if not (0 < eps < 1):
        raise ValueError(f"eps: expected a number in (0, 1), got {eps!r}")
    out = _certified(round_up_R(R), eps, kind, basis)
    if isinstance(out, str):
        raise ValueError(out)
    return out


__all__ = ["BASES", "KINDS", "PolyCert", "certified_poly", "certify", "chebyshev_coeffs", "degree_lower_estimate",
           "exact_taylor_coeffs", "float64_floor", "min_taylor_degree", "round_up_R", "sampled_error", "taylor_bound",
           "taylor_coeffs", "taylor_rel_bound"]  # fmt: skip
