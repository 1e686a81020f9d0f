r"""Derivation chains for reading: definition, chain-rule steps, every intermediate, the term.

Paper: Def. 1.2, C.6–C.12, D.16 (forward objects and $q, K, p_1, p_2, P$), Lemma D.17, F.4, G.3, H.2, I.5,
J.3, K.2, 3.4; spec §2.2–2.9. Every step is a pair of SymPy objects (left side, right side) so that the one
pinned printer of :mod:`symbolic.render` draws all of them; the differentials are written with the trace
inner product $\mathrm dL = \operatorname{tr}(G^\top \mathrm ds)$. These matrix-level steps are the textbook
chain rule for the reader; the machine proof of each result is the explicit-entry identity of
:mod:`symbolic.proofs` (and, for the five terms, the index-notation derivation of :mod:`symbolic.index`).

Shape legend: n = tokens, d = width; all symbols carry their shapes and the renderer prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symbolic.render import diag

n, d = sp.symbols("n d", integer=True, positive=True)
beta = sp.Symbol("beta")


def M(name: str, rows: sp.Expr, cols: sp.Expr) -> sp.MatrixSymbol:
    return sp.MatrixSymbol(name, rows, cols)


X, W, W_Q, W_K, W_V = M("X", n, d), M("W", d, d), M("W_Q", d, d), M("W_K", d, d), M("W_V", d, d)
B, G, h, s, c = M("B", n, d), M("G", n, d), M("h", n, d), M("s", n, d), M("c", n, d)
S, A, D, f, q = M("S", n, n), M("A", n, n), M("D", n, n), M("f", n, n), M("q", n, n)
p1, p2, P, K = M("p_1", n, n), M("p_2", n, n), M("P", n, n), M("K", n, 1)
dS, dA, dD, df = M("dS", n, n), M("dA", n, n), M("dD", n, n), M("df", n, n)
dXq, dXk, dXv, dX = M("dX_q", n, d), M("dX_k", n, d), M("dX_v", n, d), M("dX", n, d)
dh, ds, dW, dWV = M("dh", n, d), M("ds", n, d), M("dW", d, d), M("dW_V", d, d)
dWQ, dWK = M("dW_Q", d, d), M("dW_K", d, d)
ones_n, ones_d = sp.OneMatrix(n, 1), sp.OneMatrix(d, 1)
Y, Wg, gT, U, dphi = M(r"\mathrm{Attn}_i", n, d), M("W_g", d, d), M("gT_i", n, d), M("U", n, d), M(r"\varphi'(U)", n, d)
dY, dWg, dT, Tm, Mm = M(r"d\mathrm{Attn}_i", n, d), M("dW_g", d, d), M("dT_i", n, d), M("T_i", n, d), M("M", n, n)
Z, dZ = M("Z", n, d), M("dZ", n, d)
dL = sp.Symbol("dL")
tr = sp.Trace


@dataclass(frozen=True)
class Step:
    """One line of a chain: ``lhs = rhs`` with a caption; ``shape`` prints the shape of ``rhs``."""

    caption: str
    lhs: object
    rhs: object
    shape: bool = True


def definitions() -> list[Step]:
    """The forward pass of one layer (Def. 1.2, C.6–C.10, D.1's c) and the upstream gradient G."""
    return [
        Step("layer input (Def. 3.3), tokens are rows", M("T_{i-1}", n, d), X),
        Step("merged weight (Def. C.3); not symmetric in general", W, W_Q * W_K.T),
        Step("logits, β explicit (spec §0.2)", S, beta * X * W * X.T),
        Step("exponentials, entrywise (Def. C.6)", A, M(r"\exp(S)", n, n)),
        Step("softmax denominators (Def. C.7)", D, diag(A * ones_n)),
        Step("attention matrix, row-stochastic (Def. C.8)", f, D.inverse() * A),
        Step("values (Def. C.9)", h, X * W_V),
        Step("attention output (Def. C.10)", s, f * h),
        Step("the [DSXY23] residual c = s - B (Lemma D.1); dc = ds", c, s - B),
        Step("upstream gradient (Lemma 3.4), G = dL/ds = dL/dc", dL, tr(G.T * ds), shape=False),
    ]


def intermediates() -> list[Step]:
    """q, K, p1, p2, P (Def. C.11, D.16, C.12): the softmax backward."""
    return [
        Step("q = dL/df (Def. C.11)", q, G * h.T),
        Step("K (Def. D.16); equals p_1 1_n", K, sp.HadamardProduct(G, s) * ones_d),
        Step("numerator part (Def. C.12)", p1, sp.HadamardProduct(f, q)),
        Step("normalizer part (Def. C.12)", p2, diag(K) * f),
        Step("P = dL/dS (softmax backward, row by row)", P, p1 - p2),
    ]


def _softmax_parts() -> list[Step]:
    return [
        Step("dA = A ⊙ dS (each a_ij = exp S_ij)", dA, sp.HadamardProduct(A, dS)),
        Step("dD from the row sums of dA", dD, diag(dA * ones_n)),
        Step("differential of f = D^-1 A", df, D.inverse() * dA - D.inverse() * dD * f),
        Step("value path held fixed: dL = tr(q^T df)", dL, tr(q.T * df), shape=False),
    ]


def term_steps(term: str) -> list[Step]:
    """The chain-rule steps specific to one statement name of :data:`symbolic.proofs.STATEMENTS`."""
    base = term.split(".")[-1]
    if term.startswith("mh."):
        return _multihead_steps()
    if base == "D8" or term == "value":
        return [
            Step("value slot: only h depends on X_v", dh, dXv * W_V),
            Step("s = f h", ds, f * dh),
            Step("chain rule", dL, tr(G.T * f * dXv * W_V), shape=False),
            Step("cyclic trace", dL, tr((f.T * G * W_V.T).T * dXv), shape=False),
            Step("value path (corrected; the paper prints f G W_V^T)", M("D_8", n, d), f.T * G * W_V.T),
        ]
    q_steps = [Step("query slot: row i of S uses x_i", dS, beta * dXq * W * X.T)] + _softmax_parts()
    k_steps = [Step("key slot: column l of S uses x_l", dS, beta * X * W * dXk.T)] + _softmax_parts()
    num = Step("numerator part: D held, tr(q^T D^-1 (A ⊙ dS)) = tr(p_1^T dS)", dL, tr(p1.T * dS), shape=False)
    nrm = Step("normalizer part: -tr(q^T D^-1 dD f) = -tr(p_2^T dS)", dL, -tr(p2.T * dS), shape=False)
    if base == "D4":
        return q_steps + [
            num,
            Step("substitute dS", dL, beta * tr((p1 * X * W.T).T * dXq), shape=False),
            Step("query numerator (corrected; printed p_1 X W)", M("D_4", n, d), beta * p1 * X * W.T),
        ]
    if base == "D2":
        return q_steps + [
            nrm,
            Step("substitute dS", dL, -beta * tr((p2 * X * W.T).T * dXq), shape=False),
            Step("query normalizer (corrected; printed -p_2 X W)", M("D_2", n, d), -beta * p2 * X * W.T),
        ]
    if base == "D7":
        return k_steps + [
            num,
            Step("substitute dS, cyclic trace", dL, beta * tr((p1.T * X * W).T * dXk), shape=False),
            Step("key numerator (corrected; printed (f ⊙ h G^T) X W^T)", M("D_7", n, d), beta * p1.T * X * W),
        ]
    if base == "D6":
        return k_steps + [
            nrm,
            Step("substitute dS, cyclic trace", dL, -beta * tr((p2.T * X * W).T * dXk), shape=False),
            Step("key normalizer (corrected; printed -f diag(K) X W^T)", M("D_6", n, d), -beta * p2.T * X * W),
        ]
    if term == "query":
        return q_steps + [
            Step("both parts: tr(P^T dS)", dL, tr(P.T * dS), shape=False),
            Step("query path D_4 + D_2", M("D_{4+2}", n, d), beta * P * X * W.T),
        ]
    if term == "key":
        return k_steps + [
            Step("both parts: tr(P^T dS)", dL, tr(P.T * dS), shape=False),
            Step("key path D_7 + D_6", M("D_{7+6}", n, d), beta * P.T * X * W),
        ]
    if base == "dX" or term in ("literal.dX", "literal.causal.dX"):
        return [
            Step("all three slots at once: dS", dS, beta * (dX * W * X.T + X * W * dX.T)),
            Step("value slot", dh, dX * W_V),
            Step(
                "(R1): value + query + key paths",
                M(r"\partial L/\partial X", n, d),
                f.T * G * W_V.T + beta * (P * X * W.T + P.T * X * W),
            ),
        ]
    if base == "dW":
        return [
            Step("weight slot", dS, beta * X * dW * X.T),
            Step("both softmax parts", dL, tr(P.T * dS), shape=False),
            Step("cyclic trace", dL, beta * tr((X.T * P * X).T * dW), shape=False),
            Step("(R2) Lemma F.4 with β", M(r"\partial L/\partial W", d, d), beta * X.T * P * X),
        ]
    if base == "dW_Q":
        return [
            Step("W = W_Q W_K^T", dW, dWQ * W_K.T),
            Step("chain rule through W", dL, tr(M(r"\partial L/\partial W", d, d).T * dWQ * W_K.T), shape=False),
            Step("(R4)", M(r"\partial L/\partial W_Q", d, d), M(r"\partial L/\partial W", d, d) * W_K),
        ]
    if base == "dW_K":
        return [
            Step("W = W_Q W_K^T", dW, W_Q * dWK.T),
            Step("chain rule through W", dL, tr(M(r"\partial L/\partial W", d, d).T * W_Q * dWK.T), shape=False),
            Step("(R4)", M(r"\partial L/\partial W_K", d, d), M(r"\partial L/\partial W", d, d).T * W_Q),
        ]
    if base == "dW_V":
        return [
            Step("s = f X W_V", ds, f * X * dWV),
            Step("chain rule", dL, tr(G.T * f * X * dWV), shape=False),
            Step("(R3), corrected Lemma G.3 (printed X^T f G)", M(r"\partial L/\partial W_V", d, d), X.T * f.T * G),
        ]
    if term in ("G_i", "dW_g", "layer"):
        steps = [
            Step("block pre-activation", U, Y * Wg),
            Step("T_i = φ(U) entrywise (Lemma H.1)", Tm, M(r"\varphi(U)", n, d)),
            Step("dT_i = φ'(U) ⊙ dU", dT, sp.HadamardProduct(dphi, dY * Wg + Y * dWg)),
            Step("chain rule with gT_i = dL/dT_i", dL, tr(gT.T * dT), shape=False),
        ]
        if term == "dW_g":
            return steps + [
                Step(
                    "weight of the block (spec §2.6)",
                    M(r"\partial L/\partial W_g", d, d),
                    Y.T * sp.HadamardProduct(gT, dphi),
                )
            ]
        steps.append(Step("Eq. (25)", M("G_i", n, d), sp.HadamardProduct(gT, dphi) * Wg.T))
        if term == "layer":
            steps.append(
                Step(
                    "then (R1) at G = G_i",
                    M(r"\partial L/\partial X", n, d),
                    f.T * G * W_V.T + beta * (P * X * W.T + P.T * X * W),
                )
            )
        return steps
    if term.startswith("residual"):
        steps = [Step("residual around attention (Def. J.1)", Z, X + M(r"\mathrm{Attn}(X)", n, d))]
        if term == "residual.layer":
            steps += [
                Step("residual around g (Def. J.2)", Tm, Z + M(r"\varphi(Z W_g)", n, d)),
                Step("Lemma J.3 for g", M(r"\partial L/\partial Z", n, d), gT + sp.HadamardProduct(gT, dphi) * Wg.T),
            ]
        steps.append(
            Step(
                "Lemma J.3 for Attn, Eq. (32): G := dL/dZ in (R1)",
                M(r"\partial L/\partial X", n, d),
                M(r"\partial L/\partial Z", n, d) + f.T * G * W_V.T + beta * (P * X * W.T + P.T * X * W),
            )
        )
        return steps
    if term in ("unit_loss", "literal.unit_loss"):
        return [
            Step(
                "Def. 3.1: L is a sum of unit losses of all outputs",
                sp.Symbol("L"),
                sp.Sum(sp.Symbol(r"\ell_{jk}(s)"), (sp.Symbol("j"), 1, n), (sp.Symbol("k"), 1, d)),
            ),
            Step(
                "Lemma 3.4: G collects the unit-loss gradients",
                G,
                sp.Sum(M(r"\partial \ell_{jk}/\partial s", n, d), (sp.Symbol("j"), 1, n), (sp.Symbol("k"), 1, d)),
            ),
            Step(
                "then dL/dX is (R1) at this G",
                M(r"\partial L/\partial X", n, d),
                f.T * G * W_V.T + beta * (P * X * W.T + P.T * X * W),
            ),
        ]
    raise ValueError(f"term: no teaching steps for {term!r}")


def _multihead_steps() -> list[Step]:
    """Def. K.1 / Lemma K.2 (spec §2.9): per-head (R1)-(R4), summed or concatenated."""
    return [
        Step(
            "head l: column blocks, W^(l) = W_Q^(l) W_K^(l)T, β_l = 1/d_h by default",
            M("f_l", n, n),
            M(r"\operatorname{rowsoftmax}(\beta_l X W^{(l)} X^{\top})", n, n),
        ),
        Step(
            "outputs concatenated; G^(l) = column block l of G",
            s,
            M(r"[f_1 X W_V^{(1)}, \dots, f_H X W_V^{(H)}]", n, d),
        ),
        Step(
            "each head contributes (R1)-(R4) with its own f_l, P_l, G^(l); dL/dX sums over l",
            M(r"\partial L/\partial X", n, d),
            sp.Sum(M(r"D^{(l)}", n, d), (sp.Symbol("l"), 1, sp.Symbol("H"))),
        ),
    ]


def causal_steps() -> list[Step]:
    """Def. I.2 / I.5: the mask enters through A only; every formula keeps its shape with f -> f^M."""
    return [
        Step("causal mask, M_ij = 1 iff i >= j (Def. I.2)", Mm, M(r"[\![ i \ge j ]\!]", n, n)),
        Step("masked exponentials (Def. I.5)", A, sp.HadamardProduct(Mm, M(r"\exp(S)", n, n))),
        Step("f^M = D^-1 (M ⊙ exp S); zeros above the diagonal stay zero in P", f, D.inverse() * A),
    ]


def chain(term: str) -> list[tuple[str, list[Step]]]:
    """The full chain for one statement: (section title, steps) in reading order."""
    sections = [("Definitions (forward pass)", definitions())]
    if term.startswith("causal") or term == "literal.causal.dX":
        sections.append(("Causal mask", causal_steps()))
    if term not in ("G_i", "dW_g"):
        sections.append(("Intermediates (softmax backward)", intermediates()))
    sections.append(("Chain rule", term_steps(term)))
    return sections
