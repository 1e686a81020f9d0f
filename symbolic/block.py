r"""The non-attention block $g(Z) = \varphi(Z W_g)$ and the residual wrapper, in explicit entries.

Paper: Lemma H.1 / H.2 (= Lemma 5.4, Eq. 25), Def. J.1–J.2 and Lemma J.3 (Eq. 32); spec §2.6, §2.8.
$\varphi$ is an arbitrary differentiable activation: $\varphi(U_{ij})$ is an atom $\varphi_{ij}$ whose derivative is
a second atom $\varphi'_{ij}$, so every statement proved here holds for every $\varphi$.

.. math::
    G = \partial L/\partial Y = (gT \odot \varphi'(Y W_g))\, W_g^\top,\qquad
    \partial L/\partial W_g = Y^\top (gT \odot \varphi'(Y W_g))\qquad (T = \varphi(Y W_g)),

.. math::
    Z = X + \mathrm{Attn}(X),\ T = Z + \varphi(Z W_g):\quad
    \partial L/\partial Z = gT + (gT\odot\varphi'(ZW_g))W_g^\top,\quad
    \partial L/\partial X = \partial L/\partial Z + \mathrm{VJP}_{\mathrm{Attn}}(\partial L/\partial Z).

Shape legend: n = tokens, d = width; Y = Attn_i (n, d), W_g (d, d), gT = dL/dT_i (n, d).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symbolic.chain import Chain
from symbolic.closed_forms import corrected_dX, hadamard
from symbolic.explicit import Attention, attention, check_sizes, entries


@dataclass
class Block:
    """$T = \\varphi(U)$, $U = Y W_g$ over a given input $Y$; atoms registered in ``chain``."""

    Y: sp.Matrix  # (n, d) block input
    W_g: sp.Matrix  # (d, d)
    gT: sp.Matrix  # (n, d) upstream dL/dT
    U: sp.Matrix  # (n, d) pre-activation
    phi: sp.Matrix  # (n, d) atoms phi(U_ij)
    dphi: sp.Matrix  # (n, d) atoms phi'(U_ij)


def add_block(chain: Chain, Y: sp.Matrix, tag: str = "") -> Block:
    """Register $\\varphi(Y W_g)$ on top of ``Y`` (whose entries may contain other atoms)."""
    n, d = Y.shape
    W_g = entries(f"u{tag}", d, d)
    gT = entries(f"t{tag}", n, d)
    U = (Y * W_g).applyfunc(sp.expand)
    phi = entries(f"phi{tag}", n, d)
    dphi = entries(f"phi'{tag}", n, d)
    for i in range(n):
        for j in range(d):
            chain.define(phi[i, j], "fn", U[i, j], partials=(dphi[i, j],), group="block")
    return Block(Y, W_g, gT, U, phi, dphi)


def block_only(n: int, d: int) -> tuple[Chain, Block, sp.Expr]:
    """Lemma H.2 setting: $Y$ free symbols, $T = \\varphi(Y W_g)$, $L = \\langle gT, T\\rangle$."""
    n, d, _ = check_sizes(n, d)
    chain = Chain()
    b = add_block(chain, entries("y", n, d))
    L = sp.expand(sum(b.gT[i, j] * b.phi[i, j] for i in range(n) for j in range(d)))
    return chain, b, L


def corrected_G(b: Block) -> sp.Matrix:
    r"""Eq. (25): $G_i = (gT_i \odot \varphi'(\mathrm{Attn}_i W_g)) W_g^\top$. Shape (n, d)."""
    return hadamard(b.gT, b.dphi) * b.W_g.T


def corrected_dWg(b: Block) -> sp.Matrix:
    r"""Spec §2.6 (not in the paper): $\partial L/\partial W_g = Y^\top(gT\odot\varphi'(YW_g))$. Shape (d, d)."""
    return b.Y.T * hadamard(b.gT, b.dphi)


@dataclass
class ResidualLayer:
    """$Z = X + s(X)$, $T = Z + \\varphi(Z W_g)$ (``with_block``) or $T = Z$; $L = \\langle gT, T\\rangle$."""

    attn: Attention
    block: Block | None
    gT: sp.Matrix
    L: sp.Expr


def residual_layer(n: int, d: int, *, with_block: bool, causal: bool = False) -> ResidualLayer:
    """Def. J.1 (and J.2 when ``with_block``), built on the explicit attention layer."""
    m = attention(n, d, causal=causal)
    Z = m.X + m.s
    if with_block:
        b = add_block(m.chain, Z)
        T = Z + b.phi
        gT = b.gT
    else:
        b, T, gT = None, Z, m.G  # J.3 with H = Attn: the model's G plays dL/dY
    L = sp.expand(sum(gT[i, j] * T[i, j] for i in range(n) for j in range(d)))
    return ResidualLayer(m, b, gT, L)


def vjp_attention(m: Attention, upstream: sp.Matrix) -> sp.Matrix:
    """Formula (R1) with $G$ := ``upstream`` (substituted into the model's G symbols). Shape (n, d)."""
    return corrected_dX(m).xreplace(dict(zip(m.G, upstream, strict=True)))


def corrected_residual_dX(r: ResidualLayer) -> sp.Matrix:
    r"""Lemma J.3 (twice): $\partial L/\partial Z = gT + \mathrm{VJP}_g(gT)$, then
    $\partial L/\partial X = \partial L/\partial Z + \mathrm{VJP}_{\mathrm{Attn}}(\partial L/\partial Z)$."""
    dZ = r.gT + (corrected_G(r.block) if r.block is not None else sp.zeros(*r.gT.shape))
    return dZ + vjp_attention(r.attn, dZ)


def layer_with_block(n: int, d: int, causal: bool = False) -> tuple[Attention, Block, sp.Expr]:
    """Lemma H.2 composed with C.4: $T = \\varphi(s(X) W_g)$ (no residual), $L = \\langle gT, T\\rangle$."""
    m = attention(n, d, causal=causal)
    b = add_block(m.chain, m.s)
    L = sp.expand(sum(b.gT[i, j] * b.phi[i, j] for i in range(n) for j in range(d)))
    return m, b, L


def corrected_layer_dX(m: Attention, b: Block) -> sp.Matrix:
    r"""$\partial L/\partial X = \mathrm{VJP}_{\mathrm{Attn}}(G_i)$ with $G_i$ from Eq. (25). Shape (n, d)."""
    return vjp_attention(m, corrected_G(b))
