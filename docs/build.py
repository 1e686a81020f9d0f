"""Build the documentation site: ``python docs/build.py [--report-json FILE] [--out DIR]``.

Steps, each one a function below, in order:

1. KaTeX: ``npm ci --prefix docs`` when ``docs/node_modules/katex`` is missing (docs/package-lock.json pins it).
2. The records: read ``--report-json FILE`` (a report.json or an ``altgrad check --json`` file), or run
   ``python -m proofs_check --quick --json docs/_build/check.json`` (``--only ID ...`` narrows that run). Benchmark runs
   (JSON lines of ``benchmarks/fastpath_bench.py --out``) come from ``benchmarks/RESULTS-*.jsonl`` and ``--bench``.
3. Generate the data-driven pages into ``docs/_generated/`` (docs/generate.py), and the tutorials as executed
   Jupyter notebooks into ``docs/_generated/notebooks/`` (docs/notebooks.py; the site offers them for download).
4. ``sphinx-build -W --keep-going -b html docs DIR``: any warning fails the build.
5. Check the HTML (docs/sitecheck.py): formulas rendered by KaTeX and no raw TeX on the pages that show
   mathematics, nothing loaded from the network, an anchor for every registry entry.

Exit status 0 when the site is built and clean. Needs the ``docs`` extra (``pip install ".[docs]"``), node and npm.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS))

import generate  # noqa: E402 (docs/ is not a package: its modules are found through sys.path)
import notebooks  # noqa: E402
import sitecheck  # noqa: E402

DEFAULT_OUT = DOCS / "_build" / "html"
KATEX_DIST = DOCS / "node_modules" / "katex" / "dist"
NOTEBOOKS = generate.GEN / "notebooks"  # git-ignored with the rest of _generated/
# pages whose formulas must all be rendered (the derivation pages and the pages written in mathematics)
MATH_PAGES = [
    "index.html",
    "conventions.html",
    "errata.html",
    "terms/index.html",
    "terms/more.html",
    *(f"terms/{t.slug}.html" for t in generate.TERMS),
]


def ensure_katex() -> None:
    if (KATEX_DIST / "katex.min.js").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("build.py: KaTeX is not installed and npm is not on PATH; install node and npm")
    print("== npm ci --prefix docs (KaTeX, pinned by docs/package-lock.json)", flush=True)
    subprocess.run([npm, "ci", "--prefix", str(DOCS), "--no-audit", "--no-fund"], check=True)


def load_report(path: str | None, only: list[str] | None) -> dict:
    if path:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    out = DOCS / "_build" / "check.json"  # git-ignored, like the site
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "proofs_check", "--quick", "--json", str(out)] + (["--only", *only] if only else [])
    print("== " + " ".join(cmd[1:]), flush=True)
    rc = subprocess.run(cmd, cwd=generate.ROOT, stdout=subprocess.DEVNULL).returncode
    if rc not in (0, 1):  # 1: some verdict contradicts its expected status; the catalogue shows it
        raise SystemExit(f"build.py: the checks did not run (exit status {rc})")
    report = json.loads(out.read_text(encoding="utf-8"))
    out.unlink()
    return report


def sphinx(out: Path) -> None:
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS), str(out)]
    print("== sphinx-build -W --keep-going -b html docs " + str(out), flush=True)
    if subprocess.run(cmd).returncode != 0:
        raise SystemExit("build.py: sphinx-build failed (warnings are errors; see above)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python docs/build.py", description=__doc__.split("\n")[0])
    ap.add_argument("--report-json", metavar="FILE", help="records to show (default: run altgrad check --quick)")
    ap.add_argument("--only", nargs="+", metavar="ID", help="with no --report-json: run only these checks")
    ap.add_argument("--bench", action="append", default=[], metavar="FILE",
                    help="JSON lines of a benchmark run for the Results page (repeatable; benchmarks/RESULTS-*.jsonl "
                    "are read anyway)")  # fmt: skip
    ap.add_argument("--out", metavar="DIR", default=str(DEFAULT_OUT), help=f"output folder (default {DEFAULT_OUT})")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    ensure_katex()
    report = load_report(args.report_json, args.only)
    t1 = time.perf_counter()
    summary = generate.generate(report, [Path(b) for b in args.bench])
    print(f"== generated: {summary['entries']} catalogue entries, {len(summary['derivations'])} derivation files "
          f"(checks {t1 - t0:.1f} s, generation {time.perf_counter() - t1:.1f} s)")  # fmt: skip
    for slug, t in summary["terms"].items():
        if not t["checks"]:
            raise SystemExit(f"build.py: term page {slug} links to no check (generate.TERMS needs updating)")
    for name, checks in summary["derivation_pages"].items():
        if not checks:
            print(f"build.py: note: derivation page {name} names no registered check", file=sys.stderr)
    why = notebooks.missing()
    if why:
        raise SystemExit(f"build.py: the tutorial notebooks cannot be made: {why}")
    t3 = time.perf_counter()
    derivations = [p for p in generate.derivation_files() if notebooks.derivation_term(p)]
    nbs = notebooks.write_notebooks(NOTEBOOKS, derivations=derivations)
    (generate.FRAG / "notebooks.md").write_text(notebooks.download_list(nbs), encoding="utf-8")
    print(f"== notebooks: {len(nbs)} written and executed ({time.perf_counter() - t3:.1f} s)")
    out = Path(args.out).resolve()
    t2 = time.perf_counter()
    sphinx(out)
    print(f"== sphinx-build {time.perf_counter() - t2:.1f} s")
    ids = [e.id for e in generate.entries(report)]
    pages = MATH_PAGES + [f"_generated/derivations/{Path(n).stem}.html" for n in summary["derivation_pages"]]
    found = sitecheck.problems(out, pages, ids)
    for p in found:
        print(f"build.py: {p}", file=sys.stderr)
    if found:
        return 1
    print(f"== site built in {time.perf_counter() - t0:.1f} s: {out / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
