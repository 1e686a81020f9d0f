# %% [markdown]
# # Tutorial: a first gradient, checked three ways
#
# A jupytext "percent" script (the annotated-transformer style): the site shows its cells, CI runs it
# (tests/test_docs_examples.py imports each example and asserts on what it returns), so it cannot rot.
# Run it yourself with `python docs/tutorial_first_gradient.py`.
#
# Each example is a function that returns data; `main()` at the end prints it.

# %%
from __future__ import annotations

import numpy as np

from reference import Layer, LinearLoss, backward, forward, value_and_grad
from reference.attention import head_forward, head_vjp
from reference.fd import fd_gradients
from reference.printed import dW_V_as_printed, dX_as_printed

# %% [markdown]
# ## 1. Forward and backward through a two-layer model
#
# Tokens are rows: X is n×d. Every convention is an explicit argument: `beta=None` is 1/d_h per head (the main
# text), `causal=True` keeps M[i, j] = 1 iff i >= j, `residual=True` adds the skip connections.


# %%
def example_model(seed: int = 0) -> dict[str, object]:
    """A 2-layer, 2-head causal residual model with a tanh block; its loss and the shapes of its gradients."""
    rng = np.random.default_rng(seed)
    n, d = 8, 4
    X = rng.uniform(-1, 1, (n, d))
    layers = [Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(3)), W_g=rng.uniform(-1, 1, (d, d))) for _ in range(2)]
    cfg = dict(beta=None, causal=True, heads=2, residual=True, activation="tanh")
    trace = forward(X, layers, **cfg)
    L, dL_dout = value_and_grad(trace, LinearLoss(rng.uniform(-1, 1, (n, d))))
    grads = backward(trace, dL_dout)
    return {
        "loss": float(L),
        "dX": grads.dX.shape,  # a gradient has the shape of what it differentiates
        "dW_Q": grads.layers[0].dW_Q.shape,
        "dW_V": grads.layers[0].dW_V.shape,
        "dW_g": grads.layers[0].dW_g.shape,
        "terms": sorted(grads.layers[0].terms),
    }


# %% [markdown]
# ## 2. The corrected gradient against finite differences at 50 digits
#
# One layer, one head, no block: the closed form (SPEC §2.2, evaluated in mpmath) against central differences of
# the loss, also in mpmath. The relative error is at the level of the 50-digit arithmetic, not of float64.


# %%
def example_against_finite_differences(seed: int = 1) -> dict[str, float]:
    """Relative error of the closed-form dL/dX, dL/dW and dL/dW_V against mpmath finite differences."""
    rng = np.random.default_rng(seed)
    n, d = 5, 2
    X = rng.uniform(-1, 1, (n, d))
    layer = Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(3)))
    loss = LinearLoss(rng.uniform(-1, 1, (n, d)))
    trace = forward(X, [layer], beta=1, backend="mpmath", dps=50)
    grads = backward(trace, value_and_grad(trace, loss)[1])
    fd = fd_gradients(X, [layer], loss, beta=1, dps=50, with_dT=False)

    def rel(a, b) -> float:
        a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
        return float(max(abs(x - y) for x, y in zip(a.flat, b.flat, strict=True)) / max(abs(y) for y in b.flat))

    return {
        "dX": rel(grads.dX, fd.dX),
        "dW": rel(grads.layers[0].dW, fd.layers[0]["dW"]),
        "dW_V": rel(grads.layers[0].dW_V, fd.layers[0]["dW_V"]),
    }


# %% [markdown]
# ## 3. The printed formulas fail, the corrected ones hold
#
# `reference.printed` keeps the paper's formulas exactly as printed (β = 1, the appendices' convention). On a
# non-symmetric W, the printed five-term sum (Lemma D.17) and the printed dL/dW_V (Lemma G.3) are far from the
# gradient, while the corrected closed forms match it to rounding.


# %%
def example_printed_vs_corrected(seed: int = 2) -> dict[str, float]:
    """Relative distance of the printed and corrected dL/dX and dL/dW_V from the true gradient (float64)."""
    rng = np.random.default_rng(seed)
    n, d = 7, 3
    X, W_Q, W_K, W_V, G = (rng.uniform(-1, 1, s) for s in [(n, d), (d, d), (d, d), (d, d), (n, d)])
    cache = head_forward(X, W_Q @ W_K.T, W_V, 1.0, False)
    true = head_vjp(G, cache)  # the corrected closed form: D8 + D4 + D2 + D7 + D6, dW, dW_V

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a - b).max() / np.abs(b).max())

    return {
        "printed dX": rel(dX_as_printed(G, cache), true.dX),
        "printed dW_V": rel(dW_V_as_printed(G, cache), true.dW_V),
        "corrected dX vs sum of its terms": rel(sum(true.terms.values()), true.dX),
    }


# %%
def main() -> None:
    for example in (example_model, example_against_finite_differences, example_printed_vs_corrected):
        print(f"{example.__name__}: {example()}")


if __name__ == "__main__":
    main()
