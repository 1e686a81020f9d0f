"""docs/proptest.md runs: its ```python blocks execute in order in one namespace (```py blocks are shown only)."""

import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "proptest.md"
SLOW_BLOCK = "MUTANTS["  # the failure example shrinks a counterexample: tens of seconds


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_the_page_has_runnable_examples_for_torch_numpy_the_decorator_and_a_failure():
    text = "\n".join(_blocks())
    assert 'framework="torch"' in text and "@oracle_test" in text and "my_numpy_attention" in text
    assert SLOW_BLOCK in text


def _needs_torch(block: str) -> bool:
    return "import torch" in block or "my_attention(" in block


def test_the_numpy_examples_run():
    ns: dict = {}
    for block in _blocks():
        if SLOW_BLOCK not in block and not _needs_torch(block):
            exec(compile(block, str(PAGE), "exec"), ns)  # noqa: S102 - our own documentation
    assert "my_numpy_attention" in ns


def test_the_torch_examples_run():
    pytest.importorskip("torch", reason="the torch examples need PyTorch: pip install 'altgrad[torch]'")
    ns: dict = {}
    for block in _blocks():
        if _needs_torch(block):
            exec(compile(block, str(PAGE), "exec"), ns)  # noqa: S102 - our own documentation
    ns["test_my_attention"]()  # the decorated implementation is a test: run it


@pytest.mark.slow
def test_the_failure_example_prints_a_shrunk_counterexample_naming_dW_V(capsys):
    (block,) = [b for b in _blocks() if SLOW_BLOCK in b]
    exec(compile(block, str(PAGE), "exec"), {})  # noqa: S102
    out = capsys.readouterr().out
    assert "field layers[0].dW_V is wrong" in out and "reproduce: reference.proptest.check(printed_dW_V" in out
    assert re.search(r"configuration: n=[1-4], d=[12],", out)
