"""proofs_check: one executable check per statement of arXiv:2408.13233v2.

The registry (:mod:`proofs_check.registry`) is the index, in the leanblueprint style: every check has a stable id,
the paper label, the SPEC §3 catalogue numbers, a kind ([DEF]/[ID]/[INEQ]/[ASYM]/[ALG]), the expected status
(OK / WRONG-AS-PRINTED / GAP / AMBIG) and its dependencies.  Check functions live in :mod:`proofs_check.checks`.
"""
