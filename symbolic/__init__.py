r"""SymPy derivations and exact proofs of the gradient formulas of arXiv:2408.13233v2 (spec §2.2–2.9).

Modules, in reading order: ``chain`` (the chain rule with atoms), ``explicit`` (one attention layer written
out entry by entry, its gradients derived), ``closed_forms`` (corrected and printed formulas), ``block``
(g = phi(Z W_g), residual), ``loss`` (unit losses), ``literal`` (sympy.diff of the literal map), ``proofs``
(catalogue and exact prover), ``counterexamples`` (printed forms refuted exactly), ``index`` (index notation,
all n, d), ``numeric`` (lambdify to mpmath vs ``reference``), ``render`` (the one pinned printer), ``teaching``
and ``docs`` (docs/derivations), ``cli`` (``altgrad derive``).
"""
