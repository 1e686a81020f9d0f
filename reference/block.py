r"""The non-attention block $g_i(Z) = \varphi(Z W_g)$ (Lemma 5.4 / H.1 / H.2) and the residual form (Def. J.1, J.2).

Spec §2.6, §2.8. Shape legend: n = tokens, d = width.

.. math::
    T = \varphi(Z W_g), \qquad
    \partial L/\partial Z = (\partial L/\partial T \odot \varphi'(Z W_g)) W_g^\top \ \text{(Eq. 25)}, \qquad
    \partial L/\partial W_g = Z^\top (\partial L/\partial T \odot \varphi'(Z W_g)) \ \text{(not in the paper)}.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from reference.backend import FLOAT64, Backend


@dataclass(frozen=True)
class Activation:
    """An entrywise activation $\\varphi$ and its derivative, written once for every backend."""

    name: str
    phi: Callable[..., np.ndarray]
    dphi: Callable[..., np.ndarray]
    smooth: bool = True  # False: finite differences must stay away from the kink (relu at 0)


def _gelu(x, bk: Backend = FLOAT64):
    return x * _Phi(x, bk)


def _Phi(x, bk: Backend):
    """Standard normal CDF, $(1 + \\mathrm{erf}(x/\\sqrt 2))/2$."""
    return (1 + bk.erf(x / bk.sqrt(2))) / 2


def _dgelu(x, bk: Backend = FLOAT64):
    return _Phi(x, bk) + x * bk.exp(-x * x / 2) / bk.sqrt(2 * bk.pi)


def _tanh(x, bk: Backend = FLOAT64):
    return bk.tanh(x)


def _dtanh(x, bk: Backend = FLOAT64):
    t = bk.tanh(x)
    return 1 - t * t


def _relu(x, bk: Backend = FLOAT64):
    return np.where(x > 0, x, 0 * x)


def _drelu(x, bk: Backend = FLOAT64):
    return np.where(x > 0, 1 + 0 * x, 0 * x)  # derivative 0 taken at the kink x = 0


ACTIVATIONS: dict[str, Activation] = {
    "identity": Activation("identity", lambda x, bk=FLOAT64: x, lambda x, bk=FLOAT64: 0 * x + 1),
    "tanh": Activation("tanh", _tanh, _dtanh),
    "relu": Activation("relu", _relu, _drelu, smooth=False),
    "gelu": Activation("gelu", _gelu, _dgelu),  # exact erf form x * Phi(x)
    "softplus": Activation(
        "softplus", lambda x, bk=FLOAT64: bk.softplus(x), lambda x, bk=FLOAT64: bk.sigmoid(x)
    ),  # fmt: skip
    "cube": Activation("cube", lambda x, bk=FLOAT64: x * x * x, lambda x, bk=FLOAT64: 3 * x * x),  # W11
}


@dataclass
class BlockCache:
    Z: np.ndarray  # (n, d) block input
    U: np.ndarray  # (n, d) pre-activation Z W_g
    T: np.ndarray  # (n, d) block output phi(U)


def g_forward(Z, W_g, act: Activation, bk: Backend = FLOAT64) -> BlockCache:
    """$g(Z) = \\varphi(Z W_g)$ (Lemma H.1 setting)."""
    U = Z @ W_g  # (n, d)
    return BlockCache(Z, U, act.phi(U, bk))


def g_vjp(gT, c: BlockCache, W_g, act: Activation, bk: Backend = FLOAT64):
    """Lemma H.2 (Eq. 25): returns (dL/dZ, dL/dW_g) for upstream gT = dL/dg(Z)."""
    E = gT * act.dphi(c.U, bk)  # (n, d)
    return E @ W_g.T, c.Z.T @ E  # (n, d), (d, d)
