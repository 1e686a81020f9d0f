r"""numpy adapter: the user's function computes its own output and gradients for the upstream gradient ``G``.

Signatures (beta is the resolved number; arrays in the user's dtype, float64 or float32):

* ``kind="attention"``: ``fn(X, W_Q, W_K, W_V, G, *, beta, causal, heads) -> {"output": ..., "dX": ..., "dW_Q": ...}``
* ``kind="model"``: ``fn(X, layers, G, *, beta, causal, heads, residual, activation)`` with ``layers`` a list of
  dicts ``W_Q, W_K, W_V, W_g``; gradient names ``dX`` and ``layers[i].dW_Q`` etc.

Shapes: X, G, output, dX (n, d); every weight and weight gradient (d, d). A ``(output, grads)`` pair is accepted
in place of one dict.
"""

from __future__ import annotations

import numpy as np

from reference.proptest.case import Case

DTYPES = {"float64": np.float64, "float32": np.float32, "float16": np.float16}


def precision_name(precision) -> str:
    """A precision name from a name or a numpy dtype (numpy has no bfloat16)."""
    name = precision if isinstance(precision, str) else np.dtype(precision).name
    if name not in DTYPES:
        raise ValueError(f"precision: expected one of {tuple(DTYPES)} for numpy, got {precision!r}")
    return name


def fields(fn, case: Case, precision: str, kind: str) -> dict:
    """Call ``fn`` on ``case`` (already rounded to ``precision``) and return its fields by name."""
    dt = DTYPES[precision]
    args, conv = case.call(kind)
    args = [a.astype(dt) if isinstance(a, np.ndarray) else a for a in args]
    if kind == "model":
        args[1] = [{k: None if w is None else w.astype(dt) for k, w in L.items()} for L in args[1]]
    out = fn(*args, case.G.astype(dt), **conv)
    if isinstance(out, tuple) and len(out) == 2:
        out = {"output": out[0], **out[1]}
    return out
