"""Issue 15: every tutorial is also a Jupyter notebook, generated from its percent-format source and executed.

Needs the ``docs`` extra (jupytext, nbclient, ipykernel); without it the tests are skipped with the command that
installs it. The built site's copy is checked in tests/test_docs_site.py.
"""

from __future__ import annotations

import pytest
from test_docs_examples import _load  # docs/ modules by path

notebooks = _load("notebooks")

pytestmark = pytest.mark.skipif(notebooks.missing() is not None, reason=f"{notebooks.missing()}")


def test_there_is_a_tutorial_to_convert():
    assert [p.name for p in notebooks.sources()] == ["tutorial_first_gradient.py"]


def test_each_tutorial_becomes_a_notebook_whose_cells_follow_its_percent_cells():
    for src in notebooks.sources():
        nb = notebooks.to_notebook(src)
        text = src.read_text(encoding="utf-8")
        assert len(nb.cells) == text.count("# %%")  # one cell per percent marker
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# Tutorial")
        assert nb.metadata["altgrad"]["generated_from"] == f"docs/{src.name}"


def test_each_tutorial_notebook_runs_top_to_bottom_without_an_error(tmp_path):
    import nbformat

    written = notebooks.write_notebooks(tmp_path)
    assert [p.name for p in written] == [f"{s.stem}.ipynb" for s in notebooks.sources()]
    for path in written:
        nb = nbformat.read(path, as_version=4)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert not [o for o in outputs if o.output_type == "error"]
        printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
        # the last cell runs main(), which prints one line per example
        for example in ("example_model:", "example_against_finite_differences:", "example_printed_vs_corrected:"):
            assert example in printed, example


def test_a_failing_cell_fails_the_execution(tmp_path):
    import nbformat

    nb = notebooks.to_notebook(notebooks.sources()[0])
    nb.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('cell fails')"))
    with pytest.raises(Exception, match="cell fails"):
        notebooks.execute(nb)
