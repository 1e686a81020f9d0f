"""The README's example runs as written, and its two fresh-machine commands are the ones CI checks."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_the_readme_examples_run_in_order_and_give_gradients_of_the_documented_shapes():
    ns: dict = {}
    for code in re.findall(r"```python\n(.*?)```", README.read_text(), re.S):
        exec(compile(code, "README.md", "exec"), ns)  # the fast-path block asserts its certificate itself
    grads = ns["grads"]
    assert grads.dX.shape == (8, 4)
    assert grads.layers[0].dW.shape == (2, 4, 4)  # two heads: one merged-weight gradient per head
    assert np.isfinite(grads.dX).all()
    assert ns["trace_mp"].backend.is_mp
    assert ns["ftrace"].rank > 0 and ns["fgrads"].bound.dX.shape == (8, 4)


def test_the_readme_names_the_main_job_and_the_test_command_that_ci_runs():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    assert "altgrad check --quick" in text and "altgrad check --quick" in ci
    assert "python -m pytest" in text and "python -m pytest" in ci


def test_the_readme_sends_no_reader_outside_the_clone_and_its_pages_exist():
    text = README.read_text()
    assert "../" not in text  # a clone has no ../shared
    for page in re.findall(r"`(docs/[\w./-]+)`", text):
        assert (README.parent / page).exists(), page


def test_the_readme_states_the_python_version_and_what_the_optional_parts_need():
    text = README.read_text()
    pyproject = (README.parent / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.11"' in pyproject and "Python 3.11 or later" in text
    for need in ("node and npm", "Chromium", "matplotlib", "Dask distributed", "Graphviz"):
        assert need in text, need
    for extra in re.findall(r'pip install "\.\[(\w+)\]"', text):
        assert re.search(rf"^{extra} = \[", pyproject, flags=re.M), extra  # every extra named exists
