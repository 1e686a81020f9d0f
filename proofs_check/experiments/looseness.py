r"""How loose is each explicit bound? observed / bound per lemma (spec §2.4, §4 W8 and W18).

Paper: Lemmas C.13 (additive form), C.14, C.15, C.16, C.18, C.19, E.2–E.10, E.11, F.5, G.4, H.2. For each the
spec's explicit constant (the one the paper's proof implies, "paper" column) and a tight constant ("tight" column,
from the same proof step with the factor the paper over-counts removed: a diagonal scaling adds no n (E.2, E.7),
$\|h\| \le d\|X\|\|W_V\|$ (C.18), $\|s\| \le \|h\|$ (C.19), row/column sums instead of $n\cdot\max$ (E.3–E.10,
F.5, G.4; for E.11 the sum of the five terms' tight bounds)). The observed errors are those of the shipped fast
backward (:mod:`fastpath`, Taylor degree g fixed low so the errors sit far above rounding, exact forward) against
the reference; every bound is evaluated with the measured $\delta_f = \|\tilde f - f\|_\infty$, corrected
kernels ($z_6^* = p_2^\top$, $z_7^* = p_1^\top$, spec §2.3), exact G and K, and $\beta$ carried explicitly.
Spec §0.5 item 5: the fitted exponent of bound/observed against n (with its 95% interval) is reported per lemma;
it is about the power of n in the bound, minus about 1/2 per cancelling sum; no "about n" is asserted.
"""

from __future__ import annotations

import numpy as np

from fastpath.lowrank import lowrank_attention
from proofs_check.experiments import stacks as sk
from proofs_check.experiments.stats import jsonable, loglog_fit, save_plot
from reference.attention import head_forward, head_vjp, logit_gradient, unnormalised
from reference.block import ACTIVATIONS, g_forward, g_vjp
from reference.model import Layer

FIXED_G = 3


def sizes(quick: bool) -> dict:
    return {"ns": [64, 128, 256] if quick else [64, 256, 1024], "d": 4, "scale": 0.5, "g": FIXED_G}


def _rowsum(a):
    return float(np.abs(a).sum(axis=1).max())


def _colsum(a):
    return float(np.abs(a).sum(axis=0).max())


def lifted_f(q: np.ndarray, k: np.ndarray, beta: float, g: int) -> tuple[np.ndarray, np.ndarray]:
    r"""$\tilde A = \tilde D \tilde f$ and $\tilde f = U_1 V_1^\top$, dense (n, n), for the bounds at small n: the
    shipped factors with the degree-g Taylor polynomial (:func:`fastpath.lowrank.lowrank_attention`, ``degree=g``)."""
    U1, V1, D, _, _ = lowrank_attention(q, k, beta, None, "taylor", degree=g)  # (n, r), (n, r), (n,)
    ft = U1 @ V1.T  # (n, n)
    return D[:, None] * ft, ft


def measure(rng, n: int, d: int, scale: float, g: int) -> list[dict]:
    """One draw at size n: the rows (lemma, observed, paper bound, tight bound)."""
    mx = lambda a: float(np.abs(a).max())  # noqa: E731  entrywise max norm (spec §0.2)
    X = rng.uniform(-1, 1, (n, d))
    W_Q, W_K, W_V = (rng.uniform(-scale, scale, (d, d)) for _ in range(3))
    W_g = rng.uniform(-1, 1, (d, d))
    G = rng.uniform(-1, 1, (n, d))
    beta = 1.0 / d
    W = W_Q @ W_K.T
    q, k = X @ W_Q, X @ W_K
    c = head_forward(X, W, W_V, beta, False)  # exact forward (reference)
    ex = head_vjp(G, c)  # exact corrected backward (reference)
    fast = sk.fast_grads(X, [Layer(W_Q, W_K, W_V)], G, g, beta=beta).layers[0]  # shipped fast backward at degree g
    f, h, s = c.f, c.h, c.s
    At, ft = lifted_f(q, k, beta, g)
    A = unnormalised(X, W, beta)  # (n, n)  the exact kernel u(X) (Def. C.6), for the relative error of A~ only
    eps_hat = float((np.abs(At - A) / A).max())
    df = mx(ft - f)
    Df = ft - f
    q_ = G @ h.T  # (n, n)  Def. C.11
    K, p1, p2 = logit_gradient(G, f, h, s)  # exact K, p1, p2 (Def. C.12, D.16)
    _, p1t, p2t = logit_gradient(G, ft, h, s)  # the same with f~ in place of f (exact K)
    rt = p1t.sum(axis=1)  # r~ = U3 (V3^T 1), Lemma C.16's construction
    p2r = rt[:, None] * ft
    XW, XWt = X @ W, X @ W.T
    D = {t: (ex.terms[t], fast.terms[t]) for t in ("D6", "D7", "D8", "D2", "D4")}
    gw, gwt = ex.dW, fast.dW
    gv, gvt = ex.dW_V, fast.dW_V
    dgT = rng.uniform(-1, 1, (n, d)) * 1e-6
    tanh = ACTIVATIONS["tanh"]
    blk = g_forward(s, W_g, tanh)  # the reference block at the attention output, U = s W_g
    dphi = tanh.dphi(blk.U)
    dG = g_vjp(dgT, blk, W_g, tanh)[0]  # Lemma H.2: the image of an upstream error dgT (linear map)
    nX, nW, nG, nh, nK = mx(X), mx(W), mx(G), mx(h), mx(K)

    def term_row(lemma: str, t: str, dz, sums, right) -> tuple:
        """Lemmas E.3/E.5/E.8/E.10: |D~ - D*| against beta d n |dz| |X| |W| (paper) and beta sums(dz) |right|."""
        err = mx(D[t][1] - D[t][0])
        return lemma, f"|{t}~ - {t}*|", err, beta * d * n * mx(dz) * nX * nW, beta * sums(dz) * mx(right)

    rows = [
        ("Lemma C.13", "|f~ - f| (additive)", df, float("nan"), 2 * eps_hat / (1 - eps_hat) * mx(f)),
        ("Lemma C.14", "|f~ h - s|", mx(ft @ h - s), n * df * nh, 2 * eps_hat / (1 - eps_hat) * nh),
        ("Lemma C.15", "|p1~ - p1|", mx(p1t - p1), d * df * nG * nh, df * mx(q_)),
        (
            "Lemma C.16",
            "|diag(r~) f~ - p2|",
            mx(p2r - p2),
            n * mx(p1t - p1) * mx(ft) + nK * df,
            mx(rt - K) * mx(ft) + nK * df,
        ),
        ("Lemma C.18", "|h|", nh, n * nX * mx(W_V), d * nX * mx(W_V)),
        ("Lemma C.19", "|s|", mx(s), n * mx(f) * nh, nh),
        ("Lemma E.2", "|z6~ - z6*| (p2^T)", mx(p2t.T - p2.T), n * df * nK, df * nK),
        ("Lemma E.4", "|z7~ - z7*| (p1^T)", mx(p1t.T - p1.T), d * df * nh * nG, df * mx(q_)),
        ("Lemma E.7", "|z2~ - z2| (p2)", mx(p2t - p2), n * df * nK, df * nK),
        ("Lemma E.9", "|z4~ - z4| (p1)", mx(p1t - p1), d * df * nh * nG, df * mx(q_)),
        term_row("Lemma E.3", "D6", p2t - p2, _colsum, XW),
        term_row("Lemma E.5", "D7", p1t - p1, _colsum, XW),
        (
            "Lemma E.6",
            "|D8~ - D8*|",
            mx(D["D8"][1] - D["D8"][0]),
            n * d * df * nG * mx(W_V),
            _colsum(Df) * mx(G @ W_V.T),
        ),
        term_row("Lemma E.8", "D2", p2t - p2, _rowsum, XWt),
        term_row("Lemma E.10", "D4", p1t - p1, _rowsum, XWt),
        (
            "Lemma E.11",
            "|gt~ - dL/dX|",
            mx(sum(v[1] - v[0] for v in D.values())),
            sum(beta * d * n * mx(z) * nX * nW for z in (p2t - p2, p1t - p1, p2t - p2, p1t - p1))
            + n * d * df * nG * mx(W_V),
            beta * (_colsum(p2t - p2) + _colsum(p1t - p1)) * mx(XW)
            + _colsum(Df) * mx(G @ W_V.T)
            + beta * (_rowsum(p2t - p2) + _rowsum(p1t - p1)) * mx(XWt),
        ),
        (
            "Lemma F.5",
            "|gw~ - dL/dW|",
            mx(gwt - gw),
            beta * n * n * nX**2 * (mx(p1t - p1) + mx(p2t - p2)),
            beta * float(np.abs((p1t - p2t) - (p1 - p2)).sum()) * nX**2,
        ),
        ("Lemma G.4", "|gv~ - dL/dW_V|", mx(gvt - gv), n * n * nX * df * nG, nX * nG * float(np.abs(Df).sum())),
        (
            "Lemma H.2",
            "|Delta G_i| from |Delta gT_i|",
            mx(dG),
            d * mx(dphi) * mx(W_g) * mx(dgT),
            mx(dgT) * float((np.abs(dphi)[:, None, :] * np.abs(W_g)[None]).sum(axis=2).max()),
        ),
    ]
    out = []
    for lemma, qty, obs, paper, tight in rows:
        out.append(
            {
                "lemma": lemma,
                "quantity": qty,
                "n": n,
                "observed": obs,
                "bound_paper": paper,
                "bound_tight": tight,
                "ratio_paper": obs / paper if paper == paper and paper > 0 else None,
                "ratio_tight": obs / tight if tight > 0 else None,
                "holds_paper": bool(paper != paper or obs <= paper * (1 + 1e-9) + 1e-14),
                "holds_tight": bool(obs <= tight * (1 + 1e-9) + 1e-14),
            }
        )
    return out


def run(quick: bool = True, seed: int = 0) -> dict:
    sz = sizes(quick)
    rng = np.random.default_rng([seed, 7201])
    rows = []
    for n in sz["ns"]:
        rows += measure(rng, n, sz["d"], sz["scale"], sz["g"])
    table = []
    for lemma in dict.fromkeys(r["lemma"] for r in rows):
        rs = [r for r in rows if r["lemma"] == lemma]
        ent = {
            "lemma": lemma,
            "quantity": rs[0]["quantity"],
            "ratio_paper": [r["ratio_paper"] for r in rs],
            "ratio_tight": [r["ratio_tight"] for r in rs],
            "holds": all(r["holds_paper"] and r["holds_tight"] for r in rs),
        }
        if all(r["ratio_paper"] for r in rs):
            ent["looseness_vs_n"] = loglog_fit([r["n"] for r in rs], [1 / r["ratio_paper"] for r in rs])
        table.append(ent)
    viol = [r for r in rows if not (r["holds_paper"] and r["holds_tight"])]
    return jsonable(
        {
            "settings": {**sz, "seed": seed, "beta": "1/d", "activation (H.2)": "tanh"},
            "ns": sz["ns"],
            "rows": rows,
            "table": table,
            "violations": viol,
            "all_hold": not viol,
        }
    )


def plot(data: dict, path: str) -> str | None:
    def draw(ax) -> None:
        styles = [(m, ls) for ls in ("-", "--", ":") for m in ("o", "s", "^", "v", "D", "x", "*")]
        for t, (mk, ls) in zip((t for t in data["table"] if all(t["ratio_paper"])), styles, strict=False):
            ax.loglog(data["ns"], t["ratio_paper"], marker=mk, ls=ls, label=t["lemma"])
        ax.set_xlabel("n")
        ax.set_ylabel("observed / paper bound")
        ax.legend(fontsize=6, ncol=2)

    return save_plot(path, draw, figsize=(7, 5))
