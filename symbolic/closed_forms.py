r"""The closed forms to be proved: corrected (spec §2.2–2.3) and as printed in the paper (WRONG-AS-PRINTED).

Paper: Def. C.11, C.12, D.16 (q, p1, p2, p, K); Lemma D.17 (five terms); Lemma F.4 (dL/dW); §C.2 claim
(dL/dW_Q, dL/dW_K); Lemma G.3 (dL/dW_V); Algorithm 1 line 19 (gw); spec §2.2, §2.3, §2.7, §2.9.

Every function here takes the explicit objects of one head (:class:`symbolic.explicit.Head`) and uses matrix
algebra only; nothing is differentiated. Corrected forms, per head with $G$, $h$, $f$ of that head:

.. math::
    q = G h^\top,\ K = (G\odot s)\mathbf 1,\ p_1 = f\odot q,\ p_2 = \mathrm{diag}(K) f,\ P = p_1 - p_2,

.. math::
    D_8 = f^\top G W_V^\top,\ D_4 = \beta p_1 X W^\top,\ D_2 = -\beta p_2 X W^\top,\
    D_7 = \beta p_1^\top X W,\ D_6 = -\beta p_2^\top X W.

Printed (Lemma D.17, β = 1 in the appendices): $D_8 = f G W_V^\top$, $D_4 = z_4 X W$, $D_2 = -z_2 X W$,
$D_7 = z_7 X W^\top$ with $z_7 = f\odot(hG^\top)$, $D_6 = -z_6 X W^\top$ with $z_6 = f\,\mathrm{diag}(K)$;
Lemma G.3 $X^\top f G$; Algorithm 1 line 19 $X^\top p_1 X$.

Shape legend: n = tokens, d = width, d_h = per-head width.
"""

from __future__ import annotations

import sympy as sp

from symbolic.explicit import Attention, Head


def hadamard(A: sp.Matrix, B: sp.Matrix) -> sp.Matrix:
    """Entrywise product; shapes must agree."""
    if A.shape != B.shape:
        raise ValueError(f"B: expected shape {A.shape}, got {B.shape}")
    return A.multiply_elementwise(B)


def intermediates(hd: Head) -> dict[str, sp.Matrix]:
    """q (n,n), K (n,1), p1 (n,n), p2 (n,n), P (n,n) of one head (Def. C.11, C.12, D.16)."""
    q = hd.G * hd.h.T
    K = hadamard(hd.G, hd.s) * sp.ones(hd.G.shape[1], 1)
    p1 = hadamard(hd.f, q)
    p2 = sp.diag(*K) * hd.f
    return {"q": q, "K": K, "p1": p1, "p2": p2, "P": p1 - p2}


def corrected_terms(m: Attention, hd: Head) -> dict[str, sp.Matrix]:
    """The corrected five terms of one head (spec §2.3 table, right column). Each (n, d)."""
    it = intermediates(hd)
    X, W, b = m.X, hd.M, hd.beta
    out = {
        "D8": hd.f.T * hd.G * hd.W_V.T,
        "D4": b * it["p1"] * X * W.T,
        "D2": -b * it["p2"] * X * W.T,
        "D7": b * it["p1"].T * X * W,
        "D6": -b * it["p2"].T * X * W,
    }
    return {k: m.to_X(v) for k, v in out.items()}


def printed_terms(m: Attention, hd: Head) -> dict[str, sp.Matrix]:
    """The five terms exactly as Lemma D.17 prints them (no β: the appendix convention β = 1)."""
    it = intermediates(hd)
    X, W = m.X, hd.M
    z7 = hadamard(hd.f, hd.h * hd.G.T)
    z6 = hd.f * sp.diag(*it["K"])
    out = {
        "D8": hd.f * hd.G * hd.W_V.T,
        "D4": it["p1"] * X * W,
        "D2": -it["p2"] * X * W,
        "D7": z7 * X * W.T,
        "D6": -z6 * X * W.T,
    }
    return {k: m.to_X(v) for k, v in out.items()}


def corrected_dX(m: Attention) -> sp.Matrix:
    r"""(R1), summed over heads: $\sum_l f_l^\top G_l W_{V,l}^\top + \beta_l(P_l X W_l^\top + P_l^\top X W_l)$."""
    out = sp.zeros(m.n, m.d)
    for hd in m.heads:
        for t in corrected_terms(m, hd).values():
            out += t
    return out


def corrected_paths(m: Attention, hd: Head) -> dict[str, sp.Matrix]:
    """Query = D4 + D2, key = D7 + D6, value = D8 (spec §2.3, 'Summing'). Slots identified with X."""
    t = corrected_terms(m, hd)
    return {"query": t["D4"] + t["D2"], "key": t["D7"] + t["D6"], "value": t["D8"]}


def corrected_dW(m: Attention, hd: Head) -> sp.Matrix:
    r"""(R2) Lemma F.4 with β: $\beta X^\top P X$. Shape (d, d)."""
    return m.to_X(hd.beta * m.X.T * intermediates(hd)["P"] * m.X)


def printed_gw_line19(m: Attention, hd: Head) -> sp.Matrix:
    r"""Algorithm 1 line 19 with exact factors: $X^\top p_1 X$ (the $-p_2$ part is missing). Shape (d, d)."""
    return m.to_X(m.X.T * intermediates(hd)["p1"] * m.X)


def corrected_dWQ(m: Attention, hd: Head) -> sp.Matrix:
    r"""(R4) $\partial L/\partial W_Q^{(l)} = (\partial L/\partial W^{(l)}) W_K^{(l)}$. Shape (d, d_h)."""
    return corrected_dW(m, hd) * hd.W_K


def corrected_dWK(m: Attention, hd: Head) -> sp.Matrix:
    r"""(R4) $\partial L/\partial W_K^{(l)} = (\partial L/\partial W^{(l)})^\top W_Q^{(l)}$. Shape (d, d_h)."""
    return corrected_dW(m, hd).T * hd.W_Q


def corrected_dWV(m: Attention, hd: Head) -> sp.Matrix:
    r"""(R3) $X^\top f^\top G$ (Lemma G.3 corrected). Shape (d, d_h)."""
    return m.to_X(m.X.T * hd.f.T * hd.G)


def printed_dWV(m: Attention, hd: Head) -> sp.Matrix:
    r"""Lemma G.3 as printed: $X^\top f G$. Shape (d, d)."""
    return m.to_X(m.X.T * hd.f * hd.G)


def all_heads(m: Attention, fn) -> sp.Matrix:
    """Concatenate a per-head (d, d_h) weight gradient over heads into (d, d)."""
    return sp.Matrix.hstack(*(fn(m, hd) for hd in m.heads))
