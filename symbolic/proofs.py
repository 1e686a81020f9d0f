r"""The catalogue of symbolic statements and the exact proof runner.

Paper: Lemma D.9 / D.17, F.4, §C.2, G.3, H.2, I.5–I.8, J.3, K.2, Def. 3.1 / Lemma 3.4; spec §2.2, §2.3,
§2.6–2.9. Each :class:`Statement` pairs a *derived* matrix (chain rule from the forward definitions,
:mod:`symbolic.chain`) with a *closed form* (:mod:`symbolic.closed_forms`, :mod:`symbolic.block`) and is proved
at one size by ``expand(derived - closed) == 0`` entry by entry. β is a free symbol (one per head), so every
proof holds for all β at once, including β = 1 and β = 1/d.

What "proved" means: at the listed (n, d[, heads]) the identity holds for all real inputs (the atoms stand for
$e^{S_{ij}}$, $1/\sum_k e^{S_{ik}}$, $\varphi(U_{ij})$, $\varphi'(U_{ij})$, and partials of arbitrary unit
losses). For *all* n, d only the five terms are proved, by :mod:`symbolic.index`.

Shape legend: n = tokens, d = width, H = heads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from symbolic import block as blk
from symbolic import closed_forms as cf
from symbolic import explicit as ex
from symbolic import literal as lit
from symbolic.chain import matrices_equal
from symbolic.loss import unit_loss_model

Size = tuple[int, int, int]  # (n, d, heads)

SMALL: tuple[Size, ...] = tuple((n, d, 1) for n in (1, 2, 3) for d in (1, 2))
FIVE_TERM_SIZES: tuple[Size, ...] = (*SMALL, (4, 2, 1))
HEAD_SIZES: tuple[Size, ...] = ((1, 2, 2), (2, 2, 2), (3, 2, 2))
LITERAL_SIZES: tuple[Size, ...] = ((2, 1, 1), (2, 2, 1), (3, 1, 1), (3, 2, 1))
LITERAL_LOSS_SIZES: tuple[Size, ...] = ((2, 1, 1), (2, 2, 1), (3, 1, 1))  # (3, 2) takes ~21 s: over budget
LITERAL_CAUSAL_SIZES: tuple[Size, ...] = ((2, 1, 1), (2, 2, 1), (3, 1, 1), (3, 2, 1))
# quick profile: every statement at (1,1), (2,1), (2,2) (and the heads at (2,2,2))
QUICK = frozenset({(1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2)})

Pair = tuple[sp.Matrix, sp.Matrix]  # (derived, closed)


@dataclass(frozen=True)
class Statement:
    """One identity to prove: ``pair(n, d, heads)`` returns (derived, closed form)."""

    name: str
    label: str
    title: str
    spec: str
    closed_latex: str
    sizes: tuple[Size, ...]
    pair: Callable[[int, int, int], Pair]
    quick: tuple[Size, ...] | None = None  # overrides the QUICK subset

    def quick_sizes(self) -> tuple[Size, ...]:
        if self.quick is not None:
            return self.quick
        return tuple(s for s in self.sizes if s in QUICK)


@dataclass(frozen=True)
class Proof:
    """The outcome of one exact proof at one size."""

    name: str
    size: Size
    holds: bool
    seconds: float


# ------------------------------------------------------------------------------------------------------------
# pairs (derived, closed) — one function per family


def _term(name: str, causal: bool) -> Callable[[int, int, int], Pair]:
    def pair(n: int, d: int, heads: int) -> Pair:
        m = ex.attention(n, d, causal=causal, slots=True)
        return ex.derive_term(m, name), cf.corrected_terms(m, m.heads[0])[name]

    return pair


def _path(path: str) -> Callable[[int, int, int], Pair]:
    def pair(n: int, d: int, heads: int) -> Pair:
        m = ex.attention(n, d, slots=True)
        return ex.derive_path(m, path), cf.corrected_paths(m, m.heads[0])[path]

    return pair


def _dX(causal: bool) -> Callable[[int, int, int], Pair]:
    def pair(n: int, d: int, heads: int) -> Pair:
        m = ex.attention(n, d, causal=causal, heads=heads, weights="W" if heads == 1 else "QK")
        return ex.derive_dX(m), cf.corrected_dX(m)

    return pair


def _weight(which: str, causal: bool = False) -> Callable[[int, int, int], Pair]:
    closed = {"W": cf.corrected_dW, "W_Q": cf.corrected_dWQ, "W_K": cf.corrected_dWK, "W_V": cf.corrected_dWV}

    def pair(n: int, d: int, heads: int) -> Pair:
        weights = "W" if which == "W" else "QK"
        m = ex.attention(n, d, causal=causal, heads=heads, weights=weights)
        return ex.derive_weight(m, which), cf.all_heads(m, closed[which])

    return pair


def _G_i(n: int, d: int, heads: int) -> Pair:
    ch, b, L = blk.block_only(n, d)
    return ch.grad(L, b.Y), blk.corrected_G(b)


def _dWg(n: int, d: int, heads: int) -> Pair:
    ch, b, L = blk.block_only(n, d)
    return ch.grad(L, b.W_g), blk.corrected_dWg(b)


def _layer(n: int, d: int, heads: int) -> Pair:
    m, b, L = blk.layer_with_block(n, d)
    return m.chain.grad(L, m.X), blk.corrected_layer_dX(m, b)


def _residual(with_block: bool) -> Callable[[int, int, int], Pair]:
    def pair(n: int, d: int, heads: int) -> Pair:
        r = blk.residual_layer(n, d, with_block=with_block)
        return r.attn.chain.grad(r.L, r.attn.X), blk.corrected_residual_dX(r)

    return pair


def _unit_loss(n: int, d: int, heads: int) -> Pair:
    m, L, G = unit_loss_model(n, d)
    return m.chain.grad(L, m.X), blk.vjp_attention(m, G)


def _literal_dX(causal: bool) -> Callable[[int, int, int], Pair]:
    def pair(n: int, d: int, heads: int) -> Pair:
        m = ex.attention(n, d, causal=causal)
        return lit.literal_dX(m), ex.derive_dX(m).xreplace(lit.identifications(m))

    return pair


def _literal_unit_loss(causal: bool) -> Callable[[int, int, int], Pair]:
    def pair(n: int, d: int, heads: int) -> Pair:
        m = ex.attention(n, d, causal=causal)
        dX, G = lit.literal_unit_loss_dX(m)
        return dX, blk.vjp_attention(m, G).xreplace(lit.identifications(m))

    return pair


# ------------------------------------------------------------------------------------------------------------
# the catalogue

_TERM_LATEX = {
    "D8": r"D_8 = f^{\top} G W_V^{\top}",
    "D4": r"D_4 = \beta\, p_1 X W^{\top}",
    "D2": r"D_2 = -\beta\, p_2 X W^{\top}",
    "D7": r"D_7 = \beta\, p_1^{\top} X W",
    "D6": r"D_6 = -\beta\, p_2^{\top} X W",
}
_TERM_TITLE = {
    "D8": "value path",
    "D4": "query path, numerator (p1) part",
    "D2": "query path, normalizer (p2) part",
    "D7": "key path, numerator (p1) part",
    "D6": "key path, normalizer (p2) part",
}
R1 = r"\frac{\partial L}{\partial X} = f^{\top} G W_V^{\top} + \beta\,(P X W^{\top} + P^{\top} X W)"
R1_CAUSAL = r"\frac{\partial L}{\partial X} = f^{M\top} G W_V^{\top} + \beta\,(P^M X W^{\top} + P^{M\top} X W)"
_CAUSAL_LATEX = {
    "D8": r"D_8 = f^{M\top} G W_V^{\top}",
    "D4": r"D_4 = \beta\, p^M_1 X W^{\top}",
    "D2": r"D_2 = -\beta\, p^M_2 X W^{\top}",
    "D7": r"D_7 = \beta\, p^{M\top}_1 X W",
    "D6": r"D_6 = -\beta\, p^{M\top}_2 X W",
}


def _catalogue() -> dict[str, Statement]:
    st: list[Statement] = []
    for t in ("D8", "D4", "D2", "D7", "D6"):
        st.append(Statement(t, "Lemma D.17", _TERM_TITLE[t], "§2.3", _TERM_LATEX[t],
                            FIVE_TERM_SIZES, _term(t, False)))  # fmt: skip
    paths = {
        "query": r"D_4 + D_2 = \beta\, P X W^{\top}",
        "key": r"D_7 + D_6 = \beta\, P^{\top} X W",
        "value": r"D_8 = f^{\top} G W_V^{\top}",
    }
    for p, tex in paths.items():
        st.append(Statement(p, "Lemma D.9", f"{p} path of dL/dT_(i-1)", "§2.3", tex,
                            FIVE_TERM_SIZES, _path(p)))  # fmt: skip
    st += [
        Statement("dX", "Lemma D.9", "dL/dT_(i-1): the sum of the five terms (R1)", "§2.2", R1,
                  FIVE_TERM_SIZES, _dX(False)),
        Statement("dW", "Lemma F.4", "dL/dW with W = W_Q W_K^T (R2)", "§2.2",
                  r"\frac{\partial L}{\partial W} = \beta\, X^{\top} P X", SMALL, _weight("W")),
        Statement("dW_Q", "Claim §C.2", "dL/dW_Q through W = W_Q W_K^T (R4)", "§2.2",
                  r"\frac{\partial L}{\partial W_Q} = \frac{\partial L}{\partial W} W_K", SMALL,
                  _weight("W_Q")),
        Statement("dW_K", "Claim §C.2", "dL/dW_K through W = W_Q W_K^T (R4)", "§2.2",
                  r"\frac{\partial L}{\partial W_K} = \Big(\frac{\partial L}{\partial W}\Big)^{\top} W_Q",
                  SMALL, _weight("W_K")),
        Statement("dW_V", "Lemma G.3", "dL/dW_V, corrected (R3)", "§2.2",
                  r"\frac{\partial L}{\partial W_V} = X^{\top} f^{\top} G", SMALL, _weight("W_V")),
        Statement("G_i", "Lemma H.2", "G_i = dL/dAttn_i through g(Z) = phi(Z W_g), Eq. (25)", "§2.6",
                  r"G_i = (gT_i \odot \varphi'(\mathrm{Attn}_i W_g))\, W_g^{\top}", SMALL, _G_i),
        Statement("dW_g", "Lemma H.2", "dL/dW_g of the block g(Z) = phi(Z W_g)", "§2.6",
                  r"\frac{\partial L}{\partial W_g} = \mathrm{Attn}_i^{\top}(gT_i \odot \varphi'(\mathrm{Attn}_i W_g))",
                  SMALL, _dWg),
        Statement("layer", "Lemma H.2", "one layer T = phi(Attn(X) W_g): G_i by Eq. (25), then (R1)", "§2.6",
                  r"\frac{\partial L}{\partial X} = \mathrm{VJP}_{\mathrm{Attn}}(G_i)", SMALL, _layer),
    ]  # fmt: skip
    for t in ("D8", "D4", "D2", "D7", "D6"):
        st.append(Statement(f"causal.{t}", "Lemma I.7" if t in ("D8", "D2", "D6") else "Lemma I.8",
                            f"causal {t}: f replaced by f^M = D^-1 (M o A)", "§2.7",
                            _CAUSAL_LATEX[t],
                            SMALL, _term(t, True)))  # fmt: skip
    st += [
        Statement("causal.dX", "Lemma I.7", "causal dL/dX (R1 with f^M)", "§2.7", R1_CAUSAL,
                  SMALL, _dX(True)),
        Statement("causal.dW", "Lemma I.8", "causal dL/dW (R2 with f^M)", "§2.7",
                  r"\frac{\partial L}{\partial W} = \beta\, X^{\top} P^M X", SMALL, _weight("W", True)),
        Statement("causal.dW_V", "Lemma I.7", "causal dL/dW_V (R3 with f^M)", "§2.7",
                  r"\frac{\partial L}{\partial W_V} = X^{\top} f^{M\top} G", SMALL, _weight("W_V", True)),
        Statement("mh.dX", "Lemma K.2", "multi-head dL/dX: (R1) summed over heads", "§2.9",
                  r"\frac{\partial L}{\partial X} = \sum_l f_l^{\top} G^{(l)} W_V^{(l)\top}"
                  r" + \beta_l (P_l X W^{(l)\top} + P_l^{\top} X W^{(l)})", HEAD_SIZES, _dX(False)),
        Statement("mh.dW_Q", "Lemma K.2", "multi-head dL/dW_Q, column block l", "§2.9",
                  r"\frac{\partial L}{\partial W_Q^{(l)}} = \beta_l X^{\top} P_l X\, W_K^{(l)}", HEAD_SIZES,
                  _weight("W_Q")),
        Statement("mh.dW_K", "Lemma K.2", "multi-head dL/dW_K, column block l", "§2.9",
                  r"\frac{\partial L}{\partial W_K^{(l)}} = \beta_l X^{\top} P_l^{\top} X\, W_Q^{(l)}",
                  HEAD_SIZES, _weight("W_K")),
        Statement("mh.dW_V", "Lemma K.2", "multi-head dL/dW_V, column block l", "§2.9",
                  r"\frac{\partial L}{\partial W_V^{(l)}} = X^{\top} f_l^{\top} G^{(l)}", HEAD_SIZES,
                  _weight("W_V")),
        Statement("residual.attn", "Lemma J.3", "Y = X + Attn(X): dL/dX = G + VJP_Attn(G), Eq. (32)", "§2.8",
                  r"\frac{\partial L}{\partial X} = G + \mathrm{VJP}_{\mathrm{Attn}}(G)", SMALL,
                  _residual(False)),
        Statement("residual.layer", "Lemma J.3", "Z = X + Attn(X), T = Z + phi(Z W_g): J.3 twice", "§2.8",
                  r"\frac{\partial L}{\partial X} = \frac{\partial L}{\partial Z}"
                  r" + \mathrm{VJP}_{\mathrm{Attn}}\Big(\frac{\partial L}{\partial Z}\Big),\ "
                  r"\frac{\partial L}{\partial Z} = gT + (gT \odot \varphi'(Z W_g)) W_g^{\top}",
                  SMALL, _residual(True)),
        Statement("unit_loss", "Lemma 3.4", "L = sum of unit losses of all outputs: dL/dX = VJP(G)", "§2.2",
                  r"\frac{\partial L}{\partial X} = \sum_{j,k} G_{jk} \frac{\partial s_{jk}}{\partial X}"
                  r" = \mathrm{VJP}_{\mathrm{Attn}}(G),\ G = \sum_{j,k}\frac{\partial \ell_{jk}}{\partial s}",
                  SMALL, _unit_loss),
        Statement("literal.dX", "Lemma D.9", "sympy.diff of the literal exp/quotient map equals the chain rule",
                  "§2.2", R1, LITERAL_SIZES, _literal_dX(False)),
        Statement("literal.causal.dX", "Lemma I.7", "sympy.diff of the literal causal map equals the chain rule",
                  "§2.7", R1_CAUSAL, LITERAL_CAUSAL_SIZES, _literal_dX(True)),
        Statement("literal.unit_loss", "Lemma 3.4",
                  "sympy.diff of sum of undefined unit losses ell_jk(s) equals VJP(G)", "§2.2",
                  r"\frac{\partial}{\partial X}\sum_{j,k}\ell_{jk}(s) = \mathrm{VJP}_{\mathrm{Attn}}(G)",
                  LITERAL_LOSS_SIZES, _literal_unit_loss(False), quick=((2, 1, 1),)),
    ]  # fmt: skip
    return {s.name: s for s in st}


STATEMENTS: dict[str, Statement] = _catalogue()


def statement(name: str) -> Statement:
    """Look up a statement by name; an unknown name lists the valid ones."""
    if name not in STATEMENTS:
        raise ValueError(f"term: expected one of {', '.join(STATEMENTS)}; got {name!r}")
    return STATEMENTS[name]


def check_size_for(st: Statement, n: int, d: int, heads: int | None = None) -> Size:
    """Validate a user size for ``st``: heads default 2 for multi-head statements; divisibility enforced."""
    if heads is None:
        heads = 2 if st.name.startswith("mh.") else 1
    n, d, heads = ex.check_sizes(n, d, heads)
    if st.name.startswith("mh.") and heads < 2:
        raise ValueError(f"heads: the multi-head statement {st.name!r} needs heads >= 2, got {heads}")
    if st.name.startswith("literal.") and n < 2:
        raise ValueError(f"n: the literal route {st.name!r} needs n >= 2, got {n}")
    return n, d, heads


def prove(name: str, n: int, d: int, heads: int | None = None) -> Proof:
    """Prove statement ``name`` exactly at one size; ``holds`` is True iff every entry expands to 0."""
    st = statement(name)
    size = check_size_for(st, n, d, heads)
    t0 = time.perf_counter()
    derived, closed = st.pair(*size)
    holds = matrices_equal(derived, closed)
    return Proof(name, size, holds, time.perf_counter() - t0)


def prove_all(names: list[str] | None = None, quick: bool = False) -> list[Proof]:
    """Every statement (or those in ``names``) at every listed size (quick: the small subset)."""
    out = []
    for name in names or list(STATEMENTS):
        st = statement(name)
        for size in st.quick_sizes() if quick else st.sizes:
            out.append(prove(name, *size))
    return out


def sizes_text(sizes: tuple[Size, ...]) -> str:
    """A compact, deterministic description of a size list, e.g. '(1,1) (1,2) ... (4,2)'."""
    return " ".join(f"({n},{d})" if h == 1 else f"({n},{d},H={h})" for n, d, h in sizes)
