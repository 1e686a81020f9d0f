r"""Property-based testing of anyone's attention gradients against the reference (issue 12).

``check(fn, case)`` judges one case, ``verify(fn)`` runs hypothesis over drawn cases, ``@oracle_test(...)`` makes
a pytest test of an implementation; the oracle (:mod:`~reference.proptest.oracle`) compares the output and every
gradient with the float64 reference and a high-precision mpmath evaluation, with a derived tolerance.
Strategies (:mod:`~reference.proptest.strategies`) need the ``testing`` extra (hypothesis); the torch and jax
adapters need the ``torch`` / ``jax`` extras. Nothing optional is imported until it is used.

    from reference.proptest import verify
    verify(my_attention, framework="torch", precision="float32")   # raises OracleFailure with a reproducer

See docs/proptest.md.
"""

from reference.model import Layer
from reference.proptest.case import Case
from reference.proptest.oracle import OracleFailure, Verdict, judge, reference_fields
from reference.proptest.runner import check, oracle_test, verify

__all__ = ["Case", "Layer", "OracleFailure", "Verdict", "check", "judge", "oracle_test", "reference_fields", "verify"]
