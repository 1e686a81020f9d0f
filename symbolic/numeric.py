r"""Third route: lambdify the derived expressions to mpmath and compare with the reference backend at dps = 50.

Paper: Lemma D.17 / D.9, F.4, §C.2, G.3, H.2, J.3, K.2; spec §2.2–2.9; STYLE §0 item 5 (three-way oracle).

The derived matrices of :mod:`symbolic.explicit` / :mod:`symbolic.block` are polynomials in atoms. Here every
atom is replaced by its definition ($a = e^{S}$, $r = 1/\sum_k a_{ik}$, $\varphi = \tanh$,
$\varphi' = 1 - \tanh^2$), the result is turned into an mpmath function with ``sympy.lambdify``, and evaluated on
seeded random rational inputs in a private 50-digit ``mpmath.MPContext`` (never the global ``mpmath.mp``; the
lambdified function looks ``exp``, ``mpf``... up in that context). The same inputs go through the public API of
``reference`` (``forward`` / ``backward`` with ``backend="mpmath"``). The observed figure is the largest
entrywise difference relative to $\max(1, \|\cdot\|_\infty)$; agreement means it is below ``TOL`` (the last
~10 of the 50 digits are allowed for rounding in both routes).

Shape legend: n = tokens, d = width, H = heads.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import mpmath
import numpy as np
import sympy as sp

from reference.backend import mp_context
from symbolic import block as blk
from symbolic import explicit as ex
from symbolic.chain import Chain

DPS = 50
TOL = mpmath.mpf("1e-40")  # 50 digits carried, 40 asked: both routes round, neither cancels badly at n<=4


def rational_matrix(rng: np.random.Generator, rows: int, cols: int, den: int = 8) -> list[list[Fraction]]:
    """Entries k/den with k uniform in [-den, den] (so |entry| <= 1): exact, well-conditioned inputs."""
    return [[Fraction(int(rng.integers(-den, den + 1)), den) for _ in range(cols)] for _ in range(rows)]


def mp_array(M: list[list[Fraction]], mp=None) -> np.ndarray:
    """Object array of mpf numbers of the context ``mp`` (default: a fresh one at ``DPS`` digits)."""
    mp = mp_context(DPS) if mp is None else mp
    return np.array([[mp.mpf(x.numerator) / x.denominator for x in row] for row in M], dtype=object)


def resolve_atoms(expr: sp.Expr, chain: Chain, activation=sp.tanh) -> sp.Expr:
    """Replace every atom by its definition until only base symbols remain."""
    sub: dict[sp.Symbol, sp.Expr] = {}
    for atom, df in chain.defs.items():
        if df.kind == "exp":
            sub[atom] = sp.exp(df.arg)
        elif df.kind == "recip":
            sub[atom] = 1 / df.arg
        elif df.kind == "fn":
            sub[atom] = activation(df.arg)
            sub[df.partials[0]] = sp.diff(activation(sp.Symbol("z")), sp.Symbol("z")).subs(sp.Symbol("z"), df.arg)
        else:
            raise ValueError(f"chain: atom kind {df.kind!r} has no numeric definition here")
    for _ in range(8):  # atoms nest at most a few levels (residual block over attention)
        new = expr.xreplace(sub)
        if new == expr:
            return expr
        expr = new
    raise ValueError("expr: atoms still nested after 8 substitutions")


@dataclass(frozen=True)
class Case:
    """One configuration of the numeric comparison."""

    name: str
    n: int
    d: int
    heads: int = 1
    causal: bool = False
    beta: Fraction = Fraction(1, 2)
    block: bool = False  # layer has W_g with phi = tanh
    residual: bool = False


CASES = (
    Case("attention", 3, 2, beta=Fraction(1, 2)),
    Case("attention beta=1", 3, 2, beta=Fraction(1)),
    Case("causal", 3, 2, causal=True),
    Case("two heads", 3, 2, heads=2),
    Case("layer with g = tanh(Z W_g)", 2, 2, block=True),
    Case("residual layer with g", 2, 2, block=True, residual=True),
)
QUICK_CASES = CASES[:1]


def _fill(rng: np.random.Generator, c: Case) -> dict[str, list[list[Fraction]]]:
    vals = {k: rational_matrix(rng, c.n if k in ("X", "G") else c.d, c.d) for k in ("X", "W_Q", "W_K", "W_V", "G")}
    vals["W_g"] = rational_matrix(rng, c.d, c.d)
    return vals


def _derived(c: Case):
    """The symbolic side: (model, base-symbol values table builder, {name: derived matrix})."""
    if c.block:
        if c.residual:
            r = blk.residual_layer(c.n, c.d, with_block=True, causal=c.causal)
            m, b, L = r.attn, r.block, r.L
        else:
            m, b, L = blk.layer_with_block(c.n, c.d, causal=c.causal)
        ch = m.chain
        out = {"dX": ch.grad(L, m.X), "dW_g": ch.grad(L, b.W_g)}
        return m, b, out
    m = ex.attention(c.n, c.d, causal=c.causal, heads=c.heads, weights="QK")
    out = {"dX": ex.derive_dX(m)} | {f"d{w}": ex.derive_weight(m, w) for w in ("W_Q", "W_K", "W_V")}
    if c.heads == 1:
        ms = ex.attention(c.n, c.d, causal=c.causal, slots=True)  # free W: feed W = W_Q W_K^T
        out |= {t: ex.derive_term(ms, t) for t in ex.PATH_PARTS}
        out["dW"] = ex.derive_weight(ex.attention(c.n, c.d, causal=c.causal), "W")
    return m, None, out


def compare_case(c: Case, seed: int = 0) -> dict[str, str]:
    """Max relative entrywise difference (as a string, 3 digits) per quantity, derived vs reference."""
    from reference import Layer, backward, forward

    rng = np.random.default_rng([seed, c.n, c.d, c.heads, int(c.causal), int(c.block), int(c.residual)])
    vals = _fill(rng, c)
    m, b, derived = _derived(c)
    out: dict[str, str] = {}
    mp = mp_context(DPS)
    namespace = [{k: getattr(mp, k) for k in dir(mp) if not k.startswith("_")}, "mpmath"]  # this context first
    arr = {k: mp_array(v, mp) for k, v in vals.items()}
    beta = mp.mpf(c.beta.numerator) / c.beta.denominator
    Wm = arr["W_Q"].dot(arr["W_K"].T)
    layer = Layer(W_Q=arr["W_Q"], W_K=arr["W_K"], W_V=arr["W_V"], W_g=arr["W_g"] if c.block else None)
    trace = forward(arr["X"], [layer], beta=beta, causal=c.causal, heads=c.heads, residual=c.residual,
                    activation="tanh" if c.block else "identity", backend="mpmath", dps=DPS)  # fmt: skip
    grads = backward(trace, arr["G"])
    lg = grads.layers[0]
    ref = {"dX": grads.dX, "dW_Q": lg.dW_Q, "dW_K": lg.dW_K, "dW_V": lg.dW_V, "dW": lg.dW, "dW_g": lg.dW_g}
    ref |= dict(lg.terms)
    for name, M in derived.items():
        expr = resolve_atoms(M, m.chain)
        table = _table(expr, vals, beta, Wm, b, c, mp)
        syms = sorted(table, key=sp.default_sort_key)
        fn = sp.lambdify(syms, expr, modules=namespace, cse=True)
        got = np.array(fn(*(table[s] for s in syms)).tolist(), dtype=object)
        want = ref[name]
        out[name] = mpmath.nstr(_rel(got, want), 3)
    return out


def _rel(got: np.ndarray, want: np.ndarray) -> mpmath.mpf:
    want = np.asarray(want, dtype=object).reshape(got.shape)
    scale = max([mpmath.mpf(1)] + [abs(x) for x in want.flat])
    return max(abs(g - w) for g, w in zip(got.flat, want.flat, strict=True)) / scale


def _table(expr, vals, beta, Wm, b, c: Case, mp) -> dict[sp.Symbol, mpmath.mpf]:
    """Numeric value (mpf) of every free symbol of ``expr``, from the symbol's name."""
    prefix = {"x": "X", "xq": "X", "xk": "X", "xv": "X", "q": "W_Q", "k": "W_K", "v": "W_V", "g": "G",
              "u": "W_g", "t": "G"}  # fmt: skip
    table = {}
    for s in expr.free_symbols:
        name = s.name
        if name.startswith("beta"):
            table[s] = beta
            continue
        head, idx = name.split("_{")
        i, j = int(idx[0]) - 1, int(idx[1]) - 1
        if head == "w":
            table[s] = Wm[i, j]
        else:
            x = vals[prefix[head]][i][j]
            table[s] = mp.mpf(x.numerator) / x.denominator
    return table


def compare_all(quick: bool = False, seed: int = 0) -> dict[str, dict[str, str]]:
    """Every case (quick: the first) -> quantity -> relative difference."""
    return {c.name: compare_case(c, seed) for c in (QUICK_CASES if quick else CASES)}


def agrees(report: dict[str, dict[str, str]]) -> bool:
    return all(mpmath.mpf(v) <= TOL for per in report.values() for v in per.values())
