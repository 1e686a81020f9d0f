r"""The silently dropped 1/d (spec §4 W5; Def. C.3 against C.6, Lemmas D.17, F.4, C.13; catalogue #29).

Paper: Def. C.3 keeps $S = XWX^\top/d$; from Def. C.6 on every formula is written for $\beta = 1$. The corrected
closed forms (spec §2.2) carry $\beta$ on the four logit-path terms and on dL/dW.

Measured, in mpmath at 50 digits against mpmath central differences (the independent oracle of
:mod:`reference.fd`), for $\beta \in \{1, 1/d\}$: the corrected closed forms of :func:`reference.backward` with
$\beta$ (spec §2.2) and the $\beta$-free forms the appendix prints (W1–W3 fixed, the factor $\beta$ of the four
logit-path terms and of dL/dW left out: the reference's terms divided by $\beta$). Second part: for
entries bounded by R, the largest logit with $\beta = 1$ against $\beta = 1/d$ (the hypothesis $R = o(\sqrt{\log n})$
of C.13 bounds the logits by $R^2$ only with the $1/d$; with $\beta = 1$ they reach $d R^2$).
"""

from __future__ import annotations

import numpy as np

from proofs_check.experiments.stats import jsonable, save_plot
from reference import backward, forward
from reference.backend import mp_context
from reference.compare import TOLERANCES, rel_err
from reference.fd import fd_gradients
from reference.losses import LinearLoss
from reference.model import Layer

DPS = 50


def sizes(quick: bool) -> dict:
    return {"n": 5, "d": 3, "logit_n": 256 if quick else 1024, "logit_ds": [2, 4, 8, 16]}


def beta_free_only_for_beta_1(rows: list[dict], tol: float, wrong: float) -> bool:
    """The reading: the beta-free forms match FD at beta = 1 and fail at beta = 1/d, where the forms with beta hold."""
    r1, rd = rows
    return bool(
        r1["dX_beta_free"] < tol
        and r1["dW_beta_free"] < tol
        and rd["dX_beta_free"] > wrong
        and rd["dW_beta_free"] > wrong
        and rd["dX_with_beta"] < tol
        and rd["dW_with_beta"] < tol
    )


def run(quick: bool = True, seed: int = 0) -> dict:
    sz = sizes(quick)
    rng = np.random.default_rng([seed, 7701])
    n, d = sz["n"], sz["d"]
    X = rng.uniform(-1, 1, (n, d))
    L = Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(3)))
    C = rng.uniform(-1, 1, (n, d))
    rows = []
    for beta_name, beta in (("1", 1.0), ("1/d", mp_context(DPS).mpf(1) / d)):
        tr = forward(X, [L], beta=beta, backend="mpmath", dps=DPS)
        fd = fd_gradients(X, [L], LinearLoss(C), beta=beta, dps=DPS, with_dT=False)
        ex = backward(tr, tr.backend.asarray(C))  # the corrected closed forms, with beta (spec §2.2)
        t = ex.layers[0].terms
        b = tr.caches[0].attn.heads[0].beta  # the trace's numbers carry their own precision (reference.backend)
        logit = t["D2"] + t["D4"] + t["D6"] + t["D7"]  # beta (P X W^T + P^T X W)
        rows.append(
            {
                "beta": beta_name,
                "dX_beta_free": float(rel_err(t["D8"] + logit / b, fd.dX)),  # beta left out
                "dX_with_beta": float(rel_err(ex.dX, fd.dX)),
                "dW_beta_free": float(rel_err(ex.layers[0].dW / b, fd.layers[0]["dW"])),
                "dW_with_beta": float(rel_err(ex.layers[0].dW, fd.layers[0]["dW"])),
            }
        )
    logit_rows = []
    for dd in sz["logit_ds"]:
        R = 1.0
        Xl = rng.uniform(-R, R, (sz["logit_n"], dd))
        Wl = rng.uniform(-1, 1, (dd, dd))
        XW = Xl @ Wl
        Re = max(float(np.abs(Xl).max()), float(np.abs(XW).max()))  # C.13's entry bound on X and XW
        S = XW @ Xl.T
        logit_rows.append(
            {
                "d": dd,
                "R_entry": Re,
                "max_logit_beta1": float(np.abs(S).max()),
                "max_logit_beta1/d": float(np.abs(S).max()) / dd,
                "R_entry^2": Re * Re,
                "d*R_entry^2": dd * Re * Re,
            }
        )
    tol, wrong = TOLERANCES["FD_mpmath_dps50"], TOLERANCES["PRINTED_WRONG"]
    shown = beta_free_only_for_beta_1(rows, tol, wrong)
    return jsonable(
        {
            "settings": {**sz, "seed": seed, "dps": DPS, "tol": tol, "wrong": wrong},
            "rows": rows,
            "logit_range": logit_rows,
            "beta_free_only_for_beta_1": bool(shown),
        }
    )


def plot(data: dict, path: str) -> str | None:
    def draw(ax) -> None:
        lr = data["logit_range"]
        ax.plot([r["d"] for r in lr], [r["max_logit_beta1"] for r in lr], "o-", label="max logit, beta=1")
        ax.plot([r["d"] for r in lr], [r["max_logit_beta1/d"] for r in lr], "s-", label="max logit, beta=1/d")
        ax.set_xlabel("d")
        ax.legend()

    return save_plot(path, draw, figsize=(6, 4))
