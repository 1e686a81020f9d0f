r"""The report of ``altgrad check --report DIR``: ``report.json`` (the source of truth), ``report.md``, ``graph.dot``
and, with the optional ``plots`` extra (matplotlib), ``graph.png``, ``graph.svg`` and one PNG per plotted series.

Everything a reader sees is rendered **from the JSON alone**: :func:`render_markdown` and :func:`render_dot` take
the decoded ``report.json`` document and never import a check module, so ``altgrad report DIR`` re-renders an old
run on a machine that no longer has the code that produced it (a schema-2 file is upgraded on reading).

The parts, one idea per module: the document and its schema (:mod:`proofs_check.report_doc`), the Markdown
(:mod:`proofs_check.report_markdown`), the graph and pictures (:mod:`proofs_check.report_graph`), the comparison
of two runs (:mod:`proofs_check.report_compare`). This module writes the files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from proofs_check.report_doc import (  # noqa: F401  (the report's public names, re-exported)
    AGREE,
    PAPER,
    SCHEMA_VERSION,
    VERDICTS,
    build_doc,
    coverage,
    expected_word,
    jsonable,
    upgrade_doc,
    validate_doc,
    versions,
)
from proofs_check.report_graph import COLOURS, NOT_RUN, render_dot, render_pictures  # noqa: F401
from proofs_check.report_markdown import OTHER, PLOTS_HINT, SECTIONS, render_markdown, section_of  # noqa: F401


def plots_available() -> bool:
    """True when matplotlib (the optional ``plots`` extra) can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def skipped_outputs() -> list[str]:
    """The optional outputs this machine cannot draw, each with how to get it (empty when nothing is skipped)."""
    if plots_available():
        return []
    return [f"graph.png, graph.svg and plots/*.png (they need matplotlib: {PLOTS_HINT})"]


def read_doc(path: str | os.PathLike) -> dict:
    """Read a ``report.json`` (or ``altgrad check --json`` file), upgrade an older schema, refuse a malformed one."""
    path = Path(path)
    try:
        doc = upgrade_doc(json.loads(path.read_text(encoding="utf-8")))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    problems = validate_doc(doc)
    if problems:
        raise ValueError(f"{path}: not a report.json of schema {SCHEMA_VERSION}: {problems[:5]}")
    return doc


def render_dir(outdir: str | os.PathLike) -> Path:
    """(Re-)render ``report.md``, ``graph.dot`` and the pictures of ``outdir`` from its ``report.json``."""
    outdir = Path(outdir)
    doc = read_doc(outdir / "report.json")
    (outdir / "graph.dot").write_text(render_dot(doc), encoding="utf-8")
    pics = render_pictures(doc, outdir)
    md = outdir / "report.md"
    md.write_text(render_markdown(doc, pictures=pics), encoding="utf-8")
    return md


def write_report(doc: dict, outdir: str | os.PathLike) -> Path:
    """Write ``report.json`` to ``outdir`` (created) and render everything else from it. Returns report.md."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / "report.json").write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return render_dir(outdir)
