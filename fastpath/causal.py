r"""Causal mask with low-rank factors: prefix sums (Algorithm 2, Lemma I.3/I.4) and the suffix-sum variant.

Paper: Def. I.2 ($M_{ij} = 1$ iff $i \ge j$), Lemma I.3 / Algorithm 2 (from [LLS+24d]), Lemma I.4; spec §2.7. The
corrected gradients (spec §2.3) also need the transposed product $(M \odot U V^\top)^\top H$, which the paper never
introduces (spec W15): it is the same recursion run from the last token backwards (suffix sums).

.. math::
    [(M \odot U V^\top) H]_j = U_j^\top \sum_{l \le j} V_l H_l^\top,\qquad
    [(M \odot U V^\top)^\top H]_j = V_j^\top \sum_{l \ge j} U_l H_l^\top.

:func:`causal_matmul` is the token-blocked form the layer uses: a running k×w state carries the sum over earlier
blocks (later blocks for the suffix variant), and the diagonal block is a dense c×c lower triangle supplied by the
caller (the layer passes the exact kernel there, see :mod:`fastpath.layer`), so no n×n matrix is formed.

Shape legend: n tokens, k rank, w columns of H, c tokens per block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


def causal_mv(U0: np.ndarray, V0: np.ndarray, v: np.ndarray) -> np.ndarray:
    r"""Algorithm 2 (Lemma I.3): $y = (M \odot U_0 V_0^\top) v$ in O(nk). U0, V0: (n, k); v: (n,) -> (n,)."""
    c = np.cumsum(V0 * v[:, None], axis=0)  # (n, k)  c_j = sum_{l <= j} V0[l] v_l
    return (U0 * c).sum(axis=1)  # (n,)


def causal_mv_T(U0: np.ndarray, V0: np.ndarray, v: np.ndarray) -> np.ndarray:
    r"""Suffix-sum variant (spec §2.7): $y = (M \odot U_0 V_0^\top)^\top v$ in O(nk). (n, k), (n,) -> (n,)."""
    c = np.cumsum((U0 * v[:, None])[::-1], axis=0)[::-1]  # (n, k)  c'_j = sum_{l >= j} U0[l] v_l
    return (V0 * c).sum(axis=1)  # (n,)


def blocks(n: int, c: int, reverse: bool = False) -> Iterator[tuple[int, int]]:
    """Token blocks [t0, t1) of size c covering 0..n, in order (or reversed for suffix sums)."""
    starts = range(0, n, c)
    for t0 in reversed(starts) if reverse else starts:
        yield t0, min(n, t0 + c)


def causal_matmul(
    U: np.ndarray,
    V: np.ndarray,
    H: np.ndarray,
    *,
    transpose: bool = False,
    block: int = 64,
    diag: Callable[[int, int], np.ndarray] | None = None,
) -> np.ndarray:
    r"""Lemma I.4 (blocked): $(M \odot U V^\top) H$, or $(M \odot U V^\top)^\top H$ with ``transpose=True``.

    U, V: (n, k); H: (n, w) -> (n, w). ``diag(t0, t1)`` returns the (c, c) diagonal block of the matrix to use
    in place of $U V^\top$ on the block (default: $U_b V_b^\top$); it is masked to its lower triangle here. The
    off-diagonal part only ever touches the (k, w) running state.
    """
    n, w = H.shape
    out = np.empty((n, w))
    state = np.zeros((U.shape[1], w))  # (k, w)
    for t0, t1 in blocks(n, block, reverse=transpose):
        Ub, Vb, Hb = U[t0:t1], V[t0:t1], H[t0:t1]
        A = Ub @ Vb.T if diag is None else diag(t0, t1)  # (c, c)
        A = np.tril(A)
        if transpose:
            out[t0:t1] = Vb @ state + A.T @ Hb  # (c, w)
            state += Ub.T @ Hb  # (k, w)
        else:
            out[t0:t1] = Ub @ state + A @ Hb  # (c, w)
            state += Vb.T @ Hb  # (k, w)
    return out


__all__ = ["blocks", "causal_matmul", "causal_mv", "causal_mv_T"]
