r"""Registry checks for the SymPy proofs (``symbolic/``): exact identities and exact counterexamples.

Spec §2.2, §2.3, §2.6–2.9. Each check proves its statements by ``expand(derived - closed) == 0`` at the sizes of
:mod:`symbolic.proofs` (quick profile: the small subset), and, for WRONG-AS-PRINTED statements, evaluates the
printed form exactly at the point of :mod:`symbolic.counterexamples` (nonzero in Q(e)). The figure names the
sizes covered and the wall time.
"""

from __future__ import annotations

import time

from proofs_check.registry import Context, Result, check
from symbolic import counterexamples as cx
from symbolic import proofs as pf


def _prove(ctx: Context, names: list[str]) -> tuple[bool, list[dict], str]:
    """Prove every statement in ``names`` at its (quick or full) sizes."""
    records = pf.prove_all(names, quick=ctx.quick)
    ok = bool(records) and all(r.holds for r in records)
    sizes = sorted({r.size for r in records})
    data = [{"name": r.name, "size": list(r.size), "holds": r.holds, "seconds": round(r.seconds, 3)}
            for r in records]  # fmt: skip
    return ok, data, pf.sizes_text(tuple(sizes))


def _refute(keys: list[tuple[str, dict]]) -> tuple[bool, list[dict]]:
    """Counterexamples: every printed form must differ exactly and every corrected form must hold there."""
    out, ok = [], True
    for key, kw in keys:
        c = cx.counterexample(key, **kw)
        ok &= c.printed_fails and c.corrected_holds
        out.append({"printed": key, **kw, "printed_minus_true_at_e": c.value,
                    "printed_minus_true_in_t": str(c.difference.tolist()),
                    "printed_fails": c.printed_fails, "corrected_holds": c.corrected_holds})  # fmt: skip
    return ok, out


def _figure(kind: str, sizes: str, t0: float, extra: str = "") -> str:
    return f"{kind} at (n,d) in {sizes}{extra}; {time.perf_counter() - t0:.1f} s"


def _proved(ctx: Context, names: list[str], kind: str = "proved", refute: list[tuple[str, dict]] | None = None,
            extra: str = "") -> Result:  # fmt: skip
    """Prove ``names``; with ``refute``, also the exact counterexamples (both must succeed). Timed from the start."""
    t0 = time.perf_counter()
    ok, proofs, sizes = _prove(ctx, names)
    data: dict = {"proofs": proofs}
    if refute is not None:
        refuted, data["counterexamples"] = _refute(refute)
        ok = ok and refuted
    return Result(ok, _figure(kind, sizes, t0, extra), data)


@check(id="sym.D17.five_terms", label="Lemma D.17", name="five terms D2, D4, D6, D7, D8 (SymPy, exact)",
       kind="ID", expected="WRONG-AS-PRINTED", spec=(59,))  # fmt: skip
def five_terms(ctx: Context) -> Result:
    refute = ([(k, {}) for k in ("D8", "D4", "D2", "D7", "D6", "dX")]
              + [(k, {"symmetric_W": True}) for k in ("D8", "D7", "D6", "dX")])  # fmt: skip
    return _proved(ctx, ["D8", "D4", "D2", "D7", "D6"], "corrected proved", refute,
                   "; printed D2..D8 and sum refuted exactly at (2,2)")  # fmt: skip


@check(id="sym.D9.paths_and_sum", label="Lemma D.9", name="query, key, value paths and dL/dT_(i-1) (R1)",
       kind="ID", expected="OK", spec=(51, 44))  # fmt: skip
def paths(ctx: Context) -> Result:
    return _proved(ctx, ["query", "key", "value", "dX"])


@check(id="sym.D9.index_all_nd", label="Lemma D.9", name="five terms in index notation for symbolic n, d",
       kind="ID", expected="OK", spec=(43, 51, 59))  # fmt: skip
def index_all_nd(ctx: Context) -> Result:
    from symbolic import index as ix
    from symbolic.chain import is_zero_polynomial
    from symbolic.explicit import attention, derive_term

    t0 = time.perf_counter()
    all_nd = {t: ix.proved_for_all_sizes(t) for t in ("D8", "D4", "D2", "D7", "D6")}
    ns = (2, 3) if ctx.quick else (2, 3, 4)
    agree = {}
    for t in all_nd:
        der = ix.unslot(ix.derive(t)[t])
        for n in ns:
            m = attention(n, 2, slots=True)
            hd = m.heads[0]
            table = {ix.X: m.X, ix.W: m.W, ix.WV: m.W_V, ix.G: m.G, ix.a: hd.a, ix.r: hd.r}
            E = derive_term(m, t)
            agree[f"{t}@n={n}"] = all(
                is_zero_polynomial(ix.instantiate(der, n, 2, table, (i, j)).subs(ix.beta, hd.beta) - E[i, j])
                for i in range(n) for j in range(2)
            )  # fmt: skip
    ok = all(all_nd.values()) and all(agree.values())
    fig = (f"all n,d (canonical forms agree); = explicit route at n in {{{','.join(map(str, ns))}}}, d=2; "
           f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    return Result(ok, fig, {"all_n_d": all_nd, "explicit_agreement": agree})


@check(id="sym.F4.dW", label="Lemma F.4", name="dL/dW = beta X^T P X (SymPy)", kind="ID", expected="OK",
       spec=(74,))  # fmt: skip
def dW(ctx: Context) -> Result:
    return _proved(ctx, ["dW"])


@check(id="sym.C2.dWQ_dWK", label="Claim §C.2", name="dL/dW_Q = dL/dW W_K, dL/dW_K = (dL/dW)^T W_Q",
       kind="ID", expected="OK", spec=(26,))  # fmt: skip
def dWQ_dWK(ctx: Context) -> Result:
    return _proved(ctx, ["dW_Q", "dW_K"])


@check(id="sym.G3.dWV", label="Lemma G.3", name="dL/dW_V = X^T f^T G (printed X^T f G)", kind="ID",
       expected="WRONG-AS-PRINTED", spec=(78,))  # fmt: skip
def dWV(ctx: Context) -> Result:
    return _proved(ctx, ["dW_V"], "corrected proved", [("dW_V", {}), ("dW_V", {"symmetric_W": True})],
                   "; printed refuted exactly at (2,2)")  # fmt: skip


@check(id="sym.Alg1.line19", label="Algorithm 1", name="gw of line 19 misses -p2 (exact counterexample)",
       kind="ALG", expected="WRONG-AS-PRINTED", spec=(12,))  # fmt: skip
def line19(ctx: Context) -> Result:
    return _proved(ctx, ["dW"], "X^T P X proved", [("gw", {})], "; X^T p1 X refuted exactly at (2,2)")


@check(id="sym.H2.G_i", label="Lemma H.2", name="G_i = (gT o phi'(Attn W_g)) W_g^T, dL/dW_g, layer",
       kind="ID", expected="OK", spec=(80, 81))  # fmt: skip
def g_block(ctx: Context) -> Result:
    return _proved(ctx, ["G_i", "dW_g", "layer"], "proved (any phi)")


@check(id="sym.I7.causal", label="Lemma I.7", name="causal five terms, dX, dW, dW_V (f -> f^M)", kind="ID",
       expected="WRONG-AS-PRINTED", spec=(89, 91, 92))  # fmt: skip
def causal(ctx: Context) -> Result:
    names = ["causal.D8", "causal.D4", "causal.D2", "causal.D7", "causal.D6", "causal.dX", "causal.dW",
             "causal.dW_V"]  # fmt: skip
    return _proved(ctx, names, "corrected proved", [(k, {"causal": True}) for k in ("D8", "D6", "D7", "dW_V")],
                   "; printed D8, D6, D7, gv refuted exactly at (2,2)")  # fmt: skip


@check(id="sym.K2.multihead", label="Lemma K.2", name="multi-head dX, dW_Q, dW_K, dW_V (per-head beta)",
       kind="ID", expected="OK", spec=(98, 99))  # fmt: skip
def multihead(ctx: Context) -> Result:
    return _proved(ctx, ["mh.dX", "mh.dW_Q", "mh.dW_K", "mh.dW_V"])


@check(id="sym.J3.residual", label="Lemma J.3", name="residual rule, around Attn and around g",
       kind="ID", expected="OK", spec=(93, 94, 95))  # fmt: skip
def residual(ctx: Context) -> Result:
    return _proved(ctx, ["residual.attn", "residual.layer"], "proved (any phi)")


@check(id="sym.C4.unit_loss", label="Lemma 3.4", name="L = sum of unit losses: dL/dX = VJP(G)", kind="ID",
       expected="OK", spec=(6, 9, 27))  # fmt: skip
def unit_loss(ctx: Context) -> Result:
    return _proved(ctx, ["unit_loss", "literal.unit_loss"], "proved (arbitrary unit losses)")


@check(id="sym.C4.literal_diff", label="Lemma C.4", name="sympy.diff of the literal map = hand chain rule",
       kind="ID", expected="OK", spec=(27, 44))  # fmt: skip
def literal(ctx: Context) -> Result:
    return _proved(ctx, ["literal.dX", "literal.causal.dX"])


@check(id="sym.D9.mpmath_route", label="Lemma D.9", name="lambdified derivations vs reference mpmath (dps 50)",
       kind="ID", expected="OK", spec=(51, 74, 78, 81, 95, 99))  # fmt: skip
def mpmath_route(ctx: Context) -> Result:
    from symbolic import numeric as nu

    t0 = time.perf_counter()
    report = nu.compare_all(quick=ctx.quick, seed=ctx.seed)
    worst = max(float(v) for per in report.values() for v in per.values())
    fig = (f"max rel diff {worst:.1e} (tol 1e-40) over {len(report)} case(s); "
           f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    return Result(nu.agrees(report), fig, {"cases": report})
