r"""The SymPy route of the exact checks: prove statements of :mod:`symbolic.proofs` and evaluate the exact
counterexamples of :mod:`symbolic.counterexamples`, with the mutants every symbolic check declares.

Spec §2.2, §2.3, §2.6–2.9. A statement is proved by ``expand(derived - closed) == 0`` at the sizes of
:mod:`symbolic.proofs` (quick profile: the small subset); a WRONG-AS-PRINTED statement also evaluates the printed form
exactly at the counterexample point (nonzero in Q(e)). The checks themselves sit beside their numeric twins in the
``exact_*`` module of their paper part.

Mutants:

* ``f_transposed``: the closed form with every attention atom $a_{ij}$ (the $e^{S_{ij}}$; per head
  $a^{(l)}_{ij}$) replaced by $a_{ji}$ and every $\varphi'_{ij}$ by $\varphi'_{ji}$: the transposition error of the
  paper (f for $f^\top$), proved against the same derivation. A size where this changes nothing (n = 1) still
  proves; the (2, 2) sizes of the quick profile must fail.
* ``printed_replaced_by_corrected``: the counterexample evaluated with the corrected form in place of the printed
  one: were the printed form right, the refutation must not go through.
"""

from __future__ import annotations

import re
import time

import sympy as sp

from proofs_check.registry import Context, Result
from symbolic import counterexamples as cx
from symbolic import proofs as pf
from symbolic.chain import matrices_equal

_ATOM = re.compile(r"^(a|phi')(\^\{\(\d+\)\})?_\{(\d+)(\d+)\}$")  # a_{ij}, a^{(l)}_{ij}, phi'_{ij} (n, d <= 9)


def transpose_atoms(M: sp.Matrix) -> sp.Matrix:
    r"""``M`` with $a_{ij} \leftrightarrow a_{ji}$ and $\varphi'_{ij} \leftrightarrow \varphi'_{ji}$ (mutant
    ``f_transposed``); a swapped atom that does not occur in M is made with the same assumptions."""
    syms = {s.name: s for s in M.free_symbols}
    sub = {}
    for name, s in syms.items():
        m = _ATOM.match(name)
        if m and m.group(3) != m.group(4):
            other = f"{m.group(1)}{m.group(2) or ''}_{{{m.group(4)}{m.group(3)}}}"
            sub[s] = syms.get(other, sp.Symbol(other, **s.assumptions0))
    return M.xreplace(sub)


def prove(ctx: Context, names: list[str]) -> tuple[bool, list[dict], str]:
    """Prove every statement in ``names`` at its (quick or full) sizes; under ``f_transposed`` the mutated form."""
    data, sizes, ok = [], set(), True
    for name in names:
        st = pf.statement(name)
        for size in st.quick_sizes() if ctx.quick else st.sizes:
            t0 = time.perf_counter()
            derived, closed = st.pair(*size)
            if ctx.mutated("f_transposed"):
                closed = transpose_atoms(closed)
            holds = matrices_equal(derived, closed)
            ok &= holds
            sizes.add(size)
            data.append({"name": name, "size": list(size), "holds": holds,
                         "seconds": round(time.perf_counter() - t0, 3)})  # fmt: skip
    return bool(data) and ok, data, pf.sizes_text(tuple(sorted(sizes)))


def refute(ctx: Context, keys: list[tuple[str, dict]]) -> tuple[bool, list[dict]]:
    """Counterexamples: every printed form must differ exactly and every corrected form must hold there."""
    out, ok = [], True
    for key, kw in keys:
        c = cx.counterexample(key, **kw)
        printed_fails = c.printed_fails
        if ctx.mutated("printed_replaced_by_corrected"):
            printed_fails = any(e != 0 for e in c.corrected_minus_true)
        ok &= printed_fails and c.corrected_holds
        out.append({"printed": key, **kw, "printed_minus_true_at_e": c.value,
                    "printed_minus_true_in_t": str(c.difference.tolist()),
                    "printed_fails": printed_fails, "corrected_holds": c.corrected_holds})  # fmt: skip
    return ok, out


def proved(ctx: Context, names: list[str], kind: str = "proved", refutes: list[tuple[str, dict]] | None = None,
           extra: str = "") -> Result:  # fmt: skip
    """Prove ``names``; with ``refutes``, also the exact counterexamples (both must succeed). Timed from the start."""
    t0 = time.perf_counter()
    ok, proofs, sizes = prove(ctx, names)
    data: dict = {"proofs": proofs}
    cex = None
    if refutes is not None:
        refuted, data["counterexamples"] = refute(ctx, refutes)
        ok = ok and refuted
        cex = {"point": dict(cx.POINT), "printed_minus_true": data["counterexamples"][0]}
    fig = f"{kind} at (n,d) in {sizes}{extra}; {time.perf_counter() - t0:.1f} s"
    return Result(ok, fig, data, precision="exact (SymPy)", counterexample=cex)
