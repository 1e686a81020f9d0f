r"""JAX adapter: the user's function runs in a jax dtype; gradients by ``jax.vjp`` with the case's upstream G.

Install with ``pip install 'altgrad[jax]'``. Signatures as in :mod:`reference.proptest.adapt_torch` (functions
only). float64 needs ``jax.config.update("jax_enable_x64", True)`` in the user's own setup: this adapter never
changes jax's global configuration, it refuses instead.
"""

from __future__ import annotations

try:
    import jax
    import jax.numpy as jnp
except ImportError as exc:
    raise ImportError("reference.proptest.adapt_jax needs JAX, an optional extra: pip install 'altgrad[jax]'") from exc

import numpy as np

from reference.proptest.case import Case

DTYPES = {"float64": jnp.float64, "float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def precision_name(precision) -> str:
    """A precision name from a name or a jax/numpy dtype."""
    name = precision if isinstance(precision, str) else jnp.dtype(precision).name
    if name not in DTYPES:
        raise ValueError(f"precision: expected one of {tuple(DTYPES)} or the jax dtype, got {precision!r}")
    if name == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("precision: float64 needs jax.config.update('jax_enable_x64', True) before the test")
    return name


def fields(fn, case: Case, precision: str, kind: str) -> dict:
    """Forward in ``precision``, ``jax.vjp`` with G; every field as a float64 array."""
    dt = DTYPES[precision]
    args, conv = case.call(kind)
    cast = lambda a: None if a is None else jnp.asarray(a, dtype=dt)  # noqa: E731
    if kind == "attention":
        prim = tuple(cast(a) for a in args)
        T, vjp = jax.vjp(lambda *a: fn(*a, **conv), *prim)
        grads = vjp(jnp.asarray(case.G, dtype=T.dtype))
        names = ("dX", "dW_Q", "dW_K", "dW_V")
        out = dict(zip(names, grads, strict=True))
    else:
        lays = [{k: cast(w) for k, w in L.items() if w is not None} for L in args[1]]
        T, vjp = jax.vjp(lambda X, ls: fn(X, [{**{"W_g": None}, **L} for L in ls], **conv), cast(args[0]), lays)
        gX, gl = vjp(jnp.asarray(case.G, dtype=T.dtype))
        out = {"dX": gX} | {f"layers[{i}].d{k}": w for i, L in enumerate(gl) for k, w in L.items()}
    out["output"] = T
    return {k: np.asarray(jnp.asarray(v, dtype=jnp.float32) if v.dtype == jnp.bfloat16 else v, dtype=np.float64)
            for k, v in out.items()}  # fmt: skip
