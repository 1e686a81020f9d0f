"""Seeded fixtures and comparison helpers shared by tests, checks and benchmarks (spec §0.3 fixtures).

The reference lives in the package, not the test folder, so tests, ``proofs_check`` and benchmarks share it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference.backend import mp_context
from reference.compare import max_abs, rel_err
from reference.losses import CrossEntropy, HalfSquaredError, LinearLoss
from reference.model import Grads, Layer

LOSSES = ("linear", "half_squared", "cross_entropy")


@dataclass
class Problem:
    X: np.ndarray
    layers: list[Layer]
    loss: object


def random_problem(rng: np.random.Generator, n: int, d: int, m: int, *, loss: str = "linear",
                   scale: float = 1.0, with_g: bool = True, vocab: int = 3) -> Problem:  # fmt: skip
    """X and every weight i.i.d. Uniform[-scale, scale] (non-symmetric W by construction), one loss."""
    X = rng.uniform(-scale, scale, (n, d))
    layers = [
        Layer(
            *(rng.uniform(-scale, scale, (d, d)) for _ in range(3)),
            W_g=rng.uniform(-scale, scale, (d, d)) if with_g else None,
        )  # fmt: skip
        for _ in range(m)
    ]
    if loss == "linear":
        lo = LinearLoss(rng.uniform(-1, 1, (n, d)))
    elif loss == "half_squared":
        lo = HalfSquaredError(rng.uniform(-1, 1, (n, d)))
    elif loss == "cross_entropy":
        lo = CrossEntropy(rng.uniform(-1, 1, (d, vocab)), rng.integers(0, vocab, n))
    else:
        raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
    return Problem(X, layers, lo)


def grad_fields(g: Grads) -> dict[str, np.ndarray]:
    """Every gradient of a :class:`Grads` by name: dT[i] and layers[i].dW_Q/.dW_K/.dW/.dW_V/.dW_g."""
    out = {f"dT[{i}]": t for i, t in enumerate(g.dT)}
    for i, lg in enumerate(g.layers):
        for k in ("dW_Q", "dW_K", "dW", "dW_V", "dW_g"):
            if getattr(lg, k) is not None:
                out[f"layers[{i}].{k}"] = getattr(lg, k)
    return out


def fd_fields(fd) -> dict[str, np.ndarray]:
    """The same names for a :class:`reference.fd.FDGrads`."""
    out = {f"dT[{i}]": t for i, t in enumerate(fd.dT)}
    for i, lg in enumerate(fd.layers):
        for k, val in lg.items():
            if val is not None:
                out[f"layers[{i}].{k}"] = val
    return out


def _in(mp, a) -> np.ndarray:
    """Every entry of ``a`` (float64 or mpf of any context) as an mpf of the context ``mp`` (rounded to its dps)."""
    return np.frompyfunc(mp.mpf, 1, 1)(np.asarray(a, dtype=object)).astype(object)


def worst_rel_err(a: dict[str, np.ndarray], b: dict[str, np.ndarray], dps: int = 50) -> tuple[str, float]:
    """Largest relative error (entrywise max norm) over the common fields; returns (field, error)."""
    if set(a) != set(b):
        raise ValueError(f"fields differ: {sorted(set(a) ^ set(b))}")
    mp = mp_context(dps)  # private context: the comparison runs at dps digits whatever mpmath.mp says
    errs = {k: float(rel_err(_in(mp, a[k]), _in(mp, b[k]))) for k in a}
    k = max(errs, key=lambda key: errs[key])
    return k, errs[k]


def whole_rel_err(a: dict[str, np.ndarray], b: dict[str, np.ndarray], dps: int = 50) -> float:
    """Normwise relative error of the whole gradient: max over fields of |a - b|, over max over fields of |b|.

    This is the relative error of the concatenated gradient vector in the entrywise max norm. Unlike the per-field
    figure it does not blow up on a field that is tiny through cancellation (e.g. dL/dW of a layer whose input
    tokens have collapsed to nearly one vector, spec Appendix B), where float64 keeps only absolute accuracy.
    """
    mp = mp_context(dps)
    num = max(float(max_abs(_in(mp, a[k]) - _in(mp, b[k]))) for k in a)
    den = max(float(max_abs(b[k])) for k in b)
    return num / den if den else num


def directional_errors(grads: Grads, fd_dir: dict, dps: int = 50) -> dict[str, float]:
    r"""Relative error of $\langle t, \nabla L\rangle$ against the directional difference, per block.

    Normalised by $\|t\|_\infty \|\nabla L\|_1$, the largest $\langle t, \nabla L\rangle$ can be, so a direction
    nearly orthogonal to the gradient does not inflate the figure.
    """
    lg = grads.layers
    out = {}
    mp = mp_context(dps)
    for name, (t, dd) in fd_dir.items():
        if name == "X":
            g = grads.dX
        else:
            i = int(name[name.index("[") + 1 : name.index("]")])
            attr = name.split(".", 1)[1]
            if attr.startswith("W["):
                l = int(attr[2:-1])
                g = lg[i].dW if lg[i].dW.ndim == 2 else lg[i].dW[l]
            else:
                g = getattr(lg[i], "d" + attr)
        tg, g = _in(mp, t), _in(mp, g)
        inner = (tg * g).sum()  # t is float64 (exact in mp); the products and the sum run at dps digits
        scale = sum(abs(x) for x in g.flat) or 1
        out[name] = float(abs(inner - mp.mpf(dd)) / scale)
    return out
