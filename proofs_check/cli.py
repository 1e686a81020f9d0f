"""Command line: ``altgrad check`` (the claims registry) and ``altgrad derive`` (SymPy derivations).

``python -m proofs_check [ARGS]`` is ``altgrad check [ARGS]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict

from proofs_check import registry as reg

SCHEMA_VERSION = 1
PAPER = "arXiv:2408.13233v2"


def _check_parser(p: argparse.ArgumentParser) -> None:
    prof = p.add_mutually_exclusive_group()
    prof.add_argument("--quick", action="store_true", help="small sizes (default; the README's main job)")
    prof.add_argument("--full", action="store_true", help="the sweeps (slow)")
    p.add_argument("--only", nargs="+", metavar="LABEL", help="run only checks with this id or paper label")
    p.add_argument("--seed", type=int, default=0, help="seed of every random generator (default 0)")
    p.add_argument("--json", metavar="FILE", help="write the records as JSON to FILE")
    p.add_argument("--list", action="store_true", help="list the registry (id, label, kind, status, uses)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="altgrad", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _check_parser(sub.add_parser("check", help="run the registry of checks and print one line per check"))
    sub.add_parser("derive", help="SymPy derivations of the gradient terms (see: altgrad derive --help)",
                   add_help=False)  # fmt: skip
    return parser


def _fmt_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def run_check_command(args: argparse.Namespace) -> int:
    registry = reg.load_all()
    try:
        chosen = reg.select(registry, args.only)
    except ValueError as exc:
        print(f"altgrad check: error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        rows = [["id", "label", "kind", "expected", "spec", "uses"]]
        rows += [[c.id, c.label, c.kind, c.expected, ",".join(f"#{s}" for s in c.spec), ",".join(c.uses)]
                 for c in chosen]  # fmt: skip
        print(_fmt_table(rows))
        return 0
    ctx = reg.Context(quick=not args.full, seed=args.seed)
    records = []
    t0 = time.perf_counter()
    for i, chk in enumerate(chosen, 1):
        print(f"[{i}/{len(chosen)}] {chk.id} ...", file=sys.stderr, flush=True)
        rec = reg.run_check(chk, ctx)
        if rec.wall_s > 3:
            print(f"    {rec.verdict} in {rec.wall_s:.1f} s", file=sys.stderr, flush=True)
        records.append(rec)
    rows = [["label", "kind", "expected", "observed", "verdict", "id"]]
    rows += [[r.label, r.kind, r.expected, r.figure, r.verdict, r.id] for r in records]
    print(_fmt_table(rows))
    bad = [r for r in records if r.contradicts]
    print(f"\n{len(records)} checks, {len(records) - len(bad)} agree with their expected status, "
          f"{len(bad)} contradict or fail ({time.perf_counter() - t0:.1f} s, seed {args.seed})")  # fmt: skip
    if args.json:
        doc = {
            "schema": SCHEMA_VERSION,
            "paper": PAPER,
            "profile": "full" if args.full else "quick",
            "seed": args.seed,
            "records": [asdict(r) for r in records],
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, default=str)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "derive":
        from symbolic.cli import main as derive_main

        return derive_main(argv[1:])
    args = build_parser().parse_args(argv)
    return run_check_command(args)


if __name__ == "__main__":
    raise SystemExit(main())
