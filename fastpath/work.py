r"""Counted work: multiply-adds of the contractions the fast path actually performs (issue 9, spec §0.5 item 7).

A [ASYM] verdict must not depend on wall-clock time or machine load, so every contraction of :mod:`fastpath.layer`
goes through :func:`mm` (or adds its count by hand where numpy does the product elementwise), and the count is
derived from the shapes used at that call: an (p, q) by (q, s) product costs $p q s$ multiply-adds, a feature
build of r monomials for c tokens $r c$, a row-Kronecker product of (c, p) and (c, s) factors $c p s$.
:class:`fastpath.model.FastTrace` and :class:`fastpath.model.FastGrads` expose the totals as ``madds``.

Shape legend: p, q, s generic matrix sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Work:
    """A running count of multiply-adds (an int)."""

    madds: int = 0

    def add(self, k: int) -> None:
        self.madds += int(k)


def mm(work: Work, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` for 2-D operands, counting ``A.shape[0] * A.shape[1] * B.shape[1]`` multiply-adds."""
    work.add(A.shape[0] * A.shape[1] * B.shape[1])
    return A @ B


__all__ = ["Work", "mm"]
