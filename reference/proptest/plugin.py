"""pytest plugin (entry point ``altgrad``): hypothesis profiles for numeric tests and the oracle as a fixture.

Registered profiles (selected with hypothesis' own ``--hypothesis-profile NAME``; nothing is loaded here, so a
suite's own profile choice is never changed):

* ``altgrad``: no deadline (an mpmath evaluation takes milliseconds to seconds on a loaded machine), too_slow
  health check off, 50 examples;
* ``altgrad-ci``: the same, derandomized, no example database, ``print_blob`` (a failure replays anywhere);
* ``altgrad-thorough``: 1000 examples, no deadline.

Fixture ``altgrad_oracle``: the module :mod:`reference.proptest` (``altgrad_oracle.check(fn, case, ...)``,
``.verify(fn, ...)``). Without hypothesis the profiles are skipped and the fixture still works for ``check``.
Disable the plugin with ``-p no:altgrad``.
"""

from __future__ import annotations

import pytest


def _register_profiles() -> None:
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # the testing extra is absent: no profiles, nothing else changes
        return
    quiet = [HealthCheck.too_slow]
    settings.register_profile("altgrad", max_examples=50, deadline=None, suppress_health_check=quiet)
    settings.register_profile("altgrad-ci", max_examples=50, deadline=None, suppress_health_check=quiet,
                              derandomize=True, database=None, print_blob=True)  # fmt: skip
    settings.register_profile("altgrad-thorough", max_examples=1000, deadline=None, suppress_health_check=quiet)


# at import, not in pytest_configure: hypothesis' own plugin loads --hypothesis-profile in its pytest_configure,
# which may run before ours
_register_profiles()


@pytest.fixture
def altgrad_oracle():
    """The oracle's public API, :mod:`reference.proptest` (check, verify, Case, OracleFailure, ...)."""
    import reference.proptest as proptest

    return proptest
