r"""Hypothesis strategies for the model's inputs (Def. 1.3, 3.3; spec §0.2 conventions), shrinking to small cases.

Install with ``pip install 'altgrad[testing]'`` (hypothesis is an optional extra). Shape legend: n = tokens,
d = width, h = heads (h divides d), d_h = d / h, m = layers.

Numbers are drawn on a grid: an entry is $s\,k/g$ with an integer $|k| \le g$ (``GRID`` = 8) and a power-of-two scale
$s$, so every input is exact in float64, float32, float16 and bfloat16, prints short, and shrinks toward 0 (then
toward the first listed option: n = d = h = m = 1, no mask, ``beta=None``, identity activation, linear loss, the
bounded regime). Conditioning is chosen, never filtered (STYLE §0.9):

* ``"bounded"``: entries in $[-B, B]$ (the paper's bounded-entry regime, Theorem 1.4: $B = o(\sqrt{\log n})$);
* ``"near_duplicate"``: tokens $x_0 + 2^{-20} k_i$, nearly equal rows, so $P = p_1 - p_2$ and
  $\partial L/\partial W$ cancel (spec App. B); exact in float32, equal rows in bfloat16;
* ``"saturated"``: weights scaled by 4, logits of order 10²: near one-hot softmax rows, tiny gradients.
"""

from __future__ import annotations

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised by the test that hides hypothesis
    raise ImportError(
        "reference.proptest.strategies needs hypothesis, an optional extra: pip install 'altgrad[testing]'"
    ) from exc

import numpy as np

from reference.block import ACTIVATIONS
from reference.losses import CrossEntropy, HalfSquaredError, LinearLoss, value_and_grad
from reference.model import Layer, forward
from reference.proptest.case import Case

GRID = 8  # entries are s k / GRID, |k| <= GRID: 4 significand bits, exact in bfloat16
REGIMES = ("bounded", "near_duplicate", "saturated")
NEAR = 2.0**-20  # spread of near-duplicate tokens: exact in float32 for |x0| <= 1
SATURATION = 4.0  # weight scale of the saturated regime


def dims(max_n: int = 5, max_d: int = 4, max_heads: int = 2):
    """(n, d, heads) with heads dividing d; shrinks to (1, 1, 1)."""

    def with_heads(h: int):
        return st.tuples(st.integers(1, max_n), st.integers(1, max(1, max_d // h)).map(lambda dh: dh * h), st.just(h))

    return st.integers(1, max_heads).flatmap(with_heads)


def masks():
    """``causal`` flag: False (no mask) or True (keep $i \\ge j$, diagonal included, Def. I.2); shrinks to False."""
    return st.booleans()


def betas():
    """The logit scale: None ($1/d_h$, main text), 1.0 (appendices) or an explicit power of two in [1/4, 2]."""
    return st.one_of(st.none(), st.just(1.0), st.sampled_from([0.5, 2.0, 0.25]))


def activations(smooth_only: bool = False):
    """A key of :data:`reference.block.ACTIVATIONS` (identity first); ``smooth_only`` drops relu (kink at 0)."""
    names = [k for k, a in ACTIVATIONS.items() if a.smooth or not smooth_only]
    return st.sampled_from(sorted(names, key=lambda k: k != "identity"))


def matrices(shape: tuple[int, ...], scale: float = 1.0):
    """Arrays of ``shape`` with entries ``scale * k / GRID``, integer $|k| \\le$ GRID; shrinks to zeros."""
    size = int(np.prod(shape))
    ints = st.lists(st.integers(-GRID, GRID), min_size=size, max_size=size)  # faster to draw than arrays()
    return ints.map(lambda k: np.array(k, dtype=np.float64).reshape(shape) * (scale / GRID))


def inputs(n: int, d: int, regime: str = "bounded", bound: float = 1.0):
    """Token matrix X (n, d) in one conditioning regime (module docstring)."""
    if regime not in REGIMES:
        raise ValueError(f"regime: expected one of {REGIMES}, got {regime!r}")
    if regime != "near_duplicate":
        return matrices((n, d), bound)
    row = matrices((1, d), bound)  # (1, d) the common token x0
    spread = st.lists(st.integers(-4, 4), min_size=n * d, max_size=n * d).map(
        lambda k: NEAR * np.array(k, dtype=np.float64).reshape(n, d)
    )  # (n, d)
    return st.tuples(row, spread).map(lambda t: t[0] + t[1])  # (n, d)


def layers(d: int, with_g: bool = False, scale: float = 1.0):
    """One :class:`reference.model.Layer`: W_Q, W_K, W_V (d, d) and, with ``with_g``, W_g (d, d)."""
    w = matrices((d, d), scale)
    g = w if with_g else st.none()
    return st.builds(Layer, w, w, w, g)


def losses(n: int, d: int, vocab: int = 3):
    """A loss of :mod:`reference.losses` for (n, d) outputs: linear, half squared error or cross-entropy."""
    linear = st.builds(LinearLoss, matrices((n, d)))
    half = st.builds(HalfSquaredError, matrices((n, d)))
    labels = st.lists(st.integers(0, vocab - 1), min_size=n, max_size=n).map(lambda k: np.array(k, dtype=np.int64))
    ce = st.builds(CrossEntropy, matrices((d, vocab)), labels)
    return st.one_of(linear, half, ce)


def _cut(loss, n: int, d: int):
    """A loss drawn for (N, D) outputs restricted to the first n tokens and d columns."""
    if isinstance(loss, CrossEntropy):
        return CrossEntropy(loss.W_out[:d], loss.labels[:n])
    return type(loss)(next(iter(vars(loss).values()))[:n, :d])


_LOSS_NAMES = {LinearLoss: "linear", HalfSquaredError: "half_squared", CrossEntropy: "cross_entropy"}


def upstream(X, lays, loss, **conv) -> np.ndarray:
    """$G = \\partial L/\\partial T_m$ of ``loss`` at the float64 reference output (n, d)."""
    tr = forward(X, list(lays), **conv)
    return np.asarray(value_and_grad(tr, loss)[1], dtype=np.float64)


@st.composite
def cases(draw, kind: str = "attention", *, max_n: int = 5, max_d: int = 4, max_heads: int = 2,
          max_layers: int = 2, causal: bool | None = None, beta=..., heads: int | None = None, width: int | None = None,
          regimes: tuple[str, ...] = REGIMES, smooth_only: bool = True) -> Case:  # fmt: skip
    """A whole :class:`~reference.proptest.case.Case`.

    ``kind="attention"``: one attention layer, no block, no residual ($T_1 = \\mathrm{Attn}(X)$, Def. K.1).
    ``kind="model"``: 1..``max_layers`` layers, each with a block $g = \\varphi(Z W_g)$ or none, residual or not.
    ``causal``, ``beta`` (``...`` = draw), ``heads`` fix a convention instead of drawing it; ``width`` fixes d
    (an ``nn.Module`` built for one width), with ``heads`` (default 1) dividing it.
    """
    if kind not in ("attention", "model"):
        raise ValueError(f"kind: expected 'attention' or 'model', got {kind!r}")
    if width is not None:
        h = heads or 1
        if width % h:
            raise ValueError(f"heads: expected a divisor of width = {width}, got {h}")
        n, d = draw(st.integers(1, max_n)), width
    elif heads is None:
        n, d, h = draw(dims(max_n, max_d, max_heads))
    else:
        n, d, h = draw(st.integers(1, max_n)), heads * draw(st.integers(1, max(1, max_d // heads))), heads
    N, D = max_n, max(max_d, d)
    # Arrays are drawn at the largest shape and cut to (n, d): the shrinker can then lower n and d without
    # shifting every later draw, so failures shrink to the few tokens and columns they need.
    regime = draw(st.sampled_from(regimes))
    wscale = SATURATION if regime == "saturated" else 1.0
    X = draw(inputs(N, D, regime))[:n, :d]  # (n, d)
    m = 1 if kind == "attention" else draw(st.integers(1, max_layers))
    with_g = [False] * m if kind == "attention" else [draw(st.booleans()) for _ in range(m)]
    full = [draw(layers(D, g, wscale)) for g in with_g]
    lays = tuple(Layer(*(None if w is None else w[:d, :d] for w in (L.W_Q, L.W_K, L.W_V, L.W_g))) for L in full)
    conv = {
        "beta": draw(betas()) if beta is ... else beta,
        "causal": draw(masks()) if causal is None else causal,
        "heads": h,
        "residual": False if kind == "attention" else draw(st.booleans()),
        "activation": "identity" if kind == "attention" else draw(activations(smooth_only)),
    }
    loss = _cut(draw(losses(N, D)), n, d)
    G = upstream(X, lays, loss, **conv)  # (n, d)
    return Case(X, lays, G, loss=_LOSS_NAMES[type(loss)], **conv)


def attention_cases(**kw):
    """:func:`cases` of one attention layer (the common target: a user's attention kernel)."""
    return cases("attention", **kw)


def model_cases(**kw):
    """:func:`cases` of a multi-layer model with blocks, residual or not."""
    return cases("model", **kw)


__all__ = ["GRID", "REGIMES", "activations", "attention_cases", "betas", "cases", "dims", "inputs", "layers",
           "losses", "masks", "matrices", "model_cases", "upstream"]  # fmt: skip
