r"""The dense kernel, streamed: method ``"exact"`` of the fast path in $O(n \cdot b + n \cdot d)$ memory.

Paper: Def. 1.2 / I.5 (the head, causal mask including the diagonal), Lemma C.4 with the corrected D.17, F.4, G.3
(spec §2.2, §2.7); the fast path's auto rule (rank $\ge n$ -> exact, :func:`fastpath.layer.choose_method`) and the
certificate of an exact head (float64 rounding only, :func:`fastpath.lowrank.exact_kernel_cert`). Where the rank
reaches n the dense head is the cheaper one, but its $n \times n$ attention matrix is not affordable at large n
(32 GiB at $n = 2^{16}$). So the exact head keeps no $f$: every pass recomputes its rows of $f$ in blocks of b
query rows (:func:`reference.blocked.attention_rows`: $f_b = \mathrm{softmax}(\beta (XW)_b X^\top)$, whole rows,
so each row's normaliser $\sum_j \exp(S_{ij} - \max_j S_{ij})$ is complete inside its block):

.. math::
    s_b = f_b h,\qquad f Y|_b = f_b Y,\qquad f^\top Z = \sum_b f_b^\top Z_b,

and the backward (the five terms, dX, dW, dW_V) is :func:`reference.blocked.backward_rows`, which sums
:func:`reference.attention.dense_head_backward` (the one home of the formulas) over the recomputed blocks.

**The block** (:func:`row_block`): the working set of b rows per block is
$8 n (\mathrm{ROW\_ARRAYS}\cdot b + \mathrm{STATE\_COLS}\cdot w)$ bytes, $w = \max(d, d_h)$ (:data:`ROW_ARRAYS`
(b, n) float64 arrays live at a pass's peak, :data:`STATE_COLS` (n, w) ones); a budget too small for one row is
refused by name. When the budget fits b = n, the head is the reference's dense head itself
(:func:`reference.attention.head_forward`, :func:`reference.attention.head_vjp`, $f$ kept): small cases are
bit-identical to the dense path and pay no recomputation. Otherwise b is the largest block that fits, capped at
:data:`STREAM_BYTES` per (b, n) array: larger blocks were slower, not faster (``benchmarks/dense_bench.py``, d = 4,
$n = 2^{14}$, one thread on a loaded 2-core machine: forward + backward 153 s with b = 2688, 66 s with b = 512),
since every fresh array above glibc's mmap threshold is mapped and first-touched anew.

**Counted work** (:mod:`fastpath.work`): the dense contractions of :func:`reference.attention.head_contractions`
(the one home of the dense cost) plus, when streamed, what the blocks execute again (:func:`streamed_contractions`):
the logits and exp of every recomputed pass, the k-side products each block of the backward forms anew, and the
accumulation of the blocks' partial sums.

**Rounding** (why the certificate still holds): blocking changes only the order in which sums are formed. Every
row of $f_b$, $s_b$, $f_b Y$, $S_b$ is the same full-length computation as in the dense head; a column sum such as
$(f^\top Z)_j = \sum_i f_{ij} Z_i$ or $\partial L/\partial W = \beta\sum_i X_i^\top (P X_c)_i$ is formed as
inner sums over a block and then a sum of the blocks' partial sums, a summation tree over the same n terms.
The classical bound $|\hat\Sigma - \Sigma| \le \gamma_{n-1}\sum|x_i|$ holds for *every* order of summing n terms
(each term passes through at most $n - 1$ additions), so the rounding terms, which use $\gamma$ of the summed
length ($\gamma_{n+2}$ in :func:`fastpath.lowrank.exact_kernel_cert`, $\gamma_m$ with $m \ge n(1 + d_h)$ in
:func:`fastpath.bounds.rounding_rel` and :func:`fastpath.certificate.head_kernel`, $\gamma_{n+d+4}$ for dW in
:func:`fastpath.certificate.backward_bound`), cover the blocked order unchanged.

Shape legend: n tokens, d width, d_h head width, b rows per block, w_Y, w_Z columns of Y, Z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fastpath.work import Work, mm
from reference import attention as ref_attention
from reference.blocked import attention_rows, backward_rows, row_blocks

ROW_ARRAYS = 6  # (b, n) float64 arrays: 4 at a pass's peak (f_b, p1, p2, P; or S_b and softmax's 3), + 2 spare
STREAM_BYTES = 2**25  # (b, n) arrays up to glibc's largest mmap threshold: reused from the heap, not mapped afresh
MIN_ROWS = 64  # fewest rows per streamed block where the budget allows (the per-block O(n d^2) work stays small)
STATE_COLS = 64  # (n, max(d, d_h)) arrays: X, XW, h, s, G, the five terms, the certificate's (52 measured)


@dataclass
class DenseHead(ref_attention.HeadCache):
    """The exact head of the fast path: :class:`reference.attention.HeadCache` with ``f`` None when streamed."""

    causal: bool = False
    block: int = 0  # rows per block; n when f is kept
    XW: np.ndarray | None = None  # (n, d) X W, the query side of every recomputed block of logits
    XT: np.ndarray | None = None  # (d, n) X^T, contiguous: the key side

    @property
    def kept(self) -> bool:
        """True when the whole f is held (b = n, the reference's dense head)."""
        return self.f is not None


def working_set(n: int, d: int, d_h: int, block: int) -> int:
    """Bytes of one pass of the streamed exact head with ``block`` rows per block (module docstring)."""
    return 8 * n * (ROW_ARRAYS * block + STATE_COLS * max(d, d_h))


def row_block(n: int, d: int, d_h: int, budget: int) -> int:
    """Rows per block: n (f kept) when that fits ``budget`` bytes, else the largest block that fits, at most
    :data:`STREAM_BYTES` per (b, n) array (and at least :data:`MIN_ROWS` rows where the budget allows).

    Raises ValueError naming ``memory_budget`` when not even one row fits."""
    need = working_set(n, d, d_h, 1)
    if need > budget:
        raise ValueError(
            f"memory_budget: the exact head at n = {n}, d = {d}, d_h = {d_h} needs at least {need} bytes (blocks of "
            f"one row of the attention matrix) > memory_budget = {budget} bytes; expected memory_budget >= {need}"
        )
    fits = 1 + (budget - need) // (8 * n * ROW_ARRAYS)
    if fits >= n:
        return n
    return int(min(fits, max(MIN_ROWS, STREAM_BYTES // (8 * n))))


def streamed_contractions(n: int, d: int, d_h: int, block: int, passes: str) -> list[tuple[str, str, str, int]]:
    r"""What a streamed pass executes beyond :func:`reference.attention.head_contractions`, as (pass, kind, what,
    multiply-adds) derived from the shapes :func:`reference.blocked.attention_rows` and
    :func:`reference.blocked.backward_rows` use: recomputing the logits $(XW)_b X^\top$ and their exp ($n^2 d$ and
    $n^2$ per pass), and in the backward, per block of b rows, $X W^\top$ (n d d) and $(f_b^\top G_b) W_V^\top$
    (n d_h d) formed again by each of the $\lceil n/b \rceil$ blocks (once in the count of the dense head). Adding
    the blocks' partial sums ($f^\top Z$, the key-row terms, dW) is not extra: an output entry of a length-n sum
    takes $n - 1$ additions in any order, which the dense count's n multiply-adds already include. Empty when
    b = n (f kept). ``passes``: ``"products"`` (one recomputation) or ``"backward"``."""
    if block >= n:
        return []
    out = [
        (passes, "matmul", "(X W)_b X^T recomputed", n * d * n),
        (passes, "elementwise", "exp(S_b) recomputed", n * n),
    ]
    if passes == "backward":
        nb = -(-n // block)
        out.append(
            ("backward", "matmul", "X W^T, (f_b^T G_b) W_V^T again per block", (nb - 1) * (n * d * d + n * d_h * d))
        )
    return out


def _rows(dh: DenseHead, work: Work | None = None, passes: str = "", with_s: bool = False):
    """The row blocks of f, ``(r0, r1, f_b)`` (and ``s_b`` with ``with_s``): slices of the kept f, or recomputed;
    a recomputing pass (``passes``) adds its :func:`streamed_contractions` to ``work``."""
    n, d = dh.X.shape
    if work is not None:
        work.add(sum(k for *_, k in streamed_contractions(n, d, dh.h.shape[1], dh.block, passes)))
    for r0, r1 in row_blocks(n, dh.block):
        fb = dh.f[r0:r1] if dh.kept else attention_rows(dh.XW, dh.XT, dh.beta, dh.causal, r0, r1)  # (b, n)
        yield (r0, r1, fb, dh.s[r0:r1]) if with_s else (r0, r1, fb)
        del fb


def dense_forward(X, W_Q, W_K, W_V, beta: float, causal: bool, work: Work, budget: int) -> DenseHead:
    r"""The exact head's forward $s = f h$ in row blocks within ``budget`` bytes (module docstring), counted.

    X (n, d); W_Q, W_K, W_V (d, d_h). Raises ValueError naming ``memory_budget`` (:func:`row_block`)."""
    n, d = X.shape
    d_h = W_V.shape[1]
    b = row_block(n, d, d_h, budget)
    work.add(d * d_h * d + ref_attention.dense_head_madds(n, d, d_h, backward=False))  # W_Q W_K^T, the head
    W = W_Q @ W_K.T  # (d, d)
    if b == n:  # the dense head of the reference (one home), f kept
        c = ref_attention.head_forward(X, W, W_V, beta, causal)
        return DenseHead(c.X, c.W, c.W_V, c.beta, c.f, c.h, c.s, causal=causal, block=n)
    dh = DenseHead(X, W, W_V, beta, None, X @ W_V, np.empty((n, d_h)), causal=causal, block=b, XW=X @ W,
                   XT=np.ascontiguousarray(X.T))  # fmt: skip
    for r0, r1, fb in _rows(dh):  # counted above: the forward is the dense head's, in blocks
        dh.s[r0:r1] = fb @ dh.h  # (b, d_h)
        del fb  # before the next block is formed
    return dh


def dense_products(dh: DenseHead, Y: np.ndarray, Z: np.ndarray, work: Work) -> tuple[np.ndarray, np.ndarray]:
    r"""$(f Y, f^\top Z)$ for the exact head, Y (n, w_Y), Z (n, w_Z) -> (n, w_Y), (n, w_Z), in row blocks
    (:func:`fastpath.apply.f_products` for method ``"exact"`` and exact-forward heads). An empty Z costs nothing."""
    if dh.kept:
        return mm(work, dh.f, Y), mm(work, dh.f.T, Z)
    FY, FZ = np.empty_like(Y), np.zeros_like(Z)
    for r0, r1, fb in _rows(dh, work, "products"):
        FY[r0:r1] = mm(work, fb, Y)  # (b, w_Y)  whole rows
        if Z.shape[1]:
            FZ += mm(work, fb.T, Z[r0:r1])  # (n, w_Z)  this block's partial sums over rows
        del fb  # before the next block is formed
    return FY, FZ


def dense_backward(dh: DenseHead, G: np.ndarray) -> tuple[ref_attention.HeadGrads, int]:
    r"""The exact head's backward for upstream G (n, d_h): the five terms, dX, dW, dW_V
    (:func:`reference.attention.head_vjp` when f is kept, :func:`reference.blocked.backward_rows` over recomputed
    blocks otherwise) and its counted multiply-adds."""
    n, d = dh.X.shape
    d_h = G.shape[1]
    work = Work(ref_attention.dense_head_madds(n, d, d_h, forward=False))  # reference.attention.head_contractions
    if dh.kept:
        return ref_attention.head_vjp(G, dh), work.madds
    hg = backward_rows(G, dh.X, dh.W, dh.W_V, dh.h, dh.beta, _rows(dh, work, "backward", with_s=True))
    return hg, work.madds


__all__ = ["MIN_ROWS", "ROW_ARRAYS", "STATE_COLS", "STREAM_BYTES", "DenseHead", "dense_backward", "dense_forward",
           "dense_products", "row_block", "streamed_contractions", "working_set"]  # fmt: skip
