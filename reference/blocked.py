r"""Row-blocked exact float64 attention of one head, in $O(n \cdot \text{block})$ memory.

The formulas are :func:`reference.attention.softmax` and :func:`reference.attention.dense_head_backward` (spec §2.2,
corrected), called on one block of query rows at a time. A block holds *whole rows* of $f$ (all n keys), so each
row's softmax normaliser is complete inside its block and needs no running correction. Every $f^\top$- and
$P^\top$-product is a sum over row blocks, so no n×n matrix is ever held:

.. math::
    f^\top G = \sum_b f_b^\top G_b,\quad P^\top X W = \sum_b P_b^\top (X_b W),\quad
    \partial L/\partial W = \beta \sum_b X_b^\top P_b X,\quad \partial L/\partial W_V = \sum_b (f_b X)^\top G_b.

:func:`attention_rows` gives the rows of $f$, :func:`backward_rows` sums the dense backward over any stream of
row blocks (recomputed, as :mod:`fastpath.dense` does between its forward and backward, or fused with the forward,
as :func:`layer_gradient_blocked` does). Shape legend: n tokens, d width, d_h head width, b rows per block.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from reference import validate as v
from reference.attention import TERM_NAMES, HeadGrads, dense_head_backward, softmax

ROW_TERMS = ("D2", "D4", "D2+D4")  # the terms on query rows (b, d); the others are (n, d) partial sums over keys


def row_blocks(n: int, block: int) -> Iterator[tuple[int, int]]:
    """The row ranges ``(r0, r1)`` of blocks of ``block`` consecutive tokens, in order."""
    for r0 in range(0, n, block):
        yield r0, min(n, r0 + block)


def attention_rows(XW: np.ndarray, XT: np.ndarray, beta, causal: bool, r0: int, r1: int) -> np.ndarray:
    r"""Rows $r_0{:}r_1$ of $f$ (Def. 1.2 / I.5): $\mathrm{softmax}(\beta (XW)_{r_0:r_1} X^\top)$, masked to
    $j \le i$ when causal. XW (n, d), XT = $X^\top$ (d, n), best C-contiguous (a transposed view made the product
    3× slower at d = 8) -> (b, n)."""
    Sb = beta * (XW[r0:r1] @ XT)  # (b, n)  the logits of these rows against all keys
    mask = np.arange(XT.shape[1])[None, :] <= np.arange(r0, r1)[:, None] if causal else None  # (b, n)
    return softmax(Sb, mask=mask)  # (b, n)


def backward_rows(G, X, W, W_V, h, beta, rows: Iterable, *, terms: bool = True) -> HeadGrads:
    r""":func:`reference.attention.dense_head_backward` summed over a stream of row blocks.

    ``rows`` yields ``(r0, r1, f_b, s_b)``: a block of consecutive query rows, its rows of $f$ (b, n) and of the
    output $s$ (b, d_h); together the blocks must cover the n rows once. ``terms`` as in ``dense_head_backward``
    (the five terms, or the two grouped sums). Returns :class:`reference.attention.HeadGrads` with ``P = None``
    (never held) and ``K`` (n,). Query-row terms are placed, key-row terms accumulated; dX is the sum of the
    accumulated terms in the order listed. G (n, d_h), X (n, d), W (d, d), W_V (d, d_h), h (n, d_h).
    """
    n, d = X.shape
    names = TERM_NAMES if terms else ("D2+D4", "D6+D7+D8")
    acc = {t: np.zeros((n, d)) for t in names}  # (n, d) each
    dW, dW_V, K = np.zeros((d, d)), np.zeros((d, W_V.shape[1])), np.empty(n)
    for r0, r1, fb, sb in rows:
        hg = dense_head_backward(G[r0:r1], fb, h, sb, X[r0:r1], X, W, W_V, beta, terms=terms)
        for t, part in hg.terms.items():
            if t in ROW_TERMS:
                acc[t][r0:r1] += part  # (b, d)  query-row terms of this block
            else:
                acc[t] += part  # (n, d)  key-row terms: this block's partial sums
        dW += hg.dW  # (d, d)
        dW_V += hg.dW_V  # (d, d_h)
        K[r0:r1] = hg.K
        del hg, fb  # the block's (b, n) arrays go before the next block is formed
    dX = acc[names[0]]
    for t in names[1:]:
        dX = dX + acc[t]  # (n, d)
    return HeadGrads(acc, dX, dW, dW_V, None, K)


def layer_gradient_blocked(X, W_Q, W_K, W_V, G, beta=None, causal=False, block=256):
    """Exact single-head layer: returns ``(s, dX, dW, dW_Q, dW_K, dW_V)`` for upstream ``G`` = dL/ds.

    ``beta=None`` means 1/d. Memory O(n * block); time O(n^2 d). The forward of each block is fused with its
    backward (one softmax per block); this is the exact baseline the fast path is timed against.
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
    XT = np.ascontiguousarray(X.T)  # (d, n)
    s = np.empty((n, d))

    def rows():
        for r0, r1 in row_blocks(n, block):
            fb = attention_rows(XW, XT, beta, causal, r0, r1)  # (b, n)
            s[r0:r1] = fb @ h  # (b, d)
            yield r0, r1, fb, s[r0:r1]
            del fb

    hg = backward_rows(G, X, W, W_V, h, beta, rows(), terms=False)
    return s, hg.dX, hg.dW, hg.dW @ W_K, hg.dW.T @ W_Q, hg.dW_V
