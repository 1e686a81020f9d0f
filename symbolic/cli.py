r"""``altgrad derive``: print a derivation chain, the derived matrix at a size, and prove it exactly.

Spec §2.2–2.9. Usage::

    altgrad derive --list
    altgrad derive TERM [--n N --d D [--heads H]] [--latex | --pretty] [--prove]
    altgrad derive printed.D8            # the exact counterexample to a printed formula
    altgrad derive --write-docs [--check]

TERM is a statement of :data:`symbolic.proofs.STATEMENTS` or ``printed.<name>`` for a name of
:data:`symbolic.counterexamples.PRINTED`. Invalid TERM or sizes exit with status 2 and list the valid choices.
"""

from __future__ import annotations

import argparse
import sys
import time

from symbolic import counterexamples as cx
from symbolic import explicit as ex
from symbolic.proofs import STATEMENTS, check_size_for, prove, sizes_text, statement
from symbolic.render import pretty_equation, render_latex, render_pretty, shape_latex, shape_text
from symbolic.teaching import chain

PRINTED_TERMS = tuple(f"printed.{k}" for k in cx.PRINTED)


def valid_terms() -> list[str]:
    return [*STATEMENTS, *PRINTED_TERMS]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="altgrad derive", description="SymPy derivations of the gradient terms "
                                "(arXiv:2408.13233v2, corrected per spec §2.2-2.9).")  # fmt: skip
    p.add_argument("term", nargs="?", metavar="TERM", help="a statement name (see --list)")
    p.add_argument("--list", action="store_true", help="list every TERM with its paper label and sizes")
    p.add_argument("--n", type=int, default=None, help="tokens for the explicit matrix / the proof")
    p.add_argument("--d", type=int, default=None, help="width for the explicit matrix / the proof")
    p.add_argument("--heads", type=int, default=None, help="heads (mh.* terms; default 2)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--latex", action="store_true", help="print LaTeX (the docs' printer)")
    fmt.add_argument("--pretty", action="store_true", help="print unicode pictures (default)")
    p.add_argument("--prove", action="store_true", help="prove TERM exactly at (n, d) (default 2, 2)")
    p.add_argument("--write-docs", action="store_true", help="regenerate docs/derivations/*.md")
    p.add_argument("--check", action="store_true", help="with --write-docs: only report differences")
    return p


def _eq(lhs: object, rhs: object, latex: bool, shape: bool = True) -> str:
    if latex:
        tail = f" {shape_latex(rhs)}" if shape and shape_latex(rhs) else ""
        return f"{render_latex(lhs)} = {render_latex(rhs)}{tail}"
    tail = f"   {shape_text(rhs)}" if shape and shape_text(rhs) else ""
    return pretty_equation(lhs, rhs) + tail


def _print_list() -> None:
    width = max(map(len, valid_terms()))
    for name, st in STATEMENTS.items():
        print(f"{name:<{width}}  {st.label:<12}  {st.title}  [proved at {sizes_text(st.sizes)}]")
    for name in PRINTED_TERMS:
        label = cx.PRINTED[name.split(".", 1)[1]][0]
        print(f"{name:<{width}}  {label:<12}  exact counterexample to the printed form")


def _show_chain(name: str, latex: bool) -> None:
    st = statement(name)
    print(f"{name}: {st.title} ({st.label}, spec {st.spec})")
    print(f"statement: {st.closed_latex}\n")
    for title, steps in chain(name):
        print(f"== {title}")
        for i, step in enumerate(steps, 1):
            print(f"{i}. {step.caption}")
            print(_eq(step.lhs, step.rhs, latex, step.shape))
        print()


def _show_printed(name: str, latex: bool) -> int:
    key = name.split(".", 1)[1]
    from symbolic.docs import PRINTED_EXPR

    label = cx.PRINTED[key][0]
    printed, corrected = PRINTED_EXPR[key]
    show = render_latex if latex else render_pretty
    c = cx.counterexample(key)
    print(f"{name}: {label} (beta = 1)\nprinted:\n{show(printed)}\ncorrected:\n{show(corrected)}")
    print(f"point: {cx.POINT} (beta = 1); t stands for e")
    diff = c.difference
    print("printed - true =")
    print(render_latex(diff) if latex else render_pretty(diff))
    print(f"at t = e: {c.value}")
    print(f"printed fails: {c.printed_fails}; corrected - true = 0: {c.corrected_holds}")
    return 0 if c.printed_fails and c.corrected_holds else 1


def _show_explicit(name: str, size: tuple[int, int, int], latex: bool) -> None:
    derived, closed = statement(name).pair(*size)
    print(f"== derived by the chain rule at (n, d, heads) = {size} (atoms a = e^S, r = 1/row sum)")
    print(render_latex(derived) if latex else render_pretty(derived))
    print()
    del closed


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``altgrad derive``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        _print_list()
        return 0
    if args.write_docs:
        from symbolic.docs import write_docs

        changed = write_docs(check=args.check)
        verb = "differ" if args.check else "written"
        print(f"{len(changed)} page(s) {verb}: {', '.join(changed) or '-'}")
        return 1 if args.check and changed else 0
    if args.term is None:
        parser.print_usage(sys.stderr)
        print(f"altgrad derive: error: TERM is required; valid TERMs: {', '.join(valid_terms())}", file=sys.stderr)
        return 2
    if args.term not in valid_terms():
        print(f"altgrad derive: error: TERM: expected one of {', '.join(valid_terms())}; got {args.term!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    if args.term in PRINTED_TERMS:
        return _show_printed(args.term, args.latex)
    st = statement(args.term)
    try:
        size = check_size_for(st, args.n if args.n is not None else 2, args.d if args.d is not None else 2,
                              args.heads)  # fmt: skip
    except (TypeError, ValueError) as exc:
        print(f"altgrad derive: error: {exc} (valid: 1 <= n <= {ex.MAX_N}, 1 <= d <= {ex.MAX_D}, "
              f"heads divides d; proved sizes for {st.name}: {sizes_text(st.sizes)})", file=sys.stderr)  # fmt: skip
        return 2
    _show_chain(args.term, args.latex)
    if args.n is not None or args.d is not None:
        _show_explicit(args.term, size, args.latex)
    if args.prove:
        t0 = time.perf_counter()
        pr = prove(args.term, *size)
        verdict = "PROVED (derived - closed expands to 0)" if pr.holds else "NOT EQUAL"
        print(f"{args.term} at (n, d, heads) = {pr.size}: {verdict} in {time.perf_counter() - t0:.2f} s")
        return 0 if pr.holds else 1
    return 0


__all__ = ["build_parser", "main", "valid_terms"]

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
