r"""Self-attention (Def. 1.1, 1.2, C.3, I.5, K.1) and its exact backward (Lemma C.4, corrected D.17, F.4, G.3).

Spec §2.1–2.3, §2.7, §2.9. Forward and backward sit side by side. Shape legend: n = tokens, d = model width,
d_h = d / heads (per-head width), h = number of heads.

Forward of one head, with merged weight $W = W_Q W_K^\top$ (d×d) and value block $W_V$ (d×d_h):

.. math::
    S = \beta X W X^\top,\quad f = \mathrm{diag}(A 1_n)^{-1} A,\ A = \exp(S)\ (\odot M \text{ if causal}),\quad
    h = X W_V,\quad s = f h.

Backward with upstream $G = \partial L/\partial s$ (n×d_h), spec §2.2 (corrected forms of Lemma D.17):

.. math::
    q = G h^\top,\ K = (G \odot s) 1,\ p_1 = f \odot q,\ p_2 = \mathrm{diag}(K) f,\ P = p_1 - p_2, \\
    D_8 = f^\top G W_V^\top,\ D_4 = \beta p_1 X W^\top,\ D_2 = -\beta p_2 X W^\top,\
    D_7 = \beta p_1^\top X W,\ D_6 = -\beta p_2^\top X W, \\
    \partial L/\partial X = D_2 + D_4 + D_6 + D_7 + D_8,\quad \partial L/\partial W = \beta X^\top P X,\quad
    \partial L/\partial W_V = X^\top f^\top G.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reference.backend import FLOAT64, Backend

TERM_NAMES = ("D2", "D4", "D6", "D7", "D8")


def softmax(z: np.ndarray, bk: Backend = FLOAT64, mask: np.ndarray | None = None) -> np.ndarray:
    r"""Row softmax (Def. 1.1): $\exp(z_i) / \langle \exp(z_i), 1 \rangle$ for each row, max-subtracted.

    ``mask`` (bool, same shape) keeps the entries where it is True; the others get probability 0.
    Shapes: z (n, k) -> (n, k).
    """
    if mask is not None:
        z = np.where(mask, z, bk.neg_inf)
    z = z - z.max(axis=-1, keepdims=True)  # shift invariance: Softmax(z + c 1) = Softmax(z)
    a = bk.exp(z)
    return a / a.sum(axis=-1, keepdims=True)


def causal_mask(n: int) -> np.ndarray:
    """Def. I.2: M[i, j] = True iff i >= j (lower triangle, diagonal included). Shape (n, n)."""
    return np.tril(np.ones((n, n), dtype=bool))


def logits(X: np.ndarray, W: np.ndarray, beta, bk: Backend = FLOAT64) -> np.ndarray:
    r"""$S = \beta (X W) X^\top$ (n, n): the logits of one head with merged weight W (Def. 1.2 / C.3)."""
    beta = bk.scalar(beta) if bk.is_mp else beta  # an mpf of another context would compute S at its precision
    return beta * ((X @ W) @ X.T)  # (n, n)


def unnormalised(X: np.ndarray, W: np.ndarray, beta, bk: Backend = FLOAT64) -> np.ndarray:
    r"""$u(X) = \exp(\beta X W X^\top)$ (n, n): Def. C.6's unnormalised attention matrix (β explicit), the object
    Lemma C.13 approximates and Def. C.7 sums ($\alpha(X) = u(X) 1_n$). Not max-shifted: it overflows where the
    logits do (the normalised :func:`attention_matrix` does not)."""
    return bk.exp(logits(X, W, beta, bk))  # (n, n)


def attention_matrix(X: np.ndarray, W: np.ndarray, beta, causal: bool = False, bk: Backend = FLOAT64):
    r"""$f = \mathrm{rowsoftmax}(\beta X W X^\top)$ (Def. 1.2 / C.8), or $f^M$ (Def. I.5) when causal. (n, n)."""
    S = logits(X, W, beta, bk)  # (n, n)
    return softmax(S, bk, causal_mask(X.shape[0]) if causal else None)


@dataclass
class HeadCache:
    """What one head keeps from the forward pass for its backward pass."""

    X: np.ndarray  # (n, d) layer input
    W: np.ndarray  # (d, d) merged W_Q^(l) W_K^(l)T
    W_V: np.ndarray  # (d, d_h)
    beta: object
    f: np.ndarray  # (n, n) attention matrix (masked if causal)
    h: np.ndarray  # (n, d_h) values
    s: np.ndarray  # (n, d_h) output


def head_forward(X, W, W_V, beta, causal: bool, bk: Backend = FLOAT64) -> HeadCache:
    """One head: Def. 1.2 with the merged weight (Def. C.3); causal per Def. I.5."""
    beta = bk.scalar(beta) if bk.is_mp else beta
    f = attention_matrix(X, W, beta, causal, bk)  # (n, n)
    h = X @ W_V  # (n, d_h)
    s = f @ h  # (n, d_h)
    return HeadCache(X, W, W_V, beta, f, h, s)


@dataclass
class HeadGrads:
    """Exact gradients of one head for upstream G: the five terms, dX, dW, dW_V and the intermediates."""

    terms: dict[str, np.ndarray]  # "D2".."D8", each (n, d)
    dX: np.ndarray  # (n, d)
    dW: np.ndarray  # (d, d)
    dW_V: np.ndarray  # (d, d_h)
    P: np.ndarray  # (n, n) p1 - p2 = dL/dS for the logits S = beta X W X^T
    K: np.ndarray  # (n,)


def logit_gradient(G, f, h, s):
    r"""$K = (G \odot s) 1_n$, $p_1 = f \odot (G h^\top)$, $p_2 = \mathrm{diag}(K) f$ (Def. C.11, C.12, D.16).

    $P = p_1 - p_2 = \partial L/\partial S$ for the logits $S$. Row-local: ``G, f, s`` may be any block of query
    rows (b of them) against all n keys. Shapes: G (b, d_h), f (b, n), h (n, d_h), s (b, d_h) -> K (b,), p1, p2 (b, n).
    """
    K = (G * s).sum(axis=1)  # (b,)  Def. D.16, = p1 1_n
    p1 = f * (G @ h.T)  # (b, n)  Def. C.12 with q = G h^T = dL/df (Def. C.11)
    p2 = K[:, None] * f  # (b, n)  diag(K) f
    return K, p1, p2


def dense_head_backward(G, f, h, s, Xq, Xk, W, W_V, beta, *, terms: bool = True) -> HeadGrads:
    r"""The dense backward of one head (spec §2.2, corrected D.17, F.4, G.3): the one home of these formulas.

    For a block of b query rows $X_q$ (the rows of $f$, $G$, $s$) against all n key rows $X_k$; with all rows
    ($X_q = X_k = X$) it is :func:`head_vjp`, and :func:`reference.blocked.layer_gradient_blocked` sums it over
    row blocks. The terms on query rows ($D_2, D_4$) have shape (b, d), those on key rows ($D_6, D_7, D_8$) are
    (n, d) partial sums over the block; ``dX`` is their sum when b = n and None otherwise. ``dW``, ``dW_V`` are the
    block's contributions. ``terms=False`` skips the five separate terms and returns only the two grouped sums
    ``"D2+D4"`` $= \beta P X_k W^\top$ (b, d) and ``"D6+D7+D8"`` $= \beta P^\top X_q W + f^\top G W_V^\top$
    (n, d), with $P = p_1 - p_2$ (3 products of an n-wide matrix instead of 5: the timed exact baseline).
    Shapes: G, s (b, d_h); f (b, n); h (n, d_h); Xq (b, d); Xk (n, d); W (d, d); W_V (d, d_h).
    """
    K, p1, p2 = logit_gradient(G, f, h, s)
    P = p1 - p2  # (b, n)  = dL/dS
    XqW = Xq @ W  # (b, d)
    XkWt = Xk @ W.T  # (n, d)
    D8 = (f.T @ G) @ W_V.T  # (n, d)  value path
    if terms:
        t = {
            "D8": D8,
            "D4": beta * (p1 @ XkWt),  # (b, d)  query path, numerator
            "D2": -beta * (p2 @ XkWt),  # (b, d)  query path, normalizer
            "D7": beta * (p1.T @ XqW),  # (n, d)  key path, numerator
            "D6": -beta * (p2.T @ XqW),  # (n, d)  key path, normalizer
        }
        parts = [t[k] for k in ("D2", "D4", "D6", "D7", "D8")]
    else:
        t = {"D2+D4": beta * (P @ XkWt), "D6+D7+D8": beta * (P.T @ XqW) + D8}  # (b, d), (n, d)
        parts = list(t.values())
    dX = None
    if Xq.shape[0] == Xk.shape[0]:  # all rows: dX is the sum (Lemma D.9/E.11), added in the order listed
        dX = parts[0]
        for p in parts[1:]:
            dX = dX + p  # (n, d)
    # Lemma F.4 (times beta). P 1_n = K - K = 0, so P X = P (X - 1 xbar^T) exactly; the centred form avoids
    # the cancellation float64 suffers when the tokens are nearly equal (deep non-residual stacks, spec App. B).
    Xc = Xk - Xk.sum(axis=0) / Xk.shape[0]  # (n, d)
    dW = beta * (Xq.T @ (P @ Xc))  # (d, d)
    dW_V = (f @ Xk).T @ G  # (d, d_h)  Lemma G.3 corrected: X^T f^T G
    return HeadGrads(t, dX, dW, dW_V, P, K)


def head_vjp(G: np.ndarray, c: HeadCache) -> HeadGrads:
    """Corrected closed-form backward of one head (Lemma C.4; D.17 corrected per spec §2.3; F.4; G.3 corrected)."""
    return dense_head_backward(G, c.f, c.h, c.s, c.X, c.X, c.W, c.W_V, c.beta)


def head_contractions(n: int, d: int, d_h: int) -> list[tuple[str, str, str, int]]:
    r"""The dense contractions of :func:`head_forward` and of :func:`dense_head_backward` (all rows, five terms), each
    as (pass, kind, what, multiply-adds), the count derived from the shapes those functions use: an (p, q) by (q, s)
    product ("matmul") costs p q s; an elementwise product or exp ("elementwise") one per entry; the sum of the five
    terms into dX 4 n d. Shifts, scalings by β and subtractions are not counted. The one home of the dense cost
    (issue 9, spec §0.5 item 7): :func:`dense_head_madds`, :mod:`fastpath.layer` and the experiments use it.
    Shapes: n tokens, d width, d_h head width.
    """
    return [
        ("forward", "matmul", "X W", n * d * d),
        ("forward", "matmul", "(X W) X^T", n * d * n),
        ("forward", "elementwise", "exp(S)", n * n),
        ("forward", "matmul", "h = X W_V", n * d * d_h),
        ("forward", "matmul", "s = f h", n * n * d_h),
        ("backward", "elementwise", "K = (G . s) 1", n * d_h),
        ("backward", "matmul", "G h^T", n * d_h * n),
        ("backward", "elementwise", "p1 = f . (G h^T), p2 = diag(K) f", 2 * n * n),
        ("backward", "matmul", "X W, X W^T", 2 * n * d * d),
        ("backward", "matmul", "f^T G", n * n * d_h),
        ("backward", "matmul", "(f^T G) W_V^T", n * d_h * d),
        ("backward", "matmul", "p1 X W^T, p2 X W^T, p1^T X W, p2^T X W", 4 * n * n * d),
        ("backward", "elementwise", "dX = D2 + D4 + D6 + D7 + D8", 4 * n * d),
        ("backward", "matmul", "P X_c", n * n * d),
        ("backward", "matmul", "X^T (P X_c)", d * n * d),
        ("backward", "matmul", "f X", n * n * d),
        ("backward", "matmul", "(f X)^T G", d * n * d_h),
    ]


def dense_head_madds(n: int, d: int, d_h: int, *, forward: bool = True, backward: bool = True) -> int:
    """Multiply-adds of the dense head's forward and/or backward (:func:`head_contractions`), an int."""
    passes = {"forward"} if forward else set()
    passes |= {"backward"} if backward else set()
    return sum(k for p, _, _, k in head_contractions(n, d, d_h) if p in passes)


def head_blocks(W_Q, W_K, W_V, heads: int):
    """Column blocks of head l (spec §2.9): W_Q^(l), W_K^(l), W_V^(l), each (d, d_h), l = 0..heads-1."""
    d_h = W_Q.shape[1] // heads
    cols = [slice(l * d_h, (l + 1) * d_h) for l in range(heads)]
    return [(W_Q[:, c], W_K[:, c], W_V[:, c]) for c in cols]


@dataclass
class AttentionCache:
    heads: list[HeadCache]
    W_Q: np.ndarray
    W_K: np.ndarray
    out: np.ndarray  # (n, d) concatenated head outputs = Attn(X)


def attention_forward(X, W_Q, W_K, W_V, *, beta, causal: bool, heads: int, bk: Backend = FLOAT64,
                      W_override: list | None = None) -> AttentionCache:  # fmt: skip
    """Multi-head attention (Def. K.1; one head = Def. 1.2): heads on column blocks, outputs concatenated.

    ``W_override`` (list of per-head merged weights, each (d, d)) replaces $W^{(l)} = W_Q^{(l)} W_K^{(l)\\top}$;
    the finite-difference oracle uses it to differentiate with respect to the merged weight itself.
    """
    caches = []
    for l, (wq, wk, wv) in enumerate(head_blocks(W_Q, W_K, W_V, heads)):
        W = wq @ wk.T if W_override is None else W_override[l]  # (d, d)
        caches.append(head_forward(X, W, wv, beta, causal, bk))
    out = np.concatenate([c.s for c in caches], axis=1)  # (n, d)
    return AttentionCache(caches, W_Q, W_K, out)


@dataclass
class AttentionGrads:
    dX: np.ndarray  # (n, d)
    dW_Q: np.ndarray  # (d, d)
    dW_K: np.ndarray  # (d, d)
    dW: np.ndarray  # (d, d) for one head, (heads, d, d) otherwise
    dW_V: np.ndarray  # (d, d)
    terms: dict[str, np.ndarray] = field(default_factory=dict)  # each (n, d), summed over heads
    per_head: list[HeadGrads] = field(default_factory=list)


def attention_vjp(G: np.ndarray, cache: AttentionCache) -> AttentionGrads:
    """Backward of :func:`attention_forward` (Lemma K.2 structure; spec §2.9 and §C.2 for W_Q, W_K).

    dL/dW_Q^(l) = dL/dW^(l) W_K^(l) and dL/dW_K^(l) = (dL/dW^(l))^T W_Q^(l) (claim #26).
    """
    nh = len(cache.heads)
    d_h = G.shape[1] // nh
    hg = [head_vjp(G[:, l * d_h : (l + 1) * d_h], c) for l, c in enumerate(cache.heads)]
    wq = [cache.W_Q[:, l * d_h : (l + 1) * d_h] for l in range(nh)]
    wk = [cache.W_K[:, l * d_h : (l + 1) * d_h] for l in range(nh)]
    dW_Q = np.concatenate([g.dW @ k for g, k in zip(hg, wk, strict=True)], axis=1)  # (d, d)
    dW_K = np.concatenate([g.dW.T @ q for g, q in zip(hg, wq, strict=True)], axis=1)  # (d, d)
    dW_V = np.concatenate([g.dW_V for g in hg], axis=1)  # (d, d)
    dW = hg[0].dW if nh == 1 else np.stack([g.dW for g in hg])  # (d, d) or (h, d, d)
    terms = {t: sum(g.terms[t] for g in hg[1:]) + hg[0].terms[t] for t in TERM_NAMES}
    dX = sum(g.dX for g in hg[1:]) + hg[0].dX  # (n, d)
    return AttentionGrads(dX, dW_Q, dW_K, dW, dW_V, terms, hg)
