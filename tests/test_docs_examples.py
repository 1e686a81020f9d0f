"""The documentation's executable parts, without Sphinx: the tutorial, the >>> examples, the generated pages.

These run in every test run (they need only the runtime dependencies), so the examples on the site cannot rot.
The site build itself is tested in tests/test_docs_site.py.
"""

from __future__ import annotations

import doctest
import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _load(name: str):
    """Import a module of docs/ by path (docs/ is not a package and is not installed)."""
    spec = importlib.util.spec_from_file_location(f"altgrad_docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tutorial():
    return _load("tutorial_first_gradient")


@pytest.fixture(scope="module")
def generate():
    return _load("generate")


def test_tutorial_model_gives_gradients_shaped_like_what_they_differentiate(tutorial):
    out = tutorial.example_model()
    assert out["dX"] == (8, 4)
    assert out["dW_Q"] == out["dW_V"] == out["dW_g"] == (4, 4)
    assert out["terms"] == ["D2", "D4", "D6", "D7", "D8"]
    assert math.isfinite(out["loss"])


def test_tutorial_closed_form_matches_mpmath_finite_differences_far_below_float64(tutorial):
    errors = tutorial.example_against_finite_differences()
    assert set(errors) == {"dX", "dW", "dW_V"}
    # 50-digit arithmetic with 20 guard digits in the differences: agreement to 1e-30 is the documented claim
    assert max(errors.values()) < 1e-30, errors


def test_tutorial_printed_formulas_fail_and_corrected_terms_add_up(tutorial):
    out = tutorial.example_printed_vs_corrected()
    assert out["printed dX"] > 1e-2, out  # relative error of order one, as the errata page says
    assert out["printed dW_V"] > 1e-2, out
    assert out["corrected dX vs sum of its terms"] < 1e-14, out


def test_tutorial_runs_as_a_script(tutorial, capsys):
    tutorial.main()
    printed = capsys.readouterr().out
    assert "example_model" in printed and "example_printed_vs_corrected" in printed


def test_every_tutorial_function_shown_in_the_docs_exists_and_is_tested(tutorial):
    shown = re.findall(r":pyobject: (\w+)", (DOCS / "getting-started.md").read_text(encoding="utf-8"))
    assert len(shown) == 3
    tests = Path(__file__).read_text(encoding="utf-8")
    for name in shown:
        assert callable(getattr(tutorial, name, None)), f"getting-started.md shows {name}, which the tutorial lacks"
        assert f"tutorial.{name}()" in tests, f"{name} is shown in the docs but no test runs it"


def test_every_python_example_in_the_docs_markdown_passes_doctest():
    pages = sorted(DOCS.glob("*.md")) + sorted((DOCS / "terms").glob("*.md"))
    attempted = 0
    for page in pages:
        result = doctest.testfile(
            str(page), module_relative=False, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
        )
        assert result.failed == 0, f"{page.name}: {result.failed} doctest example(s) failed"
        attempted += result.attempted
    assert attempted >= 10  # getting-started.md alone has a dozen lines


def test_catalogue_has_an_anchor_for_every_registry_entry(generate):
    from proofs_check import registry as reg

    text = generate.catalogue(generate.entries({"records": []}), {"profile": "quick", "seed": 0})
    for check_id in reg.load_all():
        assert f'<span id="{check_id}"></span>' in text
        assert f"({generate.anchor_label(check_id)})=" in text


def test_catalogue_shows_the_verdict_and_command_of_a_record(generate):
    from proofs_check import registry as reg

    first = next(iter(reg.load_all().values()))
    command = f"altgrad check --quick --seed 7 --only {first.id}"
    record = {"id": first.id, "verdict": "holds", "figure": "max |x| 1e-16", "data": {"n": 3}, "wall_s": 0.5,
              "seed": 7, "profile": "quick", "command": command}  # fmt: skip
    text = generate.catalogue(generate.entries({"records": [record]}), {"profile": "quick", "seed": 7})
    assert command in text
    assert r"max \|x\| 1e-16" in text  # escaped: a pipe would end a table cell


def test_every_term_page_links_to_at_least_one_registered_check(generate):
    entries = generate.entries({"records": []})
    for term in generate.TERMS:
        text, _, checks = generate.term_fragment(term, entries, [])
        assert checks, f"term page {term.slug} matches no registry entry"
        assert "{ref}`" in text


def test_errata_cover_every_entry_expected_wrong_as_printed(generate):
    entries = generate.entries({"records": []})
    text = generate.errata(entries, [])
    for e in entries:
        if e.expected == "WRONG-AS-PRINTED":
            assert f"<{generate.anchor_label(e.id)}>" in text, e.id


def test_results_say_not_yet_measured_rather_than_invent_numbers(generate, tmp_path, monkeypatch):
    monkeypatch.setattr(generate, "BENCHMARKS", tmp_path)  # no benchmark files
    text = generate.results(generate.entries({"records": []}), {"profile": "quick"})
    assert text.count("Not yet measured") >= 4
    assert "altgrad check --full" in text


def test_results_plot_the_series_of_the_records_by_their_axes(generate, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="plots need the docs or plots extra (matplotlib)")
    from proofs_check import registry as reg

    monkeypatch.setattr(generate, "GEN", tmp_path)
    (tmp_path / "no-benchmarks").mkdir()
    monkeypatch.setattr(generate, "BENCHMARKS", tmp_path / "no-benchmarks")  # isolate from benchmarks/RESULTS-*
    first, second = list(reg.load_all())[:2]
    series = {
        "fast": {"x": [64, 128, 256], "y": [0.1, 0.2, 0.4], "xlabel": "n", "ylabel": "time (s)"},
        "g=4": {"x": [1, 2, 4], "y": [1e-9, 3e-9, 2e-8], "xlabel": "depth m", "ylabel": "relative error of dL/dX"},
    }
    other = {"deg": {"x": [2, 3], "y": [5, 7], "xlabel": "d (R = 1)", "ylabel": "Taylor degree"}}
    records = [{"id": first, "verdict": "trend", "figure": "", "data": {"series": series}},
               {"id": second, "verdict": "holds", "figure": "", "data": {"series": other}}]  # fmt: skip
    text = generate.results(generate.entries({"records": records}), {"profile": "full", "seed": 0})
    for png in ("time_vs_n.png", "error_vs_depth.png", f"series_{generate._norm(second)}.png"):
        assert (tmp_path / "img" / png).stat().st_size > 1000, png
        assert f"/_generated/img/{png})" in text
    assert text.count("Not yet measured") == 3  # error against n, the crossover, the benchmark files
    assert "| 2 | 5 |" in text  # the unclassified series is also shown as a table


def test_a_benchmark_run_gives_time_against_n_and_the_crossover_table(generate, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib", reason="plots need the docs or plots extra (matplotlib)")
    monkeypatch.setattr(generate, "GEN", tmp_path)
    monkeypatch.setattr(generate, "BENCHMARKS", tmp_path)
    rows = [{"n": 64, "t_fast": 0.002, "t_exact": 0.001}, {"n": 128, "t_fast": 0.003, "t_exact": 0.004}]
    lines = [{"kind": "config", "date": "2026-11-28", "command": "python fastpath_bench.py", "cpus": 2},
             {"kind": "scaling", "n": 1024, "t": 0.01}, {"kind": "scaling", "n": 2048, "t": 0.02},
             {"kind": "crossover", "d": 4, "eps": 1e-6, "rank": 126, "degree": 5, "crossover_n": 128, "rows": rows},
             {"kind": "crossover", "d": 8, "eps": 1e-9, "rank": 9, "degree": 9, "crossover_n": None,
              "extrapolated_n": 40000, "rows": rows}]  # fmt: skip
    (tmp_path / "RESULTS-fastpath.jsonl").write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    text = generate.results(generate.entries({"records": []}), {"profile": "quick", "seed": 0})
    assert (tmp_path / "img" / "time_vs_n.png").stat().st_size > 1000
    assert "| 4 | 1e-06 | 5 | 126 | 128 | 128 |" in text
    assert "not reached (extrapolated about 40000)" in text
    assert "| 1024 | 0.01 |" in text  # the plotted scaling points, as a table too


def test_a_depth_sweep_table_becomes_error_against_depth_curves(generate):
    rows = [{"m": m, "g": g, "dX": {"rel": 10.0 ** (m - 9 - g)}} for m in (2, 1, 3) for g in (4, 6)]
    data = {"sweeps": [{"n": 64, "rows": [*rows, {"m": 4, "g": 4, "dX": "not a table"}]}]}
    curves = generate.depth_sweep_series(data)
    assert sorted(curves) == ["n=64, g=4", "n=64, g=6"]
    assert curves["n=64, g=4"]["x"] == [1, 2, 3]  # sorted by depth; the malformed row is skipped
    assert curves["n=64, g=4"]["y"] == [1e-12, 1e-11, 1e-10]
    assert generate._X_DEPTH.search(curves["n=64, g=4"]["xlabel"]) and generate._Y_ERR.search("relative error")
    assert generate.depth_sweep_series({"sweeps": "text"}) == {}


def test_markdown_escape_leaves_no_active_markup(generate):
    assert generate.esc("a|b $x$ *y* <z>") == r"a\|b \$x\$ \*y\* \<z\>"
