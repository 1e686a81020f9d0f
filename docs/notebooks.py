"""The tutorials as Jupyter notebooks, generated from their percent-format sources (``docs/tutorial_*.py``).

The ``.py`` file stays the one source (STYLE.md §0 item 12: no notebook is a source of truth): jupytext turns its
``# %%`` cells into a notebook, nbclient runs it top to bottom in a fresh kernel (ipykernel), and the executed
notebook is written next to the generated pages, where the site offers it for download. Needs the ``docs`` extra
(jupytext, nbclient, ipykernel): ``pip install ".[docs]"``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
NEEDS = ("jupytext", "nbclient", "nbformat", "ipykernel")
TIMEOUT_S = 300  # per cell: the tutorials' cells take about a second each on a loaded 2-core machine


def missing() -> str | None:
    """Why notebooks cannot be made here (a missing package, and how to install it), or None."""
    for module in NEEDS:
        if importlib.util.find_spec(module) is None:
            return f'{module} is not installed (pip install ".[docs]")'
    return None


def sources() -> list[Path]:
    """The percent-format tutorial scripts, in name order."""
    return sorted(DOCS.glob("tutorial_*.py"))


def to_notebook(source: Path):
    """The notebook of one percent-format script (not executed)."""
    import jupytext

    nb = jupytext.read(source, fmt="py:percent")
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["altgrad"] = {"generated_from": f"docs/{source.name}", "edit": "edit the .py file, never this one"}
    return nb


def execute(nb, *, cwd: Path = ROOT):
    """Run every cell of ``nb`` in a fresh Python kernel started in ``cwd``; raise on the first failing cell."""
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def write_notebooks(out_dir: Path, *, run: bool = True) -> list[Path]:
    """Write ``<name>.ipynb`` for every tutorial into ``out_dir`` (executed unless ``run`` is False)."""
    import nbformat

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sources():
        nb = to_notebook(src)
        if run:
            execute(nb)
        path = out_dir / f"{src.stem}.ipynb"
        nbformat.write(nb, path)
        written.append(path)
    return written
