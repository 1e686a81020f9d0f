r"""Generate the data-driven parts of the site from the registry and a report.json (STYLE.md §0 item 10).

Everything written here goes to ``docs/_generated/`` (git-ignored) and is rebuilt on every build:

* ``fragments/catalogue.md``: every registry entry, with an anchor named by its id, and its verdict from the report;
* ``fragments/errata.md``: each printed formula that fails, the counterexample, the corrected form, the check;
* ``fragments/results.md`` and ``img/*.png``: error and time against n, error against depth, the crossover table,
  from the report's records, benchmark JSON lines (``benchmarks/RESULTS-*.jsonl``, ``--bench``) and
  ``benchmarks/RESULTS-*.md``; a figure that does not exist yet is said to be "not yet measured", with the command
  that would measure it, never invented;
* ``fragments/terms/<slug>.md``: for each gradient term, the generated derivation(s) from ``docs/derivations/``
  (written by :mod:`symbolic`) and links to the checks that prove the term;
* ``derivations/<name>.md`` (pages) and ``fragments/derivations-more.md`` (their toctree): the derivations that
  belong to no term page (causal, heads, residual, ...), each with the checks that prove it under its title;
* ``api/<package>.md``: one autodoc page per package, one section per module.

Nothing here computes a result: numbers come from report.json records and benchmark files only.
"""

from __future__ import annotations

import json
import os
import pkgutil
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proofs_check.registry import CheckInfo

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GEN = DOCS / "_generated"
FRAG = GEN / "fragments"
# written by symbolic/ (``python -m symbolic render``); ALTGRAD_DOCS_DERIVATIONS points elsewhere (a trial render)
DERIVATIONS = Path(os.environ.get("ALTGRAD_DOCS_DERIVATIONS", DOCS / "derivations"))
BENCHMARKS = ROOT / "benchmarks"
API_PACKAGES = ("reference", "fastpath", "symbolic", "proofs_check")

# --- Markdown helpers ---------------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#+|$~^!])")


def esc(text: Any) -> str:
    """Plain text, safe inside Markdown (tables included): every Markdown/MyST-special character escaped."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def anchor_label(check_id: str) -> str:
    """The MyST label of a catalogue entry: ``check-<id>``; the page also carries a raw ``id="<id>"``."""
    return f"check-{check_id}"


def check_link(check_id: str, text: str | None = None) -> str:
    """A cross-reference to a catalogue entry; role text is literal, so only the role's own syntax is removed."""
    title = re.sub(r"[`<>]", "", text or check_id)
    return f"{{ref}}`{title} <{anchor_label(check_id)}>`"


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _json_block(data: Any, width: int = 400) -> str:
    """A record's data, one key a line (compact JSON values, each cut at ``width`` characters)."""
    lines = []
    for key, value in data.items() if isinstance(data, dict) else [("data", data)]:
        if key == "series":  # plotted and tabulated on the Results page
            lines.append(f"series: {', '.join(map(str, value))} (on the Results page)")
            continue
        text = json.dumps(value, default=str, ensure_ascii=False)
        if len(text) > width:
            text = text[:width] + f" ... ({len(text)} characters; the whole value is in report.json)"
        lines.append(f"{key}: {text}")
    return "```text\n" + "\n".join(lines).replace("```", "'''") + "\n```"


# --- the registry joined with a report ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry(CheckInfo):
    """One registry entry (the fields of :class:`proofs_check.registry.CheckInfo`) and, when the report has it, its
    record."""

    module: str
    record: dict[str, Any] | None

    @property
    def verdict(self) -> str:
        return self.record["verdict"] if self.record else "not run in this report"

    @property
    def expected_word(self) -> str:
        """The expected status in the verdict vocabulary (holds, trend, wrong as printed, gap, ambiguous)."""
        from proofs_check.report_doc import expected_word

        return expected_word(self.kind, self.expected)


def entries(report: dict[str, Any]) -> list[Entry]:
    """Every registered check, in registry order, with its record from ``report`` (or none)."""
    from proofs_check import registry as reg

    records = {r["id"]: r for r in report.get("records", [])}
    out = [
        Entry(
            c.id, c.label, c.name, c.kind, c.expected, tuple(c.spec), tuple(c.uses), c.module, records.pop(c.id, None)
        )
        for c in reg.load_all().values()
    ]
    # a record whose id is no longer registered (an old report.json) is still shown, never dropped silently
    for r in records.values():
        out.append(
            Entry(r["id"], r["label"], r["name"], r["kind"], r["expected"], tuple(r.get("spec", ())),
                  tuple(r.get("uses", ())), "(not in the registry any more)", r)
        )  # fmt: skip
    return out


def _label_matches(entry: Entry, patterns: tuple[str, ...]) -> bool:
    return any(re.search(p, entry.label) or re.search(p, entry.id) for p in patterns)


# --- catalogue ----------------------------------------------------------------------------------------------------


def catalogue(ents: list[Entry], report: dict[str, Any]) -> str:
    known = {e.id for e in ents}
    counts = Counter(e.verdict for e in ents)
    lines = [
        f"The registry holds **{len(ents)}** statements; this report ({esc(report.get('paper', '?'))}, profile "
        f"`{report.get('profile', '?')}`, seed {report.get('seed', '?')}) has a record for "
        f"**{sum(e.record is not None for e in ents)}** of them.",
        "",
        "| verdict | statements |",
        "|---|---|",
        *(f"| {esc(v)} | {n} |" for v, n in sorted(counts.items())),
        "",
        "## All statements",
        "",
        "| paper label | statement | kind | expected | verdict |",
        "|---|---|---|---|---|",
    ]
    for e in ents:
        lines.append(
            f"| {check_link(e.id, e.label)} | {esc(e.name)} | {e.kind} | {e.expected_word} | {esc(e.verdict)} |"
        )
    lines += ["", "## Entries", ""]
    for e in ents:
        rec = e.record or {}
        uses = ", ".join(check_link(u) if u in known else f"`{u}`" for u in e.uses) or "none"
        spec = ", ".join(f"#{s}" for s in e.spec) or "none"
        lines += [
            f"({anchor_label(e.id)})=",
            f"### {esc(e.label)}: {esc(e.name)}",
            "",
            f'<span id="{e.id}"></span>',
            "",
            f"- id `{e.id}` · kind {e.kind} · expected **{e.expected_word}** · verdict **{esc(e.verdict)}**",
            f"- observed: {esc(rec.get('figure', 'no record in this report'))}",
            f"- SPEC §3 entries: {spec} · uses: {uses}",
            f"- reproduce: `{rec.get('command', f'altgrad check --only {e.id}')}`"
            + (f" ({rec['wall_s']:.2f} s, seed {rec['seed']}, profile {rec['profile']})" if rec else ""),
            f"- check function in `{e.module}`",
            "",
        ]
        if rec.get("data"):
            lines += [_json_block(rec["data"]), ""]
    return "\n".join(lines)


# --- errata -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erratum:
    title: str
    rows: tuple[tuple[str, str, str], ...]  # (what, as printed, corrected), LaTeX
    why: str  # Markdown
    checks: tuple[str, ...]  # regexes on the check label or id


ERRATA = (
    Erratum(
        "Lemma D.17: the five terms of the gradient on the layer input",
        (
            (r"D_8", r"f\, G\, W_V^{\top}", r"f^{\top} G\, W_V^{\top}"),
            (r"D_4", r"z_4 X W,\ z_4 = f \odot (G h^{\top})", r"\beta\, p_1 X W^{\top}"),
            (r"D_2", r"-z_2 X W,\ z_2 = \mathrm{diag}(K) f", r"-\beta\, p_2 X W^{\top}"),
            (r"D_7", r"z_7 X W^{\top},\ z_7 = f \odot (h G^{\top})", r"\beta\, p_1^{\top} X W"),
            (r"D_6", r"-z_6 X W^{\top},\ z_6 = f\,\mathrm{diag}(K)", r"-\beta\, p_2^{\top} X W"),
        ),
        "Three terms carry $f$ where $f^{\\top}$ belongs ($D_8$, $D_7$, $D_6$): row $l$ of $X$ acts as a value and "
        "as a key for every query $i$, with weight $f_{il}$, so its gradient sums down column $l$ of $f$. The four "
        "logit-path terms carry $W$ and $W^{\\top}$ the wrong way round for the paper's own logits "
        "$S = \\beta X W X^{\\top}$: "
        "$\\mathrm{d}S = \\beta(\\mathrm{d}X\\, W X^{\\top} + X W\\, \\mathrm{d}X^{\\top})$ "
        "gives the query path $\\beta P X W^{\\top}$ and the key path $\\beta P^{\\top} X W$. The factor $\\beta$ "
        "is dropped because the appendices take $\\beta = 1$. With a symmetric $W$ the sum is still wrong (the "
        "$f$ / $f^{\\top}$ part). Lemmas E.*, I.7, I.8 and Algorithm 1 inherit these forms.",
        (r"^Lemma D\.17", r"D17", r"printed_paths"),
    ),
    Erratum(
        "Lemma D.1: the entrywise pieces C1 to C8",
        (
            (
                r"C_6",
                r"-s_{i_0 j_0} f_{i_1 i_0} (X W^{\top})_{i_0 j_1}",
                r"-\beta\, s_{i_0 j_0} f_{i_0 i_1} (X W)_{i_0 j_1}",
            ),
            (
                r"C_7",
                r"f_{i_1 i_0} h_{i_1 j_0} (X W^{\top})_{i_0 j_1}",
                r"\beta\, f_{i_0 i_1} h_{i_1 j_0} (X W)_{i_0 j_1}",
            ),
            (r"C_8", r"f_{i_1 i_0} (W_V)_{j_1 j_0}", r"f_{i_0 i_1} (W_V)_{j_1 j_0}"),
        ),
        "The scalar pieces of $\\partial s_{i_0 j_0} / \\partial X_{i_1 j_1}$ index $f$ as $f_{i_1 i_0}$ and pair $X$ "
        "with $W^{\\top}$; the correct pieces use $f_{i_0 i_1}$ and $X W$, and the row-$i_0$ pieces $C_2$, $C_4$ use "
        "$X W^{\\top}$. The errors of Lemma D.17 start here.",
        (r"^Lemma D\.1$", r"D1\.entrywise"),
    ),
    Erratum(
        "Lemma G.3: the gradient on the value weights",
        ((r"\partial L / \partial W_V", r"X^{\top} f\, G", r"X^{\top} f^{\top} G = (f X)^{\top} G"),),
        "From $s = f X W_V$: $\\mathrm{d}s = f X\\, \\mathrm{d}W_V$, so "
        "$\\partial L / \\partial W_V = (f X)^{\\top} G$. "
        "Algorithm 1 line 22 and Lemma I.7 part 4 inherit the printed form.",
        (r"^Lemma G\.3", r"G3"),
    ),
    Erratum(
        "Algorithm 1, line 19: the gradient on W",
        ((r"g_w", r"(X^{\top} U_3)(V_3^{\top} X) \approx X^{\top} p_1 X", r"\beta\, X^{\top} (p_1 - p_2) X"),),
        "$U_3 V_3^{\\top}$ approximates $p_1$ only; the $-p_2 = -\\mathrm{diag}(K) f$ part of $P$ is missing from the "
        "algorithm (Lemma F.4, which states $X^{\\top} p X$, is right for $\\beta = 1$).",
        (r"^Algorithm 1", r"alg1"),
    ),
)


def errata(ents: list[Entry], files: list[Path]) -> str:
    wrong = [e for e in ents if e.expected == "WRONG-AS-PRINTED"]
    covered: set[str] = set()
    lines: list[str] = []
    for er in ERRATA:
        shown = [e for e in wrong if _label_matches(e, er.checks)]
        covered |= {e.id for e in shown}
        lines += [f"## {er.title}", "", "| | as printed | corrected |", "|---|---|---|"]
        lines += [f"| ${what}$ | ${pr}$ | ${co}$ |" for what, pr, co in er.rows]
        lines += ["", er.why, ""]
        lines += _counterexamples(shown)
    rest = [e for e in wrong if e.id not in covered]
    if rest:
        lines += ["## More statements wrong as printed", "",
                  "Each of these registry entries is marked WRONG-AS-PRINTED in SPEC §3; the corrected form is in "
                  "the SPEC entry named, and the check compares the two.", ""]  # fmt: skip
        for e in rest:
            lines += [f"### {esc(e.label)}: {esc(e.name)}", "", f"SPEC §3 entries: {', '.join(map(str, e.spec))}", ""]
            lines += _counterexamples([e])
    lines += ["## Exact counterexamples", "",
              "The same errors shown in exact arithmetic by `symbolic/`: at one small integer point, printed minus "
              "true is a nonzero rational function of $e$, hence nonzero.", ""]  # fmt: skip
    cx = [p for p in files if _norm(p.stem) == "counterexamples"]
    if cx:
        lines += include_derivation(cx[0], "", 2)
    else:
        lines += ["Not generated yet: `python -m symbolic render` writes `docs/derivations/counterexamples.md`.", ""]
    return "\n".join(lines)


def _counterexamples(shown: list[Entry]) -> list[str]:
    if not shown:
        return ["The check for this erratum is not registered yet (`altgrad check --list`).", ""]
    out = []
    for e in shown:
        rec = e.record
        out += [f"**Check** {check_link(e.id, e.label + ': ' + e.name)}, verdict **{esc(e.verdict)}**."]
        if rec:
            out += ["", f"Observed (seeded; reproduce with `{rec['command']}`): {esc(rec['figure'])}", ""]
            data = rec.get("data") or {}
            if isinstance(data, dict) and data.get("counterexample"):  # the report schema's own key for it
                out += ["Counterexample:", "", _json_block(data["counterexample"]), ""]
            elif data:
                out += [_json_block(data), ""]
        else:
            out += ["", f"No record in this report; run `altgrad check --only {e.id}`.", ""]
    return out


# --- results ------------------------------------------------------------------------------------------------------
# A record's data may hold ``series`` = {name: {"x": [...], "y": [...], "xlabel": str, "ylabel": str, "logx": bool,
# "logy": bool}} (the report.json schema of proofs_check/report.py). Each series is sorted into a figure by its axis
# labels; the others are plotted per record under "More measured series".

_X_N = re.compile(r"(^|\W)(n|tokens|sequence length)(\W|$)", re.I)
_X_DEPTH = re.compile(r"depth|layers|(^|\W)m(\W|$)", re.I)
_Y_TIME = re.compile(r"time|seconds|wall|(^|\W)s(\W|$)", re.I)
_Y_ERR = re.compile(r"err", re.I)

RESULT_FIGURES = (
    # (file, title, x pattern, y pattern, x label, y label, command  # what it does)
    ("time_vs_n.png", "Time against n", _X_N, _Y_TIME, "n (tokens)", "seconds",
     "altgrad check --full --report report/  # the [ASYM] runtime sweeps of the full profile measure it"),
    ("error_vs_n.png", "Error against n", _X_N, _Y_ERR, "n (tokens)", "relative error",
     "altgrad check --full --report report/  # the [ASYM] error sweeps of the full profile measure it"),
    ("error_vs_depth.png", "Error against depth", _X_DEPTH, _Y_ERR, "m (layers)", "relative error",
     "altgrad check --full --report report/  # the depth experiment (Lemma H.4, m = 1 to 16) measures it"),
)  # fmt: skip


def _numeric(values: Any) -> bool:
    return isinstance(values, list) and len(values) >= 2 and all(isinstance(v, int | float) for v in values)


def depth_sweep_series(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Series read from a depth sweep table, for records that carry one but no ``series``.

    The depth experiment (``proofs_check/experiments/depth.py``) stores ``sweeps = [{"n", "rows": [{"m", "g",
    "dX": {"rel"}}]}]``; this gives the relative error of dL/dX against m, one curve per (n, g). Rows that do not
    have that shape are skipped, never guessed.
    """
    out: dict[str, dict[str, Any]] = {}
    for sweep in data.get("sweeps") if isinstance(data.get("sweeps"), list) else []:
        rows = sweep.get("rows") if isinstance(sweep, dict) else None
        by_g: dict[Any, list[tuple[float, float]]] = {}
        for r in rows if isinstance(rows, list) else []:
            try:
                m, g, rel = r["m"], r["g"], r["dX"]["rel"]
            except (KeyError, TypeError):
                continue
            if isinstance(m, int | float) and isinstance(rel, int | float):
                by_g.setdefault(g, []).append((m, rel))
        for g, pts in by_g.items():
            pts.sort()
            out[f"n={sweep.get('n')}, g={g}"] = {"x": [p[0] for p in pts], "y": [p[1] for p in pts],
                                                 "xlabel": "depth m", "ylabel": "relative error of dL/dX",
                                                 "logy": True}  # fmt: skip
    return out


@dataclass(frozen=True)
class Series:
    """One measured curve and where it comes from (a check's record, or a benchmark file)."""

    source: str  # Markdown: a link to the catalogue entry, or the file name
    group: str  # record id or file: the curves of one group share a plot under "More measured series"
    title: str
    name: str
    data: dict[str, Any]  # x, y, xlabel, ylabel, logx, logy


def series_of(ents: list[Entry]) -> list[Series]:
    """Every well-formed series in the records (x and y numeric, same length)."""
    out = []
    for e in ents:
        data = (e.record or {}).get("data") or {}
        found = (data.get("series") or depth_sweep_series(data)) if isinstance(data, dict) else {}
        for name, s in found.items():
            if isinstance(s, dict) and _numeric(s.get("x")) and _numeric(s.get("y")) and len(s["x"]) == len(s["y"]):
                out.append(Series(check_link(e.id), e.id, f"{e.label}: {e.name}", name, s))
    return out


def read_bench(paths: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    """(file name, record) for every JSON line of the benchmark files (``benchmarks/fastpath_bench.py --out``)."""
    out = []
    for p in paths:
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith("{"):
                out.append((p.name, json.loads(line)))
    return out


def bench_series(bench: list[tuple[str, dict[str, Any]]]) -> list[Series]:
    """Time against n from a benchmark run: its ``scaling`` records (fast forward + backward of one layer)."""
    out = []
    for name in dict.fromkeys(n for n, _ in bench):
        recs = [r for n, r in bench if n == name]
        cfg = next((r for r in recs if r.get("kind") == "config"), {})
        scaling = sorted((r["n"], r["t"]) for r in recs if r.get("kind") == "scaling" and "t" in r and "n" in r)
        if len(scaling) >= 2:
            s = {"x": [n for n, _ in scaling], "y": [t for _, t in scaling], "xlabel": "n", "ylabel": "time (s)",
                 "logx": True, "logy": True}  # fmt: skip
            label = f"fast fwd+bwd of one layer, d={cfg.get('d', '?')}, eps={cfg.get('eps', '?')}"
            out.append(Series(f"`{name}`", name, name, label, s))
    return out


def _crossover_plot(bench: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Fast and exact time against n for each (d, eps) of the crossover sweeps, one plot."""
    curves = []
    for _, r in bench:
        rows = r.get("rows") if r.get("kind") == "crossover" else None
        if isinstance(rows, list) and len(rows) >= 2:
            for key, what in (("t_fast", "fast"), ("t_exact", "exact")):
                s = {"x": [w["n"] for w in rows], "y": [w[key] for w in rows], "logx": True, "logy": True}
                curves.append((f"{what}, d={r.get('d')}, eps={r.get('eps')}", s))
    if not curves:
        return []
    src = _plot("crossover.png", "Fast and exact one-layer gradient", "n (tokens)", "seconds", curves)
    return [f"![Fast and exact time against n]({src})", ""]


def _crossover_rows(bench: list[tuple[str, dict[str, Any]]]) -> list[str]:
    rows = [(name, r) for name, r in bench if r.get("kind") == "crossover"]
    if not rows:
        return []
    head = "| d | eps | degree | rank | smallest measured n where fast beats exact | measured up to n |"
    out = [f"From {', '.join(dict.fromkeys(f'`{n}`' for n, _ in rows))}:", "", head, "|---|---|---|---|---|---|"]
    for _, r in rows:
        seen = max((w.get("n", 0) for w in r.get("rows", [])), default="?")
        if r.get("crossover_n"):
            found = str(r["crossover_n"])
        elif r.get("extrapolated_n"):
            found = f"not reached (extrapolated about {r['extrapolated_n']})"
        else:
            found = "not reached"
        out.append(f"| {r.get('d')} | {r.get('eps')} | {r.get('degree')} | {r.get('rank')} | {found} | {seen} |")
    cfg = next((r for _, r in bench if r.get("kind") == "config"), None)
    if cfg:
        out += ["", f"Measured {esc(cfg.get('date', '?'))} with `{esc(cfg.get('command', '?'))}` "
                f"({cfg.get('cpus', '?')} CPUs, load {cfg.get('loadavg_1min', '?')}).", ""]  # fmt: skip
    return out + [""]


def _plot(fig_name: str, title: str, xlabel: str, ylabel: str, curves: list[tuple[str, dict[str, Any]]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = GEN / "img"
    img.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, s in curves:
        ax.plot(s["x"], s["y"], marker="o", label=label)
    logx = all(s.get("logx", False) and min(s["x"]) > 0 for _, s in curves)  # the schema's default: linear
    logy = all(s.get("logy", False) and min(s["y"]) > 0 for _, s in curves)
    ax.set(
        title=title,
        xlabel=xlabel,
        ylabel=ylabel,
        xscale="log" if logx else "linear",
        yscale="log" if logy else "linear",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(img / fig_name, metadata={"Software": None})  # byte-stable re-runs
    plt.close(fig)
    return f"/_generated/img/{fig_name}"


def _series_table(sr: Series) -> list[str]:
    s = sr.data
    rows = [f"| {esc(s.get('xlabel', 'x'))} | {esc(s.get('ylabel', 'y'))} |", "|---|---|"]
    rows += [f"| {x:.6g} | {y:.6g} |" for x, y in zip(s["x"], s["y"], strict=True)]
    return [f"{sr.source}: {esc(sr.name)}", "", *rows, ""]


def _crossover_tables(ents: list[Entry]) -> list[str]:
    """Records whose data holds a list of row dicts under a key that names the crossover."""
    out = []
    for e in ents:
        for key, rows in ((e.record or {}).get("data") or {}).items():
            if (
                "crossover" in key.lower()
                and isinstance(rows, list)
                and rows
                and all(isinstance(r, dict) for r in rows)
            ):
                cols = list(dict.fromkeys(k for r in rows for k in r))
                out += [f"From {check_link(e.id, e.label + ': ' + e.name)} (`{key}`):", "",
                        "| " + " | ".join(esc(c) for c in cols) + " |", "|" + "---|" * len(cols)]  # fmt: skip
                out += ["| " + " | ".join(esc(r.get(c, "")) for c in cols) + " |" for r in rows]
                out += [""]
    return out


def results(ents: list[Entry], report: dict[str, Any], bench_files: list[Path] | None = None) -> str:
    files = sorted(BENCHMARKS.glob("RESULTS-*.jsonl")) + list(bench_files or [])
    bench = read_bench(files)
    lines: list[str] = []
    all_series = series_of(ents) + bench_series(bench)
    shown: set[int] = set()
    for fname, title, xpat, ypat, xl, yl, cmd in RESULT_FIGURES:
        picked = [(i, sr) for i, sr in enumerate(all_series)
                  if xpat.search(sr.data.get("xlabel", "")) and ypat.search(sr.data.get("ylabel", ""))]  # fmt: skip
        lines += [f"## {title}", ""]
        if picked:
            shown |= {i for i, _ in picked}
            src = _plot(fname, title, xl, yl, [(f"{sr.group}: {sr.name}", sr.data) for _, sr in picked[:12]])
            origin = ", ".join(dict.fromkeys(sr.source for _, sr in picked))
            run = f"report: profile `{report.get('profile', '?')}`, seed {report.get('seed', '?')}"
            lines += [f"![{title}]({src})", "", f"From {origin} ({run}).", ""]
            for _, sr in picked:
                lines += _series_table(sr)
        else:
            lines += _not_measured(cmd)
    lines += ["## Crossover: where the fast gradient beats the exact one", ""]
    md = sorted(BENCHMARKS.glob("RESULTS-*.md"))
    cross_files = [p for p in md if "crossover" in p.read_text(encoding="utf-8").lower()]
    cross = _crossover_rows(bench) + _crossover_plot(bench) + _crossover_tables(ents)
    lines += cross
    if cross_files:
        lines += [f"A table is also in {', '.join(f'`benchmarks/{p.name}`' for p in cross_files)}, included below.", ""]
    if not cross_files and not cross:
        lines += _not_measured(
            "python benchmarks/fastpath_bench.py --out benchmarks/RESULTS-fastpath.jsonl  # the fast-path benchmark "
            "measures it (about 10 minutes on 2 cores; --quick for a smoke run)"
        )
    rest = [sr for i, sr in enumerate(all_series) if i not in shown]
    if rest:
        lines += ["## More measured series", ""]
        groups: dict[str, list[Series]] = {}
        for sr in rest:
            groups.setdefault(sr.group, []).append(sr)
        for key, group in groups.items():
            s0 = group[0].data
            src = _plot(f"series_{_norm(key)}.png", group[0].title[:70], s0.get("xlabel", "x"), s0.get("ylabel", "y"),
                        [(sr.name, sr.data) for sr in group])  # fmt: skip
            lines += [f"### {esc(group[0].title)}", "", f"![{esc(key)}]({src})", ""]
            for sr in group:
                lines += _series_table(sr)
    lines += ["## Benchmark files", ""]
    if not md and not files:
        lines += _not_measured(
            "python benchmarks/fastpath_bench.py --out benchmarks/RESULTS-fastpath.jsonl  # a benchmark run saved "
            "as benchmarks/RESULTS-*.jsonl (JSON lines) or RESULTS-*.md is shown here"
        )
    lines += [f"- `{p.name}`: {sum(1 for n, _ in bench if n == p.name)} JSON records, plotted above" for p in files]
    lines += [""] if files else []
    for p in md:
        copy = FRAG / "benchmarks" / p.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, copy)
        lines += [f"### `benchmarks/{p.name}`", "", f"```{{include}} _generated/fragments/benchmarks/{p.name}",
                  ":heading-offset: 3", "```", ""]  # fmt: skip
    return "\n".join(lines)


def _not_measured(cmd: str) -> list[str]:
    """The admonition for a figure nobody has measured yet; ``cmd`` is ``command  # what it does``."""
    command, _, what = cmd.partition("#")
    say = f"{what.strip()[0].upper()}{what.strip()[1:]}:" if what.strip() else "This command would measure it:"
    return [":::{admonition} Not yet measured", ":class: note", "",
            f"No record in this report carries a series with these axes, and no benchmark file holds this figure "
            f"yet. {say}", "",
            "```bash", command.strip(), "```", ":::", ""]  # fmt: skip


# --- term pages and the derivations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    slug: str  # docs/terms/<slug>.md includes _generated/fragments/terms/<slug>.md
    derivations: tuple[str, ...]  # stems of docs/derivations/*.md, compared without case or punctuation
    checks: tuple[str, ...]  # regexes on the check label or id


TERMS = (
    Term("d8", ("D8",), (r"^Lemma D\.17", r"^Lemma D\.9", r"^Lemma C\.4")),
    Term("d4", ("D4",), (r"^Lemma D\.17", r"^Lemma D\.9", r"^Lemma C\.4")),
    Term("d2", ("D2",), (r"^Lemma D\.17", r"^Lemma D\.9", r"^Lemma C\.4")),
    Term("d7", ("D7",), (r"^Lemma D\.17", r"^Lemma D\.9", r"^Lemma C\.4")),
    Term("d6", ("D6",), (r"^Lemma D\.17", r"^Lemma D\.9", r"^Lemma C\.4")),
    Term("dx", ("value", "query", "key", "dX"), (r"^Lemma D\.9", r"^Lemma C\.4", r"^Lemma D\.1$", r"^Lemma 3\.4")),
    Term("dw", ("dW",), (r"^Lemma F\.4", r"^Algorithm 1")),
    Term("dwq-dwk", ("dW_Q", "dW_K"), (r"C\.2\b", r"\bC2\b", r"WQ_WK")),
    Term("dwv", ("dW_V",), (r"^Lemma G\.3", r"G3")),
    Term("block", ("G_i", "dW_g", "layer"), (r"^Lemma H\.2", r"H2")),
)
# derivation files that go to a page other than a term page or terms/more
ELSEWHERE = {"readme": "terms/index", "counterexamples": "errata"}

_MD_LINK = re.compile(r"\[([^\]]+)\]\(([\w.\-]+)\.md(#[\w\-]*)?\)")


def derivation_files() -> list[Path]:
    return sorted(DERIVATIONS.glob("*.md")) if DERIVATIONS.is_dir() else []


def derivation_label(stem: str) -> str:
    return "derivation-" + re.sub(r"[^a-z0-9]+", "-", stem.lower()).strip("-")


def stage_derivations(files: list[Path]) -> None:
    """Copy docs/derivations/*.md into _generated/fragments/derivations/, links between them made cross-references.

    The files link to each other as ``[text](D8.md)``; on the site each is included into some page, so a link
    becomes ``{ref}`` to the label placed just before that include (``derivation-d8``).
    """
    stems = {p.stem for p in files}
    dest = FRAG / "derivations"
    dest.mkdir(parents=True, exist_ok=True)

    def link(m: re.Match[str]) -> str:
        if m.group(2) not in stems:
            return m.group(0)
        text = m.group(1).replace("`", "")
        return f"{{ref}}`{text} <{derivation_label(m.group(2))}>`"

    for p in files:
        (dest / p.name).write_text(_MD_LINK.sub(link, p.read_text(encoding="utf-8")), encoding="utf-8")


def include_derivation(p: Path, from_dir: str, offset: int) -> list[str]:
    """The label and the include directive of one staged derivation, for a page in ``from_dir`` ('' or 'terms')."""
    up, label = ("../" if from_dir else ""), derivation_label(p.stem)
    return [
        f'<span id="{label}"></span>',
        "",
        f"({label})=",
        "",
        f"```{{include}} {up}_generated/fragments/derivations/{p.name}",
        f":heading-offset: {offset}",
        "```",
        "",
    ]


def term_fragment(term: Term, ents: list[Entry], files: list[Path]) -> tuple[str, list[Path], list[Entry]]:
    """The check links and the derivation includes of one term page; also returns what it used."""
    by_norm = {_norm(p.stem): p for p in files}
    mine = [by_norm[_norm(d)] for d in term.derivations if _norm(d) in by_norm]
    checks = [e for e in ents if _label_matches(e, term.checks)]
    lines = ["## Checked by", "", "The registry entries that prove this term (numerically, in mpmath, and "
             "symbolically, in exact arithmetic); each link goes to its catalogue entry and verdict.", ""]  # fmt: skip
    lines += [f"- {check_link(e.id, e.label + ': ' + e.name)}, verdict **{esc(e.verdict)}**" for e in checks]
    lines += [""]
    if mine:
        lines += [
            "The derivation below is generated by `symbolic/` (SymPy, exact arithmetic) into "
            + ", ".join(f"`docs/derivations/{p.name}`" for p in mine)
            + "; it is not edited by hand.",
            "",
        ]
        for p in mine:
            lines += include_derivation(p, "terms", 1)
    else:
        names = ", ".join(f"`docs/derivations/{d}.md`" for d in term.derivations)
        lines += ["## Generated derivation", "", ":::{admonition} Derivation not generated yet", ":class: note", "",
                  f"This page includes {names}. None is there yet: `symbolic/` writes them "
                  "(`python -m symbolic render`).", ":::", ""]  # fmt: skip
    return "\n".join(lines), mine, checks


def proving_checks(p: Path, ents: list[Entry]) -> list[Entry]:
    """The checks that prove a derivation: those with the paper label its ``Paper:`` line names, and the symbolic
    check whose record lists the derivation's statement among its proofs."""
    text = p.read_text(encoding="utf-8")
    head = next((line for line in text.splitlines() if line.startswith("Paper:")), "")
    labels = re.findall(r"(?:Lemma|Definition|Theorem|Claim|Algorithm|Fact|Remark|Corollary) [\w.§]*\w", head)
    name = p.stem.replace("-", ".")

    def proves(e: Entry) -> bool:
        if any(e.label == lab or e.label.startswith(lab + " ") for lab in labels):
            return True
        proofs = (e.record or {}).get("data", {}).get("proofs", [])
        return isinstance(proofs, list) and any(isinstance(x, dict) and x.get("name") == name for x in proofs)

    return [e for e in ents if proves(e)]


def derivation_page(p: Path, ents: list[Entry]) -> tuple[str, list[Entry]]:
    """A derivation that belongs to no term page, as a page of its own: its checks right under its title."""
    lines = (FRAG / "derivations" / p.name).read_text(encoding="utf-8").splitlines()
    title = next((i for i, line in enumerate(lines) if line.startswith("# ")), None)
    checks = proving_checks(p, ents)
    if checks:
        block = ["", "**Checked by** " + ", ".join(check_link(e.id, e.label + ": " + e.name) for e in checks) + ".", ""]
    else:
        block = ["", "No registered check names this derivation's paper label yet (`altgrad check --list`).", ""]
    label = derivation_label(p.stem)
    if title is None:  # no heading of its own: give it one
        lines, title = [f"# `{p.stem}`", *lines], 0
    lines[title:title] = [f"({label})=", ""]
    lines[title + 3 : title + 3] = block
    return "\n".join(lines) + "\n", checks


def more_derivations(files: list[Path], ents: list[Entry]) -> tuple[str, dict[str, list[str]]]:
    """Write one page per remaining derivation into _generated/derivations/; return the toctree fragment."""
    if not files:
        return "No further derivations are generated yet (`docs/derivations/` is empty or absent).\n", {}
    pages = GEN / "derivations"
    pages.mkdir(parents=True, exist_ok=True)
    used = {}
    for p in files:
        text, checks = derivation_page(p, ents)
        (pages / p.name).write_text(text, encoding="utf-8")
        used[p.name] = [e.id for e in checks]
    toc = ["```{toctree}", ":maxdepth: 1", "", *(f"../_generated/derivations/{p.stem}" for p in files), "```", ""]
    return "\n".join(toc), used


# --- API reference ------------------------------------------------------------------------------------------------


def api_page(package: str) -> str:
    mod = __import__(package)
    names = [package] + sorted(
        f"{package}.{m.name}" for m in pkgutil.walk_packages(mod.__path__, prefix="") if not m.name.startswith("_")
    )
    lines = [f"# `{package}`", ""]
    for name in names:
        lines += [f"## `{name}`", "", "```{eval-rst}", f".. automodule:: {name}", "```", ""]
    return "\n".join(lines)


# --- driver -------------------------------------------------------------------------------------------------------


def generate(report: dict[str, Any], bench_files: list[Path] | None = None) -> dict[str, Any]:
    """Write everything into docs/_generated/; return a summary (for the build log and the tests)."""
    if GEN.exists():
        shutil.rmtree(GEN)
    (FRAG / "terms").mkdir(parents=True)
    (GEN / "api").mkdir(parents=True)
    ents = entries(report)
    (GEN / "report.json").write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    (FRAG / "catalogue.md").write_text(catalogue(ents, report), encoding="utf-8")
    files = derivation_files()
    stage_derivations(files)
    (FRAG / "errata.md").write_text(errata(ents, files), encoding="utf-8")
    (FRAG / "results.md").write_text(results(ents, report, bench_files), encoding="utf-8")
    placed = {_norm(k): v for k, v in ELSEWHERE.items()}
    used: set[Path] = {p for p in files if _norm(p.stem) in placed}
    summary: dict[str, Any] = {"entries": len(ents), "terms": {}}
    for term in TERMS:
        text, mine, checks = term_fragment(term, ents, files)
        (FRAG / "terms" / f"{term.slug}.md").write_text(text, encoding="utf-8")
        used |= set(mine)
        summary["terms"][term.slug] = {"derivations": [p.name for p in mine], "checks": [e.id for e in checks]}
    toc, summary["derivation_pages"] = more_derivations([p for p in files if p not in used], ents)
    (FRAG / "derivations-more.md").write_text(toc, encoding="utf-8")
    index = [p for p in files if _norm(p.stem) == "readme"]
    (FRAG / "derivations-index.md").write_text(
        "\n".join(include_derivation(index[0], "terms", 1)) if index else "", encoding="utf-8"
    )
    for pkg in API_PACKAGES:
        (GEN / "api" / f"{pkg}.md").write_text(api_page(pkg), encoding="utf-8")
    summary["derivations"] = [p.name for p in files]
    return summary
