"""The pytest plugin (entry point ``altgrad``) and the optional extras: profiles, fixture, clean absence."""

import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import settings


@pytest.fixture
def plugin_on(request):
    if not request.config.pluginmanager.has_plugin("altgrad"):
        pytest.skip("the altgrad plugin is disabled in this run (-p no:altgrad)")


BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {hidden!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (hidden by the test)", name=name)
sys.meta_path.insert(0, Block())
"""


def _python(code: str, hidden: set) -> subprocess.CompletedProcess:
    src = BLOCK.format(hidden=sorted(hidden)) + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=120)


def test_the_plugin_registers_numeric_profiles_without_loading_one(plugin_on):
    ci = settings.get_profile("altgrad-ci")
    assert ci.deadline is None and ci.derandomize and ci.database is None
    assert settings.get_profile("altgrad").deadline is None
    assert settings.get_profile("altgrad-thorough").max_examples == 1000
    assert settings.default.max_examples == 25  # our conftest's profile is still the one in force


def test_the_fixture_is_the_public_api(plugin_on, request):
    altgrad_oracle = request.getfixturevalue("altgrad_oracle")
    from reference.proptest.mutants import correct_attention

    assert altgrad_oracle.verify is not None
    altgrad_oracle.verify(correct_attention, max_examples=3)


def test_without_hypothesis_the_plugin_and_the_oracle_load_and_the_strategies_name_the_extra():
    r = _python(
        """
        import reference.proptest.plugin as plugin
        plugin._register_profiles()               # no profiles, no error
        import reference.proptest                 # check() and the oracle need no hypothesis
        try:
            import reference.proptest.strategies
        except ImportError as e:
            print("IMPORTERROR", e)
        """,
        {"hypothesis"},
    )
    assert r.returncode == 0, r.stderr
    assert "IMPORTERROR" in r.stdout and "pip install 'altgrad[testing]'" in r.stdout


def test_without_torch_or_jax_their_adapters_name_the_extra():
    r = _python(
        """
        from reference.proptest.runner import adapter
        for fw in ("torch", "jax"):
            try:
                adapter(fw)
            except ImportError as e:
                print("IMPORTERROR", e)
        """,
        {"torch", "jax"},
    )
    assert r.returncode == 0, r.stderr
    assert "pip install 'altgrad[torch]'" in r.stdout and "pip install 'altgrad[jax]'" in r.stdout


def test_a_user_suite_gets_the_profiles_and_the_fixture_from_the_entry_point(tmp_path):
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            from hypothesis import settings
            from reference.proptest.mutants import correct_attention

            def test_mine(altgrad_oracle):
                assert settings.default.derandomize and settings.default.deadline is None
                altgrad_oracle.verify(correct_attention, max_examples=3)
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--hypothesis-profile=altgrad-ci",
        "test_user.py",
    ]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout
