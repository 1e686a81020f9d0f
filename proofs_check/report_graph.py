r"""The dependency graph of a report: ``graph.dot`` (Graphviz text, always) and, with the optional ``plots`` extra
(matplotlib), ``graph.png`` / ``graph.svg`` and one ``plots/<id>.png`` per plotted series.

Everything is drawn from the decoded ``report.json`` document alone. Node colours are one per verdict word
(:data:`COLOURS`, the vocabulary of :mod:`proofs_check.report_doc`), with a legend in both renderings.
"""

from __future__ import annotations

from pathlib import Path

from proofs_check.report_doc import VERDICTS

# one fill colour per verdict word (ColorBrewer light tones; no two verdicts share one)
COLOURS = {
    "holds": "#a1d99b",  # green
    "trend": "#cbc9e2",  # lavender
    "wrong as printed": "#fdae6b",  # orange
    "gap": "#fee391",  # yellow
    "ambiguous": "#9ecae1",  # light blue
    "CONTRADICTS": "#ef3b2c",  # red
    "ERROR": "#969696",  # grey
}
NOT_RUN = "#ffffff"
assert set(COLOURS) == set(VERDICTS) and len(set(COLOURS.values())) == len(COLOURS), "one colour per verdict"


def _esc(s: str) -> str:
    """Text inside a DOT double-quoted string (backslashes and quotes escaped)."""
    return str(s).replace("\\", "\\\\").replace('"', '\\"')


def _dot_id(s: str) -> str:
    return f'"{_esc(s)}"'


def dot_label(*lines: str) -> str:
    r"""A quoted DOT label of several lines: each line escaped, joined by DOT's own line break ``\n``."""
    return '"' + "\\n".join(_esc(x) for x in lines) + '"'


def render_dot(doc: dict) -> str:
    """The dependency graph (``uses`` edges, dependency -> user) as Graphviz DOT text, nodes coloured by verdict.

    Each node shows three lines: paper label, id, verdict. A dependency that is not among the records (a partial
    run) is drawn dashed and white ("not run"). A legend cluster names the colour of every verdict.
    """
    recs = doc["records"]
    ids = {r["id"] for r in recs}
    lines = ["digraph altgrad {", "  rankdir=LR;", '  node [shape=box, style="rounded,filled", fontsize=12];',
             "  subgraph cluster_legend {", '    label="verdict"; fontsize=12; style=rounded;']  # fmt: skip
    for verdict, colour in COLOURS.items():
        lines.append(f'    {_dot_id("legend: " + verdict)} [label={dot_label(verdict)}, fillcolor="{colour}"];')
    lines.append(f'    "legend: not run" [label="not run", fillcolor="{NOT_RUN}", style="rounded,dashed"];')
    lines.append("  }")
    for r in recs:
        colour = COLOURS.get(r["verdict"], NOT_RUN)
        label = dot_label(r["label"], r["id"], r["verdict"])
        lines.append(f'  {_dot_id(r["id"])} [label={label}, fillcolor="{colour}"];')
    for u in sorted({u for r in recs for u in r["uses"] if u not in ids}):
        lines.append(f'  {_dot_id(u)} [label={dot_label(u, "not run")}, fillcolor="{NOT_RUN}", '
                     'style="rounded,dashed"];')  # fmt: skip
    for r in recs:
        for u in r["uses"]:
            lines.append(f"  {_dot_id(u)} -> {_dot_id(r['id'])};")
    lines.append("}")
    return "\n".join(lines) + "\n"


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


def _draw_graph(doc: dict, plt):
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
    # 0.42 inch per row and 3.4 inch per column keep 9-point labels of 28 characters apart
    fig, ax = plt.subplots(figsize=(3 + 3.4 * len(cols), 2 + 0.42 * height))
    verdict = {r["id"]: r["verdict"] for r in recs}
    for r in recs:
        for u in r["uses"]:
            ax.annotate("", xy=pos[r["id"]], xytext=pos[u],
                        arrowprops={"arrowstyle": "-|>", "color": "0.55", "lw": 0.7, "shrinkA": 18, "shrinkB": 18,
                                    "mutation_scale": 9})  # fmt: skip
    for cid, (x, y) in pos.items():
        ax.text(x, y, cid, fontsize=9, ha="center", va="center",
                bbox={"boxstyle": "round", "fc": COLOURS.get(verdict.get(cid, ""), NOT_RUN), "ec": "0.3", "lw": 0.6,
                      "ls": "-" if cid in verdict else "--"})  # fmt: skip
    names = [*COLOURS, "not run"]
    handles = [plt.Rectangle((0, 0), 1, 1, fc=c, ec="0.3") for c in [*COLOURS.values(), NOT_RUN]]
    ax.legend(handles, names, loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=10, ncol=len(names),
              frameon=False, title="verdict", title_fontsize=10)  # fmt: skip
    ax.set_xlim(-0.8, max(cols, default=0) + 0.8)
    ax.set_ylim(-height, 0.8)
    ax.axis("off")
    ax.set_title(f"altgrad dependency graph ({doc['profile']}, seed {doc['seed']})", fontsize=12, pad=40)
    return fig


def render_pictures(doc: dict, outdir: Path) -> dict[str, str]:
    """``graph.png``, ``graph.svg`` and ``plots/<id>.png`` with matplotlib's Agg backend (stable metadata).

    Returns {key: relative path} (``graph``, ``graph_svg`` and record ids); empty when matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    outdir = Path(outdir)
    pics: dict[str, str] = {}
    with matplotlib.rc_context({"svg.hashsalt": "altgrad", "svg.fonttype": "none"}):
        fig = _draw_graph(doc, plt)
        fig.savefig(outdir / "graph.png", dpi=110, bbox_inches="tight", metadata={"Software": None})
        fig.savefig(outdir / "graph.svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
        plt.close(fig)
    pics["graph"], pics["graph_svg"] = "graph.png", "graph.svg"
    for r in doc["records"]:
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
        fig.savefig(outdir / rel, dpi=110, bbox_inches="tight", metadata={"Software": None})
        plt.close(fig)
        pics[r["id"]] = rel
    return pics
