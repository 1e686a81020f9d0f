r"""The silently dropped 1/d (spec §4 W5; Def. C.3 against C.6, Lemmas D.17, F.4, C.13; catalogue #29).

Paper: Def. C.3 keeps $S = XWX^\top/d$; from Def. C.6 on every formula is written for $\beta = 1$. The corrected
closed forms (spec §2.2) carry $\beta$ on the four logit-path terms and on dL/dW.

Measured, in mpmath at 50 digits against mpmath central differences (the independent oracle of
:mod:`reference.fd`), for $\beta \in \{1, 1/d\}$: the $\beta$-free forms (W1–W3 fixed, factor $\beta$ left out)
$f^\top G W_V^\top + P X W^\top + P^\top X W$ and $X^\top P X$, and the same with $\beta$ inserted. Second part: for
entries bounded by R, the largest logit with $\beta = 1$ against $\beta = 1/d$ (the hypothesis $R = o(\sqrt{\log n})$
of C.13 bounds the logits by $R^2$ only with the $1/d$; with $\beta = 1$ they reach $d R^2$).
"""

from __future__ import annotations

import mpmath
import numpy as np

from proofs_check.experiments import _common as cm
from reference import forward
from reference.compare import TOLERANCES, rel_err
from reference.fd import fd_gradients
from reference.losses import LinearLoss
from reference.model import Layer

DPS = 50


def sizes(quick: bool) -> dict:
    return {"n": 5, "d": 3, "logit_n": 256 if quick else 1024, "logit_ds": [2, 4, 8, 16]}


def run(quick: bool = True, seed: int = 0) -> dict:
    sz = sizes(quick)
    rng = np.random.default_rng([seed, 7701])
    n, d = sz["n"], sz["d"]
    X = rng.uniform(-1, 1, (n, d))
    L = Layer(*(rng.uniform(-1, 1, (d, d)) for _ in range(3)))
    C = rng.uniform(-1, 1, (n, d))
    rows = []
    for beta_name, beta in (("1", 1.0), ("1/d", mpmath.mpf(1) / d)):
        tr = forward(X, [L], beta=beta, backend="mpmath", dps=DPS)
        fd = fd_gradients(X, [L], LinearLoss(C), beta=beta, dps=DPS, with_dT=False)
        hc = tr.caches[0].attn.heads[0]
        with mpmath.workdps(DPS):
            G = tr.backend.asarray(C)
            f, h, s, Xm, W = hc.f, hc.h, hc.s, hc.X, hc.W
            K = (G * s).sum(axis=1)
            P = f * (G @ h.T) - K[:, None] * f
            val = f.T @ G @ hc.W_V.T
            logit = P @ Xm @ W.T + P.T @ Xm @ W
            b = hc.beta
            rows.append(
                {
                    "beta": beta_name,
                    "dX_beta_free": float(rel_err(val + logit, fd.dX)),
                    "dX_with_beta": float(rel_err(val + b * logit, fd.dX)),
                    "dW_beta_free": float(rel_err(Xm.T @ P @ Xm, fd.layers[0]["dW"])),
                    "dW_with_beta": float(rel_err(b * (Xm.T @ P @ Xm), fd.layers[0]["dW"])),
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
    r1, rd = rows
    shown = (
        r1["dX_beta_free"] < tol
        and r1["dW_beta_free"] < tol
        and rd["dX_beta_free"] > wrong
        and rd["dW_beta_free"] > wrong
        and rd["dX_with_beta"] < tol
        and rd["dW_with_beta"] < tol
    )
    return cm.jsonable(
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

    return cm.save_plot(path, draw, figsize=(6, 4))
