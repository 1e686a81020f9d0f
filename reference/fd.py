r"""The independent oracle: central finite differences of the loss in mpmath at high precision.

.. math::
    \frac{\partial L}{\partial \theta_k} \approx \frac{L(\theta + \eta e_k) - L(\theta - \eta e_k)}{2\eta},
    \qquad \text{error} \le \tfrac{\eta^2}{6}\,|L'''| + \frac{10^{-\mathrm{dps}}|L|}{\eta}.

The differences run at ``dps + GUARD`` digits with $\eta = 10^{-\lfloor (\mathrm{dps}+\mathrm{GUARD})/3
\rfloor}$, so both parts are about $10^{-2(\mathrm{dps}+20)/3}$ times the loss scale (about 1e-46 at dps = 50):
far below the 1e-20 relative agreement the tests ask of the closed forms, even for a gradient block that is many
orders of magnitude smaller than the loss. No formula of the backward pass is used here: only the forward model
and the loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reference.attention import head_blocks
from reference.backend import get_backend
from reference.losses import value_and_grad
from reference.model import Layer, forward

GUARD = 20  # extra digits of the oracle over the precision it is asked to certify


@dataclass
class FDGrads:
    """Finite-difference gradients, mpf object arrays. ``layers[i]`` maps 'dW_Q', 'dW_K', 'dW_V', 'dW_g', 'dW'."""

    dX: np.ndarray
    dT: list[np.ndarray]
    layers: list[dict[str, np.ndarray]]


def central_differences(fun, A: np.ndarray, eta) -> np.ndarray:
    r"""Entrywise central differences $(F(A + \eta e_k) - F(A - \eta e_k)) / 2\eta$: the one home of this loop.

    A scalar ``fun`` gives an object array of shape A.shape (its gradient); an array-valued ``fun`` gives the
    Jacobian, shape fun(A).shape + A.shape. ``A`` is float64 or an mpf array; ``eta`` a float or an mpf of the
    same context (the differences then run at that context's precision).
    """
    vals = []
    for idx in np.ndindex(*A.shape):
        Ap, Am = A.copy(), A.copy()
        Ap[idx] = A[idx] + eta
        Am[idx] = A[idx] - eta
        vals.append((np.asarray(fun(Ap)) - np.asarray(fun(Am))) / (2 * eta))
    if np.ndim(vals[0]) == 0:
        out = np.empty(A.shape, dtype=object)
        for idx, val in zip(np.ndindex(*A.shape), vals, strict=True):
            out[idx] = val
        return out
    J = np.stack(vals, axis=-1)  # fun(A).shape + (A.size,)
    return J.reshape(J.shape[:-1] + A.shape)


_central = central_differences  # the former private name


def directional_difference(fun, A: np.ndarray, t: np.ndarray, eta):
    r"""$(F(A + \eta t) - F(A - \eta t)) / 2\eta$ for a scalar ``fun``: :func:`central_differences` of
    $s \mapsto F(A + s t)$ at $s = 0$ (one coordinate), so the difference has one home.

    ``A`` and ``t`` of one shape (mpf arrays for an mpmath ``fun``); ``eta`` as in :func:`central_differences`.
    """
    s0 = np.array([eta - eta], dtype=object)  # (1,): an exact zero of eta's type
    return central_differences(lambda s: fun(A + s[0] * t), s0, eta)[0]


def _setup(X, layers, dps, beta, causal, heads, residual, activation):
    """The mpmath context at ``dps + GUARD`` digits, the forward's settings, the step eta and the inputs in it."""
    dps = dps + GUARD
    bk = get_backend("mpmath", dps)
    cfg = dict(
        beta=beta, causal=causal, heads=heads, residual=residual, activation=activation, backend=bk
    )  # fmt: skip  one private context for every forward of this call
    eta = bk.ctx.mpf(10) ** (-(dps // 3))
    Ls = [Layer(*(None if w is None else bk.asarray(w) for w in (L.W_Q, L.W_K, L.W_V, L.W_g)))
          for L in layers]  # fmt: skip
    return bk, cfg, eta, bk.asarray(X), Ls


def _with_weight(Ls: list[Layer], i: int, k: str, A) -> list[Layer]:
    """The layers with weight ``k`` ('W_Q', 'W_K', 'W_V' or 'W_g') of layer i replaced by A."""
    new = list(Ls)
    new[i] = Layer(**{**{n: getattr(Ls[i], n) for n in ("W_Q", "W_K", "W_V", "W_g")}, k: A})
    return new


def _merged(Ls: list[Layer], heads: int) -> list[list]:
    """``[i][l]``: the merged weight $W = W_Q^{(l)} W_K^{(l)\top}$ of head l of layer i (a fresh nested list)."""
    return [[wq @ wk.T for wq, wk, _ in head_blocks(M.W_Q, M.W_K, M.W_V, heads)] for M in Ls]


def fd_gradients(X, layers, loss, *, beta=None, causal=False, heads=1, residual=False,
                 activation="identity", dps=50, with_dT=True) -> FDGrads:  # fmt: skip
    """Central-difference gradients of ``loss`` w.r.t. X, every T_i and every layer's weights (incl. merged W)."""
    bk, cfg, eta, Xm, Ls = _setup(X, layers, dps, beta, causal, heads, residual, activation)

    def L_of(X_, Ls_, W_override=None, start=0):
        tr = forward(X_, Ls_[start:], W_override=W_override, **cfg)
        return value_and_grad(tr, loss)[0]

    dX = central_differences(lambda A: L_of(A, Ls), Xm, eta)
    dT = [dX]
    if with_dT:
        T = forward(Xm, Ls, **cfg).T
        for i in range(1, len(Ls) + 1):
            if i == len(Ls):
                dT.append(central_differences(lambda A: loss(A, bk)[0], T[i], eta))
            else:
                dT.append(central_differences(lambda A, i=i: L_of(A, Ls, start=i), T[i], eta))
    per_layer, merged = [], _merged(Ls, heads)
    for i, L in enumerate(Ls):

        def with_w(k, A, i=i):
            return L_of(Xm, _with_weight(Ls, i, k, A))

        g = {k: central_differences(lambda A, k=k: with_w(k, A), getattr(L, k), eta) for k in ("W_Q", "W_K", "W_V")}
        g = {"d" + k: val for k, val in g.items()}
        g["dW_g"] = None if L.W_g is None else central_differences(lambda A: with_w("W_g", A), L.W_g, eta)
        dW = []
        for l in range(heads):

            def with_merged(A, i=i, l=l):
                Wo = _merged(Ls, heads)
                Wo[i][l] = A
                return L_of(Xm, Ls, W_override=Wo)

            dW.append(central_differences(with_merged, merged[i][l], eta))
        g["dW"] = dW[0] if heads == 1 else np.stack(dW)
        per_layer.append(g)
    return FDGrads(dX, dT, per_layer)


def fd_directional(X, layers, loss, *, seed=0, beta=None, causal=False, heads=1, residual=False,
                   activation="identity", dps=50) -> dict[str, tuple[np.ndarray, object]]:  # fmt: skip
    r"""Directional central differences, one random direction per parameter block (the JAX ``check_vjp`` idea).

    Returns ``{block: (t, D_t L)}`` for blocks ``"X"``, ``"layers[i].W_Q"``, ``.W_K``, ``.W_V``, ``.W_g`` and
    ``"layers[i].W[l]"`` (merged weight of head l), where $D_t L = \lim (L(\theta + \eta t) - L(\theta - \eta t))
    / 2\eta$ and $t$ has entries uniform in [-1, 1] (seeded). Compare with $\langle t, \nabla L \rangle$.
    """
    bk, cfg, eta, Xm, Ls = _setup(X, layers, dps, beta, causal, heads, residual, activation)
    rng = np.random.default_rng(seed)
    out: dict[str, tuple[np.ndarray, object]] = {}
    merged = _merged(Ls, heads)

    def L_of(X_, Ls_, Wo=None):
        return value_and_grad(forward(X_, Ls_, W_override=Wo, **cfg), loss)[0]

    def deriv(name, base, build):
        t = rng.uniform(-1, 1, base.shape)
        tm = bk.asarray(t)
        out[name] = (t, directional_difference(build, base, tm, eta))

    deriv("X", Xm, lambda A: L_of(A, Ls))
    for i, M in enumerate(Ls):
        for k in ("W_Q", "W_K", "W_V", "W_g"):
            if getattr(M, k) is None:
                continue

            def build(A, i=i, k=k):
                return L_of(Xm, _with_weight(Ls, i, k, A))

            deriv(f"layers[{i}].{k}", getattr(M, k), build)
        for l in range(heads):

            def build_w(A, i=i, l=l):
                Wo = [list(row) for row in merged]
                Wo[i][l] = A
                return L_of(Xm, Ls, Wo)

            deriv(f"layers[{i}].W[{l}]", merged[i][l], build_w)
    return out
