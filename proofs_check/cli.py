"""Command line: ``altgrad check`` (the claims registry), ``altgrad report DIR`` (re-render a report from its
``report.json``) and ``altgrad derive`` (SymPy derivations).

``python -m proofs_check [ARGS]`` is ``altgrad check [ARGS]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from proofs_check import registry as reg
from proofs_check import report as rep

SCHEMA_VERSION = rep.SCHEMA_VERSION
PAPER = rep.PAPER


def _check_parser(p: argparse.ArgumentParser) -> None:
    prof = p.add_mutually_exclusive_group()
    prof.add_argument("--quick", action="store_true", help="small sizes (default; the README's main job)")
    prof.add_argument("--full", action="store_true", help="the sweeps (slow)")
    p.add_argument("--only", nargs="+", metavar="LABEL", help="run only checks with this id or paper label")
    p.add_argument("--seed", type=int, default=0, help="seed of every random generator (default 0)")
    p.add_argument("--json", metavar="FILE", help="write the records as JSON to FILE (the report.json document)")
    p.add_argument("--report", metavar="DIR", help="write report.json, report.md, graph.dot (and PNGs) to DIR")
    p.add_argument("--list", action="store_true", help="list the registry and the SPEC catalogue coverage")
    p.add_argument("--jobs", type=int, default=1, metavar="N", help="run independent checks in N processes")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the checks on a Dask distributed cluster (optional extra altgrad[dask])")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="altgrad", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _check_parser(sub.add_parser("check", help="run the registry of checks and print one line per check"))
    rp = sub.add_parser("report", help="re-render report.md, graph.dot and the plots of DIR from DIR/report.json")
    rp.add_argument("dir", metavar="DIR")
    sub.add_parser("derive", help="SymPy derivations of the gradient terms (see: altgrad derive --help)",
                   add_help=False)  # fmt: skip
    return parser


def _fmt_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def _list(registry: dict[str, reg.Check], chosen: list[reg.Check]) -> int:
    rows = [["id", "label", "kind", "expected", "spec", "uses"]]
    rows += [[c.id, c.label, c.kind, c.expected, ",".join(f"#{s}" for s in c.spec), ",".join(c.uses)]
             for c in chosen]  # fmt: skip
    print(_fmt_table(rows))
    covered, missing = reg.catalogue_coverage(registry)
    print(f"\nSPEC §3 catalogue coverage (whole registry): {len(covered)} of 100 entries named by a check"
          + (f"; missing: {' '.join('#' + str(k) for k in missing)}" if missing else ""))  # fmt: skip
    return 0


def run_check_command(args: argparse.Namespace) -> int:
    registry = reg.load_all()
    try:
        chosen = reg.select(registry, args.only)
    except ValueError as exc:
        print(f"altgrad check: error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        return _list(registry, chosen)
    if args.jobs < 1:
        print(f"altgrad check: error: --jobs: expected a positive integer, got {args.jobs}", file=sys.stderr)
        return 2
    ctx = reg.Context(quick=not args.full, seed=args.seed)
    t0 = time.perf_counter()
    try:
        records = reg.run_many(chosen, ctx, jobs=args.jobs, scheduler=args.scheduler)
    except RuntimeError as exc:
        print(f"altgrad check: error: {exc}", file=sys.stderr)
        return 2
    wall = time.perf_counter() - t0
    rows = [["label", "kind", "expected", "observed", "verdict", "id"]]
    rows += [[r.label, r.kind, r.expected, r.figure, r.verdict, r.id] for r in records]
    print(_fmt_table(rows))
    bad = [r for r in records if r.contradicts]
    print(f"\n{len(records)} checks, {len(records) - len(bad)} agree with their expected status, "
          f"{len(bad)} contradict or fail ({wall:.1f} s, seed {args.seed})")  # fmt: skip
    if args.json or args.report:
        runner = {"kind": "dask" if args.scheduler else "processes" if args.jobs > 1 else "serial",
                  "jobs": args.jobs, "scheduler": args.scheduler}  # fmt: skip
        doc = rep.build_doc(records, profile="full" if args.full else "quick", seed=args.seed, wall_s=wall,
                            runner=runner, catalogue_specs=[c.spec for c in registry.values()])  # fmt: skip
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=1)
        if args.report:
            md = rep.write_report(doc, args.report)
            print(f"report: {md}", file=sys.stderr)
    return 1 if bad else 0


def run_report_command(args: argparse.Namespace) -> int:
    try:
        md = rep.render_dir(args.dir)
    except (OSError, ValueError) as exc:
        print(f"altgrad report: error: {exc}", file=sys.stderr)
        return 2
    print(md)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "derive":
        from symbolic.cli import main as derive_main

        return derive_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "report":
        return run_report_command(args)
    return run_check_command(args)


if __name__ == "__main__":
    raise SystemExit(main())
