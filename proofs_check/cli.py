"""Command line: ``altgrad check`` (the claims registry), ``altgrad report DIR`` (re-render a report from its
``report.json``) and ``altgrad derive`` (SymPy derivations).

``python -m proofs_check [ARGS]`` is ``altgrad check [ARGS]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from proofs_check import registry as reg
from proofs_check import report as rep
from proofs_check.cli_output import Progress, closing_lines, fit_table, summary_rows, terminal_width

SCHEMA_VERSION = rep.SCHEMA_VERSION
PAPER = rep.PAPER


def _int_at_least(text: str, low: int, expected: str) -> int:
    """An argparse type: ``text`` as a base-10 integer >= ``low``; otherwise an error naming ``expected``."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def _seed(text: str) -> int:
    """``--seed``: any integer >= 0 (numpy seeds are non-negative; arbitrarily large ones are fine)."""
    return _int_at_least(text, 0, "an integer >= 0 (random generators take no negative seed)")


def _positive(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def _threshold(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _check_parser(p: argparse.ArgumentParser) -> None:
    prof = p.add_mutually_exclusive_group()
    prof.add_argument("--quick", action="store_true", help="small sizes (default; the README's main job)")
    prof.add_argument("--full", action="store_true", help="the sweeps (slow)")
    p.add_argument("--only", nargs="+", metavar="LABEL", help="run only checks with this id or paper label")
    p.add_argument("--seed", type=_seed, default=0, help="seed of every random generator, an integer >= 0 (default 0)")
    p.add_argument("--json", metavar="FILE", help="write the records as JSON to FILE (the report.json document)")
    p.add_argument("--report", metavar="DIR", help="write report.json, report.md, graph.dot (and PNGs) to DIR")
    p.add_argument("--quiet", action="store_true",
                   help="no progress line (it is shown only when stderr is a terminal)")  # fmt: skip
    _version(p)
    p.add_argument("--list", action="store_true", help="list the registry and the SPEC catalogue coverage")
    p.add_argument("--jobs", type=_positive, default=1, metavar="N", help="run independent checks in N processes")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the checks on a Dask distributed cluster (optional extra altgrad[dask])")  # fmt: skip


def _version(p: argparse.ArgumentParser) -> None:
    p.add_argument("--version", action="version", version=f"altgrad {rep.versions()['altgrad']} ({PAPER})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="altgrad", description=__doc__)
    _version(parser)
    sub = parser.add_subparsers(dest="command", required=True)
    _check_parser(sub.add_parser("check", help="run the registry of checks and print one line per check"))
    rp = sub.add_parser("report", help="re-render report.md, graph.dot and the plots of DIR from DIR/report.json, "
                        "or compare two runs (--compare OLD NEW)")  # fmt: skip
    rp.add_argument("dir", metavar="DIR", nargs="?", help="a report directory (holding report.json)")
    rp.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"),
                    help="compare two report.json files (or report directories) record by record; exit status 1 "
                         "on a new CONTRADICTS or ERROR")  # fmt: skip
    rp.add_argument(
        "--threshold",
        type=_threshold,
        default=None,
        metavar="T",
        help="with --compare: show observed values that changed by more than T (relative; default 0.5)",
    )
    sub.add_parser("derive", help="SymPy derivations of the gradient terms (see: altgrad derive --help)",
                   add_help=False)  # fmt: skip
    return parser


def _list(registry: dict[str, reg.Check], chosen: list[reg.Check]) -> int:
    header = ["id", "label", "kind", "expected", "spec", "uses"]
    rows = [[c.id, c.label, c.kind, rep.expected_word(c.kind, c.expected), ",".join(f"#{s}" for s in c.spec),
              ",".join(c.uses)] for c in chosen]  # fmt: skip
    print("\n".join(fit_table(header, rows, terminal_width())[0]))
    covered, missing = reg.catalogue_coverage(registry)
    print(f"\nSPEC §3 catalogue coverage (whole registry): {len(covered)} of 100 entries named by a check"
          + (f"; missing: {' '.join('#' + str(k) for k in missing)}" if missing else ""))  # fmt: skip
    return 0


class OutputError(Exception):
    """An output path given on the command line that cannot be written (found before any check runs)."""


def probe_json_path(path: str) -> None:
    """Refuse, before the run, a ``--json`` FILE that cannot be written; leave no file behind."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"--json {path}: is a directory; give a file name, e.g. {p / 'report.json'}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        what = "does not exist" if not parent.exists() else "is not a directory"
        raise OutputError(f"--json {path}: its directory {parent} {what}")
    try:
        if p.exists():
            with open(p, "ab"):  # opened for appending and closed unwritten: the file is unchanged
                pass
        else:
            with tempfile.NamedTemporaryFile(dir=parent, prefix=".altgrad-probe-"):
                pass
    except OSError as exc:
        raise OutputError(f"--json {path}: cannot write there ({exc.strerror or exc})") from None


def prepare_report_dir(path: str) -> None:
    """Create the ``--report`` DIR before the run and make sure a file can be written in it."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"--report {path}: exists and is not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p, prefix=".altgrad-probe-"):
            pass
    except OSError as exc:
        raise OutputError(f"--report {path}: cannot create or write this directory ({exc.strerror or exc})") from None


def save_fallback(doc: dict) -> str:
    """Write ``doc`` to a new temporary file and return its path (what was computed is never lost)."""
    fd, name = tempfile.mkstemp(prefix="altgrad-check-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1)
    return name


def _write_outputs(args: argparse.Namespace, doc: dict) -> int:
    """Write ``--json`` and ``--report``; on failure save ``doc`` to a temporary file, say where, return 2."""
    try:
        if args.json:
            with open(args.json, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=1)
        if args.report:
            md = rep.write_report(doc, args.report)
            print(f"report: {md}", file=sys.stderr)
            for what in rep.skipped_outputs():
                print(f"skipped: {what}", file=sys.stderr)
    except (OSError, ValueError, TypeError) as exc:
        _rescue(doc, f"could not write the results ({type(exc).__name__}: {exc})")
        return 2
    return 0


def _rescue(doc: dict, why: str) -> None:
    try:
        where = save_fallback(doc)
    except OSError as exc2:
        print(f"altgrad check: error: {why}; saving them to a temporary file failed too ({exc2})", file=sys.stderr)
        return
    print(f"altgrad check: error: {why}; the records were saved to {where}", file=sys.stderr)


def run_check_command(args: argparse.Namespace) -> int:
    try:
        if args.json:
            probe_json_path(args.json)
        if args.report:
            prepare_report_dir(args.report)
    except OutputError as exc:
        print(f"altgrad check: error: {exc}", file=sys.stderr)
        return 2
    registry = reg.load_all()
    try:
        chosen = reg.select(registry, args.only)
    except ValueError as exc:
        print(f"altgrad check: error: {exc}", file=sys.stderr)
        return 2
    if args.list:
        return _list(registry, chosen)
    ctx = reg.Context(quick=not args.full, seed=args.seed)
    runner = {"kind": "dask" if args.scheduler else "processes" if args.jobs > 1 else "serial",
              "jobs": args.jobs, "scheduler": args.scheduler}  # fmt: skip

    def document(records, wall, complete=True):
        return rep.build_doc(records, profile="full" if args.full else "quick", seed=args.seed, wall_s=wall,
                             runner=runner, catalogue_specs=[c.spec for c in registry.values()],
                             complete=complete)  # fmt: skip

    progress = Progress(len(chosen), sys.stderr, enabled=not args.quiet and sys.stderr.isatty())
    t0 = time.perf_counter()
    records: list[reg.Record] = []
    try:
        if args.jobs > 1 or args.scheduler:
            records = reg.run_many(chosen, ctx, jobs=args.jobs, scheduler=args.scheduler, progress=progress)
        else:
            for chk in chosen:
                progress.start(chk.id)
                records.append(reg.run_check(chk, ctx))
                progress.record(records[-1].verdict)
    except RuntimeError as exc:
        progress.close()
        print(f"altgrad check: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        progress.close()
        _rescue(document(records, time.perf_counter() - t0, complete=False),
                f"interrupted after {len(records)} of {len(chosen)} checks")  # fmt: skip
        return 130
    progress.close()
    wall = time.perf_counter() - t0
    width = terminal_width()
    lines, cut_any = fit_table(*summary_rows(records), width)
    print("\n".join(lines))
    asked = bool(args.json or args.report)
    print()
    print("\n".join(closing_lines(records, wall=wall, seed=args.seed, asked_for_output=asked, cut_any=cut_any,
                                 width=width)))  # fmt: skip
    if asked:
        rc = _write_outputs(args, document(records, wall))
        if rc:
            return rc
    return 1 if any(r.contradicts for r in records) else 0


def _doc_path(path: str) -> Path:
    p = Path(path)
    return p / "report.json" if p.is_dir() else p


def run_compare_command(args: argparse.Namespace) -> int:
    from proofs_check.report_compare import DEFAULT_THRESHOLD, compare_docs, render_comparison

    try:
        old, new = (rep.read_doc(_doc_path(p)) for p in args.compare)
    except (OSError, ValueError) as exc:
        print(f"altgrad report: error: --compare: {exc}", file=sys.stderr)
        return 2
    cmp = compare_docs(old, new, threshold=DEFAULT_THRESHOLD if args.threshold is None else args.threshold)
    print(render_comparison(cmp), end="")
    return cmp.exit_status


def run_report_command(args: argparse.Namespace) -> int:
    if args.compare and args.dir:
        print("altgrad report: error: give either DIR or --compare OLD NEW, not both", file=sys.stderr)
        return 2
    if args.compare:
        return run_compare_command(args)
    if not args.dir:
        print("altgrad report: error: give a report directory DIR, or --compare OLD NEW", file=sys.stderr)
        return 2
    if args.threshold is not None:
        print("altgrad report: error: --threshold applies to --compare only", file=sys.stderr)
        return 2
    try:
        md = rep.render_dir(args.dir)
    except (OSError, ValueError) as exc:
        print(f"altgrad report: error: {exc}", file=sys.stderr)
        return 2
    print(md)
    for what in rep.skipped_outputs():
        print(f"skipped: {what}", file=sys.stderr)
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
