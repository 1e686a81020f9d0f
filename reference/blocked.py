r"""Row-blocked exact float64 gradient of one attention layer, in $O(n \cdot \text{block})$ memory.

The formulas are :func:`reference.attention.dense_head_backward` (spec §2.2, corrected), called on one block of
query rows at a time. Every $f^\top$- and $P^\top$-product is a sum over row blocks, so no n×n matrix is ever held:

.. math::
    f^\top G = \sum_b f_b^\top G_b,\quad P^\top X W = \sum_b P_b^\top (X_b W),\quad
    \partial L/\partial W = \beta \sum_b X_b^\top P_b X,\quad \partial L/\partial W_V = \sum_b (f_b X)^\top G_b.

Shape legend: n tokens, d width, b rows per block. This is the exact baseline the fast path is timed against.
"""

from __future__ import annotations

import numpy as np

from reference import validate as v
from reference.attention import dense_head_backward, softmax


def layer_gradient_blocked(X, W_Q, W_K, W_V, G, beta=None, causal=False, block=256):
    """Exact single-head layer: returns ``(s, dX, dW, dW_Q, dW_K, dW_V)`` for upstream ``G`` = dL/ds.

    ``beta=None`` means 1/d. Memory O(n * block); time O(n^2 d).
    """
    X = v.matrix("X", X, (None, None))
    n, d = X.shape
    for name, w in (("W_Q", W_Q), ("W_K", W_K), ("W_V", W_V)):
        v.matrix(name, w, (d, d))
    G = v.matrix("G", G, (n, d))
    causal = v.flag("causal", causal)
    block = v.positive_int("block", block)
    beta = 1.0 / d if beta is None else float(v.real("beta", beta))
    W = W_Q @ W_K.T  # (d, d)
    h = X @ W_V  # (n, d)
    XW = X @ W  # (n, d)
    s = np.empty((n, d))
    dX = np.zeros((n, d))
    dW = np.zeros((d, d))
    dW_V = np.zeros((d, d))
    cols = np.arange(n)
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        Sb = beta * (XW[r0:r1] @ X.T)  # (b, n)
        mask = cols[None, :] <= np.arange(r0, r1)[:, None] if causal else None
        fb = softmax(Sb, mask=mask)  # (b, n)
        sb = fb @ h  # (b, d)
        s[r0:r1] = sb
        hg = dense_head_backward(G[r0:r1], fb, h, sb, X[r0:r1], X, W, W_V, beta, terms=False)
        dX += hg.terms["D6+D7+D8"]  # (n, d)  key-row and value terms, partial sums over this block
        dX[r0:r1] += hg.terms["D2+D4"]  # (b, d)  query-row terms
        dW += hg.dW  # (d, d)
        dW_V += hg.dW_V  # (d, d)
    return s, dX, dW, dW @ W_K, dW.T @ W_Q, dW_V
