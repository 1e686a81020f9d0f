r"""The report of ``altgrad check --report DIR``: ``report.json`` (the source of truth), ``report.md``, ``graph.dot``
and, with the optional ``plots`` extra (matplotlib), ``graph.png`` and one PNG per plotted series.

Everything a reader sees is rendered **from the JSON alone**: :func:`render_markdown` and :func:`render_dot` take
the decoded ``report.json`` document and never import a check module, so ``altgrad report DIR`` re-renders an old
run on a machine that no longer has the code that produced it.

Schema of ``report.json`` (``schema`` = :data:`SCHEMA_VERSION`)::

    schema      int       this file's schema version
    paper       str       "arXiv:2408.13233v2"
    git_sha     str|null  HEAD of the working tree that ran (null outside git); git_dirty: bool|null
    versions    dict      altgrad, numpy, sympy, mpmath, python (str each)
    profile     str       "quick" | "full"
    seed        int       the seed every check drew its random streams from (Context.rng(salt))
    created     str       UTC time of the run (ISO 8601)
    runner      dict      {"kind": "serial" | "processes" | "dask", "jobs": int, "scheduler": str|null}
    wall_s      float     wall time of the whole run
    coverage    dict      {"covered": [int], "missing": [int]}: SPEC §3 catalogue numbers 1..100 named by some check
    records     list      one dict per check: id, label, name (the one-line statement), kind, expected, spec,
                          uses, verdict, figure, data, seed, profile, wall_s, command

A record's ``data`` is free-form JSON. Two keys are rendered specially: ``counterexample`` (shown in the errata
section) and ``series`` = ``{name: {"x": [...], "y": [...], "xlabel": str, "ylabel": str, "logx": bool,
"logy": bool}}`` (rendered as a table, and as ``plots/<id>.png`` when matplotlib is installed).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA_VERSION = 2
PAPER = "arXiv:2408.13233v2"
CATALOGUE = range(1, 101)

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

# node colours of the dependency graph, by verdict
COLOURS = {
    "holds": "palegreen",
    "trend": "palegreen",
    "wrong as printed": "orange",
    "gap": "gold",
    "ambiguous": "lightblue",
    "CONTRADICTS": "red",
    "ERROR": "gray60",
}
NOT_RUN = "white"

REQUIRED_RECORD_KEYS = {
    "id": str, "label": str, "name": str, "kind": str, "expected": str, "spec": list, "uses": list,
    "verdict": str, "figure": str, "data": dict, "seed": int, "profile": str, "wall_s": (int, float), "command": str,
}  # fmt: skip
REQUIRED_DOC_KEYS = {
    "schema": int, "paper": str, "versions": dict, "profile": str, "seed": int, "records": list, "coverage": dict,
}  # fmt: skip


# -- building the document --------------------------------------------------------------------------------------


def jsonable(x: Any) -> Any:
    """Plain JSON values: numpy scalars and arrays, mpmath numbers, tuples, sets; non-finite floats as strings."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple | set | frozenset):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, bool | np.bool_):
        return bool(x)
    if isinstance(x, int | np.integer):
        return int(x)
    if isinstance(x, str) or x is None:
        return x
    try:
        f = float(x)  # float, numpy floats, mpmath.mpf
    except (TypeError, ValueError):
        return str(x)
    return f if math.isfinite(f) else str(f)


def _git_state() -> tuple[str | None, bool | None]:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None, None
        st = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10)
        return sha.stdout.strip(), bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None, None


def versions() -> dict[str, str]:
    """Versions of altgrad, numpy, sympy, mpmath and python."""
    from importlib import metadata

    import mpmath
    import sympy

    try:
        altgrad = metadata.version("altgrad")
    except metadata.PackageNotFoundError:
        altgrad = "not installed (source tree)"
    return {"altgrad": altgrad, "numpy": np.__version__, "sympy": sympy.__version__, "mpmath": mpmath.__version__,
            "python": platform.python_version()}  # fmt: skip


def coverage(spec_lists) -> dict[str, list[int]]:
    """Which SPEC §3 catalogue numbers (1..100) some check names in its ``spec``; the others are ``missing``."""
    covered = sorted({int(s) for spec in spec_lists for s in spec if int(s) in CATALOGUE})
    return {"covered": covered, "missing": [k for k in CATALOGUE if k not in set(covered)]}


def build_doc(records, *, profile: str, seed: int, wall_s: float, runner: dict | None = None,
              catalogue_specs=None, complete: bool = True) -> dict:  # fmt: skip
    """The ``report.json`` document for a list of :class:`proofs_check.registry.Record`.

    ``catalogue_specs``: the ``spec`` tuples of the whole registry (coverage is that of the registry, not of the
    selection); defaults to the records' own.
    """
    recs = [jsonable(asdict(r)) for r in records]
    sha, dirty = _git_state()
    specs = catalogue_specs if catalogue_specs is not None else [r["spec"] for r in recs]
    return {
        "schema": SCHEMA_VERSION,
        "paper": PAPER,
        "git_sha": sha,
        "git_dirty": dirty,
        "versions": versions(),
        "profile": profile,
        "seed": int(seed),
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "runner": runner or {"kind": "serial", "jobs": 1, "scheduler": None},
        "wall_s": round(float(wall_s), 3),
        "coverage": coverage(specs),
        "complete": bool(complete),
        "records": recs,
    }


def validate_doc(doc: dict) -> list[str]:
    """Schema problems of a decoded ``report.json`` (empty when it is well formed)."""
    errs = []
    for k, t in REQUIRED_DOC_KEYS.items():
        if not isinstance(doc.get(k), t):
            errs.append(f"document: {k!r} missing or not {t}")
    for i, r in enumerate(doc.get("records", []) if isinstance(doc.get("records"), list) else []):
        for k, t in REQUIRED_RECORD_KEYS.items():
            if not isinstance(r.get(k), t) or isinstance(r.get(k), bool) and t is not bool:
                errs.append(f"records[{i}] ({r.get('id', '?')}): {k!r} missing or not {t}")
    return errs


# -- rendering (from the JSON alone) -------------------------------------------------------------------------------


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


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows]
    return out


def _short_json(x: Any, width: int = 600) -> str:
    s = json.dumps(x, sort_keys=True, default=str)
    return s if len(s) <= width else s[: width - 1] + "…"


def _dot_id(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_dot(doc: dict) -> str:
    """The dependency graph (``uses`` edges, dependency -> user) as Graphviz DOT text, nodes coloured by verdict.

    A dependency that is not among the records (a partial run) is drawn dashed and white ("not run").
    """
    recs = doc["records"]
    ids = {r["id"] for r in recs}
    lines = ["digraph altgrad {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fontsize=10];']
    for r in recs:
        colour = COLOURS.get(r["verdict"], NOT_RUN)
        label = f"{r['label']}\\n{r['id']}\\n{r['verdict']}"
        lines.append(f"  {_dot_id(r['id'])} [label={_dot_id(label)}, fillcolor={colour}];")
    missing = sorted({u for r in recs for u in r["uses"] if u not in ids})
    for u in missing:
        lines.append(f'  {_dot_id(u)} [label={_dot_id(u + chr(92) + "nnot run")}, fillcolor={NOT_RUN}, '
                     'style="rounded,dashed"];')  # fmt: skip
    for r in recs:
        for u in r["uses"]:
            lines.append(f"  {_dot_id(u)} -> {_dot_id(r['id'])};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _series_tables(rec: dict) -> list[str]:
    out = []
    for name, s in (rec.get("data", {}).get("series") or {}).items():
        xs, ys = s.get("x", []), s.get("y", [])
        out.append(f"*{rec['id']}: {name}* ({s.get('xlabel', 'x')} → {s.get('ylabel', 'y')})")
        out.append("")
        out += _table([s.get("xlabel", "x"), s.get("ylabel", "y")], [[x, y] for x, y in zip(xs, ys, strict=False)])
        out.append("")
    return out


def render_markdown(doc: dict, *, pictures: dict[str, str] | None = None) -> str:
    """``report.md`` from the ``report.json`` document alone (never imports a check module).

    ``pictures``: relative paths of the PNGs that were written (``graph`` and record ids); the Markdown says when
    a picture is absent and that the report is complete without it.
    """
    pictures = pictures or {}
    recs = doc["records"]
    v = doc.get("versions", {})
    cov = doc.get("coverage", {"covered": [], "missing": []})
    bad = [r for r in recs if r["verdict"] in ("CONTRADICTS", "ERROR")]
    out = [f"# altgrad check report: {doc['paper']}", ""]
    out += [
        f"- profile **{doc['profile']}**, seed **{doc['seed']}**, {len(recs)} checks, "
        f"wall time {doc.get('wall_s', 0):.1f} s ({(doc.get('runner') or {}).get('kind', 'serial')} runner, "
        f"{(doc.get('runner') or {}).get('jobs', 1)} job(s))",
        f"- git {doc.get('git_sha') or 'unknown'}{' (uncommitted changes)' if doc.get('git_dirty') else ''}; "
        + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- created {doc.get('created', '?')}; schema {doc['schema']}; this file is rendered from `report.json` "
        "(the source of truth); `altgrad report DIR` re-renders it.",
        "",
        "## Summary",
        "",
    ]
    by_verdict: dict[str, int] = {}
    for r in recs:
        by_verdict[r["verdict"]] = by_verdict.get(r["verdict"], 0) + 1
    out += _table(["verdict", "checks"], sorted(by_verdict.items(), key=lambda kv: -kv[1]))
    out.append("")
    by_exp: dict[str, int] = {}
    for r in recs:
        by_exp[r["expected"]] = by_exp.get(r["expected"], 0) + 1
    out += _table(["expected status (SPEC §3)", "checks"], sorted(by_exp.items()))
    out += [
        "",
        f"**{len(recs) - len(bad)} of {len(recs)} checks agree with their expected status; {len(bad)} contradict "
        "it or failed to run.**",
        "",
        f"SPEC §3 catalogue coverage: {len(cov['covered'])} of 100 entries are named by a registered check"
        + (f"; not covered: {', '.join('#' + str(k) for k in cov['missing'])}." if cov["missing"] else "."),
        "",
    ]
    if bad:
        out += ["## Disagreements with SPEC and failures", ""]
        for r in bad:
            tb = r["data"].get("traceback", "").strip().splitlines()
            out.append(f"- **{r['label']}** (`{r['id']}`, expected {r['expected']}): {r['verdict']}: {r['figure']}"
                       + (f" — `{tb[-1]}`" if tb else ""))  # fmt: skip
        out.append("")
    # one section per SPEC appendix, in paper order
    groups: dict[str, list[dict]] = {}
    for r in recs:
        groups.setdefault(section_of(r), []).append(r)
    order = [t for t, _, _ in SECTIONS] + [OTHER]
    header = ["label", "statement", "kind", "expected", "verdict", "observed", "SPEC #", "seed", "s", "reproduce"]
    for title in order:
        if title not in groups:
            continue
        ordered = sorted(groups[title], key=lambda r: (min(r["spec"]) if r["spec"] else 999, r["id"]))
        rows = [[r["label"], r["name"], r["kind"], r["expected"], f"**{r['verdict']}**", r["figure"],
                 ",".join(str(s) for s in r["spec"]), r["seed"], f"{r['wall_s']:.2f}", f"`{r['command']}`"]
                for r in ordered]  # fmt: skip
        out += [f"## {title}", ""] + _table(header, rows) + [""]
        for r in groups[title]:
            out += _series_tables(r)
            if r["id"] in pictures:
                out += [f"![{r['id']}]({pictures[r['id']]})", ""]
    # printed vs corrected
    wrong = sorted((r for r in recs if r["expected"] == "WRONG-AS-PRINTED"),
                   key=lambda r: (min(r["spec"]) if r["spec"] else 999, r["id"]))  # fmt: skip
    out += ["## Printed vs corrected (errata)", ""]
    if not wrong:
        out += ["No WRONG-AS-PRINTED entry was run.", ""]
    for r in wrong:
        d = r["data"]
        cex = d.get("counterexample", {k: val for k, val in d.items() if k not in ("traceback", "series")})
        out += [
            f"### {r['label']}: {r['name']}",
            "",
            f"- verdict: **{r['verdict']}** (`{r['id']}`, SPEC #{', #'.join(str(s) for s in r['spec'])})",
            f"- observed: {r['figure']}",
            f"- counterexample: `{_short_json(cex)}`",
            f"- reproduce: `{r['command']}`",
            "",
        ]
    # dependency graph
    out += ["## Dependency graph", "", "Edges run from a dependency to the check that uses it; node colours: "
            + ", ".join(f"{k} = {c}" for k, c in COLOURS.items()) + f", not run = {NOT_RUN} (dashed).", ""]  # fmt: skip
    if "graph" in pictures:
        out += [f"![dependency graph]({pictures['graph']})", ""]
    else:
        out += ["*(graph.png was not drawn: matplotlib, the optional `plots` extra, is not installed. The report is "
                "complete without it: the DOT text below and in `graph.dot` carries the same graph.)*", ""]  # fmt: skip
    out += ["```dot", render_dot(doc).rstrip(), "```", ""]
    return "\n".join(out)


# -- pictures (optional) ---------------------------------------------------------------------------------------------


def _layers(recs: list[dict]) -> dict[str, int]:
    """Longest-path layer of each node (dependencies first); unknown dependencies sit in layer 0."""
    uses = {r["id"]: list(r["uses"]) for r in recs}
    memo: dict[str, int] = {}

    def depth(cid: str, seen: frozenset = frozenset()) -> int:
        if cid in memo:
            return memo[cid]
        if cid not in uses or cid in seen:
            return 0
        memo[cid] = 1 + max((depth(u, seen | {cid}) for u in uses[cid]), default=-1)
        return memo[cid]

    return {cid: depth(cid) for cid in uses}


def render_pictures(doc: dict, outdir: Path) -> dict[str, str]:
    """``graph.png`` and ``plots/<id>.png`` with matplotlib's Agg backend (byte-stable PNG metadata).

    Returns {key: relative path}; empty when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    meta = {"Software": None}
    pics: dict[str, str] = {}
    recs = doc["records"]
    layer = _layers(recs)
    known = set(layer)
    for u in sorted({u for r in recs for u in r["uses"] if u not in known}):
        layer[u] = 0  # a dependency that was not run: drawn white in the first column
    cols: dict[int, list[str]] = {}
    for cid in sorted(layer, key=lambda c: (layer[c], c)):
        cols.setdefault(layer[cid], []).append(cid)
    pos = {cid: (x, -y) for x, ids in cols.items() for y, cid in enumerate(ids)}
    height = max((len(v) for v in cols.values()), default=1)
    fig, ax = plt.subplots(figsize=(3 + 2.6 * len(cols), 1.5 + 0.32 * height))
    verdict = {r["id"]: r["verdict"] for r in recs}
    for r in recs:
        for u in r["uses"]:
            ax.annotate("", xy=pos[r["id"]], xytext=pos[u],
                        arrowprops={"arrowstyle": "-|>", "color": "0.55", "lw": 0.6, "shrinkA": 14, "shrinkB": 14,
                                    "mutation_scale": 7})  # fmt: skip
    mpl_colour = {"gray60": "0.6"}
    for cid, (x, y) in pos.items():
        c = COLOURS.get(verdict.get(cid, ""), NOT_RUN)
        ax.text(x, y, cid, fontsize=6, ha="center", va="center",
                bbox={"boxstyle": "round", "fc": mpl_colour.get(c, c), "ec": "0.3", "lw": 0.5,
                      "ls": "-" if cid in verdict else "--"})  # fmt: skip
    handles = [plt.Rectangle((0, 0), 1, 1, fc=mpl_colour.get(c, c), ec="0.3") for c in COLOURS.values()]
    ax.legend(handles, list(COLOURS), loc="upper left", bbox_to_anchor=(0, 1.0), fontsize=6, ncol=len(COLOURS),
              frameon=False)  # fmt: skip
    ax.set_xlim(-0.8, max(cols, default=0) + 0.8)
    ax.set_ylim(-height, 1.5)
    ax.axis("off")
    ax.set_title(f"altgrad dependency graph ({doc['profile']}, seed {doc['seed']})", fontsize=9)
    fig.savefig(outdir / "graph.png", dpi=110, bbox_inches="tight", metadata=meta)
    plt.close(fig)
    pics["graph"] = "graph.png"
    for r in recs:
        series = (r.get("data") or {}).get("series") or {}
        if not series:
            continue
        (outdir / "plots").mkdir(exist_ok=True)
        fig, ax = plt.subplots(figsize=(5, 3.4))
        for name, s in series.items():
            try:
                xs, ys = [float(x) for x in s["x"]], [float(y) for y in s["y"]]
            except (KeyError, TypeError, ValueError):
                continue
            ax.plot(xs, ys, marker="o", ms=3, label=name)
            ax.set_xlabel(s.get("xlabel", "x"))
            ax.set_ylabel(s.get("ylabel", "y"))
            if s.get("logx"):
                ax.set_xscale("log")
            if s.get("logy"):
                ax.set_yscale("log")
        ax.legend(fontsize=7)
        ax.set_title(f"{r['label']} ({r['id']})", fontsize=8)
        rel = f"plots/{r['id']}.png"
        fig.savefig(outdir / rel, dpi=110, bbox_inches="tight", metadata=meta)
        plt.close(fig)
        pics[r["id"]] = rel
    return pics


# -- files -----------------------------------------------------------------------------------------------------------


def render_dir(outdir: str | os.PathLike) -> Path:
    """(Re-)render ``report.md``, ``graph.dot`` and the pictures of ``outdir`` from its ``report.json``."""
    outdir = Path(outdir)
    doc = json.loads((outdir / "report.json").read_text(encoding="utf-8"))
    problems = validate_doc(doc)
    if problems:
        raise ValueError(f"{outdir / 'report.json'}: not a report.json of schema {SCHEMA_VERSION}: {problems[:5]}")
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
