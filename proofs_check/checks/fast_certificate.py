r"""The a-posteriori certificate of the fast path (issue 10; docs/certificate.md): it holds, and how tight it is.

Paper: Lemma H.4 (spec §2.10) refined entrywise, with Lemmas C.13/I.1, C.14–C.16, E.2–E.11, F.5, G.4 per head
(:mod:`fastpath.certificate`) and H.2, J.3, K.2 across layers (:mod:`fastpath.aposteriori`).

Two kinds of evidence, both against the exact model (float64 reference first; a float64 violation is re-decided
with the 50-digit mpmath reference by :func:`proofs_check.decide.judge` before it counts):

* **one head with perturbed inputs**: the certificate receives fast inputs $\tilde X = X + \delta_X$,
  $\tilde G = G + \delta_G$ with $|\delta| = E$ exactly (X and G on a $2^{-20}$ grid, $\delta$ on a $2^{-30}$ grid,
  so every sum is exact), and must bound $|\text{fast}(\tilde X, \tilde G) - \text{exact}(X, G)|$ for s, the five
  terms, dX, dW and dW_V. This is the situation of every layer but the first, made explicit;
* **whole stacks**: :func:`fastpath.forward` / :func:`fastpath.backward` with the default certificate on seeded
  stacks (1 to 3 layers, causal or not, 1 or 2 heads, residual tanh blocks), every output and gradient field.

Shape legend: n tokens, d width, d_h head width, m layers.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import fastpath
import reference
from fastpath.certificate import backward_bound, forward_bound, head_kernel
from fastpath.compare import all_fields, random_layers
from fastpath.layer import head_backward, head_forward
from fastpath.work import Work
from proofs_check.decide import decide
from proofs_check.registry import Context, Result, check
from reference import attention as ref_attention
from reference.attention import TERM_NAMES

HEAD_FIELDS = ("s", *TERM_NAMES, "dX", "dW", "dW_V")


@dataclass(frozen=True)
class Case:
    """One judged case: the exact inputs, the fast values, their bounds, and how to evaluate the exact side."""

    name: str
    exact: Callable  # exact(bk) -> {field: array} (float64 or mpf)
    fast: dict
    bound: dict


BIG = 2.0**1000  # an error above a zero bound: a finite stand-in for "infinitely violated" (an ``le`` row with an
# infinite side would compare inf <= inf and hold)


def _worst(fast, exact, bound, bk) -> object:
    """$\\max_e |fast_e - exact_e| / bound_e$ (0 where the difference is 0, at most BIG), in the number system of
    ``exact``."""
    if not bk.is_mp:
        diff = np.abs(fast - exact)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            r = np.where(diff == 0, 0.0, np.minimum(diff / bound, BIG))
        return float(r.max()) if r.size else 0.0
    worst = bk.scalar(0)
    for f, e, b in zip(np.ravel(fast), np.ravel(exact), np.ravel(bound), strict=True):
        diff = abs(bk.scalar(float(f)) - e)
        if diff != 0:
            worst = max(worst, min(diff / bk.scalar(float(b)), bk.scalar(BIG)) if b > 0 else bk.scalar(BIG))
    return worst


def _claim(bk, case: Case):
    exact = case.exact(bk)
    for k, f in case.fast.items():
        yield ("le", f"{case.name}:{k}", _worst(f, exact[k], case.bound[k], bk), 1.0)


# -- one head with perturbed inputs ---------------------------------------------------------------------------------


def _grid(a: np.ndarray, bits: int) -> np.ndarray:
    return np.round(a * 2.0**bits) / 2.0**bits


def head_case(rng, *, n: int, d: int, causal: bool, eps: float, e_x: float, e_g: float, positive: bool = False,
              degree: int | None = None, scale: float = 1.0, variant: str | None = None) -> Case:  # fmt: skip
    r"""One head at fast inputs $\tilde X = X + E_X$, $\tilde G = G - E_G$ (signs fixed, magnitudes exact).

    ``positive``: X, W_V in [0, 1] (the value path has no cancellation, so its error equals its bound's value part).
    ``variant`` (a mutant): ``"no rounding"`` drops the rounding terms ($r_r$ of Step 2 and the $\gamma$ parts of
    Step 0), ``"no sigma"`` the logit perturbation
    (tau from the polynomial's eps alone, Step 1' off).
    """
    lo = 0.0 if positive else -1.0
    X = _grid(rng.uniform(lo, 1, (n, d)), 20)
    w = scale / math.sqrt(d)
    W_Q, W_K = _grid(rng.uniform(-w, w, (d, d)), 20), _grid(rng.uniform(-w, w, (d, d)), 20)
    W_V = _grid(rng.uniform(0.0 if positive else -w, w, (d, d)), 20)
    G = _grid(rng.uniform(-1, 1, (n, d)), 20)
    E_X = _grid(np.full((n, d), e_x), 30)
    E_G = _grid(np.full((n, d), e_g), 30)
    Xt, Gt = X + E_X, G - E_G  # exact in float64 (grids of 2^-20 and 2^-30, entries below 2)
    beta = 1.0 / d
    st = head_forward(Xt, W_Q, W_K, W_V, beta, eps=eps, kind="chebyshev", causal=causal, budget=2**31, block=16,
                      degree=degree, method="lowrank")  # fmt: skip
    work = Work()
    hk = head_kernel(st, Xt, E_X)
    if variant == "no rounding":  # r_r = 0 and the gamma parts of E_q, E_k, E_h (Step 0) dropped
        E_q, E_k, E_h = (E_X @ np.abs(W) for W in (W_Q, W_K, W_V))
        hk = dataclasses.replace(hk, rr=0.0, up=1.0, E_q=E_q, E_k=E_k, E_h=E_h)
    elif variant == "no sigma":
        e = hk.eps
        rho = (1 + e) / (1 - e) - 1
        hk = dataclasses.replace(hk, tau=rho / (1 - rho), rho=rho, sigma=np.zeros(n), E_q=None, E_k=None)
    fast, bound = head_fields(st, hk, Xt, E_X, Gt, E_G, work)
    tag = f"head(n={n},causal={causal},eps={eps:g},E_X={e_x:g})"
    return Case(tag, exact_head(X, W_Q, W_K, W_V, G, beta, causal), fast, bound)


def head_fields(st, hk, X, E_X, G, E_G, work: Work) -> tuple[dict, dict]:
    """The fast head's fields (s, the five terms, dX, dW, dW_V) and their a-posteriori bounds, by name."""
    E_s = forward_bound(st, hk, work)
    g = head_backward(st, X, G)
    b = backward_bound(st, hk, X, E_X, G, E_G, E_s, work)
    fast = {"s": st.s, **g.terms, "dX": g.dX, "dW": g.dW, "dW_V": g.dW_V}
    bound = {"s": E_s, **b.terms, "dX": b.dX, "dW": b.dW, "dW_V": b.dW_V}
    return fast, bound


def exact_head(X, W_Q, W_K, W_V, G, beta: float, causal: bool) -> Callable:
    """The same fields of the reference head on a backend (float64 or mpmath): ``exact(bk) -> dict``."""

    def exact(bk):
        A = (lambda a: bk.asarray(a)) if bk.is_mp else (lambda a: a)
        c = ref_attention.head_forward(A(X), A(W_Q) @ A(W_K).T, A(W_V), beta, causal, bk)
        hg = ref_attention.head_vjp(A(G), c)
        return {"s": c.s, **hg.terms, "dX": hg.dX, "dW": hg.dW, "dW_V": hg.dW_V}

    return exact


def stack_case(rng, *, n: int, m: int, causal: bool, heads: int, eps: float) -> Case:
    """A seeded residual tanh stack through :func:`fastpath.forward` / :func:`fastpath.backward` (default
    certificate)."""
    d = 4
    X, layers, dL = rng.uniform(-1, 1, (n, d)), random_layers(rng, d, m), rng.uniform(-1, 1, (n, d))
    cfg = dict(causal=causal, heads=heads, residual=True, activation="tanh")
    tr = fastpath.forward(X, layers, eps=eps, method="lowrank", block=16, allow_vacuous=True, **cfg)
    g = fastpath.backward(tr, dL)
    fast = {**all_fields(g, tr), "output": tr.output}
    bound = {**all_fields(g.bound, tr), "output": tr.bound_T[-1]}

    def exact(bk):
        rt = reference.forward(X, layers, **cfg) if not bk.is_mp else reference.forward(
            X, layers, backend="mpmath", dps=bk.dps, **cfg)  # fmt: skip
        out = {**all_fields(reference.backward(rt, dL), tr), "output": rt.output}
        return {k: np.asarray(v) for k, v in out.items()}

    return Case(f"stack(n={n},m={m},causal={causal},heads={heads},eps={eps:g})", exact, fast, bound)


def _cases(ctx: Context, variant: str | None) -> list[Case]:
    rng = ctx.rng(1010)
    cases = [
        # the input error drives the logits (sigma): positive X and W_V, so the value path is tight
        head_case(
            rng, n=48, d=2, causal=False, eps=1e-9, e_x=2.0**-12, e_g=0.0, positive=True, scale=2.0, variant=variant
        ),
        head_case(rng, n=48, d=2, causal=True, eps=1e-6, e_x=2.0**-14, e_g=2.0**-14, variant=variant),
        # rounding dominates: a polynomial far more accurate than float64 (fixed degree 14 on a small range)
        head_case(rng, n=64, d=2, causal=False, eps=1e-9, e_x=0.0, e_g=0.0, degree=14, scale=0.5, variant=variant),
        head_case(rng, n=64, d=2, causal=True, eps=1e-9, e_x=0.0, e_g=0.0, degree=14, scale=0.5, variant=variant),
    ]
    grid = [(24, 1, False, 1, 1e-6), (24, 2, True, 2, 1e-9), (32, 3, True, 1, 1e-3)]
    if not ctx.quick:
        grid += list(itertools.product((64,), (1, 2, 4), (False, True), (1, 2), (1e-3, 1e-9)))
    cases += [stack_case(rng, n=n, m=m, causal=c, heads=h, eps=e) for n, m, c, h, e in grid]
    return cases


@check(
    id="fast.cert.aposteriori",
    label="Lemma H.4",
    name="A-posteriori certificate (Lemma H.4 refined entrywise): |fast - exact| <= bound for every field, "
    "one head with perturbed inputs and whole stacks",
    kind="INEQ",
    expected="OK",
    spec=(83,),
    uses=("fast.C13.relative_error", "fast.E11.dX", "cat.H4.multi_layer"),
    mutants=("bound divided by 10", "rounding terms dropped", "logit perturbation sigma dropped"),
)
def check_aposteriori(ctx: Context) -> Result:
    r"""docs/certificate.md, Steps 0–4: on every case and field, $\max_e |\text{fast} - \text{exact}|_e /
    \text{bound}_e \le 1$ (an ``le`` row per field; float64 first, mpmath at 50 digits before a failure counts).

    Mutants, each on the same cases: every bound divided by 10 (a constant too small); the certificate without its
    rounding terms ($r_r$ of Step 2, the $\gamma$ parts of Step 0; killed where a degree-14 polynomial makes
    rounding the only error); $\tau$ from
    the polynomial's $\varepsilon$ alone, the logit perturbation $\sigma$ of Step 1 dropped (killed by the head whose
    input error moves the logits).
    """
    variant = {"rounding terms dropped": "no rounding", "logit perturbation sigma dropped": "no sigma"}.get(
        ctx.mutant or ""
    )
    cases = _cases(ctx, variant)
    if ctx.mutated("bound divided by 10"):
        cases = [dataclasses.replace(c, bound={k: b / 10 for k, b in c.bound.items()}) for c in cases]
    res = decide(_claim, [{"case": c} for c in cases], ctx=ctx)
    return dataclasses.replace(res, figure=f"max error/bound over {len(cases)} cases and every field; {res.figure}")


# -- tightness ------------------------------------------------------------------------------------------------------

FIELDS = ("dX", "dW", "dW_V")  # dL/dX and layer 1's dW, dW_V


def tightness_grid(quick: bool) -> list[tuple]:
    """(n, m, causal, eps, heads): issue 10's grid; quick: n = 96, m <= 2, one eps."""
    if quick:
        return list(itertools.product((96,), (1, 2), (False, True), (1e-6,), (1, 2)))
    return list(itertools.product((256, 4096), (1, 2, 4, 8, 16), (False, True), (1e-3, 1e-6, 1e-9), (1, 2)))


def exact_layerwise(X, layers, dL, **cfg):
    """The float64 reference one layer at a time (the stack is a composition of layers), so that memory holds one
    layer's n×n matrices: returns (T_m, dL/dX, [dW per layer], [dW_V per layer])."""
    Ts = [X]
    for L in layers:
        Ts.append(reference.forward(Ts[-1], [L], **cfg).output)
    gT, dW, dWV = dL, [None] * len(layers), [None] * len(layers)
    for i in reversed(range(len(layers))):
        g = reference.backward(reference.forward(Ts[i], [layers[i]], **cfg), gT)
        gT, dW[i], dWV[i] = g.dX, g.layers[0].dW, g.layers[0].dW_V
    return Ts[-1], gT, dW, dWV


def error_over_bound(fast, exact, bound) -> tuple[float, float]:
    """(max, median) over entries of |fast - exact| / bound (0 where both are 0): issue 10's tightness measure."""
    diff = np.abs(np.asarray(fast) - np.asarray(exact))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(diff == 0, 0.0, diff / bound)
    return float(r.max()), float(np.median(r))


@check(
    id="fast.cert.tightness",
    label="Lemma H.4",
    name="Tightness: error/bound per field (max, median) of the a-posteriori certificate; never violated, "
    "and at least 2x tighter (median) than the a-priori one of spec §2.10",
    kind="INEQ",
    expected="OK",
    spec=(83,),
    uses=("fast.cert.aposteriori",),
    mutants=("a-priori as the candidate",),
)
def check_tightness(ctx: Context) -> Result:
    r"""Issue 10's measure on its grid (full profile: n in {256, 4096}, m in {1, 2, 4, 8, 16}, causal on/off,
    eps in {1e-3, 1e-6, 1e-9}, heads 1 and 2; n = 65536 is left to ``benchmarks/certificate_bench.py --large``;
    quick: n = 96, m <= 2), X, dL ~ U[-1, 1], d = 4, residual tanh, the exact side evaluated layer by layer
    (:func:`exact_layerwise`): per case and field (dX, dW, dW_V of layer 1) the max and the median over entries of
    error/bound. Holds when no entry is violated (a float64 violation fails the check; it is never expected, the
    bound containing the reference's rounding, and ``fast.cert.aposteriori`` re-decides violations in mpmath on
    small n) and, where both medians are positive, the a-posteriori median is at least 2 times the a-priori one
    for every field (measured: 5x for dW_V at one layer, 20x to 1e9x elsewhere). Causal cases use blocks of 32
    tokens where n <= 256 (with the default 256 the whole of f would be the exact diagonal block). Mutant: the
    a-priori certificate as the candidate (its ratio to itself is 1).
    """
    rows, worst_gain, violations = [], math.inf, []
    cand = "a-priori" if ctx.mutated("a-priori as the candidate") else "a-posteriori"
    for idx, (n, m, causal, eps, heads) in enumerate(tightness_grid(ctx.quick)):
        rng = ctx.rng(2020 + idx)
        X, layers, dL = rng.uniform(-1, 1, (n, 4)), random_layers(rng, 4, m), rng.uniform(-1, 1, (n, 4))
        cfg = dict(causal=causal, heads=heads, residual=True, activation="tanh")
        _, dX, dW, dWV = exact_layerwise(X, layers, dL, **cfg)
        row = dict(n=n, m=m, causal=causal, eps=eps, heads=heads)
        for cert in dict.fromkeys((cand, "a-priori")):
            tr = fastpath.forward(X, layers, eps=eps, method="lowrank", allow_vacuous=True, certificate=cert,
                                  block=32 if n <= 256 else None, **cfg)  # fmt: skip
            g = fastpath.backward(tr, dL)
            lb = g.bound.layers[0]
            for f, fast, ex, b in (("dX", g.dX, dX, g.bound.dX), ("dW", g.layers[0].dW, dW[0], lb.dW),
                                   ("dW_V", g.layers[0].dW_V, dWV[0], lb.dW_V)):  # fmt: skip
                mx_, med_ = error_over_bound(fast, ex, b)
                row.setdefault(f, {})[cert] = dict(max=mx_, median=med_)
                if mx_ > 1:
                    violations.append(f"{(n, m, causal, eps, heads)}: {f} ({cert})")
        for f in FIELDS:
            a, p = row[f][cand]["median"], row[f]["a-priori"]["median"]
            if a > 0 and p > 0:
                worst_gain = min(worst_gain, a / p)
        rows.append(row)
    ok = not violations and worst_gain >= 2
    med = {f: float(np.median([r[f][cand]["median"] for r in rows])) for f in FIELDS}
    mx = {f: float(np.max([r[f][cand]["max"] for r in rows])) for f in FIELDS}
    fig = (f"{len(rows)} cases, {len(violations)} violated; median error/bound "
           + ", ".join(f"{f} {med[f]:.1e} (max {mx[f]:.1e})" for f in med)
           + f"; a-posteriori/a-priori median gain >= {worst_gain:.3g}")  # fmt: skip
    return Result(ok, fig, {"rows": rows, "violations": violations, "median": med, "max": mx},
                  observed=2.0, bound=worst_gain, precision="float64")  # fmt: skip
