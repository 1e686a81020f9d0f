"""Issue 15: graph.dot has real line breaks in its labels and a legend with one colour per verdict; graph.svg is
written beside graph.png; ``altgrad report DIR`` says which optional outputs it skipped and how to get them."""

import json
import re
import shutil
import subprocess
import sys

import pytest
from test_proofs_check_report import _minimal_doc

from proofs_check import report as rep
from proofs_check.cli import main
from proofs_check.report_graph import dot_label


def _labels(dot: str) -> dict[str, str]:
    """node id -> the raw text between the quotes of its label (DOT escapes kept)."""
    return dict(re.findall(r'^\s+"((?:[^"\\]|\\.)*)" \[label="((?:[^"\\]|\\.)*)"', dot, flags=re.M))


def test_dot_labels_break_lines_with_dot_escapes_not_a_literal_backslash_n():
    dot = rep.render_dot(_minimal_doc())
    label = _labels(dot)["x.fact"]
    assert label == r"Fact C.2\nx.fact\nholds"  # backslash-n: Graphviz's line break inside a quoted label
    assert "\\\\n" not in dot  # an escaped backslash followed by n would print as text


def test_dot_labels_escape_quotes_and_backslashes_in_the_text():
    assert dot_label('a "q"', "b\\c") == '"a \\"q\\"\\nb\\\\c"'


def test_the_legend_has_one_distinct_colour_per_verdict_and_holds_is_not_trend():
    dot = rep.render_dot(_minimal_doc())
    legend = dot.split("subgraph cluster_legend {")[1].split("}")[0]
    for verdict in rep.VERDICTS:
        assert f'"legend: {verdict}" [label="{verdict}", fillcolor="{rep.COLOURS[verdict]}"]' in legend
    assert len(set(rep.COLOURS.values())) == len(rep.VERDICTS) and rep.COLOURS["holds"] != rep.COLOURS["trend"]
    assert "not run" in legend


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed (Debian: apt-get install graphviz)")
def test_graphviz_renders_each_label_on_three_lines(tmp_path):
    svg = subprocess.run(["dot", "-Tsvg"], input=rep.render_dot(_minimal_doc()), capture_output=True, text=True,
                         check=True, timeout=60).stdout  # fmt: skip
    node = svg.split("<title>x.fact</title>")[1].split("</g>")[0]
    assert re.findall(r">([^<>]+)</text>", node) == ["Fact C.2", "x.fact", "holds"]


def test_report_writes_graph_svg_beside_graph_png(tmp_path):
    pytest.importorskip("matplotlib")
    md = rep.write_report(_minimal_doc(), tmp_path).read_text()
    svg = (tmp_path / "graph.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and "x.fact" in svg  # text stays text (svg.fonttype none): searchable
    assert "[graph.svg](graph.svg)" in md


def test_report_command_without_matplotlib_says_what_it_skipped_and_how_to_get_it(tmp_path, capsys, monkeypatch):
    (tmp_path / "report.json").write_text(json.dumps(_minimal_doc()))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["report", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "skipped: graph.png, graph.svg and plots/*.png" in err and 'pip install "altgrad[plots]"' in err
    assert not (tmp_path / "graph.png").exists() and (tmp_path / "graph.dot").exists()
    assert 'pip install "altgrad[plots]"' in (tmp_path / "report.md").read_text()


def test_report_command_with_matplotlib_skips_nothing(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    (tmp_path / "report.json").write_text(json.dumps(_minimal_doc()))
    assert main(["report", str(tmp_path)]) == 0
    assert "skipped" not in capsys.readouterr().err


def test_check_with_report_without_matplotlib_says_what_it_skipped(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["check", "--only", "cat.C2.hadamard_lowrank", "--report", str(tmp_path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"report: {tmp_path / 'report.md'}" in err and "skipped: graph.png, graph.svg and plots/*.png" in err
