r"""Shared machinery of the weak-point experiments (spec §4): a fixed-degree low-rank backward, stacks, fits, timing.

Paper: Lemma C.13 / I.1 (polynomial low-rank $\tilde f = U_1 V_1^\top$), E.11, F.5, G.4 (the corrected fast
per-layer gradients, spec §2.3–2.4), H.2 and J.3 (the reverse loop), §2.10 (the linear backward maps).

Why a local factorization instead of :mod:`fastpath`: the experiments of spec §4 W6, W7, W14 need a **fixed degree**
g (fastpath picks the degree from a target eps) and the **exact forward** (spec §2.10 treats the activations as
exact; W10 then swaps in fastpath's fast forward). The algebra is the same as fastpath's (spec §2.4): every term
is $\tilde f H = U_1 (V_1^\top H)$ or $\tilde f^\top H = V_1 (U_1^\top H)$ on thin matrices, never n×n.

Taylor lift (spec §2.5 step 2): $U_0[i,\alpha] = \beta^{|\alpha|} \binom{|\alpha|}{\alpha} q_i^\alpha / |\alpha|!$,
$V_0[l,\alpha] = k_l^\alpha$, rank $\binom{d_h+g}{g}$; $U_1 = \tilde D^{-1} U_0$, $V_1 = V_0$.

Shape legend: n tokens, d width, d_h head width, g degree, r rank, m layers, B batch of upstream gradients.
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np

from proofs_check.report import jsonable as jsonable  # one JSON conversion for the experiments and the report
from reference.attention import head_blocks
from reference.block import ACTIVATIONS
from reference.model import Layer, Trace


# -- the polynomial method at a fixed degree (Lemma I.1, spec §2.5) ---------------------------------------------
@functools.lru_cache(maxsize=64)
def _multi_indices(d: int, g: int) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Multi-indices alpha in N^d with |alpha| <= g (r, d), their Taylor scale binom(|a|, a)/|a|! (r,), and per degree
    t >= 1 the build steps (columns, parent columns, variable): alpha = parent + e_var, parent of degree t - 1."""
    rows, scale, index = [], [], {}
    for t in range(g + 1):
        for combo in itertools.combinations_with_replacement(range(d), t):
            a = np.bincount(np.array(combo, dtype=np.int64), minlength=d) if t else np.zeros(d, dtype=np.int64)
            index[tuple(a)] = len(rows)
            rows.append(a)
            multinom = math.factorial(t) // math.prod(math.factorial(int(x)) for x in a)
            scale.append(multinom / math.factorial(t))  # binom(t, alpha) / t!
    steps = []
    for t in range(1, g + 1):
        cols, parents, var = [], [], []
        for k, a in enumerate(rows):
            if a.sum() == t:
                v = int(np.nonzero(a)[0][-1])  # the largest variable present
                p = a.copy()
                p[v] -= 1
                cols.append(k)
                parents.append(index[tuple(p)])
                var.append(v)
        steps.append((np.array(cols), np.array(parents), np.array(var)))
    return np.array(rows), np.array(scale), steps


def taylor_lift(Q: np.ndarray, K: np.ndarray, beta: float, g: int) -> tuple[np.ndarray, np.ndarray]:
    r"""$U_0, V_0$ (n×r) with $U_0 V_0^\top = \sum_{t \le g} (\beta Q K^\top)^{\odot t} / t!$ entrywise. (n, d_h) ->.

    Monomials are built degree by degree, $z^\alpha = z^{\alpha - e_v} z_v$: one vectorised product per degree.
    """
    alphas, scale, steps = _multi_indices(Q.shape[1], g)
    deg = alphas.sum(axis=1)

    def monomials(Z: np.ndarray) -> np.ndarray:
        M = np.empty((Z.shape[0], len(alphas)))  # (n, r)
        M[:, 0] = 1.0
        for cols, parents, var in steps:
            M[:, cols] = M[:, parents] * Z[:, var]
        return M

    return monomials(Q) * (scale * beta**deg)[None], monomials(K)


def rank(d_h: int, g: int) -> int:
    """Rank of the Taylor lift, $\\binom{d_h+g}{g}$ (spec W20)."""
    return math.comb(d_h + g, g)


def taylor_rel_bound(Rbar: float, g: int) -> float:
    r"""Relative error bound of the degree-g Taylor polynomial of $e^x$ on $[-\bar R, \bar R]$ (spec §2.5).

    $\bar R^{g+1} e^{2\bar R}/(g+1)!$, evaluated in mpmath at its default (local) precision.
    """
    return float(mpmath.mpf(Rbar) ** (g + 1) * mpmath.exp(2 * Rbar) / mpmath.factorial(g + 1))


def min_taylor_degree(Rbar: float, eps: float, g_max: int = 400) -> int:
    """Smallest g whose Taylor bound on $[-\\bar R, \\bar R]$ is <= eps (spec §2.5); g_max + 1 when none is."""
    for g in range(g_max + 1):
        if taylor_rel_bound(Rbar, g) <= eps:
            return g
    return g_max + 1


@dataclass
class LowRankHead:
    r"""$\tilde f = U_1 V_1^\top$ for one head: factors, normalizer and the measured relative error of $\tilde A$."""

    U1: np.ndarray  # (n, r)
    V1: np.ndarray  # (n, r)
    D: np.ndarray  # (n,)
    logit_max: float  # max |beta q_i . k_j| (the R-bar of spec §2.5)

    def f_mul(self, H: np.ndarray) -> np.ndarray:
        r"""$\tilde f H = U_1 (V_1^\top H)$: (n, w) -> (n, w), O(n r w)."""
        return self.U1 @ (self.V1.T @ H)

    def fT_mul(self, H: np.ndarray) -> np.ndarray:
        r"""$\tilde f^\top H = V_1 (U_1^\top H)$: (n, w) -> (n, w)."""
        return self.V1 @ (self.U1.T @ H)

    def dense(self) -> np.ndarray:
        return self.U1 @ self.V1.T  # (n, n), small n only


def lowrank_head(Q: np.ndarray, K: np.ndarray, beta: float, g: int, logit_max: float | None = None) -> LowRankHead:
    """Lemma C.13 at degree g: Taylor lift, $\\tilde D = U_0 (V_0^\\top 1)$, $U_1 = \\tilde D^{-1} U_0$."""
    U0, V0 = taylor_lift(Q, K, beta, g)
    D = U0 @ V0.sum(axis=0)  # (n,)
    if logit_max is None:
        logit_max = float(np.abs(beta * (Q @ K.T)).max()) if Q.shape[0] <= 4096 else float("nan")
    return LowRankHead(U0 / D[:, None], V0, D, logit_max)


# -- the corrected fast backward of one head on the exact forward (spec §2.4) -------------------------------------
@dataclass
class FastHeadGrads:
    dX: np.ndarray  # (n, d)
    dW: np.ndarray  # (d, d)
    dW_V: np.ndarray  # (d, d_h)
    terms: dict[str, np.ndarray]


def fast_head_backward(lr: LowRankHead, X, W, W_V, beta: float, G, s) -> FastHeadGrads:
    r"""Corrected E.3–E.10, E.11, F.5, G.4 with $\tilde f$ (spec §2.4), $K = (G \odot s) 1$ from the given s.

    $p_1 X = \sum_b G_{:,b} \odot \tilde f (h_{:,b} \odot X)$, $p_1^\top X = \sum_b h_{:,b} \odot \tilde f^\top
    (G_{:,b} \odot X)$, $p_2 X = K \odot \tilde f X$, $p_2^\top X = \tilde f^\top (K \odot X)$. X (n, d), G (n, d_h).
    """
    n, d = X.shape
    h = X @ W_V  # (n, d_h)
    d_h = h.shape[1]
    K = (G * s).sum(axis=1)  # (n,)
    hX = (h[:, :, None] * X[:, None, :]).reshape(n, d_h * d)  # (n, d_h d)  h ./ X
    GX = (G[:, :, None] * X[:, None, :]).reshape(n, d_h * d)  # (n, d_h d)  G ./ X
    F = lr.f_mul(np.concatenate([hX, X], axis=1))  # (n, d_h d + d)
    FT = lr.fT_mul(np.concatenate([GX, K[:, None] * X, G], axis=1))  # (n, d_h d + d + d_h)
    p1X = np.einsum("nb,nbe->ne", G, F[:, : d_h * d].reshape(n, d_h, d))  # (n, d)
    p2X = K[:, None] * F[:, d_h * d :]  # (n, d)
    p1TX = np.einsum("nb,nbe->ne", h, FT[:, : d_h * d].reshape(n, d_h, d))  # (n, d)
    p2TX = FT[:, d_h * d : d_h * d + d]  # (n, d)
    fTG = FT[:, d_h * d + d :]  # (n, d_h)
    terms = {
        "D8": fTG @ W_V.T,
        "D4": beta * p1X @ W.T,
        "D2": -beta * p2X @ W.T,
        "D7": beta * p1TX @ W,
        "D6": -beta * p2TX @ W,
    }
    dX = terms["D2"] + terms["D4"] + terms["D6"] + terms["D7"] + terms["D8"]
    dW = beta * X.T @ (p1X - p2X)  # (d, d)  F.5 with the p2 part
    dW_V = X.T @ fTG  # (d, d_h)  G.4 corrected
    return FastHeadGrads(dX, dW, dW_V, terms)


@dataclass
class FastStackGrads:
    """Per layer (index i = layer i+1): dT[i] = dL/dT_i; dW[i] (merged, summed over heads), dW_V[i], G[i]."""

    dT: list[np.ndarray]
    dW: list[np.ndarray]
    dW_V: list[np.ndarray]
    G: list[np.ndarray]
    logit_max: list[float]


def head_qk(trace: Trace, i: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(q, k) = (T_{i-1} W_Q^(l), T_{i-1} W_K^(l)) per head l of layer i+1."""
    L, X = trace.layers[i], trace.caches[i].T_in
    return [(X @ wq, X @ wk) for wq, wk, _ in head_blocks(L.W_Q, L.W_K, L.W_V, trace.heads)]


def fast_layer(trace: Trace, i: int, gT: np.ndarray, g: int):
    """One step of the corrected MultiGrad at degree g on the exact forward.

    gT_i -> (dL/dT_{i-1}, dW, dW_V, G_i, logit max); Lemma H.2, then E.11 / F.5 / G.4 per head (spec §2.4).
    """
    if trace.causal:
        raise ValueError("causal: the local fixed-degree backward is non-causal only; use fastpath for causal")
    act = ACTIVATIONS[trace.activation]
    beta = float(trace.beta)
    c, L = trace.caches[i], trace.layers[i]
    G = gT
    if c.block is not None:
        g_in = (gT * act.dphi(c.block.U)) @ L.W_g.T  # (n, d)  Lemma H.2
        G = gT + g_in if trace.residual else g_in
    d_h = G.shape[1] // trace.heads
    dX = np.zeros_like(G)
    dW, dWV, lmax = 0.0, [], 0.0
    for l, ((q, k), hc) in enumerate(zip(head_qk(trace, i), c.attn.heads, strict=True)):
        lr = lowrank_head(q, k, beta, g)
        hg = fast_head_backward(lr, c.T_in, hc.W, hc.W_V, beta, G[:, l * d_h : (l + 1) * d_h], hc.s)
        dX = dX + hg.dX
        dW = dW + hg.dW
        dWV.append(hg.dW_V)
        lmax = max(lmax, lr.logit_max)
    return (dX + G if trace.residual else dX), dW, np.concatenate(dWV, axis=1), G, lmax


def fast_backward(trace: Trace, dL_dout: np.ndarray, g: int) -> FastStackGrads:
    """Corrected Algorithm 1 (MultiGrad) at fixed degree g on the exact forward trace (non-causal, float64)."""
    gT = dL_dout
    dT, dW, dWV, Gs, lm = [gT], [], [], [], []
    for i in reversed(range(len(trace.layers))):
        gT, w, wv, G, lmax = fast_layer(trace, i, gT, g)
        dT.append(gT)
        dW.append(w)
        dWV.append(wv)
        Gs.append(G)
        lm.append(lmax)
    for a in (dT, dW, dWV, Gs, lm):
        a.reverse()
    return FastStackGrads(dT, dW, dWV, Gs, lm)


def logit_max(trace: Trace, i: int) -> float:
    r"""max over heads of $\max_{ij} |\beta q_i \cdot k_j|$ at layer i+1 (the $\bar R$ of spec §2.5)."""
    beta = float(trace.beta)
    return max(float(np.abs(beta * (q @ k.T)).max()) for q, k in head_qk(trace, i))


def truncate(trace: Trace, m: int) -> Trace:
    """The first m layers of a forward trace: the m-layer model (the activations are the same)."""
    return Trace(
        trace.X,
        trace.layers[:m],
        trace.beta,
        trace.causal,
        trace.heads,
        trace.residual,
        trace.activation,
        trace.backend,
        trace.caches[:m],
    )


# -- the exact backward maps as batched linear maps (spec §2.10) -------------------------------------------------
def layer_vjp_batch(trace: Trace, i: int, Y: np.ndarray) -> np.ndarray:
    r"""$\mathfrak B_i: gT_i \mapsto \partial L/\partial T_{i-1}$ (exact; linear) on a batch Y (B, n, d) -> (B, n, d).

    H.2 then the corrected (R1) per head, plus the residual skips (J.3). Agrees with :func:`reference.backward`.
    """
    c, L = trace.caches[i], trace.layers[i]
    act = ACTIVATIONS[trace.activation]
    G = Y
    if c.block is not None:
        g_in = (Y * act.dphi(c.block.U)[None]) @ L.W_g.T
        G = Y + g_in if trace.residual else g_in
    d_h = G.shape[2] // trace.heads
    out = np.zeros_like(G)
    for l, hc in enumerate(c.attn.heads):
        Gl = G[:, :, l * d_h : (l + 1) * d_h]  # (B, n, d_h)
        X, f, h, s, W, beta = hc.X, hc.f, hc.h, hc.s, hc.W, float(hc.beta)
        K = (Gl * s[None]).sum(axis=2)  # (B, n)
        P = f[None] * (Gl @ h.T) - K[:, :, None] * f[None]  # (B, n, n)
        out += np.swapaxes(f, 0, 1)[None] @ Gl @ hc.W_V.T  # value path
        out += beta * (P @ (X @ W.T) + np.swapaxes(P, 1, 2) @ (X @ W))
    return out + G if trace.residual else out


def linf_operator_norm(trace: Trace, layers: list[int], batch: int = 64) -> float:
    r"""Exact $\|\mathfrak B_{i_1} \cdots \mathfrak B_{i_k}\|_{\infty\to\infty}$ (max row sum of |matrix|).

    ``layers`` in the order applied (top layer first). Cost: n d applications of the maps.
    """
    n, d = trace.X.shape
    N = n * d
    cols = []
    for b0 in range(0, N, batch):
        b1 = min(N, b0 + batch)
        E = np.zeros((b1 - b0, N))
        E[np.arange(b1 - b0), np.arange(b0, b1)] = 1.0
        Y = E.reshape(b1 - b0, n, d)
        for i in layers:
            Y = layer_vjp_batch(trace, i, Y)
        cols.append(np.abs(Y.reshape(b1 - b0, N)))  # rows here are columns of the matrix
    M = np.concatenate(cols, axis=0)  # (N, N) = |matrix|^T
    return float(M.sum(axis=0).max())


def power_iteration(trace: Trace, i: int, rng: np.random.Generator, iters: int = 30) -> float:
    r"""Spectral radius of $\mathfrak B_i$ by power iteration, $x \leftarrow \mathfrak B_i x / \|\cdot\|_\infty$.

    A lower bound for every induced norm; the growth rate of long products of similar maps.
    """
    n, d = trace.X.shape
    x = rng.standard_normal((1, n, d))
    lam = 0.0
    for _ in range(iters):
        y = layer_vjp_batch(trace, i, x)
        lam = float(np.abs(y).max() / np.abs(x).max())
        x = y / np.abs(y).max()
    return lam


def lip_bound(trace: Trace, i: int) -> dict[str, float]:
    r"""Spec §2.10 bound $C_i$: $\mathrm{Lip}(\mathfrak B^g) \le d\|\varphi'\|\|W_g\|$,
    $\mathrm{Lip}(\mathfrak B^{att}) \le c_f d_h \|W_V\| + 2\beta d^2 (1+c_f)\|h\|\|X\|\|W\|$ summed over heads;
    residual: $(1+\mathrm{Lip}_g)(1+\mathrm{Lip}_{att})$.
    """
    c, L = trace.caches[i], trace.layers[i]
    n, d = trace.X.shape
    act = ACTIVATIONS[trace.activation]
    lip_g = 1.0
    if c.block is not None:
        lip_g = d * float(np.abs(act.dphi(c.block.U)).max()) * float(np.abs(L.W_g).max())
    lip_att, cf_max = 0.0, 0.0
    for hc in c.attn.heads:
        cf = float(hc.f.sum(axis=0).max())
        cf_max = max(cf_max, cf)
        mx = lambda a: float(np.abs(a).max())  # noqa: E731
        lip_att += cf * hc.W_V.shape[1] * mx(hc.W_V) + 2 * float(hc.beta) * d * d * (1 + cf) * mx(hc.h) * mx(hc.X) * mx(
            hc.W
        )
    if trace.residual:
        C = (1 + (lip_g if c.block is not None else 0.0)) * (1 + lip_att)
    else:
        C = (lip_g if c.block is not None else 1.0) * lip_att
    return {"C_bound": C, "lip_g": lip_g, "lip_att": lip_att, "c_f": cf_max}


# -- stacks ------------------------------------------------------------------------------------------------------
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


# -- error measures -------------------------------------------------------------------------------------------------
def errs(approx: np.ndarray, exact: np.ndarray) -> dict[str, float]:
    """Absolute and relative entrywise max error and cosine similarity (spec W19)."""
    a, b = np.asarray(approx, dtype=float).ravel(), np.asarray(exact, dtype=float).ravel()
    diff = float(np.abs(a - b).max())
    nb = float(np.abs(b).max())
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return {"abs": diff, "rel": diff / nb if nb else diff, "cos": float(a @ b / den) if den else 1.0, "norm": nb}


# -- fits with intervals ---------------------------------------------------------------------------------------------
def t_quantile(dof: int, p: float = 0.975) -> float:
    """Student-t quantile by bisection on the regularized incomplete beta function (mpmath, local precision)."""
    if dof <= 0:
        return float("inf")

    def cdf(t: float) -> float:
        x = dof / (dof + t * t)
        return float(1 - mpmath.betainc(dof / 2, 0.5, 0, x, regularized=True) / 2)

    lo, hi = 0.0, 1000.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def fit_line(x, y, level: float = 0.95) -> dict[str, float]:
    """Least-squares y = a + b x with a two-sided t-interval for the slope b (``level``)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    k = len(x)
    A = np.stack([np.ones(k), x], axis=1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    dof = k - 2
    if dof <= 0:
        return {
            "slope": float(coef[1]),
            "intercept": float(coef[0]),
            "lo": float("-inf"),
            "hi": float("inf"),
            "n_points": k,
            "level": level,
        }
    s2 = float(resid @ resid) / dof
    sxx = float(((x - x.mean()) ** 2).sum())
    se = math.sqrt(s2 / sxx) if sxx > 0 else float("inf")
    t = t_quantile(dof, 0.5 + level / 2)
    return {
        "slope": float(coef[1]),
        "intercept": float(coef[0]),
        "lo": float(coef[1] - t * se),
        "hi": float(coef[1] + t * se),
        "se": se,
        "n_points": k,
        "level": level,
    }


def loglog_fit(x, y) -> dict[str, float]:
    """Slope of log y against log x with its 95% t-interval."""
    return fit_line(np.log(np.asarray(x, dtype=float)), np.log(np.asarray(y, dtype=float)))


def min_time(fn, repeats: int = 5, min_sample: float = 0.02) -> float:
    """Seconds per call of ``fn()``: the minimum over ``repeats`` samples, each looping until >= ``min_sample`` s.

    The minimum is the least disturbed run on a shared machine (timeit's advice); the inner loop keeps each sample
    well above the timer's resolution and Python's call overhead.
    """
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    loops = max(1, int(min_sample / max(one, 1e-7)))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        best = min(best, (time.perf_counter() - t0) / loops)
    return best


def save_plot(path: str, draw: Callable[[Any], None], *args: Any, **kwargs: Any) -> str | None:
    """The ``plot(data, path)`` of every experiment: ``draw(ax)`` on ``plt.subplots(*args, **kwargs)``, saved to
    ``path`` with the Agg backend (byte-stable PNG metadata). Returns the path, or None when matplotlib (optional)
    is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(*args, **kwargs)
    draw(ax)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path
