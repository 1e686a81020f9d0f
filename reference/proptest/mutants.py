r"""Plausible wrong attention implementations: the oracle's mutants (each must be caught, naming the wrong field).

numpy functions with the attention signature of :mod:`reference.proptest.adapt_numpy`:
``fn(X, W_Q, W_K, W_V, G, *, beta, causal, heads) -> {"output", "dX", "dW_Q", "dW_K", "dW_V"}``. Each is the
reference (:func:`reference.attention.attention_forward` / :func:`~reference.attention.attention_vjp`) with one
plausible mistake; the printed forms come from :mod:`reference.printed` with the main-text $\beta$ restored
(the printed lemmas use $\beta = 1$). ``correct_attention`` is the unmutated control. Shape legend: n tokens,
d width, h heads, d_h = d / h.

``MUTANTS[name]`` is a :class:`Mutant`: the function, the precision it claims, the fields it gets wrong (the
oracle must name one of them first), what the bug is, and the cases that can show it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from reference import printed
from reference.attention import (
    AttentionCache,
    attention_forward,
    attention_vjp,
    causal_mask,
    head_blocks,
    softmax,
)


def _result(cache: AttentionCache, grads) -> dict:
    out = {"output": cache.out, "dX": grads.dX, "dW_Q": grads.dW_Q, "dW_K": grads.dW_K, "dW_V": grads.dW_V}
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def correct_attention(X, W_Q, W_K, W_V, G, *, beta, causal, heads):
    """The reference itself (the control: must pass)."""
    c = attention_forward(X, W_Q, W_K, W_V, beta=beta, causal=causal, heads=heads)
    return _result(c, attention_vjp(G, c))


def _swap_term(term: str, printed_fn):
    """dX with one corrected term D_k replaced by its printed form (times beta for D2..D7: the printed lemmas use 1)."""

    def fn(X, W_Q, W_K, W_V, G, *, beta, causal, heads):
        c = attention_forward(X, W_Q, W_K, W_V, beta=beta, causal=causal, heads=heads)
        g = attention_vjp(G, c)
        d_h = G.shape[1] // heads
        wrong = sum(printed_fn(G[:, l * d_h : (l + 1) * d_h], hc) for l, hc in enumerate(c.heads))  # (n, d)
        g.dX = g.dX - g.terms[term] + (wrong if term == "D8" else beta * wrong)
        return _result(c, g)

    fn.__name__ = f"printed_{term}"
    return fn


def printed_dW_V(X, W_Q, W_K, W_V, G, *, beta, causal, heads):
    """Lemma G.3 as printed: $X^\\top f G$ instead of $X^\\top f^\\top G$."""
    c = attention_forward(X, W_Q, W_K, W_V, beta=beta, causal=causal, heads=heads)
    g = attention_vjp(G, c)
    d_h = G.shape[1] // heads
    g.dW_V = np.concatenate([printed.dW_V_as_printed(G[:, l * d_h : (l + 1) * d_h], hc)
                             for l, hc in enumerate(c.heads)], axis=1)  # fmt: skip
    return _result(c, g)


def p2_dropped(X, W_Q, W_K, W_V, G, *, beta, causal, heads):
    """Algorithm 1 line 19: $\\partial L/\\partial W = \\beta X^\\top p_1 X$ (the $-p_2$ part missing)."""
    c = attention_forward(X, W_Q, W_K, W_V, beta=beta, causal=causal, heads=heads)
    g = attention_vjp(G, c)
    d_h = G.shape[1] // heads
    dW = [beta * printed.dW_as_printed_alg1_line19(G[:, l * d_h : (l + 1) * d_h], hc) for l, hc in enumerate(c.heads)]
    blocks = head_blocks(W_Q, W_K, W_V, heads)
    g.dW_Q = np.concatenate([w @ wk for w, (_, wk, _) in zip(dW, blocks, strict=True)], axis=1)  # (d, d)
    g.dW_K = np.concatenate([w.T @ wq for w, (wq, _, _) in zip(dW, blocks, strict=True)], axis=1)  # (d, d)
    return _result(c, g)


def W_for_W_transpose(X, W_Q, W_K, W_V, G, *, beta, causal, heads):
    """Query path with $X W$ where $X W^\\top$ belongs (D2 and D4 of Lemma D.17 as if W were symmetric)."""
    c = attention_forward(X, W_Q, W_K, W_V, beta=beta, causal=causal, heads=heads)
    g = attention_vjp(G, c)
    for hc, hg in zip(c.heads, g.per_head, strict=True):
        P = hg.P  # (n, n) = p1 - p2
        g.dX = g.dX - beta * (P @ (hc.X @ hc.W.T)) + beta * (P @ (hc.X @ hc.W))  # (n, d)
    return _result(c, g)


def _forward_mutant(name: str, attention_matrix, doc: str):
    """A wrong attention matrix f, with the reference's backward formulas applied to it (a reused backward)."""

    def fn(X, W_Q, W_K, W_V, G, *, beta, causal, heads):
        c = attention_forward(X, W_Q, W_K, W_V, beta=beta, causal=causal, heads=heads)
        for hc in c.heads:
            hc.f = attention_matrix(X, hc.W, beta, causal)  # (n, n)
            hc.s = hc.f @ hc.h  # (n, d_h)
        c.out = np.concatenate([hc.s for hc in c.heads], axis=1)  # (n, d)
        return _result(c, attention_vjp(G, c))

    fn.__name__, fn.__doc__ = name, doc
    return fn


def _logits(X, W, beta):
    return beta * ((X @ W) @ X.T)  # (n, n)


def _no_diagonal(X, W, beta, causal):
    n = X.shape[0]
    add = np.where(np.tril(np.ones((n, n), dtype=bool), k=-1), 0.0, -1e9) if causal else 0.0  # strict lower
    return softmax(_logits(X, W, beta) + add)


def _no_beta(X, W, beta, causal):
    return softmax(_logits(X, W, 1.0), mask=causal_mask(X.shape[0]) if causal else None)


def _beta_twice(X, W, beta, causal):
    return softmax(_logits(X, W, beta * beta), mask=causal_mask(X.shape[0]) if causal else None)


def _wrong_axis(X, W, beta, causal):
    mask = causal_mask(X.shape[0]) if causal else None
    return softmax(_logits(X, W, beta).T, mask=None if mask is None else mask.T).T  # columns sum to one


def _no_max_subtraction(X, W, beta, causal):
    S = _logits(X, W, beta)  # (n, n)
    with np.errstate(over="ignore", invalid="ignore"):  # the bug: exp(S) overflows, inf / inf = NaN
        A = np.exp(S) * (causal_mask(X.shape[0]) if causal else 1.0)
        return A / A.sum(axis=1, keepdims=True)


def float32_inside(X, W_Q, W_K, W_V, G, *, beta, causal, heads):
    """The reference run on float32 copies (every product and sum in float32) while float64 is claimed."""
    f32 = [a.astype(np.float32) for a in (X, W_Q, W_K, W_V, G)]
    c = attention_forward(*f32[:4], beta=np.float32(beta), causal=causal, heads=heads)
    return _result(c, attention_vjp(f32[4], c))


def _float32(fn):
    def run(X, W_Q, W_K, W_V, G, **conv):
        return fn(*(a.astype(np.float32) for a in (X, W_Q, W_K, W_V)), G.astype(np.float32), **conv)

    run.__name__, run.__doc__ = fn.__name__, fn.__doc__
    return run


no_max_subtraction = _forward_mutant(
    "no_max_subtraction", _no_max_subtraction, "softmax as exp(S) / sum exp(S): overflows in float32 once S > 88.7"
)  # fmt: skip

ALL = ("output", "dX", "dW_Q", "dW_K", "dW_V")  # a wrong f makes every field wrong; the worst is named


@dataclass(frozen=True)
class Mutant:
    """One wrong implementation: the precision it claims, the fields it gets wrong, why, and the cases it needs."""

    fn: Callable
    precision: str
    wrong: tuple[str, ...]
    why: str
    cases: dict = field(default_factory=dict)  # keywords of reference.proptest.strategies.cases


MUTANTS = {
    "printed_D6": Mutant(_swap_term("D6", printed.D6_as_printed), "float64", ("dX",), "Lemma D.17 D6 as printed"),
    "printed_D7": Mutant(_swap_term("D7", printed.D7_as_printed), "float64", ("dX",), "Lemma D.17 D7 as printed"),
    "printed_D8": Mutant(_swap_term("D8", printed.D8_as_printed), "float64", ("dX",), "Lemma D.17 D8 = f G W_V^T"),
    "printed_dW_V": Mutant(printed_dW_V, "float64", ("dW_V",), "Lemma G.3 as printed: X^T f G"),
    "p2_dropped": Mutant(p2_dropped, "float64", ("dW_Q", "dW_K"), "Algorithm 1 line 19: X^T p1 X"),
    "W_for_W_transpose": Mutant(W_for_W_transpose, "float64", ("dX",), "X W in place of X W^T (query path)"),
    "causal_without_diagonal": Mutant(
        _forward_mutant("causal_without_diagonal", _no_diagonal, "keeps i > j only"),
        "float64",
        ALL,
        "additive -1e9 mask on i <= j",
        {"causal": True},
    ),
    "beta_dropped": Mutant(_forward_mutant("beta_dropped", _no_beta, "logits X W X^T"), "float64", ALL, "no beta"),
    "beta_twice": Mutant(
        _forward_mutant("beta_twice", _beta_twice, "logits beta^2 X W X^T"), "float64", ALL, "beta applied twice"
    ),
    "softmax_wrong_axis": Mutant(
        _forward_mutant("softmax_wrong_axis", _wrong_axis, "columns sum to one"),
        "float64",
        ALL,
        "softmax over the query axis",
    ),
    "float32_inside": Mutant(float32_inside, "float64", ALL, "float32 accumulation where float64 is claimed"),
    "no_max_subtraction": Mutant(
        _float32(no_max_subtraction),
        "float32",
        ALL,
        "exp(S) overflows float32 at S > 88.7",
        {"beta": 8.0, "regimes": ("saturated",)},
    ),
}

__all__ = ["MUTANTS", "Mutant", "correct_attention"]
