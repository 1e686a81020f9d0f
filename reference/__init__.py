"""reference: the exact model of arXiv:2408.13233v2 and its corrected closed-form backward.

Evaluated in float64 (numpy) or in mpmath at any precision. Conventions (spec §0.2): tokens are rows; the logit
scale ``beta`` is explicit (None = 1/d_h, the main text; 1 = the appendices); the causal mask keeps i >= j
(diagonal included); ||.||_inf is the entrywise max. Thread safety (issue 13 item 5): the mpmath backend computes in a
private ``mpmath.MPContext`` per call and never reads or sets ``mpmath.mp`` (``reference.backend``). A trace owns
read-only copies of its inputs, and float64 overflow is a ValueError naming the layer and the quantity.

    from reference import Layer, forward, backward
    trace = forward(X, [Layer(W_Q=..., W_K=..., W_V=..., W_g=None)], beta=None, causal=False, heads=1)
    grads = backward(trace, dL_dout)
"""

from reference.losses import CrossEntropy, CustomLoss, HalfSquaredError, LinearLoss, value_and_grad
from reference.model import Grads, Layer, LayerGrads, Trace, backward, forward

__all__ = [
    "CrossEntropy",
    "CustomLoss",
    "Grads",
    "HalfSquaredError",
    "Layer",
    "LayerGrads",
    "LinearLoss",
    "Trace",
    "backward",
    "forward",
    "value_and_grad",
]
