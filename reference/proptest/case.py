r"""One test case for a user's attention code: inputs, conventions and the upstream gradient, printable as Python.

Spec §0.2 conventions are explicit fields: tokens are rows of ``X`` (n×d); ``beta`` is the logit scale (None =
$1/d_h$, the main text; 1 = the appendices; or a number); ``causal`` keeps $i \ge j$, diagonal included; ``heads``
divides d. ``G`` is the upstream gradient $\partial L/\partial T_m$ (n×d) of a loss from :mod:`reference.losses`,
drawn once from the float64 reference output: the oracle tests the user's vector-Jacobian product with exactly this
``G``, so a user's loss code is never under test. Shape legend: n = tokens, d = width, m = layers.

Every case prints as one line of Python (``repr(case)``) that rebuilds it bit for bit, so a failure's reproducer is
a copy-paste.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from reference import validate as v
from reference.backend import FLOAT64
from reference.block import ACTIVATIONS
from reference.model import Layer, resolve_beta

WEIGHT_NAMES = ("W_Q", "W_K", "W_V", "W_g")


def _py(a) -> str:
    """A float64 array (or None) as exact Python source: ``np.array([[0.5, -1.25]])`` (repr floats round-trip)."""
    if a is None:
        return "None"
    return f"np.array({np.asarray(a, dtype=np.float64).tolist()!r})"


@dataclass(frozen=True, repr=False)
class Case:
    """Inputs and conventions of one model evaluation (Def. 1.3, 3.3) plus its upstream gradient ``G``.

    Shapes: X (n, d); every weight (d, d); G (n, d). ``layers`` is a tuple of :class:`reference.model.Layer`.
    ``loss`` names the loss ``G`` came from (a label only: ``G`` is what the oracle uses).
    """

    X: np.ndarray
    layers: tuple
    G: np.ndarray
    beta: float | None = None
    causal: bool = False
    heads: int = 1
    residual: bool = False
    activation: str = "identity"
    loss: str = "linear"

    def __post_init__(self):
        X = v.matrix("X", self.X, (None, None))
        n, d = X.shape
        if not isinstance(self.layers, tuple | list) or not self.layers:
            raise TypeError(f"layers: expected a non-empty tuple of Layer, got {type(self.layers).__name__}")
        for i, L in enumerate(self.layers):
            if not isinstance(L, Layer):
                raise TypeError(f"layers[{i}]: expected a reference.model.Layer, got {type(L).__name__}")
            for k in WEIGHT_NAMES:
                if getattr(L, k) is not None or k != "W_g":
                    v.matrix(f"layers[{i}].{k}", getattr(L, k), (d, d))
        v.matrix("G", self.G, (n, d))
        heads = v.positive_int("heads", self.heads)
        if d % heads:
            raise ValueError(f"heads: expected a divisor of d = {d}, got {heads}")
        if self.beta is not None:
            v.real("beta", self.beta)
        v.flag("causal", self.causal)
        v.flag("residual", self.residual)
        v.choice("activation", self.activation, tuple(ACTIVATIONS))
        object.__setattr__(self, "layers", tuple(self.layers))

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def d(self) -> int:
        return self.X.shape[1]

    @property
    def m(self) -> int:
        return len(self.layers)

    @property
    def is_attention(self) -> bool:
        """True when the case is one attention layer alone (no g block, no residual): ``T_1 = Attn(X)``."""
        return self.m == 1 and self.layers[0].W_g is None and not self.residual

    @property
    def beta_value(self) -> float:
        """The resolved logit scale (None -> $1/d_h$, rounded to float64 once, as the float64 reference does)."""
        return float(resolve_beta(self.beta, self.d, self.heads, FLOAT64))

    def conventions(self) -> str:
        """One line naming every convention and shape, for failure messages."""
        return (f"n={self.n}, d={self.d}, layers={self.m}, heads={self.heads}, beta={self.beta!r} "
                f"(= {self.beta_value!r}), causal={self.causal}, residual={self.residual}, "
                f"activation={self.activation!r}, loss={self.loss!r}")  # fmt: skip

    def rounded(self, to) -> Case:
        """The case with every input rounded to a lower precision; ``to`` maps a float64 array to float64 values.

        The oracle evaluates the reference on exactly the inputs a float32/bfloat16 user sees, so the input
        rounding is not counted as the user's error.
        """
        layers = tuple(
            Layer(*(None if w is None else to(w) for w in (L.W_Q, L.W_K, L.W_V, L.W_g))) for L in self.layers
        )
        return replace(self, X=to(self.X), layers=layers, G=to(self.G))

    def call(self, kind: str) -> tuple[tuple, dict]:
        """Positional arrays and convention keywords for a user function of ``kind``.

        ``"attention"`` (one layer only): ``(X, W_Q, W_K, W_V)`` and ``beta, causal, heads``; ``"model"``:
        ``(X, layers)`` with ``layers`` a list of dicts ``W_Q, W_K, W_V, W_g`` (W_g None when absent) and
        ``beta, causal, heads, residual, activation``. ``beta`` is the resolved number.
        """
        conv = {"beta": self.beta_value, "causal": self.causal, "heads": self.heads}
        if kind == "attention":
            if not self.is_attention:
                raise ValueError(
                    f"kind: 'attention' needs one layer without W_g and residual=False, got {self.conventions()}"
                )
            L = self.layers[0]
            return (self.X, L.W_Q, L.W_K, L.W_V), conv
        if kind != "model":
            raise ValueError(f"kind: expected 'attention' or 'model', got {kind!r}")
        lays = [{k: getattr(L, k) for k in WEIGHT_NAMES} for L in self.layers]
        return (self.X, lays), {**conv, "residual": self.residual, "activation": self.activation}

    def __repr__(self) -> str:
        layers = ", ".join(
            "Layer(" + ", ".join(f"{k}={_py(getattr(L, k))}" for k in WEIGHT_NAMES) + ")" for L in self.layers
        )  # fmt: skip
        return (f"Case(X={_py(self.X)}, layers=({layers},), G={_py(self.G)}, beta={self.beta!r}, "
                f"causal={self.causal!r}, heads={self.heads!r}, residual={self.residual!r}, "
                f"activation={self.activation!r}, loss={self.loss!r})")  # fmt: skip


__all__ = ["WEIGHT_NAMES", "Case"]
