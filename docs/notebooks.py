"""The tutorials and the derivation walkthroughs as Jupyter notebooks, generated from their sources and executed.

* a tutorial ``docs/tutorial_<name>.py`` (percent format) becomes ``tutorial_<name>.ipynb``: jupytext turns its
  ``# %%`` cells into notebook cells;
* a derivation ``docs/derivations/<stem>.md`` (written by ``python -m symbolic render``) that names its command
  ("Reproduce: `altgrad derive TERM --prove`") becomes ``derivation_<stem>.ipynb``: its text as Markdown cells,
  then a code cell that prints the same chain with SymPy and proves it exactly (``symbolic.cli.main``).

The ``.py`` and ``.md`` files stay the one source (STYLE.md §0 item 12: no notebook is a source of truth). nbclient
runs every notebook top to bottom (ipykernel; the derivations share one kernel, which keeps the build short), and
the executed notebooks are written next to the generated pages, where the site offers them for download. Needs the
``docs`` extra (jupytext, nbclient, ipykernel): ``pip install ".[docs]"``.
"""

from __future__ import annotations

import importlib.util
import re
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


_REPRODUCE = re.compile(r"Reproduce: `altgrad derive (\S+) --prove`")


def derivation_term(md: Path) -> str | None:
    """The ``altgrad derive`` TERM a derivation page names, or None (a page with no single statement)."""
    m = _REPRODUCE.search(md.read_text(encoding="utf-8"))
    return m.group(1) if m else None


def derivation_notebook(md: Path):
    """The walkthrough notebook of one derivation page (not executed)."""
    import jupytext
    import nbformat

    term = derivation_term(md)
    if term is None:
        raise ValueError(f"{md}: names no `altgrad derive TERM --prove` command")
    text = re.sub(r"^<!--.*?-->\n+", "", md.read_text(encoding="utf-8"), flags=re.S)
    nb = jupytext.reads(text, fmt="md")
    nb.cells += [
        nbformat.v4.new_markdown_cell(
            f"## Run it\n\nThe same chain, printed by SymPy, then the exact proof at a "
            f"small size (`altgrad derive {term} --prove`). Change the size with "
            f'`"--n", "3", "--d", "2"`.'
        ),  # fmt: skip
        nbformat.v4.new_code_cell(f'from symbolic.cli import main\n\nassert main([{term!r}, "--prove"]) == 0'),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["altgrad"] = {"generated_from": f"docs/derivations/{md.name}", "edit": "python -m symbolic render"}
    return nb


def execute_together(nbs: list, *, cwd: Path = ROOT) -> None:
    """Run every cell of every notebook in ``nbs``, in order, in one fresh kernel; raise on the first failure."""
    from nbclient import NotebookClient

    if not nbs:
        return
    client = NotebookClient(nbs[0], timeout=TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(cwd)}})  # fmt: skip
    with client.setup_kernel():
        for nb in nbs:
            client.nb = nb
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)


def write_notebooks(out_dir: Path, *, run: bool = True, derivations: list[Path] | None = None) -> list[Path]:
    """Write every tutorial and derivation notebook into ``out_dir`` (executed unless ``run`` is False).

    ``derivations``: the derivation pages to convert (default: those of ``docs/derivations/`` naming a command).
    """
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
    if derivations is None:
        derivations = [p for p in sorted((DOCS / "derivations").glob("*.md")) if derivation_term(p)]
    dnbs = [derivation_notebook(md) for md in derivations]
    if run:
        execute_together(dnbs)
    for md, nb in zip(derivations, dnbs, strict=True):
        path = out_dir / f"derivation_{md.stem}.ipynb"
        nbformat.write(nb, path)
        written.append(path)
    return written


def _title(nb) -> str:
    first = next((c.source for c in nb.cells if c.cell_type == "markdown"), "")
    return first.splitlines()[0].lstrip("# ").strip() if first else ""


def download_list(paths: list[Path], site_dir: str = "/_generated/notebooks") -> str:
    """A Markdown (MyST) list of download links, one per notebook, with the notebook's first heading."""
    import nbformat

    lines = []
    for p in paths:
        title = _title(nbformat.read(p, as_version=4))
        lines.append(f"- {{download}}`{p.name} <{site_dir}/{p.name}>`" + (f": {title}" if title else ""))
    return "\n".join(lines) + "\n"
