r"""``python -m symbolic render [--check]`` regenerates docs/derivations/*.md (spec §2.2–2.9).

``python -m symbolic ARGS`` otherwise behaves as ``altgrad derive ARGS``.
"""

from __future__ import annotations

import sys

from symbolic.cli import main as derive_main


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "render":
        rest = argv[1:]
        unknown = [a for a in rest if a != "--check"]
        if unknown:
            print(f"python -m symbolic render: error: unknown arguments {unknown}; valid: --check", file=sys.stderr)
            return 2
        return derive_main(["--write-docs", *rest])
    return derive_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
