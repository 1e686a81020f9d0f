r"""Weak-point experiments of spec §4 (arXiv:2408.13233v2), one module per experiment.

Each module has ``run(quick: bool = True, seed: int = 0) -> dict`` (JSON-serialisable tables, fits with intervals,
and the reading of the data) and ``plot(data, path) -> str | None`` (matplotlib, optional: None when it is not
installed; the tables are complete without it). ``quick`` is the small profile (n <= 256 mostly, m <= 4,
seconds); the full profile runs the sweeps (m up to 16, n up to 1024; minutes).

==================  ==========================================================================================
module              weak points / paper statements
==================  ==========================================================================================
depth               W7, W9, W17, W22; Lemma H.4 / 5.5 / J.5, Theorem 4.2 (error against depth, C_j, degree)
bounded_entries     W6; Lemma C.13 / I.1 hypotheses across depth, weight scales 1x, 2x, 4x
looseness           W8, W18; observed/bound for C.13–C.19, E.2–E.11, F.5, G.4, H.2
beta_scale          W5; the dropped 1/d (Def. C.3 vs C.6)
forward_error       W10; forward-induced against backward-induced error
phi_prime           W11; error transfer through g_i with unbounded phi'
degree_formula      W14; Lemma I.1's degree formula, R against R^2
relative_error      W19; absolute against relative error and cosine
rank_bound          W20; C(d+g, g) against C(2(g+d), 2g)
scaling             counted work (decides) and wall-clock trend (Theorems 4.1/4.2, Lemmas 5.1–5.3, §B, E.1, I.4)
==================  ==========================================================================================

:func:`result` caches one run per (name, profile, seed) in the process, so several checks can read one sweep.
Every experiment runs the shipped :mod:`fastpath` and :mod:`reference` (helpers in :mod:`.stacks`); :mod:`.stats`
holds the fits and error measures only.
"""

from __future__ import annotations

import functools
import importlib

NAMES = (
    "depth",
    "bounded_entries",
    "looseness",
    "beta_scale",
    "forward_error",
    "phi_prime",
    "degree_formula",
    "relative_error",
    "rank_bound",
    "scaling",
)


def module(name: str):
    """The experiment module ``name`` (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise ValueError(f"experiment: expected one of {NAMES}, got {name!r}")
    return importlib.import_module(f"proofs_check.experiments.{name}")


@functools.lru_cache(maxsize=64)
def result(name: str, quick: bool = True, seed: int = 0) -> dict:
    """``module(name).run(quick, seed)``, computed once per process (the data are read-only by convention)."""
    return module(name).run(quick=quick, seed=seed)


def run_all(quick: bool = True, seed: int = 0, plot_dir: str | None = None) -> dict[str, dict]:
    """Every experiment; with ``plot_dir`` also each plot (``<name>.png``) when matplotlib is installed."""
    out = {}
    for name in NAMES:
        data = result(name, quick, seed)
        if plot_dir is not None:
            import os

            data = {**data, "plot": module(name).plot(data, os.path.join(plot_dir, f"{name}.png"))}
        out[name] = data
    return out


__all__ = ["NAMES", "module", "result", "run_all"]
