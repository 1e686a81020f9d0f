"""The report: report.json schema, Markdown and DOT rendered from the JSON alone, the parallel runner, coverage."""

import json
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import mpmath
import numpy as np
import pytest

from proofs_check import registry as reg
from proofs_check import report as rep
from proofs_check.cli import main

SMALL = ["ref.def1.1.softmax", "cat.C2.hadamard_lowrank", "cat.D5.B8", "cat.C13.lowrank_f"]


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["check", "--only", *SMALL, "--report", str(out), "--seed", "3"]) == 0
    return out


def _minimal_doc():
    """A hand-made report.json document: three records, one of them wrong as printed, one contradicting."""

    def rec(id, label, kind, expected, verdict, spec, uses=(), data=None, **result):
        return {"id": id, "label": label, "name": f"statement of {label}", "kind": kind, "expected": expected,
                "spec": list(spec), "uses": list(uses), "verdict": verdict, "figure": f"figure of {id}",
                "data": data or {}, "seed": 5, "profile": "quick", "wall_s": 0.25,
                "command": f"altgrad check --quick --seed 5 --only {id}", "observed": None, "bound": None,
                "ratio": None, "precision": None, "counterexample": None, "inherits": [], "illustration": False,
                "mutants": [], "mutants_killed": [], "mutants_survived": {}, "verified": False, **result}  # fmt: skip

    return {
        "schema": rep.SCHEMA_VERSION, "paper": rep.PAPER, "git_sha": None, "git_dirty": None,
        "versions": {"altgrad": "0", "numpy": "1", "sympy": "1", "mpmath": "1", "python": "3.11"},
        "profile": "quick", "seed": 5, "created": "2026-01-01T00:00:00Z",
        "runner": {"kind": "serial", "jobs": 1, "scheduler": None}, "wall_s": 1.5,
        "coverage": rep.coverage([[24], [78]]), "complete": True,
        "records": [
            rec("x.fact", "Fact C.2", "ID", "holds", "holds", [24], mutants=["transposed"],
                mutants_killed=["transposed"], verified=True, precision="float64"),
            rec("x.g3", "Lemma G.3", "ID", "wrong as printed", "wrong as printed", [78], ["x.fact"],
                counterexample={"seed": 5, "shapes": {"n": 7, "d": 3}, "printed": 0.57}, inherits=[43],
                mutants=["printed", "dropped beta"], mutants_killed=["printed"],
                mutants_survived={"dropped beta": "figure of the survivor"}),
            rec("x.w", "Weak point W6", "ASYM", "gap", "CONTRADICTS", [], ["x.g3", "elsewhere.id"],
                {"series": {"err": {"x": [1, 2, 4], "y": [1e-9, 1e-8, 1e-6], "xlabel": "m", "ylabel": "error"}}},
                illustration=True),
            rec("x.ineq", "Lemma E.11", "INEQ", "holds", "holds", [70], observed=2e-9, bound=1e-6, ratio=2e-3),
            rec("x.slack", "Lemma C.13", "INEQ", "holds", "holds", [35], (),
                {"slack": {"eps_hat <= bound": 0.94, "delta_f <= 2eps": 0.22}}),
        ],
    }  # fmt: skip


def test_report_json_has_the_schema_and_one_typed_record_per_check(report_dir):
    doc = json.loads((report_dir / "report.json").read_text())
    assert rep.validate_doc(doc) == []
    assert doc["schema"] == rep.SCHEMA_VERSION and doc["paper"] == "arXiv:2408.13233v2"
    assert set(doc["versions"]) == {"altgrad", "numpy", "sympy", "mpmath", "python"}
    assert doc["profile"] == "quick" and doc["seed"] == 3 and doc["runner"]["kind"] == "serial"
    assert doc["git_sha"] is None or re.fullmatch(r"[0-9a-f]{40}", doc["git_sha"])
    assert [r["id"] for r in doc["records"]] == [c for c in reg.load_all() if c in SMALL]  # registry order
    for r in doc["records"]:
        assert r["seed"] == 3 and r["id"] in r["command"] and "--seed 3" in r["command"]
        assert r["wall_s"] >= 0 and r["verdict"] in ("holds", "wrong as printed", "gap")
    cov = doc["coverage"]
    assert sorted(cov["covered"] + cov["missing"]) == list(range(1, 101))
    assert 24 in cov["covered"]  # coverage is that of the whole registry, not of the selection
    assert 30 in cov["covered"]


def test_report_md_and_graph_are_written_next_to_the_json(report_dir):
    md = (report_dir / "report.md").read_text()
    assert "## Appendix C: preliminaries on gradient calculation" in md and "## Appendix D: matrix view" in md
    assert "Lemma D.5" in md and "## Printed vs corrected (errata)" in md
    assert "altgrad check --quick --seed 3 --only cat.D5.B8" in md
    dot = (report_dir / "graph.dot").read_text()
    assert dot.startswith("digraph altgrad {") and dot.rstrip().endswith("}")


def test_markdown_is_rendered_from_a_hand_made_json_document_alone():
    doc = _minimal_doc()
    assert rep.validate_doc(doc) == []
    md = rep.render_markdown(doc)
    assert "**4 of 5 checks agree with their expected status; 1 contradict" in md
    assert "## Main text" not in md and "## Appendix C: preliminaries on gradient calculation" in md
    assert "## Appendix G: fast computation of the gradient on W_V" in md
    assert rep.OTHER in md  # the weak-point record has no catalogue number
    errata = md.split("## Printed vs corrected (errata)")[1].split("## Dependency graph")[0]
    assert "Lemma G.3" in errata and '"printed": 0.57' in errata and "Fact C.2" not in errata
    assert "## Disagreements with SPEC and failures" in md and "Weak point W6" in md
    assert "not covered: #1, #2" in md
    assert 'pip install "altgrad[plots]"' in md and "complete without them" in md  # no pictures given
    assert "| 4 | 1e-06 |" in md  # a series is rendered as a table too


def test_the_report_shows_mutants_inherited_errors_precision_and_the_verified_count():
    md = rep.render_markdown(_minimal_doc())
    row: dict[str, str] = {}
    for ln in md.split("## Looseness")[0].splitlines():  # the appendix tables, one row per record
        if ln.startswith("| "):
            row.setdefault(ln.split(" | ")[0].lstrip("| "), ln)
    assert "1/1 killed (transposed)" in row["Fact C.2"] and "float64" in row["Fact C.2"]
    assert "1/2 killed (printed); survived: dropped beta" in row["Lemma G.3"] and "#43" in row["Lemma G.3"]
    assert "illustration" in row["Weak point W6"] and "none yet" in row["Lemma E.11"]
    assert "Counted as verified (agrees, is no illustration, declares mutants and kills every one): **1**" in md
    assert "illustrations (shown, never counted): 1" in md and "checks without mutants yet: 2" in md


def test_the_looseness_table_lists_every_inequality_tightest_first():
    md = rep.render_markdown(_minimal_doc())
    table = md.split("## Looseness of the inequalities")[1].split("## Printed vs corrected")[0]
    ratios = [float(ln.split(" | ")[5]) for ln in table.splitlines() if ln.startswith("| Lemma")]
    assert ratios == [0.94, 0.22, 0.002]  # two slack entries of C.13, then observed/bound of E.11
    assert "| Lemma E.11 | `x.ineq` | statement of Lemma E.11 | 2e-09 | 1e-06 | 0.002 | holds |" in table


def test_a_schema_2_document_is_upgraded_to_the_one_vocabulary(tmp_path):
    old = _minimal_doc()
    old["schema"] = 2
    del old["complete"]
    codes = {"holds": "OK", "wrong as printed": "WRONG-AS-PRINTED", "gap": "GAP"}
    for r in old["records"]:
        r["expected"] = codes[r["expected"]]
        for k in ("observed", "bound", "ratio", "precision", "counterexample", "inherits", "illustration", "mutants",
                  "mutants_killed", "mutants_survived", "verified"):  # fmt: skip
            del r[k]
    assert rep.validate_doc(old) != []
    new = rep.upgrade_doc(old)
    assert rep.validate_doc(new) == [] and new["schema"] == rep.SCHEMA_VERSION
    assert [r["expected"] for r in new["records"]] == ["holds", "wrong as printed", "gap", "holds", "holds"]
    (tmp_path / "report.json").write_text(json.dumps(old))
    assert main(["report", str(tmp_path)]) == 0


def test_expected_and_verdict_share_one_vocabulary_in_a_real_run(report_dir):
    doc = json.loads((report_dir / "report.json").read_text())
    assert rep.VERDICTS == ("holds", "trend", "wrong as printed", "gap", "ambiguous", "CONTRADICTS", "ERROR")
    for r in doc["records"]:
        assert r["expected"] in rep.AGREE and r["verdict"] == r["expected"]
        assert isinstance(r["verified"], bool) and isinstance(r["mutants_survived"], dict)
    md = (report_dir / "report.md").read_text()
    assert "WRONG-AS-PRINTED" not in md.split("## Summary")[1].split("Verdict and expected status use")[0]


def test_markdown_rendering_never_imports_a_check_module(tmp_path):
    (tmp_path / "report.json").write_text(json.dumps(_minimal_doc()))
    code = (
        "import sys; sys.modules['proofs_check.checks'] = None; sys.modules['reference'] = None\n"
        "from proofs_check import report\n"
        f"report.render_dir({str(tmp_path)!r})\n"
        "assert not any(m.startswith('proofs_check.checks') or m.startswith('reference') for m in sys.modules\n"
        "               if sys.modules[m] is not None)\n"
    )
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=120)
    assert "Lemma G.3" in (tmp_path / "report.md").read_text()


def test_dot_graph_names_every_id_once_and_every_edge():
    doc = _minimal_doc()
    dot = rep.render_dot(doc)
    assert dot.startswith("digraph altgrad {\n") and dot.endswith("}\n") and dot.count("{") == dot.count("}")
    for r in doc["records"]:
        assert len(re.findall(rf'^  "{re.escape(r["id"])}" \[label=', dot, flags=re.M)) == 1
    edges = re.findall(r'^  "([^"]+)" -> "([^"]+)";$', dot, flags=re.M)
    assert sorted(edges) == sorted((u, r["id"]) for r in doc["records"] for u in r["uses"])
    assert f'fillcolor="{rep.COLOURS["CONTRADICTS"]}"' in dot and f'fillcolor="{rep.COLOURS["holds"]}"' in dot
    assert '"elsewhere.id" [label=' in dot and "dashed" in dot  # a dependency that was not run


def test_report_command_rerenders_the_markdown_identically(report_dir, capsys):
    before = (report_dir / "report.md").read_text()
    (report_dir / "report.md").unlink()
    assert main(["report", str(report_dir)]) == 0
    assert (report_dir / "report.md").read_text() == before


def test_report_command_refuses_a_file_that_is_not_a_report(tmp_path, capsys):
    (tmp_path / "report.json").write_text(json.dumps({"schema": 1}))
    assert main(["report", str(tmp_path)]) == 2
    assert "not a report.json" in capsys.readouterr().err


def test_two_processes_give_the_same_records_as_a_serial_run():
    registry = reg.load_all()
    chosen = [registry[c] for c in SMALL]
    ctx = reg.Context(quick=True, seed=11)
    serial = reg.run_many(chosen, ctx, progress=None)
    finished = []
    parallel = reg.run_many(chosen, ctx, jobs=2, progress=None, on_record=finished.append)
    assert sorted(r.id for r in finished) == sorted(SMALL)  # once per record, in the order they finish

    def strip(r):
        d = asdict(r)
        d.pop("wall_s")
        d["data"].pop("build_time", None)  # timings only in the full profile
        return json.dumps(rep.jsonable(d), sort_keys=True)

    assert [r.id for r in parallel] == SMALL
    assert [strip(r) for r in parallel] == [strip(r) for r in serial]


def test_jobs_flag_writes_the_same_report_records(tmp_path, capsys):
    assert main(["check", "--only", "cat.C2.hadamard_lowrank", "cat.F1.kronecker", "--jobs", "2",
                 "--json", str(tmp_path / "r.json")]) == 0  # fmt: skip
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["runner"] == {"kind": "processes", "jobs": 2, "scheduler": None}
    assert [r["id"] for r in doc["records"]] == ["cat.C2.hadamard_lowrank", "cat.F1.kronecker"]
    assert "[2/2]" not in capsys.readouterr().err  # no progress line when stderr is no terminal


def test_scheduler_without_dask_installed_is_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main(["check", "--only", "cat.C2.hadamard_lowrank", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "altgrad[dask]" in capsys.readouterr().err


def test_list_shows_the_catalogue_coverage(capsys):
    assert main(["check", "--list"]) == 0
    out = capsys.readouterr().out
    assert "SPEC §3 catalogue coverage (whole registry):" in out and "cat.D3.B6" in out


def test_jsonable_turns_numpy_and_mpmath_values_into_plain_json():
    x = {"a": np.float64(1.5), "b": np.arange(3), "c": mpmath.mpf("0.25"), "d": (1, np.int64(2)), "e": float("nan"),
         "f": np.bool_(True), "g": None}  # fmt: skip
    assert rep.jsonable(x) == {"a": 1.5, "b": [0, 1, 2], "c": 0.25, "d": [1, 2], "e": "nan", "f": True, "g": None}
    json.dumps(rep.jsonable(x), allow_nan=False)


def test_pictures_are_drawn_when_matplotlib_is_installed(tmp_path):
    pytest.importorskip("matplotlib")
    md = rep.write_report(_minimal_doc(), tmp_path)
    assert (tmp_path / "graph.png").stat().st_size > 0 and (tmp_path / "plots" / "x.w.png").exists()
    assert "![dependency graph](graph.png)" in md.read_text()


def test_every_spec_catalogue_entry_is_named_by_some_registered_check():
    covered, missing = reg.catalogue_coverage(reg.load_all())
    assert not missing, f"SPEC §3 entries without a check: {missing}"


def test_a_dask_cluster_gives_the_same_records_as_a_serial_run(tmp_path):
    distributed = pytest.importorskip("distributed")
    registry = reg.load_all()
    chosen = [registry[c] for c in SMALL[:3]]
    ctx = reg.Context(quick=True, seed=2)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cl:
        remote = reg.run_many(chosen, ctx, scheduler=cl.scheduler_address, progress=None)
    serial = reg.run_many(chosen, ctx, progress=None)
    assert [r.id for r in remote] == [c.id for c in chosen]
    assert [(r.verdict, r.figure) for r in remote] == [(r.verdict, r.figure) for r in serial]
