r"""The five terms in index notation for symbolic n and d: Indexed symbols, sums and Kronecker deltas.

Paper: Lemma D.1 (entrywise gradient), D.9, D.15, D.17 (the five terms); spec §2.2–2.3.

Forward definitions, with the three slots $X_q, X_k, X_v$ kept apart (indices $i, l \in [n]$, $j, p, q \in [d]$):

.. math::
    S_{il} = \beta\sum_{p,q} X^q_{ip} W_{pq} X^k_{lq},\qquad
    L = \sum_{i,j,l,p} G_{ij}\, r_i\, a_{il}\, X^v_{lp} (W_V)_{pj},\qquad
    a_{il} = e^{S_{il}},\ r_i = 1/\textstyle\sum_k a_{ik}.

The chain rule for $\theta = X^{\mathrm{slot}}_{uv}$ (free $u \in [n]$, $v \in [d]$) is applied by hand:

.. math::
    \frac{\mathrm dL}{\mathrm d\theta} = \frac{\partial L}{\partial \theta}
    + \sum_{i,l}\frac{\partial L}{\partial a_{il}}\, a_{il}\,\frac{\partial S_{il}}{\partial\theta}
    - \sum_{i}\frac{\partial L}{\partial r_{i}}\, r_i^2 \sum_{k} a_{ik}\frac{\partial S_{ik}}{\partial\theta},

with $\partial Y_{ip}/\partial Y_{uv} = \delta_{iu}\delta_{pv}$; every delta that meets a summation index is
contracted. The closed forms are turned into index sums *mechanically* from their matrix formulas
(:func:`matmul`, :func:`transpose`, :func:`hadamard`, :func:`diag_left`). Both sides are brought to a canonical
form (dummies renamed in every order, the least spelling kept) and compared term by term: when the
coefficients cancel, the identity is proved **for all n, d >= 1** (a formal identity of finite sums).
:func:`instantiate` expands a symbolic expression at concrete sizes for comparison with
:mod:`symbolic.explicit`.

Shape legend: kinds "n" (token index) and "d" (feature index).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

n_sym, d_sym = sp.symbols("n d", integer=True, positive=True)
beta = sp.Symbol("beta")

Xq, Xk, Xv, X = (sp.IndexedBase(s) for s in ("X^q", "X^k", "X^v", "X"))
W, WV, G, a, r = (sp.IndexedBase(s) for s in ("W", "W_V", "G", "a", "r"))
KIND = {Xq: "nd", Xk: "nd", Xv: "nd", X: "nd", W: "dd", WV: "dd", G: "nd", a: "nn", r: "n"}

_counter = itertools.count()


def fresh(kind: str) -> tuple[sp.Symbol, str]:
    """A new summation index of kind 'n' or 'd'."""
    return sp.Symbol(f"{'k' if kind == 'n' else 'c'}_{next(_counter)}", integer=True), kind


@dataclass(frozen=True)
class Term:
    """coeff * prod(factors), summed over ``dummies`` ((symbol, kind) pairs)."""

    coeff: sp.Expr
    factors: tuple[sp.Expr, ...]  # Indexed or KroneckerDelta
    dummies: tuple[tuple[sp.Symbol, str], ...]


IExpr = list[Term]  # a sum of terms


def ind(base: sp.IndexedBase, *idx: sp.Symbol) -> IExpr:
    return [Term(sp.S.One, (base[idx],), ())]


def scale(c: sp.Expr, E: IExpr) -> IExpr:
    return [Term(c * t.coeff, t.factors, t.dummies) for t in E]


def add(*Es: IExpr) -> IExpr:
    return [t for E in Es for t in E]


def _rename(t: Term) -> Term:
    sub, dums = {}, []
    for s, k in t.dummies:
        new, _ = fresh(k)
        sub[s] = new
        dums.append((new, k))
    return Term(t.coeff, tuple(f.xreplace(sub) for f in t.factors), tuple(dums))


def mul(*Es: IExpr) -> IExpr:
    """Product of index expressions (dummies renamed apart)."""
    out: IExpr = [Term(sp.S.One, (), ())]
    for E in Es:
        out = [
            Term(x.coeff * y.coeff, x.factors + y.factors, x.dummies + y.dummies) for x in out for y in map(_rename, E)
        ]
    return out


def summed(kind: str, body: Callable[[sp.Symbol], IExpr]) -> IExpr:
    """$\\sum_k$ body(k) over a fresh index of ``kind``."""
    k, _ = fresh(kind)
    return [Term(t.coeff, t.factors, ((k, kind), *t.dummies)) for t in body(k)]


def contract(t: Term) -> Term | None:
    """Remove every Kronecker delta that involves a summation index (or is trivially 1); None if it is 0."""
    factors, dummies = list(t.factors), list(t.dummies)
    changed = True
    while changed:
        changed = False
        for pos, fac in enumerate(factors):
            if not isinstance(fac, sp.KroneckerDelta):
                continue
            x, y = fac.args
            dnames = [s for s, _ in dummies]
            if x == y:
                factors.pop(pos)
            elif x in dnames or y in dnames:
                old, new = (x, y) if x in dnames else (y, x)
                factors.pop(pos)
                dummies = [(s, k) for s, k in dummies if s != old]
                factors = [f.xreplace({old: new}) for f in factors]
            else:
                continue
            changed = True
            break
    factors = [f for f in factors if f != 1]
    if any(f == 0 for f in factors):
        return None
    return Term(t.coeff, tuple(factors), tuple(dummies))


def simplify(E: IExpr) -> IExpr:
    return [c for c in (contract(t) for t in E) if c is not None]


def diff(E: IExpr, base: sp.IndexedBase, idx: tuple[sp.Symbol, ...]) -> IExpr:
    r"""$\partial E/\partial\, \mathrm{base}_{idx}$ by the product rule: $\partial Y_{ip}/\partial Y_{uv} =
    \delta_{iu}\delta_{pv}$ (deltas left in place; call :func:`simplify` to contract them)."""
    out: IExpr = []
    for t in E:
        for pos, fac in enumerate(t.factors):
            if isinstance(fac, sp.Indexed) and fac.base == base:
                deltas = tuple(sp.KroneckerDelta(x, y) for x, y in zip(fac.indices, idx, strict=True))
                rest = t.factors[:pos] + t.factors[pos + 1 :]
                out.append(Term(t.coeff, deltas + rest, t.dummies))
    return out


# ------------------------------------------------------------------------------------------------------------
# forward definitions and the chain rule


def logits(i: sp.Symbol, l: sp.Symbol) -> IExpr:
    r"""$S_{il} = \beta\sum_{p,q} X^q_{ip} W_{pq} X^k_{lq}$."""
    return scale(beta, summed("d", lambda p: summed("d", lambda q: mul(ind(Xq, i, p), ind(W, p, q), ind(Xk, l, q)))))


def loss() -> IExpr:
    r"""$L = \sum_{i,j,l,p} G_{ij} r_i a_{il} X^v_{lp} (W_V)_{pj}$ (i.e. $\langle G, f X_v W_V\rangle$)."""
    return summed("n", lambda i: summed("d", lambda j: summed("n", lambda l: summed("d", lambda p: mul(
        ind(G, i, j), ind(r, i), ind(a, i, l), ind(Xv, l, p), ind(WV, p, j))))))  # fmt: skip


u, v = sp.symbols("u v", integer=True)  # the free indices of dL/dX_{uv}
SLOTS = {"q": Xq, "k": Xk, "v": Xv}


def derive(term: str) -> dict[str, IExpr]:
    """The chain-rule steps for one of D2, D4, D6, D7, D8 at entry (u, v); the last step is the result."""
    from symbolic.explicit import PATH_PARTS

    if term not in PATH_PARTS:
        raise ValueError(f"term: expected one of {sorted(PATH_PARTS)}, got {term!r}")
    slot, (group,) = PATH_PARTS[term]
    Y = SLOTS[slot]
    L = loss()
    steps: dict[str, IExpr] = {"L": L}
    if group == "direct":
        raw = diff(L, Y, (u, v))
    elif group == "numerator":
        i, l = sp.symbols("i l", integer=True)  # free in dL/da and dS, summed in the chain-rule step
        dLda = simplify(diff(L, a, (i, l)))
        dS = diff(logits(i, l), Y, (u, v))
        steps["dL/da"], steps["dS/dtheta"] = dLda, dS
        raw = [Term(t.coeff, t.factors, ((i, "n"), (l, "n"), *t.dummies)) for t in mul(dLda, ind(a, i, l), dS)]
    else:  # normalizer: dr_i = -r_i^2 sum_k a_ik dS_ik
        i, k = sp.symbols("i k", integer=True)
        dLdr = simplify(diff(L, r, (i,)))
        dS = diff(logits(i, k), Y, (u, v))
        steps["dL/dr"], steps["dS/dtheta"] = dLdr, dS
        body = mul(dLdr, ind(r, i), ind(r, i), ind(a, i, k), dS)
        raw = [Term(-t.coeff, t.factors, ((i, "n"), (k, "n"), *t.dummies)) for t in body]
    steps["chain rule"] = raw
    steps[term] = simplify(raw)
    return steps


# ------------------------------------------------------------------------------------------------------------
# closed forms, built mechanically from the matrix formulas


@dataclass(frozen=True)
class IMat:
    """A matrix as an entry function (i, j) -> IExpr with row and column kinds."""

    rows: str
    cols: str
    at: Callable[[sp.Symbol, sp.Symbol], IExpr]


def base_mat(B: sp.IndexedBase) -> IMat:
    kind = KIND[B]
    return IMat(kind[0], kind[1], lambda i, j: ind(B, i, j))


def matmul(A: IMat, B: IMat) -> IMat:
    if A.cols != B.rows:
        raise ValueError(f"B: expected rows of kind {A.cols!r}, got {B.rows!r}")
    return IMat(A.rows, B.cols, lambda i, j: summed(A.cols, lambda k: mul(A.at(i, k), B.at(k, j))))


def transpose(A: IMat) -> IMat:
    return IMat(A.cols, A.rows, lambda i, j: A.at(j, i))


def hadamard(A: IMat, B: IMat) -> IMat:
    return IMat(A.rows, A.cols, lambda i, j: mul(A.at(i, j), B.at(i, j)))


def diag_left(K: Callable[[sp.Symbol], IExpr], A: IMat) -> IMat:
    """diag(K) A."""
    return IMat(A.rows, A.cols, lambda i, j: mul(K(i), A.at(i, j)))


def smul(c: sp.Expr, A: IMat) -> IMat:
    return IMat(A.rows, A.cols, lambda i, j: scale(c, A.at(i, j)))


def closed_form(term: str) -> IExpr:
    """The corrected closed form of ``term`` at entry (u, v), from its matrix formula (spec §2.3)."""
    Xm, Wm, Gm, Vm = base_mat(X), base_mat(W), base_mat(G), base_mat(WV)
    f = IMat("n", "n", lambda i, j: mul(ind(r, i), ind(a, i, j)))  # diag(r) a
    h = matmul(Xm, Vm)
    s = matmul(f, h)
    q = matmul(Gm, transpose(h))
    p1 = hadamard(f, q)
    K = lambda i: summed("d", lambda j: mul(Gm.at(i, j), s.at(i, j)))  # noqa: E731  (G o s) 1_d
    p2 = diag_left(K, f)
    forms = {
        "D8": matmul(matmul(transpose(f), Gm), transpose(Vm)),
        "D4": smul(beta, matmul(matmul(p1, Xm), transpose(Wm))),
        "D2": smul(-beta, matmul(matmul(p2, Xm), transpose(Wm))),
        "D7": smul(beta, matmul(matmul(transpose(p1), Xm), Wm)),
        "D6": smul(-beta, matmul(matmul(transpose(p2), Xm), Wm)),
    }
    if term not in forms:
        raise ValueError(f"term: expected one of {sorted(forms)}, got {term!r}")
    return forms[term].at(u, v)


def unslot(E: IExpr) -> IExpr:
    """Identify the slots $X^q, X^k, X^v$ with $X$."""
    sub = {Xq: X, Xk: X, Xv: X}
    return [Term(t.coeff, tuple(f.replace(lambda e: e in sub, lambda e: sub[e]) for f in t.factors),
                 t.dummies) for t in E]  # fmt: skip


# ------------------------------------------------------------------------------------------------------------
# canonical form: a proof for all n, d


def _key(t: Term) -> str:
    best = None
    names = {"n": [f"N{i}" for i in range(len(t.dummies))], "d": [f"D{i}" for i in range(len(t.dummies))]}
    by_kind = {k: [s for s, kk in t.dummies if kk == k] for k in ("n", "d")}
    for pn in itertools.permutations(by_kind["n"]):
        for pd in itertools.permutations(by_kind["d"]):
            sub = {s: sp.Symbol(names["n"][i]) for i, s in enumerate(pn)}
            sub.update({s: sp.Symbol(names["d"][i]) for i, s in enumerate(pd)})
            spelled = ",".join(sorted(sp.srepr(f.xreplace(sub)) for f in t.factors))
            if best is None or spelled < best:
                best = spelled
    return best or ""


def canonical(E: IExpr) -> dict[str, sp.Expr]:
    """Canonical spelling -> total coefficient (zero coefficients dropped)."""
    out: dict[str, sp.Expr] = {}
    for t in E:
        k = _key(t)
        out[k] = sp.expand(out.get(k, sp.S.Zero) + t.coeff)
    return {k: c for k, c in out.items() if c != 0}


def proved_for_all_sizes(term: str) -> bool:
    """True iff derived(term) and closed_form(term) have the same canonical form (valid for all n, d)."""
    derived = unslot(derive(term)[term])
    closed = simplify(closed_form(term))
    return canonical(add(derived, scale(-1, closed))) == {}


# ------------------------------------------------------------------------------------------------------------
# instantiation at concrete sizes and display


def instantiate(E: IExpr, n: int, d: int, table: dict[sp.IndexedBase, sp.Matrix], at: tuple[int, int]) -> sp.Expr:
    """Expand E at sizes (n, d) and free indices (u, v) = ``at`` (0-based), mapping bases via ``table``."""
    total = sp.S.Zero
    for t in E:
        ranges = [range(n) if k == "n" else range(d) for _, k in t.dummies]
        for vals in itertools.product(*ranges):
            sub = dict(zip((s for s, _ in t.dummies), vals, strict=True))
            sub.update({u: at[0], v: at[1]})
            prod = t.coeff
            for f in t.factors:
                if isinstance(f, sp.KroneckerDelta):
                    x, y = (sp.sympify(z).xreplace(sub) for z in f.args)
                    prod *= 1 if x == y else 0
                else:
                    idx = tuple(int(sp.sympify(z).xreplace(sub)) for z in f.indices)
                    M = table[f.base]
                    prod *= M[idx[0], 0] if len(idx) == 1 else M[idx]
            total += prod
    return total


_POOL = {"n": ("i", "l", "k", "m", "o", "s", "t"), "d": ("j", "p", "q", "b", "c", "e", "g")}


def _display_names(E: IExpr) -> dict[sp.Symbol, sp.Symbol]:
    """Rename the generated indices (k_N: token, c_N: feature) to short names, in order of appearance."""
    seen: list[sp.Symbol] = []
    for t in E:
        for s, _ in t.dummies:
            if s.name[:2] in ("k_", "c_") and s not in seen:
                seen.append(s)
        for f in t.factors:
            for s in sorted(f.free_symbols, key=sp.default_sort_key):
                if isinstance(s, sp.Symbol) and s.name[:2] in ("k_", "c_") and s not in seen:
                    seen.append(s)
    used = {s.name for t in E for f in t.factors for s in f.free_symbols if isinstance(s, sp.Symbol)}
    used |= {s.name for t in E for s, _ in t.dummies}
    used -= {s.name for s in seen}
    pools = {k: [x for x in v if x not in used] for k, v in _POOL.items()}
    out = {}
    for s in seen:
        pool = pools["n" if s.name.startswith("k_") else "d"]
        out[s] = sp.Symbol(pool.pop(0), integer=True)
    return out


def to_sympy(E: IExpr) -> sp.Expr:
    """Display form: coeff * product under explicit ``Sum`` objects (indices run 1..n or 1..d)."""
    names = _display_names(E)
    out = []
    for t in E:
        body = sp.Mul(t.coeff, *(f.xreplace(names) for f in t.factors))
        lims = [(names.get(s, s), 1, n_sym if k == "n" else d_sym) for s, k in t.dummies]
        out.append(sp.Sum(body, *lims) if lims else body)
    return sp.Add(*out)
