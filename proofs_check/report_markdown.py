r"""``report.md``, rendered from the decoded ``report.json`` document alone (it never imports a check module).

Sections: the run, the summary (verdicts, expected statuses, how many checks count as verified), disagreements,
one table per SPEC §3 appendix in paper order (with mutants killed / survived, inherited errors and the precision
that decided), the looseness table of the [INEQ] statements, printed vs corrected (errata), the dependency graph.
"""

from __future__ import annotations

import json
import math
from typing import Any

from proofs_check.report_doc import AGREE, VERDICTS, agrees
from proofs_check.report_graph import COLOURS, NOT_RUN, render_dot

# SPEC §3 sections by catalogue number (inclusive ranges), in paper order
SECTIONS = (
    ("Main text", 1, 22),
    ("Appendix C: preliminaries on gradient calculation", 23, 42),
    ("Appendix D: matrix view", 43, 59),
    ("Appendix E: fast computation of the gradient on T_{i-1}", 60, 70),
    ("Appendix F: fast computation of the gradient on W", 71, 75),
    ("Appendix G: fast computation of the gradient on W_V", 76, 79),
    ("Appendix H: gradient approximation for the whole model", 80, 83),
    ("Appendix I: causal attention mask", 84, 92),
    ("Appendix J: residual connection", 93, 97),
    ("Appendix K: multi-head attention", 98, 100),
)
OTHER = "Experiments, weak points and other checks (SPEC §4)"
PLOTS_HINT = 'pip install "altgrad[plots]"'


def section_of(rec: dict) -> str:
    """The SPEC §3 section of a record: by its smallest catalogue number, else by the letter of its label."""
    if rec.get("spec"):
        k = min(rec["spec"])
        for title, lo, hi in SECTIONS:
            if lo <= k <= hi:
                return title
    label = rec.get("label", "")
    for title, _, _ in SECTIONS[1:]:
        letter = title.split(":")[0].split()[-1]
        if f" {letter}." in f" {label}" or label.startswith(f"Claim §{letter}."):
            return title
    return OTHER


def _cell(x: Any, width: int = 160) -> str:
    s = str(x).replace("\n", " ").replace("|", "\\|")
    return s if len(s) <= width else s[: width - 1] + "…"


def _table(header: list[str], rows: list[list[Any]], width: int = 160) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c, width) for c in r) + " |" for r in rows]
    return out


def _short_json(x: Any, width: int = 600) -> str:
    s = json.dumps(x, sort_keys=True, default=str)
    return s if len(s) <= width else s[: width - 1] + "…"


def _num(x: Any) -> str:
    if isinstance(x, bool) or x is None:
        return "" if x is None else str(x)
    if isinstance(x, int | float):
        return f"{x:.3g}"
    return str(x)


def series_tables(rec: dict) -> list[str]:
    """Each ``data.series`` of a record as a Markdown table (the report is complete without pictures)."""
    out = []
    for name, s in (rec.get("data", {}).get("series") or {}).items():
        xs, ys = s.get("x", []), s.get("y", [])
        out.append(f"*{rec['id']}: {name}* ({s.get('xlabel', 'x')} → {s.get('ylabel', 'y')})")
        out.append("")
        out += _table([s.get("xlabel", "x"), s.get("ylabel", "y")], [[x, y] for x, y in zip(xs, ys, strict=False)])
        out.append("")
    return out


def mutant_cell(r: dict) -> str:
    """``killed/declared``, the names killed and those that survived; ``illustration`` or ``none yet``."""
    if r.get("illustration"):
        return "illustration"
    declared = r.get("mutants") or []
    if not declared:
        return "none yet"
    killed = list(r.get("mutants_killed") or [])
    survived = sorted(r.get("mutants_survived") or {})
    return (f"{len(killed)}/{len(declared)} killed" + (f" ({', '.join(killed)})" if killed else "")
            + (f"; survived: {', '.join(survived)}" if survived else ""))  # fmt: skip


def counts(recs: list[dict]) -> dict[str, int]:
    """verified / illustrations / without mutants yet / with a surviving mutant."""
    return {
        "verified": sum(bool(r.get("verified")) for r in recs),
        "illustrations": sum(bool(r.get("illustration")) for r in recs),
        "without mutants": sum(not r.get("illustration") and not r.get("mutants") for r in recs),
        "with a surviving mutant": sum(bool(r.get("mutants_survived")) for r in recs),
    }


def looseness_rows(recs: list[dict]) -> list[tuple[float, list[str]]]:
    """(ratio, row) per inequality of every [INEQ] record: observed/bound from the result schema, else each entry
    of ``data["slack"]`` (a ratio observed/bound per named inequality)."""
    rows = []
    for r in recs:
        if r.get("kind") != "INEQ":
            continue
        ratio = r.get("ratio")
        if isinstance(ratio, int | float) and not isinstance(ratio, bool) and math.isfinite(ratio):
            rows.append((float(ratio), [r["label"], f"`{r['id']}`", r.get("name", ""), _num(r.get("observed")),
                                        _num(r.get("bound")), f"{ratio:.3g}", r["verdict"]]))  # fmt: skip
            continue
        slack = (r.get("data") or {}).get("slack")
        if isinstance(slack, dict):
            for name, v in slack.items():
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                    rows.append((float(v), [r["label"], f"`{r['id']}`", name, "", "", f"{v:.3g}", r["verdict"]]))
    return sorted(rows, key=lambda t: -t[0])


def _summary(doc: dict, recs: list[dict]) -> list[str]:
    cov = doc.get("coverage", {"covered": [], "missing": []})
    bad = [r for r in recs if not agrees(r)]
    by_verdict = {v: sum(r["verdict"] == v for r in recs) for v in VERDICTS}
    by_expected = {v: sum(r["expected"] == v for r in recs) for v in AGREE}
    c = counts(recs)
    out = ["## Summary", ""]
    out += _table(["verdict", "checks with this verdict", "checks expected to show it"],
                  [[v, by_verdict[v], by_expected.get(v, "")] for v in VERDICTS])  # fmt: skip
    out += [
        "",
        "Verdict and expected status use one vocabulary: `expected` is the verdict a check shows when it agrees with "
        "its SPEC §3 status (OK → holds, or trend for an [ASYM] statement; WRONG-AS-PRINTED → wrong as printed; "
        "GAP → gap; AMBIG → ambiguous).",
        "",
        f"**{len(recs) - len(bad)} of {len(recs)} checks agree with their expected status; {len(bad)} contradict "
        "it or failed to run.**",
        "",
        f"Counted as verified (agrees, is no illustration, declares mutants and kills every one): **{c['verified']}**; "
        f"illustrations (shown, never counted): {c['illustrations']}; checks without mutants yet: "
        f"{c['without mutants']}; checks with a surviving mutant: {c['with a surviving mutant']}.",
        "",
        f"SPEC §3 catalogue coverage: {len(cov['covered'])} of 100 entries are named by a registered check"
        + (f"; not covered: {', '.join('#' + str(k) for k in cov['missing'])}." if cov["missing"] else "."),
        "",
    ]
    if doc.get("complete") is False:
        out += ["**This run was interrupted: the records are those that finished.**", ""]
    if bad:
        out += ["## Disagreements with SPEC and failures", ""]
        for r in bad:
            tb = r["data"].get("traceback", "").strip().splitlines()
            out.append(f"- **{r['label']}** (`{r['id']}`, expected {r['expected']}): {r['verdict']}: {r['figure']}"
                       + (f" — `{tb[-1]}`" if tb else ""))  # fmt: skip
        out.append("")
    return out


def _sections(recs: list[dict], pictures: dict[str, str]) -> list[str]:
    groups: dict[str, list[dict]] = {}
    for r in recs:
        groups.setdefault(section_of(r), []).append(r)
    header = ["label", "statement", "kind", "expected", "verdict", "observed", "mutants", "inherits", "precision",
              "SPEC #", "seed", "s", "reproduce"]  # fmt: skip
    out = []
    for title in [t for t, _, _ in SECTIONS] + [OTHER]:
        if title not in groups:
            continue
        ordered = sorted(groups[title], key=lambda r: (min(r["spec"]) if r["spec"] else 999, r["id"]))
        rows = [[r["label"], r["name"], r["kind"], r["expected"], f"**{r['verdict']}**", r["figure"], mutant_cell(r),
                 ",".join(f"#{k}" for k in r.get("inherits") or []), r.get("precision") or "",
                 ",".join(str(s) for s in r["spec"]), r["seed"], f"{r['wall_s']:.2f}", f"`{r['command']}`"]
                for r in ordered]  # fmt: skip
        out += [f"## {title}", ""] + _table(header, rows, width=100_000) + [""]
        for r in groups[title]:
            out += series_tables(r)
            if r["id"] in pictures:
                out += [f"![{r['id']}]({pictures[r['id']]})", ""]
    return out


def _errata(recs: list[dict]) -> list[str]:
    wrong = sorted((r for r in recs if r["expected"] == "wrong as printed"),
                   key=lambda r: (min(r["spec"]) if r["spec"] else 999, r["id"]))  # fmt: skip
    out = ["## Printed vs corrected (errata)", ""]
    if not wrong:
        out += ["No entry expected wrong as printed was run.", ""]
    for r in wrong:
        d = r["data"]
        cex = (
            r.get("counterexample")
            or d.get("counterexample")
            or {k: val for k, val in d.items() if k not in ("traceback", "series")}
        )
        out += [
            f"### {r['label']}: {r['name']}",
            "",
            f"- verdict: **{r['verdict']}** (`{r['id']}`, SPEC #{', #'.join(str(s) for s in r['spec'])})",
            f"- observed: {r['figure']}",
            f"- counterexample: `{_short_json(cex)}`",
            f"- reproduce: `{r['command']}`",
            "",
        ]
    return out


def render_markdown(doc: dict, *, pictures: dict[str, str] | None = None) -> str:
    """``report.md`` from the ``report.json`` document alone (never imports a check module).

    ``pictures``: relative paths of the pictures that were written (``graph``, ``graph_svg`` and record ids); the
    Markdown says when a picture is absent, how to get it, and that the report is complete without it.
    """
    pictures = pictures or {}
    recs = doc["records"]
    v = doc.get("versions", {})
    runner = doc.get("runner") or {}
    out = [f"# altgrad check report: {doc['paper']}", ""]
    out += [
        f"- profile **{doc['profile']}**, seed **{doc['seed']}**, {len(recs)} checks, wall time "
        f"{doc.get('wall_s', 0):.1f} s ({runner.get('kind', 'serial')} runner, {runner.get('jobs', 1)} job(s))",
        f"- git {doc.get('git_sha') or 'unknown'}{' (uncommitted changes)' if doc.get('git_dirty') else ''}; "
        + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- created {doc.get('created', '?')}; schema {doc['schema']}; this file is rendered from `report.json` "
        "(the source of truth); `altgrad report DIR` re-renders it.",
        "",
    ]
    out += _summary(doc, recs)
    out += _sections(recs, pictures)
    loose = looseness_rows(recs)
    out += ["## Looseness of the inequalities", "",
            "Observed / bound per [INEQ] statement (the record's `ratio`, or each named inequality of its "
            "`data.slack`), tightest first: near 1 the bound is tight, far below 1 it is loose; above 1 it fails.",
            ""]  # fmt: skip
    if loose:
        out += _table(["label", "id", "inequality", "observed", "bound", "observed / bound", "verdict"],
                      [row for _, row in loose]) + [""]  # fmt: skip
    else:
        out += ["No [INEQ] record in this report carries a bound or a slack.", ""]
    out += _errata(recs)
    legend = ", ".join(f"{k} = `{c}`" for k, c in COLOURS.items()) + f", not run = `{NOT_RUN}` (dashed)"
    out += ["## Dependency graph", "", f"Edges run from a dependency to the check that uses it; colours: {legend}.", ""]
    if "graph" in pictures:
        out += [f"![dependency graph]({pictures['graph']})", ""]
        if "graph_svg" in pictures:
            svg = pictures["graph_svg"]
            out += [f"The same graph as a vector picture (zoomable): [{svg}]({svg}).", ""]
    else:
        out += [f"*(graph.png, graph.svg and the plots were not drawn: they need matplotlib, the optional `plots` "
                f"extra: `{PLOTS_HINT}`. The report is complete without them: the DOT text below and in `graph.dot` "
                "carries the same graph, and every series is a table above.)*", ""]  # fmt: skip
    out += ["```dot", render_dot(doc).rstrip(), "```", ""]
    return "\n".join(out)
