r"""The paper's formulas exactly as printed, kept so checks can show that they fail (spec §2.3, §0.4).

These are *not* gradients. Each function names the printed statement it reproduces; all use the appendices'
$\beta = 1$ convention (no $\beta$ anywhere), so compare them at $\beta = 1$. Shape legend: n tokens, d width.

Printed (Lemma D.17): $D_6 = -z_6 X W^\top$ with $z_6 = f\,\mathrm{diag}(K)$; $D_7 = z_7 X W^\top$ with
$z_7 = f \odot (h G^\top)$; $D_8 = f G W_V^\top$; $D_2 = -z_2 X W$ with $z_2 = \mathrm{diag}(K) f$;
$D_4 = z_4 X W$ with $z_4 = f \odot (G h^\top)$. Lemma G.3: $\partial L/\partial W_V = X^\top f G$.
Algorithm 1 line 19: $g_w = (X^\top U_3)(V_3^\top X) = X^\top p_1 X$ (the $p_2$ part is missing).

Entrywise, for one entry $(i_0, j_0)$ of s (Appendix D): the scalars $C_1..C_8$ of Lemma D.1, their matrix views
$B_2..B_8$ (Lemmas D.3–D.7) and the slice of Lemma D.8. Shape legend there: (i0, j0) the entry of s, (i1, j1) the
entry of X.
"""

from __future__ import annotations

import numpy as np

from reference.attention import HeadCache
from reference.backend import FLOAT64, Backend


def _parts(G: np.ndarray, c: HeadCache):
    K = (G * c.s).sum(axis=1)  # (n,)
    return c.X, c.W, c.f, c.h, K


def z6_as_printed(f: np.ndarray, K: np.ndarray) -> np.ndarray:
    r"""Lemma D.10 as printed: $z_6 = f\,\mathrm{diag}(K)$, K scaling the columns (corrected $z_6^* = p_2^\top$).
    (n, n)."""
    return f * K[None, :]  # (n, n)


def z7_as_printed(f: np.ndarray, G: np.ndarray, h: np.ndarray) -> np.ndarray:
    r"""Lemma D.11 as printed: $z_7 = f \odot (h G^\top)$ (corrected $z_7^* = p_1^\top$). (n, n)."""
    return f * (h @ G.T)  # (n, n)


def D6_as_printed(G, c: HeadCache):
    X, W, f, h, K = _parts(G, c)
    return -(z6_as_printed(f, K) @ X) @ W.T  # (n, d)


def D7_as_printed(G, c: HeadCache):
    X, W, f, h, K = _parts(G, c)
    return (z7_as_printed(f, G, h) @ X) @ W.T  # (n, d)


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


# -- Appendix D, one entry (i0, j0) of s at a time ----------------------------------------------------------------


def C_as_printed(c: HeadCache, i0: int, j0: int, bk: Backend = FLOAT64) -> dict:
    r"""Lemma D.1 as printed, for fixed $(i_0, j_0)$: C6, C7, C8 for every row $i_1$ (n×d), C2, C4 (d-vectors);
    Part 1 ($i_1 = i_0$) is C1+C2+C3+C4+C5, where C1, C3, C5 coincide with C6, C7, C8 at $i_1 = i_0$:
    $C_6 = -s_{i_0j_0} f_{i_1,i_0}\langle W_{j_1,*}, X_{i_0,*}\rangle$, $C_7 = f_{i_1,i_0} h_{i_1,j_0}\langle W_{j_1,*},
    X_{i_0,*}\rangle$, $C_8 = f_{i_1,i_0}(W_V)_{j_1,j_0}$, $C_2 = -s_{i_0j_0}\langle f_{i_0,*}, (XW)_{*,j_1}\rangle$,
    $C_4 = \langle f_{i_0,*}\odot (XW)_{*,j_1}, h_{*,j_0}\rangle$."""
    X, W, WV, f, h, s = c.X, c.W, c.W_V, c.f, c.h, c.s
    n, d = X.shape
    XW, XWt = X @ W, X @ W.T  # (n, d) each
    out = {k: bk.zeros((n, d)) for k in ("C6", "C7", "C8")} | {k: bk.zeros((d,)) for k in ("C2", "C4")}
    for i1, j1 in np.ndindex(n, d):
        out["C6"][i1, j1] = -s[i0, j0] * f[i1, i0] * XWt[i0, j1]  # <W_{j1,*}, X_{i0,*}> = (X W^T)_{i0,j1}
        out["C7"][i1, j1] = f[i1, i0] * h[i1, j0] * XWt[i0, j1]
        out["C8"][i1, j1] = f[i1, i0] * WV[j1, j0]
    for j1 in range(d):
        out["C2"][j1] = -s[i0, j0] * (f[i0] @ XW[:, j1])
        out["C4"][j1] = (f[i0] * XW[:, j1]) @ h[:, j0]
    return out


def embed_row(B: np.ndarray, n: int, i0: int, bk: Backend = FLOAT64) -> np.ndarray:
    r"""A d-vector B placed in row i0 of an n×d zero matrix ($e_{i_0} B^\top$); an n×d B unchanged."""
    if B.ndim == 2:
        return B
    out = bk.zeros((n, B.shape[0]))  # (n, d)
    out[i0] = B
    return out


def jacobian_row_as_printed(c: HeadCache, i0: int, j0: int, bk: Backend = FLOAT64) -> np.ndarray:
    """Lemma D.1 as printed, assembled: Part 1 on row i0, Part 2 (C6+C7+C8) on the other rows. (n, d)."""
    C = C_as_printed(c, i0, j0, bk)
    return C["C6"] + C["C7"] + C["C8"] + embed_row(C["C2"] + C["C4"], c.X.shape[0], i0, bk)  # (n, d)


def B_as_printed(c: HeadCache, i0: int, j0: int, transposed_view: bool = False) -> dict:
    r"""Lemmas D.3–D.7 as printed: $B_6 = -s_{i_0j_0} f_{*,i_0}(W X_{i_0,*})^\top$, $B_7 = (f_{*,i_0}\odot h_{*,j_0})
    (W X_{i_0,*})^\top$, $B_8 = f_{*,i_0}((W_V)_{*,j_0})^\top$ (n×d); $B_2 = -s_{i_0j_0} W^\top X^\top f_{i_0,*}$,
    $B_4 = W^\top X^\top (f_{i_0,*}\odot h_{*,j_0})$ (d). ``transposed_view``: a misreading (a mutant of the checks)
    that takes $f_{*,i_0}$ as the row $f_{i_0,*}$ and $W^\top$ as W."""
    X, W, WV, f, h, s = c.X, c.W, c.W_V, c.f, c.h, c.s
    col = f[i0] if transposed_view else f[:, i0]  # (n,)
    Wt = W if transposed_view else W.T
    Wx = W @ X[i0]  # (d,)
    return {
        "B6": -s[i0, j0] * np.outer(col, Wx),  # (n, d)
        "B7": np.outer(col * h[:, j0], Wx),  # (n, d)
        "B8": np.outer(col, WV[:, j0]),  # (n, d)
        "B2": -s[i0, j0] * (Wt @ (X.T @ f[i0])),  # (d,)
        "B4": Wt @ (X.T @ (f[i0] * h[:, j0])),  # (d,)
    }


def slice_as_printed(c: HeadCache, i0: int, j0: int, bk: Backend = FLOAT64) -> np.ndarray:
    """Lemma D.8 as printed: $B_6 + B_7 + B_8 + e_{i_0}(B_2 + B_4)^\top$ for fixed (i0, j0). (n, d)."""
    B = B_as_printed(c, i0, j0)
    return B["B6"] + B["B7"] + B["B8"] + embed_row(B["B2"] + B["B4"], c.X.shape[0], i0, bk)
