r"""Stacks for the weak-point experiments, run on the shipped code: :mod:`fastpath` (fixed degree, exact forward)
and :mod:`reference` (exact forward and backward). Nothing here computes attention or a gradient itself.

Paper: Lemma C.13 / I.1 at a fixed degree g, E.11, F.5, G.4 (the corrected fast per-layer gradients, spec §2.3–2.4),
H.2 and J.3 (the reverse loop), §2.10 (the exact backward maps $\mathfrak B_i: gT_i \mapsto \partial L/\partial
T_{i-1}$, linear in $gT_i$).

Spec §4 W6, W7, W14 need a **fixed degree** g and the **exact forward** (spec §2.10 treats the activations as
exact; W10 then compares with the fast forward): ``fastpath.forward(..., degree=g, exact_forward=True)``.

Shape legend: n tokens, d width, m layers, N = n d.
"""

from __future__ import annotations

import numpy as np

import fastpath
import reference
from reference.attention import head_blocks
from reference.block import ACTIVATIONS
from reference.model import Layer

RESIDUAL = {"residual": True, "activation": "tanh"}  # the stacks of spec §4 W6–W10: residual, tanh blocks


def residual_stack(
    rng: np.random.Generator, n: int, d: int, m: int, scale: float = 1.0, vg: float = 0.25
) -> tuple[np.ndarray, list[Layer]]:
    """X ~ U[-1,1]; W_Q, W_K ~ U[-scale, scale]; W_V, W_g ~ U[-vg scale, vg scale] (spec App. B pilot: vg = 0.25)."""
    X = rng.uniform(-1, 1, (n, d))
    layers = []
    for _ in range(m):
        wq, wk = rng.uniform(-scale, scale, (d, d)), rng.uniform(-scale, scale, (d, d))
        wv, wg = rng.uniform(-vg * scale, vg * scale, (d, d)), rng.uniform(-vg * scale, vg * scale, (d, d))
        layers.append(Layer(wq, wk, wv, wg))
    return X, layers


def fast_grads(X, layers, dL, g: int, *, exact_forward: bool = True, **cfg):
    """The shipped corrected fast gradient (Algorithm 1) at fixed Taylor degree g; exact forward by default.

    Certificates are not asked to be useful here (``allow_vacuous``; their float arithmetic may reach inf and numpy's
    warnings about it are silenced): the experiments measure the errors, and a non-finite gradient raises.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        ft = fastpath.forward(
            X, layers, degree=g, poly="taylor", method="lowrank", exact_forward=exact_forward, allow_vacuous=True, **cfg
        )
        fg = fastpath.backward(ft, dL)
    _finite(fg.dX, "dX", g)
    return fg


def fast_trace(X, layers, g: int, **cfg):
    """The shipped fast forward (low-rank activations) at fixed Taylor degree g (certificate may be vacuous)."""
    with np.errstate(over="ignore", invalid="ignore"):
        ft = fastpath.forward(X, layers, degree=g, poly="taylor", method="lowrank", allow_vacuous=True, **cfg)
    _finite(ft.output, "output", g)
    return ft


def _finite(a: np.ndarray, what: str, g: int) -> None:
    if not np.isfinite(a).all():
        raise ValueError(f"fast path at degree {g}: non-finite {what} (max |.| {np.nanmax(np.abs(a)):g})")


def layer_input(tr, i: int) -> np.ndarray:
    """$T_{i-1}$, the input of layer i+1 (0-based i) of a reference trace."""
    return tr.caches[i].T_in


def one_layer(tr, i: int):
    """The exact one-layer model of layer i+1 at its exact input (a reference trace)."""
    return reference.forward(
        layer_input(tr, i), [tr.layers[i]], beta=tr.beta, heads=tr.heads, residual=tr.residual, activation=tr.activation
    )


def cfg_of(tr) -> dict:
    return {"beta": tr.beta, "heads": tr.heads, "residual": tr.residual, "activation": tr.activation}


def exact_map(tr, i: int, Y: np.ndarray) -> np.ndarray:
    r"""$\mathfrak B_i(Y)$: the exact backward map of layer i+1 (reference.backward of the one-layer model)."""
    return reference.backward(one_layer(tr, i), Y).dX


def fast_map(tr, i: int, Y: np.ndarray, g: int) -> np.ndarray:
    r"""$\tilde{\mathfrak B}_i(Y)$: the shipped fast backward of layer i+1 at degree g on the exact input."""
    return fast_grads(layer_input(tr, i), [tr.layers[i]], Y, g, **cfg_of(tr)).dX


def linf_operator_norm(tr, top: int, bottom: int = 0) -> float:
    r"""Exact $\|\mathfrak B_{bottom+1} \cdots \mathfrak B_{top+1}\|_{\infty\to\infty}$ (max row sum of |matrix|).

    The composed map is the backward of the sub-stack of layers bottom..top (reference); its matrix is built from
    the N = n d basis vectors. Cost: N reference backward passes of the sub-stack.
    """
    sub = reference.forward(layer_input(tr, bottom), tr.layers[bottom : top + 1], **cfg_of(tr))
    n, d = sub.X.shape
    N = n * d
    M = np.empty((N, N))
    for k in range(N):
        E = np.zeros(N)
        E[k] = 1.0
        M[:, k] = reference.backward(sub, E.reshape(n, d)).dX.ravel()  # column k = map(e_k)
    return float(np.abs(M).sum(axis=1).max())


def power_iteration(tr, i: int, rng: np.random.Generator, iters: int = 30) -> float:
    r"""Spectral radius of $\mathfrak B_i$ by power iteration, $x \leftarrow \mathfrak B_i x / \|\cdot\|_\infty$."""
    one = one_layer(tr, i)
    x = rng.standard_normal(one.X.shape)
    lam = 0.0
    for _ in range(iters):
        y = reference.backward(one, x).dX
        lam = float(np.abs(y).max() / np.abs(x).max())
        x = y / np.abs(y).max()
    return lam


def logit_max(tr, i: int) -> float:
    r"""max over heads of $\max_{ij} |\beta q_i \cdot k_j|$ at layer i+1 (the $\bar R$ of spec §2.5)."""
    L, X = tr.layers[i], layer_input(tr, i)
    return max(
        float(np.abs(float(tr.beta) * ((X @ wq) @ (X @ wk).T)).max())
        for wq, wk, _ in head_blocks(L.W_Q, L.W_K, L.W_V, tr.heads)
    )


def lip_bound(tr, i: int) -> dict[str, float]:
    r"""Spec §2.10 bound $C_i$: $\mathrm{Lip}(\mathfrak B^g) \le d\|\varphi'\|\|W_g\|$,
    $\mathrm{Lip}(\mathfrak B^{att}) \le c_f d_h \|W_V\| + 2\beta d^2 (1+c_f)\|h\|\|X\|\|W\|$ summed over heads;
    residual: $(1+\mathrm{Lip}_g)(1+\mathrm{Lip}_{att})$.
    """
    c, L = tr.caches[i], tr.layers[i]
    d = tr.X.shape[1]
    mx = lambda a: float(np.abs(a).max())  # noqa: E731
    lip_g = 1.0
    if c.block is not None:
        lip_g = d * mx(ACTIVATIONS[tr.activation].dphi(c.block.U)) * mx(L.W_g)
    lip_att, cf_max = 0.0, 0.0
    for hc in c.attn.heads:
        cf = float(hc.f.sum(axis=0).max())  # c_f: the largest column sum of f
        cf_max = max(cf_max, cf)
        lip_att += cf * hc.W_V.shape[1] * mx(hc.W_V) + 2 * float(hc.beta) * d * d * (1 + cf) * mx(hc.h) * mx(hc.X) * mx(
            hc.W
        )
    if tr.residual:
        C = (1 + (lip_g if c.block is not None else 0.0)) * (1 + lip_att)
    else:
        C = (lip_g if c.block is not None else 1.0) * lip_att
    return {"C_bound": C, "lip_g": lip_g, "lip_att": lip_att, "c_f": cf_max}
