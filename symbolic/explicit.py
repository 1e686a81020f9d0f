r"""One attention layer written out entry by entry, and its gradients derived by the chain rule.

Paper: Def. 1.2 / C.3 (self-attention), Def. C.6–C.10 ($u$, $\alpha$, $f$, $h$, $s$), Def. I.5 (causal mask),
Def. K.1 (multi-head); spec §2.1, §2.7, §2.9. Only the *forward* definitions are written here; every gradient
is obtained from them by :class:`symbolic.chain.Chain` (never from a closed form, never ``MatrixSymbol.diff``).

.. math::
    S^{(l)} = \beta_l\, X_q W^{(l)} X_k^\top,\quad a^{(l)}_{ij} = e^{S^{(l)}_{ij}}\ [M_{ij}=1],\quad
    r^{(l)}_i = 1 / \textstyle\sum_k a^{(l)}_{ik},\quad f^{(l)} = \mathrm{diag}(r^{(l)})\, a^{(l)},

.. math::
    h^{(l)} = X_v W_V^{(l)},\quad s = [f^{(1)} h^{(1)}, \dots, f^{(H)} h^{(H)}],\quad
    L = \langle G, s\rangle = \textstyle\sum_{ij} G_{ij} s_{ij}.

$L = \langle G, s\rangle$ with $G$ a matrix of free symbols is the general case: the gradient of any loss is
the vector-Jacobian product with $G = \partial L/\partial s$, and that product is linear in $G$ (Lemma 3.4).
The three slots $X_q, X_k, X_v$ are separate symbols when ``slots=True`` (to isolate the query, key and value
paths of spec §2.3) and all equal to $X$ otherwise. $W^{(l)}$ is either a free non-symmetric $d\times d$
matrix (``weights="W"``) or $W_Q^{(l)} W_K^{(l)\top}$ with $W_Q^{(l)}, W_K^{(l)}$ the column blocks of free
$d\times d$ matrices (``weights="QK"``).

Shape legend: n = tokens, d = width, H = heads, d_h = d / H.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from symbolic.chain import Chain

MAX_N = 6  # explicit entries grow like n^2 d; beyond this the expansions are not "tiny" any more
MAX_D = 4


def check_sizes(n: object, d: object, heads: object = 1) -> tuple[int, int, int]:
    """Validate (n, d, heads); return them as ints. ``heads`` must divide ``d``."""
    for name, val, hi in (("n", n, MAX_N), ("d", d, MAX_D), ("heads", heads, MAX_D)):
        if not isinstance(val, int) or isinstance(val, bool):
            raise TypeError(f"{name}: expected an int, got {type(val).__name__} {val!r}")
        if not 1 <= val <= hi:
            raise ValueError(f"{name}: expected an integer in [1, {hi}], got {val}")
    if d % heads:
        raise ValueError(f"heads: expected a divisor of d = {d}, got {heads}")
    return n, d, heads


def entries(name: str, rows: int, cols: int) -> sp.Matrix:
    """A rows x cols matrix of fresh symbols ``name_ij`` (1-based indices, as in the paper)."""
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{{{i + 1}{j + 1}}}"))


def causal_mask(n: int) -> sp.Matrix:
    """Def. I.2: $M_{ij} = 1$ iff $i \\ge j$ (diagonal included). Shape (n, n)."""
    return sp.Matrix(n, n, lambda i, j: 1 if i >= j else 0)


@dataclass
class Head:
    """One head's explicit objects. Shapes: M (d, d), W_V (d, d_h), G (n, d_h), a and f (n, n), r (n,)."""

    beta: sp.Symbol
    M: sp.Matrix  # W^{(l)} = W_Q^{(l)} W_K^{(l)T} (or free W)
    W_Q: sp.Matrix | None
    W_K: sp.Matrix | None
    W_V: sp.Matrix
    G: sp.Matrix
    S: sp.Matrix  # logits, polynomial in the base symbols
    a: sp.Matrix  # exp atoms (0 outside the mask)
    r: sp.Matrix  # reciprocal row sums, column (n, 1)
    f: sp.Matrix  # diag(r) a
    h: sp.Matrix  # X_v W_V^{(l)}
    s: sp.Matrix  # f h


@dataclass
class Attention:
    """The explicit single layer: base symbols, atoms (in ``chain``), the output ``s`` and the loss ``L``."""

    n: int
    d: int
    causal: bool
    weights: str
    X: sp.Matrix
    Xq: sp.Matrix
    Xk: sp.Matrix
    Xv: sp.Matrix
    W: sp.Matrix | None
    W_Q: sp.Matrix | None
    W_K: sp.Matrix | None
    W_V: sp.Matrix
    G: sp.Matrix
    heads: list[Head]
    s: sp.Matrix
    L: sp.Expr
    chain: Chain
    unslot: dict[sp.Symbol, sp.Symbol] = field(default_factory=dict)

    @property
    def mask(self) -> sp.Matrix:
        return causal_mask(self.n) if self.causal else sp.ones(self.n, self.n)

    def to_X(self, M: sp.Matrix) -> sp.Matrix:
        """Identify the three slots with X (no-op when the model has no separate slots)."""
        return M.xreplace(self.unslot) if self.unslot else M


def attention(
    n: int,
    d: int,
    *,
    causal: bool = False,
    heads: int = 1,
    weights: str = "W",
    slots: bool = False,
) -> Attention:
    """Build the explicit layer of Def. 1.2 (β symbolic) with all atoms registered in a fresh Chain."""
    n, d, heads = check_sizes(n, d, heads)
    if weights not in ("W", "QK"):
        raise ValueError(f"weights: expected 'W' or 'QK', got {weights!r}")
    if weights == "W" and heads != 1:
        raise ValueError(f"weights: 'W' (a free merged weight) needs heads = 1, got heads = {heads}")
    X = entries("x", n, d)
    if slots:
        Xq, Xk, Xv = entries("xq", n, d), entries("xk", n, d), entries("xv", n, d)
        unslot = {s: x for Y in (Xq, Xk, Xv) for s, x in zip(Y, X, strict=True)}
    else:
        Xq = Xk = Xv = X
        unslot = {}
    W = entries("w", d, d) if weights == "W" else None
    W_Q = entries("q", d, d) if weights == "QK" else None
    W_K = entries("k", d, d) if weights == "QK" else None
    W_V = entries("v", d, d)
    G = entries("g", n, d)
    mask = causal_mask(n) if causal else sp.ones(n, n)
    chain = Chain()
    dh = d // heads
    hs: list[Head] = []
    for l in range(heads):
        cols = slice(l * dh, (l + 1) * dh)
        tag = "" if heads == 1 else f"^{{({l + 1})}}"
        beta = sp.Symbol("beta" if heads == 1 else f"beta_{l + 1}")
        if W is not None:
            M, WQl, WKl = W, None, None
        else:
            WQl, WKl = W_Q[:, cols], W_K[:, cols]
            M = WQl * WKl.T  # (d, d), rank <= d_h
        S = (beta * Xq * M * Xk.T).applyfunc(sp.expand)  # (n, n)
        a = sp.zeros(n, n)
        for i in range(n):
            for j in range(n):
                if mask[i, j]:
                    a[i, j] = sp.Symbol(f"a{tag}_{{{i + 1}{j + 1}}}")
                    chain.define(a[i, j], "exp", S[i, j], group="numerator")
        r = sp.zeros(n, 1)
        for i in range(n):
            r[i] = sp.Symbol(f"r{tag}_{{{i + 1}}}")
            chain.define(r[i], "recip", sum(a.row(i)), group="normalizer")
        f = sp.diag(*r) * a  # (n, n)
        WVl, Gl = W_V[:, cols], G[:, cols]
        h = Xv * WVl  # (n, d_h)
        hs.append(Head(beta, M, WQl, WKl, WVl, Gl, S, a, r, f, h, f * h))
    s = sp.Matrix.hstack(*(hd.s for hd in hs))  # (n, d)
    L = sp.expand(sum(G[i, j] * s[i, j] for i in range(n) for j in range(d)))
    return Attention(n, d, causal, weights, X, Xq, Xk, Xv, W, W_Q, W_K, W_V, G, hs, s, L, chain, unslot)


# ------------------------------------------------------------------------------------------------------------
# derived gradients: chain rule only


def derive_dX(m: Attention) -> sp.Matrix:
    r"""$\partial L/\partial X$ by the chain rule (all three slots equal to X). Shape (n, d)."""
    if m.unslot:
        raise ValueError("m: derive_dX needs a model built with slots=False")
    return m.chain.grad(m.L, m.X)


PATH_PARTS = {
    # name: (slot, groups)   spec §2.3: 2/4 query, 6/7 key, 8 value; 2,6 normalizer; 4,7 numerator
    "D4": ("q", ("numerator",)),
    "D2": ("q", ("normalizer",)),
    "D7": ("k", ("numerator",)),
    "D6": ("k", ("normalizer",)),
    "D8": ("v", ("direct",)),
}


def derive_term(m: Attention, name: str) -> sp.Matrix:
    r"""One of the five terms of Lemma D.17, derived from its slot and part (spec §2.3). Shape (n, d)."""
    if not m.unslot:
        raise ValueError("m: derive_term needs a model built with slots=True")
    if name not in PATH_PARTS:
        raise ValueError(f"name: expected one of {sorted(PATH_PARTS)}, got {name!r}")
    slot, groups = PATH_PARTS[name]
    Y = {"q": m.Xq, "k": m.Xk, "v": m.Xv}[slot]
    return m.to_X(m.chain.grad(m.L, Y, groups))


def derive_path(m: Attention, path: str) -> sp.Matrix:
    r"""The whole query, key or value path: the gradient with respect to one slot. Shape (n, d)."""
    slots = {"query": m.Xq, "key": m.Xk, "value": m.Xv}
    if path not in slots:
        raise ValueError(f"path: expected one of {sorted(slots)}, got {path!r}")
    if not m.unslot:
        raise ValueError("m: derive_path needs a model built with slots=True")
    return m.to_X(m.chain.grad(m.L, slots[path]))


def derive_weight(m: Attention, which: str) -> sp.Matrix:
    r"""$\partial L/\partial W$, $\partial L/\partial W_Q$, $\partial L/\partial W_K$ or $\partial L/\partial W_V$
    by the chain rule. Shape (d, d)."""
    table = {"W": m.W, "W_Q": m.W_Q, "W_K": m.W_K, "W_V": m.W_V}
    if which not in table:
        raise ValueError(f"which: expected one of {sorted(table)}, got {which!r}")
    if table[which] is None:
        raise ValueError(f"which: {which!r} is not a free symbol matrix of a model with weights={m.weights!r}")
    return m.to_X(m.chain.grad(m.L, table[which]))
