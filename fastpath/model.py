r"""Algorithm 1 (ALTGrad), corrected, on the fast forward: multi-layer gradients with a certificate per result.

Paper: Algorithm 1 (#12), Theorem 4.1/4.2, Lemmas H.2–H.4, J.3–J.5, K.2; spec §2.6, §2.8–2.10. The model and
its conventions are the reference's (:mod:`reference.model`): $T_0 = X$, $T_i = g_i(\mathrm{Attn}_i(T_{i-1}))$ or,
residual, $Z_i = T_{i-1} + \mathrm{Attn}_i(T_{i-1})$, $T_i = Z_i + g_i(Z_i)$, with $g_i(Z) = \varphi(Z W_g)$.

Corrections to the printed listing (spec #12): line 14 computes all five corrected terms (E.3 included), line 19
keeps the $p_2$ part of $g_w$, line 22 is $g_v = (T^\top V_1)(U_1^\top G)$; the forward activations are the fast
ones (spec W10), and dL/dW_Q = g_w W_K, dL/dW_K = g_w^T W_Q (#26).

**Certificates** (issue 10): ``certificate="a-posteriori"`` (default, :mod:`fastpath.aposteriori` with the
per-head bounds of :mod:`fastpath.certificate`) carries entrywise error matrices through the computed maps;
``certificate="a-priori"`` (:mod:`fastpath.apriori`, :mod:`fastpath.bounds`) carries scalars through the constants
of spec §2.10, the paper's argument. Both bound |fast - exact| entrywise for every output and gradient, float64
rounding of the fast path and of the reference included.

**Refusals** (issue 13): an input whose certificate would be infinite or vacuous (a bound at least the scale of
the field it bounds: $\max|V|$ for the attention outputs, $\max|\text{value}|$ for every other field, floored
at the kernel's relative accuracy times the field's natural magnitude, see ``_refuse_vacuous_grads``) raises a
ValueError naming the input, the layer, the logit range R, the polynomial's error and what to change, unless
``allow_vacuous=True``; a non-finite intermediate raises a ValueError naming the layer and the quantity.

Shape legend: n tokens, d width, m layers, h heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from fastpath import aposteriori, apriori
from fastpath.bounds import weight_bounds
from fastpath.layer import METHODS, HeadState, attention_backward, attention_forward
from fastpath.lowrank import MEMORY_BUDGET
from fastpath.poly import KINDS
from fastpath.work import Work
from reference import validate as v
from reference.backend import FLOAT64
from reference.block import ACTIVATIONS, BlockCache, g_forward, g_vjp
from reference.model import Grads, Layer, LayerGrads, _check_layers, resolve_beta

CERTIFICATES = ("a-posteriori", "a-priori")


@dataclass
class FastLayerCache:
    T_in: np.ndarray  # (n, d) T~_{i-1}
    heads: list[HeadState]
    attn: np.ndarray  # (n, d) Attn~_i
    Z: np.ndarray | None  # (n, d) residual stream (residual only)
    blk: BlockCache | None  # g_i on (Z or Attn): Z = block input, U = pre-activation, T = phi(U)
    T_out: np.ndarray  # (n, d)
    cert: dict = field(default_factory=dict)  # the certificate's per-layer state: e_in, e_attn, e_inner, e_U, e_out

    @property
    def U(self) -> np.ndarray | None:
        return None if self.blk is None else self.blk.U


@dataclass
class FastTrace:
    """The fast forward's result. ``T``, ``attn`` as in the reference; ``bound_T``/``bound_attn`` their certificates."""

    X: np.ndarray
    layers: list[Layer]
    beta: float
    causal: bool
    heads: int
    residual: bool
    activation: str
    eps: float
    poly: str
    caches: list[FastLayerCache]
    certificate: str = "a-posteriori"
    allow_vacuous: bool = False
    madds: int = 0  # counted multiply-adds of the forward (fastpath.work)
    cert_madds: int = 0  # counted multiply-adds of the forward certificate

    @property
    def method(self) -> str:
        """``"exact"`` or ``"lowrank"`` when every head of every layer used it, else ``"mixed"``."""
        ms = {st.method for c in self.caches for st in c.heads}
        return ms.pop() if len(ms) == 1 else "mixed"

    @property
    def T(self) -> list[np.ndarray]:
        return [self.X] + [c.T_out for c in self.caches]

    @property
    def attn(self) -> list[np.ndarray]:
        return [c.attn for c in self.caches]

    @property
    def output(self) -> np.ndarray:
        return self.caches[-1].T_out

    @property
    def bound_T(self) -> list[np.ndarray]:
        """Entrywise bounds of |T~_i - T_i|, i = 0..m (T_0 = X is exact)."""
        return [np.zeros_like(self.X)] + [_full(c.cert["e_out"], self.X.shape) for c in self.caches]

    @property
    def bound_attn(self) -> list[np.ndarray]:
        return [_full(c.cert["e_attn"], self.X.shape) for c in self.caches]

    @property
    def degree(self) -> int:
        """Largest polynomial degree over layers and heads (0 for exact heads)."""
        return max(st.cert.degree for c in self.caches for st in c.heads)

    @property
    def rank(self) -> int:
        """Largest rank C(d_h + g, g) over layers and heads (n for exact heads; clustered heads: the largest rank
        of their polynomial cluster pairs, :attr:`fastpath.clustered.ClusterHeadState.rank`)."""
        return max(st.rank for c in self.caches for st in c.heads)

    @property
    def R(self) -> float:
        """Largest logit range R over layers and heads (before rounding up to the certificate grid)."""
        return max(st.R for c in self.caches for st in c.heads)

    @property
    def R_poly(self) -> float:
        """Largest range the polynomials cover (the re-centred range on re-centred heads, else R)."""
        return max(st.R_poly for c in self.caches for st in c.heads)

    @property
    def recentred(self) -> bool | str:
        """True when every low-rank head was re-centred, False when none was, else ``"mixed"``."""
        rs = {st.recentred for c in self.caches for st in c.heads if st.method == "lowrank"}
        return rs.pop() if len(rs) == 1 else (False if not rs else "mixed")

    @property
    def row_degrees(self) -> list[tuple[int, ...]]:
        """Per layer and head, the degrees of its query-row groups (:mod:`fastpath.rowdegree`), ascending; one
        degree where every row uses the head's own polynomial (exact and clustered heads, or not chosen)."""
        return [tuple(g.cert.degree for g in st.rows.groups) if getattr(st, "rows", None) is not None
                else (st.cert.degree,) for c in self.caches for st in c.heads]  # fmt: skip

    @property
    def cert_err(self) -> float:
        """Largest certified relative error of the kernels used (polynomial, or float64 rounding when exact)."""
        return max(st.cert.err for c in self.caches for st in c.heads)


@dataclass
class FastGrads(Grads):
    """The reference's :class:`reference.model.Grads` plus ``bound`` (a Grads of entrywise bounds, same fields),
    ``madds`` (counted multiply-adds of the backward's contractions) and ``cert_madds`` (of its certificate)."""

    bound: Grads | None = None
    madds: int = 0
    cert_madds: int = 0


def _full(e, shape) -> np.ndarray:
    return np.array(np.broadcast_to(np.asarray(e, dtype=float), shape))


def _eps(eps) -> float:
    v.real("eps", eps)
    eps = float(eps)
    if not (0 < eps < 1):
        raise ValueError(f"eps: expected a number in (0, 1), got {eps!r}")
    return eps


def _owned(a: np.ndarray | None) -> np.ndarray | None:
    """A read-only private copy: the trace owns its data, so mutating the caller's arrays cannot change backward."""
    if a is None:
        return None
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


def _no_nan(x, seen: dict | None = None):
    """Bounds only: NaN (inf * 0 once a bound overflowed) means 'no bound', i.e. inf. Equals ``np.where(np.isnan(x),
    inf, x)`` entrywise; each array is scanned once (``seen``: by id) by one ``min`` (NaN if any entry is) and copied
    only when it holds NaN (an array without NaN is returned itself: bounds are never written in place)."""
    seen = {} if seen is None else seen
    if isinstance(x, dict):
        return {k: _no_nan(v, seen) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(_no_nan(v, seen) for v in x)
    if isinstance(x, np.ndarray) and x.dtype.kind == "f":
        if id(x) not in seen:  # (x, result): x kept alive so its id is not reused within the call
            seen[id(x)] = (x, x if x.size == 0 or not np.isnan(x.min()) else np.where(np.isnan(x), math.inf, x))
        return seen[id(x)][1]
    return math.inf if isinstance(x, float) and math.isnan(x) else x


def _finite(a: np.ndarray, layer: int, what: str) -> np.ndarray:
    if not np.isfinite(a).all():
        raise ValueError(
            f"X: layer {layer}: {what} is not finite (float64 overflow); expected inputs and weights small enough "
            "for the model to be evaluated in float64 (scale X or the weights down)"
        )
    return a


def _heads_summary(c: FastLayerCache) -> str:
    return ", ".join(f"R = {st.R:.4g}{f' (re-centred {st.R_poly:.4g})' if st.recentred else ''}, {st.method} "
                     f"kernel error {st.cert.err:.3g} (degree {st.cert.degree})" for st in c.heads)  # fmt: skip


def _floor(trace) -> float:
    """Fraction of a field's natural magnitude below which a bound is never called vacuous (module docstring)."""
    return max(2.0**-26, 4 * max(st.cert.err for c in trace.caches for st in c.heads))


def _vacuous(name: str, bound, scale: float, layer: int | None, trace, what: str) -> None:
    b = float(np.max(bound))
    if math.isfinite(b) and (b == 0 or b < scale):
        return
    if trace.allow_vacuous:
        return
    where = f"layer {layer}: " if layer is not None else ""
    heads = "; ".join(f"layer {i + 1}: {_heads_summary(c)}" for i, c in enumerate(trace.caches))
    raise ValueError(
        f"{what}: {where}the {trace.certificate} certificate of {name} is vacuous (bound {b:.3g} >= scale "
        f"{scale:.3g} of the field) for eps = {trace.eps:g} ({heads}); expected a smaller eps, smaller inputs or "
        "weights (a smaller logit range R), fewer layers, or allow_vacuous=True to get the bound anyway"
    )


def forward(X, layers, eps=1e-8, beta=None, causal=False, heads=1, residual=False, activation="identity", *,
            poly="chebyshev", memory_budget=MEMORY_BUDGET, block=None, degree=None, method="auto",
            exact_forward=False, certificate="a-posteriori", allow_vacuous=False,
            recentre="auto", row_degrees="auto") -> FastTrace:  # fmt: skip
    r"""Fast forward of the m-layer model (Def. 1.3, J.1–J.2, K.1) with certified low-rank attention (#13, I.1).

    Args are those of :func:`reference.forward` plus

    * ``eps``: target relative error of the polynomial (Lemma I.1); validated always, used to choose the degree
      only when ``degree`` is None;
    * ``degree``: fix the polynomial degree g (then its error is certified, ``trace.cert_err``, not targeted);
    * ``poly``: ``"chebyshev"`` or ``"taylor"``;
    * ``method``: ``"lowrank"`` (polynomial path, forced), ``"exact"`` (dense kernel, certificate = float64
      rounding only) or ``"auto"``: exact when the rank is not below n (:func:`fastpath.layer.choose_method`);
    * ``exact_forward``: the layer outputs are the exact (dense) attention while the low-rank factors are still
      built and used by :func:`backward` (separates forward- from backward-induced error, spec W10);
    * ``certificate``: ``"a-posteriori"`` (computed magnitudes) or ``"a-priori"`` (spec §2.10 constants);
    * ``allow_vacuous``: return certificates that are infinite or vacuous (bound >= scale of the field) instead
      of refusing them (for experiments);
    * ``recentre``: True, False or ``"auto"`` (default): exact re-centring of the logits (issue 14,
      :mod:`fastpath.centring`), the polynomial then covers $\beta(q - a)\cdot(k - c)$; ``"auto"`` re-centres a head
      when that shrinks its certified range; ``trace.recentred`` and ``trace.R_poly`` say what was used;
    * ``row_degrees``: True, False or ``"auto"`` (default): on low-rank heads (causal or not), a certified polynomial
      per group of query rows on its own logit range (issue 14, :mod:`fastpath.rowdegree`); ``"auto"`` when it
      cuts the query side's counted work by at least a quarter, False: one polynomial for all rows;
      ``trace.row_degrees`` says what was used;
    * ``memory_budget`` (bytes; a rank needing more is refused with a ValueError naming R, eps, degree, rank and
      the budget) and ``block`` (tokens per streamed block; None = auto).

    The trace keeps read-only copies of X and the weights.
    """
    X = _owned(v.matrix("X", X, (None, None)))
    n, d = X.shape
    eps = _eps(eps)
    method = v.choice("method", method, METHODS)
    certificate = v.choice("certificate", certificate, CERTIFICATES)
    exact_forward, allow_vacuous = v.flag("exact_forward", exact_forward), v.flag("allow_vacuous", allow_vacuous)
    if not (isinstance(recentre, str) and recentre == "auto"):
        if isinstance(recentre, str):
            raise ValueError(f"recentre: expected True, False or 'auto', got {recentre!r}")
        recentre = v.flag("recentre", recentre)
    if not (isinstance(row_degrees, str) and row_degrees == "auto"):
        if isinstance(row_degrees, str):
            raise ValueError(f"row_degrees: expected True, False or 'auto', got {row_degrees!r}")
        row_degrees = v.flag("row_degrees", row_degrees)
    if degree is not None and (isinstance(degree, bool) or not isinstance(degree, int | np.integer) or degree < 0):
        raise ValueError(f"degree: expected None or an integer >= 0, got {degree!r}")
    degree = None if degree is None else int(degree)
    heads = v.positive_int("heads", heads)
    if d % heads:
        raise ValueError(f"heads: expected a divisor of d = {d}, got {heads}")
    causal, residual = v.flag("causal", causal), v.flag("residual", residual)
    act_name = v.choice("activation", activation, tuple(ACTIVATIONS))
    act = ACTIVATIONS[act_name]
    poly = v.choice("poly", poly, KINDS)
    memory_budget = v.positive_int("memory_budget", memory_budget)
    if block is not None:
        block = v.positive_int("block", block)
    layers = [Layer(*(_owned(getattr(L, k)) for k in ("W_Q", "W_K", "W_V", "W_g")))
              for L in _check_layers(layers, d, FLOAT64)]  # fmt: skip
    beta = float(resolve_beta(beta, d, heads, FLOAT64))
    trace = FastTrace(X, layers, beta, causal, heads, residual, act_name, eps, poly, [], certificate, allow_vacuous)
    T, E_T = X, (0.0 if certificate == "a-priori" else np.zeros((n, d)))
    cw = Work()
    for i, L in enumerate(layers, start=1):
        if not (np.abs(T).max() < 1e150):
            raise ValueError(f"X: layer {i}: its input T_{i - 1} has entries of size {np.abs(T).max():.3g}, beyond "
                             "what float64 logits can hold; expected smaller inputs or weights")  # fmt: skip
        cols = None if certificate == "a-priori" else aposteriori.forward_columns_fn(T, E_T)  # fused certificate
        states, A = attention_forward(T, L.W_Q, L.W_K, L.W_V, beta=beta, causal=causal, heads=heads, eps=eps,
                                      kind=poly, budget=memory_budget, block=block, degree=degree, method=method,
                                      exact_forward=exact_forward, recentre=recentre, cert_cols=cols,
                                      row_degrees=row_degrees)  # fmt: skip
        trace.madds += sum(st.madds for st in states)
        _finite(A, i, f"the attention output Attn_{i}")
        Z = T + A if residual else None  # (n, d)
        inner = Z if residual else A
        blk = None
        if L.W_g is not None:
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just below, by layer
                blk = g_forward(inner, L.W_g, act)  # (n, d)  Lemma H.1 block (one home: reference.block)
            trace.madds += n * d * d
            _finite(blk.T, i, f"the block output g_{i}")
        T_out = (Z + blk.T if blk is not None else Z) if residual else (inner if blk is None else blk.T)
        if T_out is not A:  # (A itself was checked just above)
            _finite(T_out, i, f"the layer output T_{i}")
        c = FastLayerCache(T, states, A, Z, blk, T_out)
        with np.errstate(all="ignore"):  # a bound may overflow to inf (then refused as vacuous), never NaN
            if certificate == "a-priori":
                c.cert = apriori.forward_step(states, T, E_T, A, Z, blk, act_name, residual, L.W_g)
            else:
                c.cert = aposteriori.forward_step(states, T, E_T, A, Z, blk, act_name, residual, L.W_g, cw)
        c.cert = _no_nan(c.cert)
        trace.caches.append(c)
        scale = max(float(np.abs(st.h).max()) for st in states)  # |Attn| <= max |V| (rows of f sum to 1)
        _vacuous(f"Attn_{i}", c.cert["e_attn"], scale, i, trace, "X")
        out_max = float(np.abs(T_out).max())
        inner_max = out_max if inner is T_out else float(np.abs(inner).max())  # (the same array: its max once)
        natural = inner_max + (float(np.abs(blk.T).max()) if blk is not None else 0.0)
        _vacuous(f"T_{i}", c.cert["e_out"], max(out_max, _floor(trace) * natural), i, trace, "X")
        T, E_T = T_out, c.cert["e_out"]
    trace.cert_madds = cw.madds
    return trace


def backward(trace: FastTrace, dL_dout) -> FastGrads:
    r"""Corrected ALTGrad (Algorithm 1, MultiGrad): one reverse loop over layers, fast per-layer gradients.

    Returns the reference's :class:`reference.model.Grads` fields (dX, dT, layers with dW_Q, dW_K, dW, dW_V, dW_g,
    G, terms) and ``bound``: a Grads of entrywise bounds on |fast - exact| for every one of them (refused when
    vacuous, see the module docstring).
    """
    if not isinstance(trace, FastTrace):
        raise TypeError(f"trace: expected a FastTrace from fastpath.forward, got {type(trace).__name__}")
    n, d = trace.X.shape
    gT = v.matrix("dL_dout", dL_dout, (n, d)).copy()
    act = ACTIVATIONS[trace.activation]
    post = trace.certificate == "a-posteriori"
    E_gT = np.zeros((n, d)) if post else 0.0
    dT, bT = [gT], [np.zeros((n, d))]
    lg, lb = [], []
    madds, cw = 0, Work()
    for i in reversed(range(len(trace.layers))):
        c, L = trace.caches[i], trace.layers[i]
        dW_g, dphi, g_in = None, None, None
        if c.blk is not None:
            dphi = act.dphi(c.blk.U)  # (n, d)
            with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported just below, by layer
                g_in, dW_g = g_vjp(gT, c.blk, L.W_g, act)  # (n, d), (d, d)  Lemma H.2 (one home: reference.block)
            madds += 2 * n * d * d + n * d
        G = (gT + g_in if c.blk is not None else gT) if trace.residual else (g_in if c.blk is not None else gT)
        _finite(G, i + 1, f"the upstream gradient G_{i + 1}")
        with np.errstate(all="ignore"):  # the certificate's columns, carried by the fast backward's own passes
            prep = post and aposteriori.backward_prepare(c, L, trace.activation, trace.residual, gT, E_gT, G, dphi)
        ag = attention_backward(c.heads, c.T_in, G, prep["carry"] if prep else None)
        madds += ag.madds
        gT_new = ag.dX + G if trace.residual else ag.dX  # (n, d)
        _finite(gT_new, i + 1, f"the gradient dL/dT_{i}")
        with np.errstate(all="ignore"):  # a bound may overflow to inf (then refused as vacuous), never NaN
            if post:
                b = aposteriori.backward_step(c, L, trace.activation, trace.residual, gT, E_gT, G, g_in, ag, dphi, cw,
                                              prep)  # fmt: skip
            else:
                b = apriori.backward_step(c, L, trace.activation, trace.residual, gT, E_gT, G, g_in, ag, dphi)
            dWh = [ag.dW] if len(c.heads) == 1 else list(ag.dW)
            b_dWQ, b_dWK = _no_nan(weight_bounds(b["dW_h"], c.heads, dWh))
        b = _no_nan(b)
        b_dW = b["dW_h"][0] if len(c.heads) == 1 else np.stack(b["dW_h"])
        gT, E_gT = gT_new, b["e_gT"]
        dT.append(gT)
        bT.append(b["dT"])
        lg.append(LayerGrads(ag.dW_Q, ag.dW_K, ag.dW, ag.dW_V, dW_g, G, ag.terms))
        lb.append(LayerGrads(b_dWQ, b_dWK, b_dW, b["dW_V"], b["dW_g"], b["G"], b["terms"]))
    for a in (dT, bT, lg, lb):  # layer order
        a.reverse()
    grads = FastGrads(dT[0], dT, lg, bound=Grads(bT[0], bT, lb), madds=madds, cert_madds=cw.madds)
    _refuse_vacuous_grads(trace, grads)
    return grads


def _refuse_vacuous_grads(trace: FastTrace, g: FastGrads) -> None:
    r"""Every gradient field's bound must be finite and below its scale (module docstring).

    The scale of a field is $\max|\text{value}|$, floored at $\max(2^{-26}, 4\hat\varepsilon)$ times the field's
    natural magnitude ($\hat\varepsilon$ the largest kernel error of the trace; the natural magnitude is the size
    the field's sum would have without cancellation: $n \max|T_{i-1}| \max|G_i|$ for dW_V, dW_g, times
    $|\beta| \max|T_{i-1}| \max|h|$ for dW, dW_Q, dW_K; the five terms and G for dL/dT): a field that cancels
    (equal rows, collapsed tokens) is certified to the kernel's relative accuracy of its natural size, not refused.
    The five terms $D_2 \dots D_8$ are diagnostics of dL/dT (which is checked): their bounds are returned as they are.
    """
    n = trace.X.shape[0]
    for i, t in enumerate(g.dT[:-1]):  # natural magnitude: the terms and the skip path that make it up
        lf = g.layers[i]
        natural = max(float(np.abs(v).max()) for v in lf.terms.values()) + float(np.abs(lf.G).max())
        _vacuous(f"dL/dT_{i}", g.bound.dT[i], max(float(np.abs(t).max()), _floor(trace) * natural), None, trace,
                 "dL_dout")  # fmt: skip
    for i, (lf, lb) in enumerate(zip(g.layers, g.bound.layers, strict=True)):
        c = trace.caches[i]
        xg = n * float(np.abs(c.T_in).max()) * float(np.abs(lf.G).max())
        hmax = max(float(np.abs(st.h).max()) for st in c.heads)
        natural = {"dW_V": xg, "dW_g": n * float(np.abs(c.blk.Z).max()) * float(np.abs(g.dT[i + 1]).max())
                   if c.blk is not None else 0.0, "G": 0.0}  # fmt: skip
        natural.update(dict.fromkeys(("dW", "dW_Q", "dW_K"), xg * abs(trace.beta) * float(np.abs(c.T_in).max()) * hmax))
        for k in ("dW_Q", "dW_K", "dW", "dW_V", "dW_g", "G"):
            val = getattr(lf, k)
            if val is not None:
                scale = max(float(np.abs(val).max()), _floor(trace) * natural[k])
                _vacuous(k, getattr(lb, k), scale, i + 1, trace, "dL_dout")


__all__ = ["CERTIFICATES", "FastGrads", "FastLayerCache", "FastTrace", "backward", "forward"]
