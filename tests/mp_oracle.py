"""Shared test route: a fast trace and its gradients against a 50-digit mpmath reference, entry by entry within
their certified bounds (the second route of every fast-path certificate test)."""

import numpy as np

import reference


def assert_within_bounds_against_mpmath(X, layers, dL, tr, g, fields=("dW_V",), **kw):
    """|fast - exact| <= bound, every bound finite, for the output, dX and the named per-layer weight gradients;
    ``kw`` (beta, causal, residual, activation, ...) are the model's, passed to :func:`reference.forward`."""
    rt = reference.forward(X, layers, backend="mpmath", dps=50, **kw)
    rg = reference.backward(rt, dL)
    pairs = [(tr.output, rt.output, tr.bound_T[-1]), (g.dX, rg.dX, g.bound.dX)]
    for f in fields:
        pairs += [(getattr(a, f), getattr(b, f), getattr(c, f))
                  for a, b, c in zip(g.layers, rg.layers, g.bound.layers, strict=True)]  # fmt: skip
    for fast, exact, bound in pairs:
        assert np.isfinite(bound).all()
        assert (np.abs(fast - np.array(exact, dtype=float)) <= bound).all()
