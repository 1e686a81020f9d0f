r"""The paper's formulas exactly as printed, kept so checks can show that they fail (spec §2.3, §0.4).

These are *not* gradients. Each function names the printed statement it reproduces; all use the appendices'
$\beta = 1$ convention (no $\beta$ anywhere), so compare them at $\beta = 1$. Shape legend: n tokens, d width.

Printed (Lemma D.17): $D_6 = -z_6 X W^\top$ with $z_6 = f\,\mathrm{diag}(K)$; $D_7 = z_7 X W^\top$ with
$z_7 = f \odot (h G^\top)$; $D_8 = f G W_V^\top$; $D_2 = -z_2 X W$ with $z_2 = \mathrm{diag}(K) f$;
$D_4 = z_4 X W$ with $z_4 = f \odot (G h^\top)$. Lemma G.3: $\partial L/\partial W_V = X^\top f G$.
Algorithm 1 line 19: $g_w = (X^\top U_3)(V_3^\top X) = X^\top p_1 X$ (the $p_2$ part is missing).
"""

from __future__ import annotations

import numpy as np

from reference.attention import HeadCache


def _parts(G: np.ndarray, c: HeadCache):
    K = (G * c.s).sum(axis=1)  # (n,)
    return c.X, c.W, c.f, c.h, K


def D6_as_printed(G, c: HeadCache):
    X, W, f, h, K = _parts(G, c)
    return -((f * K[None, :]) @ X) @ W.T  # (n, d)  z6 = f diag(K)


def D7_as_printed(G, c: HeadCache):
    X, W, f, h, K = _parts(G, c)
    return ((f * (h @ G.T)) @ X) @ W.T  # (n, d)  z7 = f ⊙ (h G^T)


def D8_as_printed(G, c: HeadCache):
    return (c.f @ G) @ c.W_V.T  # (n, d)


def D2_as_printed(G, c: HeadCache):
    X, W, f, h, K = _parts(G, c)
    return -((K[:, None] * f) @ X) @ W  # (n, d)  z2 = diag(K) f


def D4_as_printed(G, c: HeadCache):
    X, W, f, h, K = _parts(G, c)
    return ((f * (G @ h.T)) @ X) @ W  # (n, d)  z4 = f ⊙ (G h^T)


PRINTED_TERMS = {"D2": D2_as_printed, "D4": D4_as_printed, "D6": D6_as_printed, "D7": D7_as_printed,
                 "D8": D8_as_printed}  # fmt: skip


def dX_as_printed(G, c: HeadCache):
    """Lemma D.17 / E.11 as printed: $D_6 + D_7 + D_8 + D_2 + D_4$."""
    return sum(fn(G, c) for fn in PRINTED_TERMS.values())


def dW_V_as_printed(G, c: HeadCache):
    """Lemma G.3 as printed: $X^\\top f G$ (correct: $X^\\top f^\\top G$)."""
    return c.X.T @ (c.f @ G)  # (d, d_h)


def dW_as_printed_alg1_line19(G, c: HeadCache):
    """Algorithm 1 line 19: $X^\\top p_1 X$ (F.5 needs $X^\\top (p_1 - p_2) X$)."""
    p1 = c.f * (G @ c.h.T)  # (n, n)
    return c.X.T @ (p1 @ c.X)  # (d, d)
