r"""PyTorch adapter: the user's function or ``nn.Module`` runs forward in a torch dtype; gradients by autograd.

Install with ``pip install 'altgrad[torch]'``. The output $T$ (n×d) is differentiated by ``T.backward(G)``, the
vector-Jacobian product with the case's upstream gradient (Def. 3.1: everything depends on the loss only through
$G = \partial L/\partial T_m$). Inputs are the case's numbers, already exact in the dtype, as leaf tensors.

* a function, ``kind="attention"``: ``fn(X, W_Q, W_K, W_V, *, beta, causal, heads) -> T``;
  ``kind="model"``: ``fn(X, layers, *, beta, causal, heads, residual, activation)`` (``layers``: list of dicts).
* an ``nn.Module`` with parameters: ``module(X) -> T``; ``weights`` maps our names (``W_Q``, or
  ``layers[i].W_Q`` for a model) to parameter paths, a trailing ``.T`` when the parameter stores $W^\top$
  (``nn.Linear.weight`` is (out, in), so ``x @ W`` is ``Linear(x)`` with ``weight = W^T``). The module's own
  conventions must match the cases (draw them with ``causal=..., beta=..., heads=...``).
"""

from __future__ import annotations

try:
    import torch
except ImportError as exc:
    raise ImportError(
        "reference.proptest.adapt_torch needs PyTorch, an optional extra: pip install 'altgrad[torch]'"
    ) from exc

import numpy as np

from reference.proptest.case import Case

DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def precision_name(precision) -> str:
    """A precision name from a name or a ``torch.dtype``."""
    for name, dt in DTYPES.items():
        if precision in (name, dt):
            return name
    raise ValueError(f"precision: expected one of {tuple(DTYPES)} or the torch dtype, got {precision!r}")


def _leaf(a: np.ndarray, dt) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64).to(dt).requires_grad_(True)


def _numpy(t: torch.Tensor | None, like: torch.Tensor) -> np.ndarray:
    """A gradient as float64 (exact: every dtype here embeds in float64); an unused input's gradient is 0."""
    return np.zeros(tuple(like.shape)) if t is None else t.detach().to(torch.float64).numpy()


def _module_fields(module, case: Case, dt, kind: str, weights: dict) -> dict:
    params = dict(module.named_parameters())
    names = dict(zip(("W_Q", "W_K", "W_V", "W_g"), range(4), strict=True))
    tensors = {}
    with torch.no_grad():
        for ours, path in weights.items():
            i, key = (0, ours) if "." not in ours else (int(ours[7 : ours.index("]")]), ours.split(".", 1)[1])
            w = getattr(case.layers[i], key) if key in names else None
            if w is None:
                raise ValueError(f"weights: {ours!r} is not a weight of this case (layers={case.m})")
            p = params[path.removesuffix(".T")]
            p.copy_(torch.tensor(w.T if path.endswith(".T") else w, dtype=torch.float64).to(p.dtype))
            p.grad = None
            tensors[ours] = p
    X = _leaf(case.X, dt)
    T = module(X)
    T.backward(torch.tensor(case.G, dtype=torch.float64).to(T.dtype))
    out = {"output": _numpy(T, T), "dX": _numpy(X.grad, X)}
    for ours, path in weights.items():
        g = _numpy(tensors[ours].grad, tensors[ours])
        out["d" + ours if "." not in ours else ours.replace(".W", ".dW")] = g.T if path.endswith(".T") else g
    return out


def fields(fn, case: Case, precision: str, kind: str, weights: dict | None = None) -> dict:
    """Run ``fn`` forward in ``precision`` and autograd backward with G; every field as a float64 array."""
    dt = DTYPES[precision]
    if isinstance(fn, torch.nn.Module) and weights is not None:
        return _module_fields(fn, case, dt, kind, weights)
    args, conv = case.call(kind)
    X = _leaf(args[0], dt)
    if kind == "attention":
        ws = {k: _leaf(a, dt) for k, a in zip(("W_Q", "W_K", "W_V"), args[1:], strict=True)}
        T = fn(X, *ws.values(), **conv)
        named = ws
    else:
        lays = [{k: None if w is None else _leaf(w, dt) for k, w in L.items()} for L in args[1]]
        T = fn(X, lays, **conv)
        named = {f"layers[{i}].{k}": w for i, L in enumerate(lays) for k, w in L.items() if w is not None}
    if not isinstance(T, torch.Tensor) or tuple(T.shape) != case.X.shape:
        raise ValueError(f"fn: expected a tensor of shape {case.X.shape}, got {getattr(T, 'shape', type(T).__name__)}")
    T.backward(torch.tensor(case.G, dtype=torch.float64).to(T.dtype))
    out = {"output": _numpy(T, T), "dX": _numpy(X.grad, X)}
    for k, w in named.items():
        out[k.replace("W_", "dW_") if "." in k else "d" + k] = _numpy(w.grad, w)
    return out
