r"""One call or one decorator tests a user's function: draw cases, run the framework adapter, judge with the oracle.

``check(fn, case, framework=..., precision=...)`` judges one case; ``verify(fn, ...)`` runs hypothesis over
:func:`~reference.proptest.strategies.cases` and raises the shrunk :class:`~reference.proptest.oracle.OracleFailure`;
``@oracle_test(...)`` turns a function into a pytest test that calls ``verify`` on it. Frameworks are optional
extras, imported only when named: ``numpy`` (always there; the function returns its own gradients), ``torch``
(autograd) and ``jax`` (``jax.vjp``).
"""

from __future__ import annotations

import importlib

from reference.proptest import oracle
from reference.proptest.case import Case

FRAMEWORKS = {"numpy": "adapt_numpy", "torch": "adapt_torch", "jax": "adapt_jax"}


def adapter(framework: str):
    """The adapter module of ``framework``; an ImportError names the extra to install when it is missing."""
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework: expected one of {tuple(FRAMEWORKS)}, got {framework!r}")
    return importlib.import_module(f"reference.proptest.{FRAMEWORKS[framework]}")


def check(fn, case: Case, *, framework: str = "numpy", precision="float64", kind: str | None = None,
          **opts) -> oracle.Verdict:  # fmt: skip
    """Judge ``fn`` on one case; raises :class:`~reference.proptest.oracle.OracleFailure` with a reproducer.

    ``kind`` is ``"attention"`` (``fn(X, W_Q, W_K, W_V, *, beta, causal, heads)``) or ``"model"``
    (``fn(X, layers, *, beta, causal, heads, residual, activation)``); default: attention when the case is one
    bare attention layer. ``precision`` is a name of :data:`~reference.proptest.precision.UNIT_ROUNDOFF` or the
    framework's dtype. ``opts`` go to the adapter (torch: ``weights=`` for an ``nn.Module``).
    """
    ad = adapter(framework)
    prec = ad.precision_name(precision)
    kind = kind or ("attention" if case.is_attention else "model")
    name = getattr(fn, "__name__", type(fn).__name__)
    reproducer_call = f"reference.proptest.check({name}, CASE, framework={framework!r}, precision={prec!r})"

    def fields(seen: Case):
        return ad.fields(fn, seen, prec, kind, **opts)

    return oracle.check(fields, case, prec, reproducer=reproducer_call)


def verify(fn, *, framework: str = "numpy", precision="float64", kind: str = "attention",
           max_examples: int = 50, strategy=None, shrink: bool = True, **case_kw) -> None:  # fmt: skip
    """Run hypothesis over cases of ``kind`` (``case_kw`` go to :func:`~reference.proptest.strategies.cases`).

    No deadline (numeric code on a loaded machine) and no example database (every verify shares one inner test,
    and the failure message carries its own reproducer); the rest of the loaded hypothesis profile (derandomize
    in the ``altgrad-ci`` profile) applies. On failure hypothesis shrinks (unless ``shrink=False``) and re-raises
    the smallest failing case's :class:`~reference.proptest.oracle.OracleFailure`.
    """
    from hypothesis import HealthCheck, Phase, given, settings

    from reference.proptest.strategies import cases

    # no explain phase: it traces every line of the failing example (minutes under mpmath) and the oracle's
    # message already says what is wrong
    PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target) + ((Phase.shrink,) if shrink else ())
    opts = case_kw.pop("adapter_options", {})
    strat = strategy if strategy is not None else cases(kind, **case_kw)

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        phases=PHASES,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(strat)
    def run(case):
        check(fn, case, framework=framework, precision=precision, kind=kind, **opts)

    run()


def oracle_test(*, framework: str = "numpy", precision="float64", kind: str = "attention", max_examples: int = 50,
                **case_kw):  # fmt: skip
    """Decorator: the decorated function is the implementation; the result is a pytest test that verifies it.

    ``@oracle_test(framework="torch", precision="float32")`` on ``def test_mine(X, W_Q, W_K, W_V, *, beta, causal,
    heads)`` gives a test ``test_mine()`` (no arguments, so pytest asks for no fixtures).
    """

    def wrap(fn):
        def test():
            verify(fn, framework=framework, precision=precision, kind=kind, max_examples=max_examples, **case_kw)

        test.__name__, test.__qualname__, test.__module__ = fn.__name__, fn.__qualname__, fn.__module__
        test.__doc__ = fn.__doc__
        test.implementation = fn
        return test

    return wrap


__all__ = ["FRAMEWORKS", "adapter", "check", "oracle_test", "verify"]
