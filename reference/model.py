r"""The multi-layer model (Def. 1.3, 3.3; residual Def. J.1–J.2) and its exact backward (Lemma 3.4 / C.4, H.2, J.3).

Spec §2.6–2.9. Forward keeps every $T_i$ and $\mathrm{Attn}_i$; backward is one explicit reverse loop over layers.
Shape legend: n = tokens, d = width, m = layers, h = heads.

.. math::
    T_0 = X,\qquad T_i = g_i(\mathrm{Attn}_i(T_{i-1}))\quad\text{or, residual,}\quad
    Z_i = T_{i-1} + \mathrm{Attn}_i(T_{i-1}),\ T_i = Z_i + g_i(Z_i),

with $g_i(Z) = \varphi(Z W_g)$ when the layer has ``W_g``; without ``W_g`` the block is absent ($T_i =
\mathrm{Attn}_i$, resp. $T_i = Z_i$).  Backward with $gT_i = \partial L / \partial T_i$:

.. math::
    G_i = (gT_i \odot \varphi'(\mathrm{Attn}_i W_g)) W_g^\top\ \text{(H.2)},\qquad
    \partial L/\partial T_{i-1} = \mathrm{VJP}_{\mathrm{Attn}_i}(G_i)\ \text{(C.4)};

residual: $G_i = \partial L/\partial Z_i = gT_i + \mathrm{VJP}_{g_i}(gT_i)$ and
$\partial L/\partial T_{i-1} = G_i + \mathrm{VJP}_{\mathrm{Attn}_i}(G_i)$ (J.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from reference import validate as v
from reference.attention import (
    TERM_NAMES,
    AttentionCache,
    attention_forward,
    attention_vjp,
)
from reference.backend import Backend, get_backend
from reference.block import ACTIVATIONS, BlockCache, g_forward, g_vjp


@dataclass(frozen=True)
class Layer:
    """Weights of one layer: $W_Q, W_K, W_V$ (d×d) and the optional block weight $W_g$ (d×d)."""

    W_Q: np.ndarray
    W_K: np.ndarray
    W_V: np.ndarray
    W_g: np.ndarray | None = None


@dataclass
class LayerCache:
    T_in: np.ndarray  # (n, d)  T_{i-1}
    attn: AttentionCache  # heads, Attn_i = attn.out (n, d)
    Z: np.ndarray | None  # (n, d)  residual stream after attention (residual only)
    block: BlockCache | None  # g_i's cache when the layer has W_g
    T_out: np.ndarray  # (n, d)  T_i


@dataclass
class Trace:
    """Everything the backward pass needs: the inputs, the conventions and every intermediate."""

    X: np.ndarray
    layers: list[Layer]
    beta: object  # resolved logit scale (per head)
    causal: bool
    heads: int
    residual: bool
    activation: str
    backend: Backend
    caches: list[LayerCache]

    @property
    def T(self) -> list[np.ndarray]:
        """$T_0, \\dots, T_m$ (Def. 3.3)."""
        return [self.X] + [c.T_out for c in self.caches]

    @property
    def attn(self) -> list[np.ndarray]:
        """$\\mathrm{Attn}_1(T_0), \\dots, \\mathrm{Attn}_m(T_{m-1})$."""
        return [c.attn.out for c in self.caches]

    @property
    def output(self) -> np.ndarray:
        return self.caches[-1].T_out


def _check_layers(layers, d: int, backend: Backend) -> list[Layer]:
    if isinstance(layers, Layer) or not isinstance(layers, Sequence) or len(layers) == 0:
        raise TypeError(f"layers: expected a non-empty list of Layer, got {type(layers).__name__}")
    out = []
    for i, L in enumerate(layers):
        if not isinstance(L, Layer):
            raise TypeError(f"layers[{i}]: expected a Layer, got {type(L).__name__}")
        ws = {k: getattr(L, k) for k in ("W_Q", "W_K", "W_V", "W_g")}
        for k, w in ws.items():
            if w is not None or k != "W_g":
                v.matrix(f"layers[{i}].{k}", w, (d, d), allow_mp=backend.is_mp)
        out.append(Layer(*(None if w is None else _owned(backend.asarray(w), w) for w in ws.values())))
    return out


def _owned(a: np.ndarray, source: np.ndarray | None = None) -> np.ndarray:
    """A read-only array the caller cannot reach: a copy when ``a`` is (or views) ``source`` (issue 13 item 4)."""
    if source is not None and np.may_share_memory(a, source):
        a = a.copy()
    a.setflags(write=False)
    return a


def _freeze(*arrays) -> None:
    """Make every intermediate a trace keeps read-only, so nothing can change what ``backward`` reads."""
    for a in arrays:
        if isinstance(a, np.ndarray):
            a.setflags(write=False)


def _finite(bk: Backend, layer: int, quantity: str, a: np.ndarray, scale: str, advice: str) -> None:
    """Raise a ValueError naming the layer and the quantity when a float64 intermediate overflowed to inf/NaN.

    mpf numbers have an unbounded exponent, so the mpmath backend cannot overflow and is not checked.
    """
    if bk.is_mp or np.isfinite(a).all():
        return
    raise ValueError(f"layer {layer}: {quantity} is not finite in float64 ({scale}); {advice}")


_GRAD_ADVICE = (
    "expected an upstream gradient dL_dout and inputs whose gradients fit float64: scale them down, "
    "or use backend='mpmath'"
)
_SCALE_ADVICE = "expected inputs whose products fit float64: scale X or the weights down, or use backend='mpmath'"


def resolve_beta(beta, d: int, heads: int, bk: Backend):
    """``beta=None`` is the main-text convention $1/d_h$ (Def. 1.2, K.1); the appendices use 1."""
    if beta is None:
        return bk.scalar(1) / (d // heads)
    return bk.scalar(v.real("beta", beta))


def forward(X, layers, beta=None, causal=False, heads=1, residual=False, activation="identity",
            backend="float64", dps=50, *, W_override=None) -> Trace:  # fmt: skip
    r"""Run the m-layer model and keep every intermediate (Def. 1.3, 3.3).

    Args:
        X: (n, d) float64 input (tokens are rows); object arrays of mpf with ``backend="mpmath"``.
        layers: list of :class:`Layer`, one per attention layer.
        beta: logit scale; None means $1/d_h$ (main text), 1 is the appendices' convention.
        causal: mask $M_{ij} = 1$ iff $i \ge j$ (diagonal included, Def. I.2).
        heads: number of heads h; must divide d (Def. K.1).
        residual: use $Z_i = T_{i-1} + \mathrm{Attn}_i$, $T_i = Z_i + g_i(Z_i)$ (Def. J.1, J.2).
        activation: $\varphi$ of every $g_i$, a key of ``reference.block.ACTIVATIONS``.
        backend: ``"float64"`` or ``"mpmath"`` (then every number is an mpf at ``dps`` digits).
        W_override: per layer a list of per-head merged weights $W^{(l)}$ (d×d), used instead of
            $W_Q^{(l)} W_K^{(l)\top}$ (finite-difference oracle for $\partial L/\partial W$).
    """
    bk = get_backend(backend, dps)
    X = v.matrix("X", X, (None, None), allow_mp=bk.is_mp)
    n, d = X.shape
    heads = v.positive_int("heads", heads)
    if d % heads:
        raise ValueError(f"heads: expected a divisor of d = {d}, got {heads}")
    causal, residual = v.flag("causal", causal), v.flag("residual", residual)
    act = ACTIVATIONS[v.choice("activation", activation, tuple(ACTIVATIONS))]
    layers = _check_layers(layers, d, bk)
    beta = resolve_beta(beta, d, heads, bk)
    X = _owned(X.copy())  # the trace's own X: mutating the caller's array cannot reach backward
    T = _owned(bk.asarray(X))  # (n, d)  T_0 = X
    caches = []
    with np.errstate(all="ignore"):  # overflow is detected below, per quantity, and reported as a ValueError
        for i, L in enumerate(layers):
            Wo = None if W_override is None else W_override[i]
            attn = attention_forward(T, L.W_Q, L.W_K, L.W_V, beta=beta, causal=causal, heads=heads,
                                     bk=bk, W_override=Wo)  # fmt: skip
            _check_attention(bk, i + 1, T, L, attn, beta)
            Z = T + attn.out if residual else None  # (n, d)
            if residual:
                _finite(bk, i + 1, "the residual stream Z = T + Attn(T)", Z, _scale(T), _SCALE_ADVICE)
            inner = Z if residual else attn.out  # input of g_i
            blk = None if L.W_g is None else g_forward(inner, L.W_g, act, bk)
            if blk is not None:
                _check_block(bk, i + 1, inner, L.W_g, blk, act.name)
            g_out = inner if blk is None else blk.T
            T_out = (Z + blk.T if blk is not None else Z) if residual else g_out  # (n, d)
            _finite(bk, i + 1, f"the layer output T_{i + 1}", T_out, _scale(T), _SCALE_ADVICE)
            caches.append(LayerCache(T, attn, Z, blk, T_out))
            _freeze(
                Z,
                T_out,
                attn.out,
                *(blk.U, blk.T) if blk else (),
                *(a for h in attn.heads for a in (h.f, h.h, h.s, h.W)),
            )
            T = T_out
    return Trace(X, layers, beta, causal, heads, residual, activation, bk, caches)


def _scale(T) -> str:
    return f"largest |T_in| = {float(np.abs(T).max()):.3g}"


def _check_attention(bk: Backend, i: int, T, L: Layer, attn: AttentionCache, beta) -> None:
    """Name the attention quantity that overflowed: the logits (softmax input), the values, or the output."""
    if bk.is_mp:
        return
    sc = f"{_scale(T)}, largest |W_Q|, |W_K| = {float(np.abs(L.W_Q).max()):.3g}, {float(np.abs(L.W_K).max()):.3g}"
    for h in attn.heads:
        _finite(bk, i, "the attention logits beta T W_Q W_K^T T^T (softmax input)", h.f, sc,
                "the logits grow like |T|^2 |W_Q| |W_K|; " + _SCALE_ADVICE)  # fmt: skip
        sv = f"{_scale(T)}, largest |W_V| = {float(np.abs(L.W_V).max()):.3g}"
        _finite(bk, i, "the attention values T W_V", h.h, sv, _SCALE_ADVICE)
    _finite(bk, i, "the attention output f T W_V", attn.out, _scale(T), _SCALE_ADVICE)


def _check_block(bk: Backend, i: int, Z, W_g, blk: BlockCache, act: str) -> None:
    """Name the g_i quantity that overflowed: the pre-activation Z W_g or the activation's output."""
    if bk.is_mp:
        return
    sc = f"largest |Z| = {float(np.abs(Z).max()):.3g}, largest |W_g| = {float(np.abs(W_g).max()):.3g}"
    _finite(bk, i, "the g_i pre-activation Z W_g", blk.U, sc, _SCALE_ADVICE)
    sc += f", largest |Z W_g| = {float(np.abs(blk.U).max()):.3g}"
    advice = (
        f"the {act} activation overflows float64 at this scale; expected a smaller X or W_g, or use backend='mpmath'"
    )
    _finite(bk, i, f"the g_i output {act}(Z W_g)", blk.T, sc, advice)


@dataclass
class LayerGrads:
    """Gradients of one layer. ``dW`` is (d, d) for one head and (h, d, d) for h > 1 heads."""

    dW_Q: np.ndarray
    dW_K: np.ndarray
    dW: np.ndarray
    dW_V: np.ndarray
    dW_g: np.ndarray | None
    G: np.ndarray  # (n, d) upstream gradient at the attention output (dL/dZ_i when residual)
    terms: dict[str, np.ndarray] = field(default_factory=dict)  # D2, D4, D6, D7, D8 (n, d)


@dataclass
class Grads:
    """``dT[i]`` = dL/dT_i for i = 0..m (``dT[0]`` is dL/dX); ``layers[i]`` belongs to layer i + 1."""

    dX: np.ndarray
    dT: list[np.ndarray]
    layers: list[LayerGrads]


def backward(trace: Trace, dL_dout) -> Grads:
    """Exact closed-form backward (Lemma 3.4 / C.4 with the corrected five terms, H.2, J.3): one reverse loop."""
    if not isinstance(trace, Trace):
        raise TypeError(f"trace: expected a reference Trace from reference.forward, got {type(trace).__name__}")
    bk = trace.backend
    n, d = trace.X.shape
    gT = v.matrix("dL_dout", dL_dout, (n, d), allow_mp=bk.is_mp)
    act = ACTIVATIONS[trace.activation]
    m = len(trace.layers)
    gT = bk.asarray(gT)
    dT: list[np.ndarray] = [gT]
    lgrads: list[LayerGrads] = []
    with np.errstate(all="ignore"):  # overflow is detected below, per quantity, and reported as a ValueError
        for i in reversed(range(m)):  # i = m-1 .. 0 is layer i+1
            c, L = trace.caches[i], trace.layers[i]
            sc = "" if bk.is_mp else f"largest |dL/dT_{i + 1}| = {float(np.abs(gT).max()):.3g}"
            dW_g, G = None, gT
            if c.block is not None:
                g_in, dW_g = g_vjp(gT, c.block, L.W_g, act, bk)  # (n, d), (d, d)  Lemma H.2
                G = gT + g_in if trace.residual else g_in  # (n, d)  G_i (dL/dZ_i with residual, Lemma J.3)
                _finite(bk, i + 1, "the backward G_i = dL/d(attention output) (Lemma H.2)", G, sc, _GRAD_ADVICE)
                _finite(bk, i + 1, "the backward dL/dW_g", dW_g, sc, _GRAD_ADVICE)
            ag = attention_vjp(G, c.attn)
            gT = ag.dX + G if trace.residual else ag.dX  # (n, d)  dL/dT_{i-1}
            for name, a in ((f"dL/dT_{i}", gT), ("dL/dW", ag.dW), ("dL/dW_V", ag.dW_V), ("dL/dW_Q", ag.dW_Q),
                            ("dL/dW_K", ag.dW_K)):  # fmt: skip
                _finite(bk, i + 1, f"the backward {name}", a, sc, _GRAD_ADVICE)
            dT.append(gT)
            lgrads.append(LayerGrads(ag.dW_Q, ag.dW_K, ag.dW, ag.dW_V, dW_g, G, ag.terms))
    dT.reverse()
    lgrads.reverse()
    return Grads(dT[0], dT, lgrads)


__all__ = ["TERM_NAMES", "Grads", "Layer", "LayerGrads", "Trace", "backward", "forward"]
